// The notification dispatcher (docs/webhooks.md): sends the deliveries the store records when a
// receiver's executions change status, to the receiver's subscribers, signed.
//
// Durable and honest: a delivery is a row before anything is sent. A worker claims one that is
// due (the claim pushes its due time a lease ahead, so a crash mid-send sends it again after
// the lease, with the same webhook-id), sends it with no redirects, bounded time and a bounded
// answer, and records the attempt (status, latency, the answer's first bytes) together with what
// follows, in one transaction:
//   2xx                               delivered
//   410 Gone                          failed, and the subscription is disabled
//   transport error, 5xx, 408, 429    pending again after exponential backoff with jitter, or
//                                     after Retry-After when the answer has one; failed once
//                                     max_attempts are used up
//   anything else (3xx, other 4xx)    failed
//   a local address (the flag is off) failed
// Bounded: `workers` threads, one request each at a time; the store caps pending deliveries per
// subscription and attempts per delivery. Workers sleep until the next delivery is due (or
// `poll` at most), and wake at once on poke().
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "secrets.h"
#include "store.h"

namespace tripline {

struct NotifierOptions {
  int workers = 2;
  bool allow_local = false;  // --allow-local-webhook-targets
  int max_attempts = 10;     // per delivery, counted from its last re-send by hand
  std::chrono::milliseconds base_backoff{2000};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(30)};
  std::chrono::milliseconds max_retry_after{std::chrono::hours(1)};
  std::chrono::milliseconds min_retry_after{1000};  // Retry-After: 0 waits this long
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds poll{1000};
};

// What to make of an answer (status 0: no answer). For tests.
struct DeliveryVerdict {
  std::string state;     // delivered, pending, failed
  bool disable = false;  // a 410
  std::chrono::milliseconds retry_in{0};
};
// `attempt` counts from 1 (this one); `retry_after` is the answer's header, if any; `jitter` in
// [0, 1) picks the delay within [half, all] of the exponential step.
DeliveryVerdict judge_delivery(int status, bool address_refused, int attempt,
                               const std::string* retry_after, double jitter,
                               const NotifierOptions& options, int64_t now_ms);
// Retry-After: delay-seconds or an HTTP-date; nullopt when it is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value, int64_t now_ms);

class Notifier {
 public:
  Notifier(Store& store, const SecretBox& secrets, NotifierOptions options);
  ~Notifier();
  void start();
  void stop();  // lets requests in flight finish
  void poke();  // something became due now (a re-send by hand)

  static constexpr size_t kAnswerSnippet = 512;  // bytes of an answer kept per attempt

 private:
  void work();
  // Claims and sends one due delivery; false when none was due.
  bool send_one();

  Store& store_;
  const SecretBox& secrets_;
  NotifierOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t pokes_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace tripline
