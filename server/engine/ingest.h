// The durable half of the trigger path: accepted triggers are queued here and one writer thread
// commits whatever has gathered in ONE transaction (group commit), then answers every waiting
// request and hands the new executions to the executor. Under load a commit carries as many
// triggers as arrived during the previous fsync, so throughput grows with concurrency while each
// answer still comes only after its row is on disk. The executor's plans ride on the same commits
// (record_plans; docs/durability.md).
//
// The answers go out on a second thread, the answerer: while it writes one commit's 202s (a
// send() each) and hands their executions to the executor, the writer already commits the next
// batch. On a flood the writer's thread was the trigger path's bottleneck, and a sixth of its
// time went to those send()s (bench/RESULTS.md).
//
// Thread safety: submit() may be called from any thread; `done` and `on_committed` run on the
// answerer thread, in commit order.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "receivers.h"
#include "request_log.h"
#include "store.h"

namespace tripline {

struct Accepted {
  int64_t execution_id = 0;
  bool replayed = false;    // an Idempotency-Key matched: this is the earlier execution
  bool overloaded = false;  // refused without trying: the queue was full
  bool revoked = false;     // refused at the commit: the URL was revoked while it waited
  int64_t request_id = 0;   // its request log entry, when one was written
};

class Ingest {
 public:
  using Done = std::function<void(const Status&, const Accepted&)>;
  // A trigger to record. config/config_text override the receiver's when the execution took
  // values from its request (Driver::bind, a rule's "set"); otherwise they are empty. So does
  // action, when it differs from the receiver's (the inverse run on a resolved alert).
  struct Trigger {
    std::shared_ptr<const Receiver> receiver;
    std::shared_ptr<const DriverConfig> config;
    std::string config_text;
    std::string action;
    std::string idempotency_key;
    int64_t created_at = 0;
    // The request's log entry (docs/requests-log.md), written in the same commit; null: none.
    // Its outcome is "accepted" (the store makes it "refused" when the URL was revoked).
    RequestLogEntry request;
    nlohmann::json rule;  // the rule that matched, recorded with the execution
    const DriverConfig& effective_config() const { return config ? *config : *receiver->config; }
  };
  using OnCommitted = std::function<void(const Trigger&, int64_t id)>;

  // `log` (may be null) gets the log entries of triggers that could not be recorded (overload,
  // a failed commit) and is told which receivers' entries the commits wrote (its cap).
  Ingest(Store& store, OnCommitted on_committed, size_t max_pending = 20000,
         RequestLog* log = nullptr);
  ~Ingest();

  // Queues one trigger; `done` runs after its commit (or at once, overloaded, when the queue is
  // full or the ingest is stopping).
  void submit(Trigger trigger, Done done);
  void stop();  // commits what is queued, then stops the writer

  // Records the executor's plans in the next group commit (Store::commit_group) and returns once
  // that commit is on disk, with its status: plans ride on the triggers' fsync instead of paying
  // one of their own. Blocks the calling thread (a worker) for about one commit. After stop(),
  // records them directly (Store::start_planned).
  Status record_plans(const std::vector<Store::PlannedRun>& runs, int64_t started_at);

  // Group commits made.
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    Trigger trigger;
    Done done;
  };
  // A worker waiting in record_plans(); lives on its stack.
  struct PlanWait {
    Store::PlannedBatch batch;
    Status status;
    bool done = false;
  };
  void run();
  void answer();  // the answerer thread
  // Hands a committed batch to the answerer; waits while the one before is still untaken, so
  // at most one batch waits between the two threads.
  void hand_over(std::vector<Pending>& batch, std::vector<Accepted>& outcomes, const Status& s);

  // A trigger that was not recorded: its log entry says why, off the trigger path.
  void log_unrecorded(Trigger& t, bool overloaded);
  Store& store_;
  OnCommitted on_committed_;
  RequestLog* log_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  std::atomic<uint64_t> commits_{0};  // group commits made

  std::vector<PlanWait*> plan_waits_;  // unbounded only by the executor's worker count
  std::condition_variable plans_done_;
  bool stopping_ = false;
  std::thread writer_;

  // The writer → answerer slot (answer_mu_).
  std::mutex answer_mu_;
  std::condition_variable answer_cv_;  // the slot was filled, or the writer ended
  std::condition_variable taken_cv_;   // the slot was emptied
  bool answer_full_ = false;
  bool writer_done_ = false;
  std::vector<Pending> answer_batch_;
  std::vector<Accepted> answer_outcomes_;
  Status answer_status_ = Status::Ok();
  std::thread answerer_;
};

}  // namespace tripline
