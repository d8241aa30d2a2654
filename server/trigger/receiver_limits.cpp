#include "receiver_limits.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "field_reader.h"
#include "store.h"

namespace tripline {

namespace {
constexpr double kMaxBucketMemoryMs = 24.0 * 3600 * 1000;
}  // namespace

Limits Limits::builtin() {
  Limits l;
  l.rate_per_s = 600 / 60.0;
  l.burst = 100;
  l.max_queued = 1000;
  return l;
}

Result<Limits> Limits::parse(const nlohmann::json& j, const Limits& defaults) {
  using Need = FieldReader::Need;
  Limits l = defaults;
  if (j.is_null()) return l;
  if (!j.is_object())
    return Status::Invalid("limits must be an object", {{"limits", "must be an object"}});
  // Every problem is reported at once; members are read in their order (nlohmann sorts them),
  // so the first error, the one in the message, is the one this answered when it stopped there.
  FieldReader r(j, "limits.");
  std::optional<double> burst, cooldown, max_queued, per_minute;
  std::pair<const char*, std::optional<double>*> fields[] = {{"burst", &burst},
                                                             {"cooldown_seconds", &cooldown},
                                                             {"max_queued", &max_queued},
                                                             {"rate_per_minute", &per_minute}};
  for (const auto& item : j.items()) {
    auto f = std::find_if(std::begin(fields), std::end(fields),
                          [&](const auto& f) { return item.key() == f.first; });
    if (f == std::end(fields))
      r.error(item.key(), "is not a limits field");
    else
      *f->second =
          r.number(f->first, Need::kOptional, 0, 1e6, "must be a number from 0 to 1000000");
  }
  // 0 turns it off; below one a day and a half (0.01/min) the arithmetic stops making sense.
  if (per_minute && *per_minute != 0 && *per_minute < 0.01)
    r.error("rate_per_minute", "must be 0 (off) or at least 0.01");
  if (!r.ok()) return r.status();
  if (cooldown) l.cooldown_ms = static_cast<int64_t>(*cooldown * 1000);
  if (per_minute) l.rate_per_s = *per_minute / 60.0;
  if (burst) l.burst = *burst;
  l.burst = std::max(1.0, l.burst);
  if (max_queued) l.max_queued = static_cast<int64_t>(*max_queued);
  return l;
}

int64_t Limits::memory_ms() const {
  // A bucket emptied at t is full again at t + burst / rate; past a day, a restart forgets the
  // bucket's history (and the start-up scan stays short).
  double refill = rate_per_s > 0 ? std::min(burst / rate_per_s * 1000, kMaxBucketMemoryMs) : 0;
  return std::max(cooldown_ms, static_cast<int64_t>(std::ceil(refill)));
}

bool LimiterState::take_locked(const Limits& l, int64_t now_ms, int64_t* retry_after_s) {
  if (l.rate_per_s <= 0) return true;
  if (tokens_ < 0) tokens_ = l.burst, refilled_at_ = now_ms;
  tokens_ = std::min(l.burst,
                     tokens_ + std::max<int64_t>(0, now_ms - refilled_at_) / 1000.0 * l.rate_per_s);
  refilled_at_ = std::max(refilled_at_, now_ms);
  if (tokens_ >= 1) {
    tokens_ -= 1;
    return true;
  }
  if (retry_after_s)
    *retry_after_s =
        static_cast<int64_t>(std::clamp(std::ceil((1 - tokens_) / l.rate_per_s), 1.0, 86400.0));
  return false;
}

LimiterState::Verdict LimiterState::reserve(const Limits& l, const std::string& action,
                                            const std::string& key, int64_t now_ms,
                                            Reservation* out, int64_t* wait) {
  std::lock_guard lock(mu_);
  auto refuse = [&](Verdict v) {
    if (!key.empty() && in_flight_.count(key)) {
      *wait = 1;
      return Verdict::kInFlight;
    }
    return v;
  };
  if (l.cooldown_ms > 0) {
    auto it = last_run_.find(action);
    if (it != last_run_.end() && now_ms - it->second < l.cooldown_ms) {
      *wait = l.cooldown_ms - (now_ms - it->second);
      return refuse(Verdict::kCoolingDown);
    }
  }
  if (l.max_queued > 0 && queued_->load(std::memory_order_relaxed) >= l.max_queued) {
    *wait = 10;  // the backlog drains one execution per target at a time
    return refuse(Verdict::kQueueFull);
  }
  if (!take_locked(l, now_ms, wait)) return refuse(Verdict::kRateLimited);
  if (!key.empty()) {
    in_flight_.insert(key);
    out->key_ = key;
  }
  out->state_ = shared_from_this();
  out->took_token_ = l.rate_per_s > 0;
  // Counted for every receiver (the executor gives it back as each execution finishes); only
  // a capped receiver refuses on it.
  queued_->fetch_add(1, std::memory_order_relaxed);
  out->took_slot_ = true;
  if (l.cooldown_ms > 0) claim_cooldown_locked(action, now_ms, out);
  return Verdict::kOk;
}

void LimiterState::claim_cooldown_locked(const std::string& action, int64_t now_ms,
                                         Reservation* out) {
  auto [it, fresh] = last_run_.try_emplace(action, now_ms);
  if (!fresh) out->previous_run_ = it->second;
  it->second = std::max(it->second, now_ms);
  out->action_ = action;
  out->claimed_at_ = it->second;
}

LimiterState::Verdict LimiterState::reserve_retry(const Limits& l, const std::string& action,
                                                  int64_t now_ms, Reservation* out, int64_t* wait) {
  std::lock_guard lock(mu_);
  if (l.max_queued > 0 && queued_->load(std::memory_order_relaxed) >= l.max_queued) {
    *wait = 10;
    return Verdict::kQueueFull;
  }
  out->state_ = shared_from_this();
  queued_->fetch_add(1, std::memory_order_relaxed);
  out->took_slot_ = true;
  if (l.cooldown_ms > 0) claim_cooldown_locked(action, now_ms, out);
  return Verdict::kOk;
}

void Reservation::release() {
  if (!state_) return;
  std::lock_guard lock(state_->mu_);
  if (took_token_) state_->tokens_ += 1;  // capped at burst by the next refill
  if (took_slot_) state_->queued_->fetch_sub(1, std::memory_order_relaxed);
  if (!key_.empty()) state_->in_flight_.erase(key_);
  if (!action_.empty()) {
    // Only undo our own claim: a later claim of the same action stays.
    auto it = state_->last_run_.find(action_);
    if (it != state_->last_run_.end() && it->second == claimed_at_) {
      if (previous_run_)
        it->second = *previous_run_;
      else
        state_->last_run_.erase(it);
    }
  }
  state_.reset();
}

void Reservation::keep_limits() {
  if (!state_) return;
  std::lock_guard lock(state_->mu_);
  if (took_slot_) state_->queued_->fetch_sub(1, std::memory_order_relaxed);
  if (!key_.empty()) state_->in_flight_.erase(key_);
  state_.reset();
}

void Reservation::settle() {
  if (!state_) return;
  if (!key_.empty()) {
    std::lock_guard lock(state_->mu_);
    state_->in_flight_.erase(key_);
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
