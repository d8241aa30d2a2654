// Per-receiver limits: {"cooldown_seconds": 60, "rate_per_minute": 30, "burst": 10}
//   cooldown: the minimum time between two executions of the same action (an "up" does not hold
//             back the "down" that undoes it); a request inside it is ignored (answered 200).
//   rate:     a token bucket over the requests that become executions; over it answers 429 +
//             Retry-After.
//
// Limits count only executions that were committed: the trigger path claims a Reservation before
// the durable insert and releases it when the insert fails (503) or finds an earlier execution
// (a replay), so a sender's retry after a failed commit is never eaten by its own cooldown.
//
// State lives in memory, shared by the successive versions of a receiver, and is rebuilt at
// start-up from the committed executions (seed()): a restart neither reopens a cooldown nor
// refills a bucket.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "status.h"

namespace tripline {

struct RecentExecution;

struct Limits {
  int64_t cooldown_ms = 0;
  double rate_per_s = 0;  // 0: no rate limit
  double burst = 1;
  bool any() const { return cooldown_ms > 0 || rate_per_s > 0; }
  // How far back executions matter to these limits (for seed()).
  int64_t memory_ms() const;
  static Result<Limits> parse(const nlohmann::json& j);  // null: no limits
};

class LimiterState;

// What one trigger took from its receiver's limits, until its execution is committed.
// Thread safety: used by the one request that made it.
class Reservation {
 public:
  Reservation() = default;
  // Gives back what was taken: the insert failed or found an earlier execution.
  void release();

 private:
  friend class LimiterState;
  std::shared_ptr<LimiterState> state_;
  bool took_token_ = false;
  std::string action_;  // empty: no cooldown claimed
  int64_t claimed_at_ = 0;
  std::optional<int64_t> previous_run_;
};

class LimiterState : public std::enable_shared_from_this<LimiterState> {
 public:
  enum class Verdict { kOk, kRateLimited, kCoolingDown };
  // Takes a rate token, then claims the cooldown of `action`, into `out`. On kRateLimited,
  // `*wait` is the seconds to wait; on kCoolingDown the milliseconds left (nothing is kept).
  Verdict reserve(const Limits& l, const std::string& action, int64_t now_ms, Reservation* out,
                  int64_t* wait);
  // Replays committed executions (oldest first) through the limits: what start-up calls.
  void seed(const Limits& l, const std::vector<RecentExecution>& executions);

 private:
  friend class Reservation;
  bool take_locked(const Limits& l, int64_t now_ms, int64_t* retry_after_s);

  std::mutex mu_;
  double tokens_ = -1;  // -1: full on first use
  int64_t refilled_at_ = 0;
  std::unordered_map<std::string, int64_t> last_run_;
};

}  // namespace tripline
