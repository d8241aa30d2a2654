#include "receiver_limits.h"

#include <algorithm>
#include <cmath>

#include "store.h"

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

int64_t Limits::memory_ms() const {
  // A bucket emptied at t is full again at t + burst / rate.
  int64_t refill = rate_per_s > 0 ? static_cast<int64_t>(std::ceil(burst / rate_per_s * 1000)) : 0;
  return std::max(cooldown_ms, refill);
}

bool LimiterState::take_locked(const Limits& l, int64_t now_ms, int64_t* retry_after_s) {
  if (l.rate_per_s <= 0) return true;
  if (tokens_ < 0) tokens_ = l.burst, refilled_at_ = now_ms;
  tokens_ = std::min(l.burst, tokens_ + std::max<int64_t>(0, now_ms - refilled_at_) / 1000.0 * l.rate_per_s);
  refilled_at_ = std::max(refilled_at_, now_ms);
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  if (retry_after_s)
    *retry_after_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - tokens_) / l.rate_per_s)));
  return false;
}

LimiterState::Verdict LimiterState::reserve(const Limits& l, const std::string& action, int64_t now_ms,
                                            Reservation* out, int64_t* wait) {
  if (!l.any()) return Verdict::kOk;
  std::lock_guard lock(mu_);
  if (l.cooldown_ms > 0) {
    auto it = last_run_.find(action);
    if (it != last_run_.end() && now_ms - it->second < l.cooldown_ms) {
      *wait = l.cooldown_ms - (now_ms - it->second);
      return Verdict::kCoolingDown;
    }
  }
  if (!take_locked(l, now_ms, wait)) return Verdict::kRateLimited;
  out->state_ = shared_from_this();
  out->took_token_ = l.rate_per_s > 0;
  if (l.cooldown_ms > 0) {
    auto [it, fresh] = last_run_.try_emplace(action, now_ms);
    if (!fresh) out->previous_run_ = it->second;
    it->second = now_ms;
    out->action_ = action;
    out->claimed_at_ = now_ms;
  }
  return Verdict::kOk;
}

void Reservation::release() {
  if (!state_) return;
  std::lock_guard lock(state_->mu_);
  if (took_token_) state_->tokens_ += 1;  // capped at burst by the next refill
  if (!action_.empty()) {
    // Only undo our own claim: a later claim of the same action stays.
    auto it = state_->last_run_.find(action_);
    if (it != state_->last_run_.end() && it->second == claimed_at_) {
      if (previous_run_) it->second = *previous_run_; else state_->last_run_.erase(it);
    }
  }
  state_.reset();
}

void LimiterState::seed(const Limits& l, const std::vector<RecentExecution>& executions) {
  std::lock_guard lock(mu_);
  for (const auto& e : executions) {
    if (l.rate_per_s > 0) take_locked(l, e.created_at, nullptr);
    if (l.cooldown_ms > 0) {
      int64_t& last = last_run_[e.action];
      last = std::max(last, e.created_at);
    }
  }
}

}  // namespace tripline
