// Per-receiver limits: {"cooldown_seconds": 60, "rate_per_minute": 30, "burst": 10}
//   cooldown: the minimum time between two executions of the same action (an "up" does not hold
//             back the "down" that undoes it); a request inside it is ignored (answered 200).
//   rate:     a token bucket over all requests that would run; over it answers 429 + Retry-After.
// State lives in memory, shared by the successive versions of a receiver; a restart forgets it.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "status.h"

namespace tripline {

struct Limits {
  int64_t cooldown_ms = 0;
  double rate_per_s = 0;  // 0: no rate limit
  double burst = 1;
  bool any() const { return cooldown_ms > 0 || rate_per_s > 0; }
  static Result<Limits> parse(const nlohmann::json& j);  // null: no limits
};

class LimiterState {
 public:
  // Takes a token; false with the seconds to wait when the bucket is empty.
  bool take(const Limits& l, int64_t now_ms, int64_t* retry_after_s);
  // Claims the cooldown for `action`; false with the milliseconds left when inside it.
  bool claim_cooldown(const Limits& l, const std::string& action, int64_t now_ms, int64_t* left_ms);

 private:
  std::mutex mu_;
  double tokens_ = -1;  // -1: full on first use
  int64_t refilled_at_ = 0;
  std::unordered_map<std::string, int64_t> last_run_;
};

}  // namespace tripline
