// The time tripline decides by: when an execution was accepted and may be retried, when a
// cooldown ends, which executions are old enough to prune. One Clock is injected into the Store
// (StoreOptions::clock) and everything that records or compares times reads the store's
// (Store::clock()): the ingest, the executor's backoff timers, the pruner, receiver limits. Tests
// use a ManualClock and move time on instead of sleeping.
//
// now_ms() is one virtual call per reading, and the trigger path reads it twice per request: next
// to the clock_gettime() behind it (about 50 ns) the indirect call does not show, in a loop or in
// bench/flood.sh (bench/RESULTS.md, "Branch i11"), so the hot path keeps the interface.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>

namespace tripline {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall time, ms since the Unix epoch: what is recorded and compared with recorded times.
  virtual int64_t now_ms() const = 0;
  // Monotonic ms (never steps back with the wall clock): what timers are due by.
  virtual int64_t steady_ms() const = 0;
  // Waits on `cv` (with `lock` held, as condition_variable::wait_until) until steady_ms() has
  // reached `due_ms`, or a notify. Spurious returns are allowed: callers re-check.
  virtual void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          int64_t due_ms) const = 0;

  // The machine's clocks (system_clock and steady_clock).
  static const Clock& system();
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
  int64_t steady_ms() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
  }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  int64_t due_ms) const override {
    cv.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::milliseconds(due_ms)));
  }
};

inline const Clock& Clock::system() {
  static const SystemClock clock;
  return clock;
}

// Time that moves only when a test says so. Both readings move together. advance() wakes every
// thread waiting in wait_until(); a waiter also re-reads the time every 10 ms of real time, so a
// notify that lands between its check and its wait costs at most that.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}

  int64_t now_ms() const override { return ms_.load(); }
  int64_t steady_ms() const override { return ms_.load(); }
  void wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  int64_t due_ms) const override {
    if (steady_ms() >= due_ms) return;
    {
      std::lock_guard g(mu_);
      waiting_.insert(&cv);
    }
    cv.wait_for(lock, std::chrono::milliseconds(10));
    std::lock_guard g(mu_);
    waiting_.erase(&cv);
  }

  void advance(std::chrono::milliseconds by) {
    ms_ += by.count();
    std::lock_guard g(mu_);
    for (auto* cv : waiting_) cv->notify_all();
  }
  void set(int64_t ms) {
    ms_ = ms;
    std::lock_guard g(mu_);
    for (auto* cv : waiting_) cv->notify_all();
  }

 private:
  std::atomic<int64_t> ms_;
  mutable std::mutex mu_;
  mutable std::multiset<std::condition_variable*> waiting_;
};

}  // namespace tripline
