// Prometheus metrics, rendered in the text exposition format at GET /metrics.
//
// The counters the trigger path touches are fixed arrays of relaxed atomics indexed by enums, so
// counting costs no lock and no allocation. Executions (off the hot path) use a small map.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tripline {

enum class Route { kTrigger, kApi, kHealth, kMetrics, kUi, kOther, kCount };
enum class RejectReason {
  kMalformedToken,
  kUnknownKey,
  kBadSignature,
  kUnknownReceiver,
  kRevoked,
  kDisabled,
  kOverloaded,
  kStorageFailed,
  kBadRequest,
  kUnauthorized,  // inbound authentication failed (by reason in
                  // tripline_inbound_auth_failures_total)
  kRateLimited,
  kQueueFull,  // the receiver's unfinished executions reached its max_queued
  kCount
};
// kNoPush: a registry notification without a tag push (a pull, a blob upload); kUnmatched: the
// request names nothing the receiver's action is for (a push of another repository or tag).
enum class IgnoreReason { kRule, kResolved, kCooldown, kNoPush, kUnmatched, kCount };
const char* to_string(IgnoreReason r);
const char* to_string(RejectReason r);

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  void render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // one per bound, plus +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();
  void request(Route route, int status) {
    if (status < 100 || status > 599) status = 599;
    requests_[static_cast<size_t>(route)][status - 100].fetch_add(1, std::memory_order_relaxed);
  }
  void trigger_accepted() { accepted_.fetch_add(1, std::memory_order_relaxed); }
  void trigger_rejected(RejectReason r) {
    rejected_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  void trigger_ignored(IgnoreReason r) {
    ignored_[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
  // `reason` indexes AuthFailure (inbound_auth.h).
  void auth_failed(size_t reason) {
    if (reason < auth_failures_.size())
      auth_failures_[reason].fetch_add(1, std::memory_order_relaxed);
  }
  void execution_finished(const std::string& driver, const std::string& status, double seconds);
  void execution_started(double seconds_since_trigger) {
    start_delay_.observe(seconds_since_trigger);
  }
  void set_queue_depth_source(std::function<size_t()> f) { queue_depth_ = std::move(f); }
  // An execution's outcome could not be written (and will be tried again).
  void store_write_failed() { store_write_failures_.fetch_add(1, std::memory_order_relaxed); }

  // The request log (docs/requests-log.md): entries its background writer wrote, and entries
  // dropped because its queue was full (or the write failed).
  void request_log_written(uint64_t n) { log_written_.fetch_add(n, std::memory_order_relaxed); }
  void request_log_dropped(uint64_t n = 1) { log_dropped_.fetch_add(n, std::memory_order_relaxed); }
  // Accepted requests' entries left unwritten because newer ones of the same receiver waited
  // to be written and the cap keeps only the newest (RequestLog::record_accepted).
  void request_log_capped(uint64_t n) { log_capped_.fetch_add(n, std::memory_order_relaxed); }

  std::string render() const;

  // For tests.
  uint64_t request_log_dropped_count() const { return log_dropped_.load(); }
  uint64_t rejected(RejectReason r) const { return rejected_[static_cast<size_t>(r)].load(); }
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t store_write_failures() const { return store_write_failures_.load(); }

 private:
  std::array<std::array<std::atomic<uint64_t>, 500>, static_cast<size_t>(Route::kCount)>
      requests_{};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> store_write_failures_{0};
  std::atomic<uint64_t> log_written_{0}, log_dropped_{0}, log_capped_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(RejectReason::kCount)> rejected_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(IgnoreReason::kCount)> ignored_{};
  std::array<std::atomic<uint64_t>, 8> auth_failures_{};
  mutable std::mutex exec_mu_;
  std::map<std::pair<std::string, std::string>, uint64_t> executions_;
  std::map<std::string, std::unique_ptr<Histogram>> durations_;
  Histogram start_delay_;
  std::function<size_t()> queue_depth_;
};

}  // namespace tripline
