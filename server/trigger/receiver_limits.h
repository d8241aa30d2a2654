// Per-receiver limits: {"cooldown_seconds": 60, "rate_per_minute": 30, "burst": 10, "max_queued":
// 100}
//   cooldown: the minimum time between two executions of the same action (an "up" does not hold
//             back the "down" that undoes it); a request inside it is ignored (answered 200).
//   rate:     a token bucket over the requests that become executions; over it answers 429 +
//             Retry-After.
//   queue:    at most max_queued executions of the receiver unfinished (queued, retrying or
//             running); past it answers 429 + Retry-After, so a flood builds no backlog.
// Every receiver has a rate limit and a queue cap: fields left out take the server's defaults
// (Limits::builtin(), or the --default-* flags); 0 turns a limit off.
//
// Limits count only executions that were committed: the trigger path claims a Reservation before
// the durable insert and releases it when the insert fails (503) or finds an earlier execution
// (a replay), so a sender's retry after a failed commit is never eaten by its own cooldown.
//
// State lives in memory, shared by the successive versions of a receiver, and is rebuilt at
// start-up from the committed executions (seed()): a restart neither reopens a cooldown nor
// refills a bucket.
//
// This is one replica's count. Replicas sharing a PostgreSQL store each check theirs here first;
// the store then checks the receiver's whole count (store.h LimitsCheck, docs/scale-out.md, which
// says what that count gives up against this one).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "status.h"

namespace tripline {

struct RecentExecution;

struct Limits {
  int64_t cooldown_ms = 0;
  double rate_per_s = 0;  // 0: no rate limit
  double burst = 1;
  int64_t max_queued = 0;  // 0: no cap
  bool any() const { return cooldown_ms > 0 || rate_per_s > 0 || max_queued > 0; }
  // How far back executions matter to these limits (for seed()).
  int64_t memory_ms() const;
  // The defaults of a receiver that says nothing: 600 requests a minute (burst 100), 1,000
  // unfinished executions, no cooldown.
  static Limits builtin();
  // A receiver's "limits" object over `defaults` (null: the defaults).
  static Result<Limits> parse(const nlohmann::json& j, const Limits& defaults = builtin());
};

class LimiterState;

// What one trigger took from its receiver's limits, until its execution is committed.
// Thread safety: used by the one request that made it.
class Reservation {
 public:
  Reservation() = default;
  // Gives back what was taken: the insert failed or found an earlier execution.
  void release();
  // The execution was committed: the limits keep what was taken.
  void settle();
  // Nothing was recorded because the replicas' whole count refused it (a shared store,
  // docs/scale-out.md): the rate token and the cooldown claim stay taken, so this replica's
  // count stays in step with the whole and refuses the flood that follows itself, before the
  // database; the queue slot goes back (nothing was queued).
  void keep_limits();

 private:
  friend class LimiterState;
  std::shared_ptr<LimiterState> state_;
  bool took_token_ = false;
  bool took_slot_ = false;  // one of max_queued
  std::string action_;      // empty: no cooldown claimed
  int64_t claimed_at_ = 0;
  std::optional<int64_t> previous_run_;
  std::string key_;  // the request's idempotency key, in flight until settled or released
};

class LimiterState : public std::enable_shared_from_this<LimiterState> {
 public:
  // kInFlight: refused, but a request with the same idempotency key holds a claim that is not
  // committed yet (the sender retried before our first answer): it must retry, not be ignored.
  enum class Verdict { kOk, kRateLimited, kQueueFull, kCoolingDown, kInFlight };
  // Claims the cooldown of `action`, a rate token and a queue slot, into `out`. On kRateLimited
  // and kQueueFull, `*wait` is the seconds to wait; on kCoolingDown the milliseconds left
  // (nothing is kept).
  Verdict reserve(const Limits& l, const std::string& action, const std::string& key,
                  int64_t now_ms, Reservation* out, int64_t* wait);
  // An admin's retry of a failed execution (POST /executions/{id}/retry): not held to the rate
  // limit or the cooldown, but it takes a queue slot (kQueueFull past the cap, `*wait` seconds),
  // under the same lock as reserve(), so retries and triggers together never pass the cap; and it
  // claims the cooldown of `action`, so the triggers that follow it wait as they would after a
  // trigger's execution.
  Verdict reserve_retry(const Limits& l, const std::string& action, int64_t now_ms,
                        Reservation* out, int64_t* wait);
  // Replays committed executions (oldest first) through the limits: what start-up calls.
  void seed(const Limits& l, const std::vector<RecentExecution>& executions);
  // Unfinished executions of the receiver: set at start-up from the store, +1 per committed
  // trigger, -1 as the executor finishes each (Job::backlog).
  const std::shared_ptr<std::atomic<int64_t>>& queued() const { return queued_; }

 private:
  friend class Reservation;
  bool take_locked(const Limits& l, int64_t now_ms, int64_t* retry_after_s);
  // Records `action` as run at now_ms (never earlier than a claim already there), into `out` so
  // release() can undo it.
  void claim_cooldown_locked(const std::string& action, int64_t now_ms, Reservation* out);

  std::mutex mu_;
  double tokens_ = -1;  // -1: full on first use
  int64_t refilled_at_ = 0;
  std::unordered_map<std::string, int64_t> last_run_;
  std::unordered_set<std::string>
      in_flight_;  // keys of claims not yet settled (bounded by concurrency)
  std::shared_ptr<std::atomic<int64_t>> queued_ = std::make_shared<std::atomic<int64_t>>(0);
};

}  // namespace tripline
