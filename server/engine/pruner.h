// Retention: a background thread that deletes finished executions the RetentionPolicy lets go
// (and audit rows past Options::audit),
// in batches of `batch` rows, each one short write transaction, with a pause between batches so
// group commits of the trigger path never wait long behind it. Queued and running executions are
// never pruned; rows carrying an idempotency key stay for the policy's dedupe window. The request
// log (docs/requests-log.md) is kept no longer than the policy's age.
//
// Thread safety: start() and stop() from one thread; run_once() is for tests.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "store.h"

namespace tripline {

class Pruner {
 public:
  struct Options {
    RetentionPolicy policy;
    int batch = 500;
    std::chrono::milliseconds interval{10000};  // between passes
    std::chrono::milliseconds pause{20};        // between batches of one pass
    // How far back executions must stay for limits to be rebuilt at start-up (the longest
    // cooldown or bucket window of any receiver); asked once per pass. Null: nothing.
    std::function<int64_t()> protect_ms;
    AuditRetention audit;  // the audit log's bound, pruned in the same passes
  };
  Pruner(Store& store, Options options, std::function<void(int)> on_pruned = nullptr);
  ~Pruner();
  void start();
  void stop();
  // One pass: batches until nothing is left to prune. Answers the rows deleted.
  Result<int64_t> run_once();
  // The request log's age retention (the policy's max_age_ms; its cap per receiver is the
  // request log writer's): one pass, in batches. Answers the entries deleted.
  Result<int64_t> prune_request_log();

 private:
  void loop();
  Store& store_;
  const Options options_;
  std::function<void(int)> on_pruned_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// "30d", "12h", "100000" (a count per receiver), "30d,100000", or "off" into `policy`.
Status parse_retention(std::string_view text, RetentionPolicy* policy);
// The same forms for the audit log (--audit-retention): the count is of all its rows.
Status parse_audit_retention(std::string_view text, AuditRetention* retention);

}  // namespace tripline
