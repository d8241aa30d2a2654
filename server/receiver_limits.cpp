#include "receiver_limits.h"

#include <algorithm>
#include <cmath>

namespace tripline {

Result<Limits> Limits::parse(const nlohmann::json& j) {
  Limits l;
  if (j.is_null()) return l;
  auto bad = [](const std::string& f, const std::string& why) -> Status { return Status::Invalid(f + " " + why, {{f, why}}); };
  if (!j.is_object()) return bad("limits", "must be an object");
  for (const auto& [k, v] : j.items()) {
    if (k != "cooldown_seconds" && k != "rate_per_minute" && k != "burst") return bad("limits." + k, "is not a limits field");
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1e6) return bad("limits." + k, "must be a number from 0 to 1000000");
  }
  l.cooldown_ms = static_cast<int64_t>(j.value("cooldown_seconds", 0.0) * 1000);
  l.rate_per_s = j.value("rate_per_minute", 0.0) / 60.0;
  l.burst = std::max(1.0, j.value("burst", 1.0));
  return l;
}

bool LimiterState::take(const Limits& l, int64_t now_ms, int64_t* retry_after_s) {
  if (l.rate_per_s <= 0) return true;
  std::lock_guard lock(mu_);
  if (tokens_ < 0) tokens_ = l.burst, refilled_at_ = now_ms;
  tokens_ = std::min(l.burst, tokens_ + (now_ms - refilled_at_) / 1000.0 * l.rate_per_s);
  refilled_at_ = now_ms;
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  *retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - tokens_) / l.rate_per_s)));
  return false;
}

bool LimiterState::claim_cooldown(const Limits& l, const std::string& action, int64_t now_ms, int64_t* left_ms) {
  if (l.cooldown_ms <= 0) return true;
  std::lock_guard lock(mu_);
  auto [it, fresh] = last_run_.try_emplace(action, now_ms);
  if (fresh) return true;
  if (now_ms - it->second < l.cooldown_ms) {
    *left_ms = l.cooldown_ms - (now_ms - it->second);
    return false;
  }
  it->second = now_ms;
  return true;
}

}  // namespace tripline
