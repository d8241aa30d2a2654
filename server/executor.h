// Runs executions through their drivers on a pool of worker threads.
//
// Ordering: executions with the same (driver, target) run one at a time, in the order they were
// accepted; a retrying execution keeps its lane until it finishes, so "up" then "down" can never
// be reordered. Different targets run in parallel.
//
// Per execution: mark running -> plan (recorded durably) -> apply -> succeeded, or retry with
// backoff (RetryPolicy), or failed. A final status that cannot be written is retried until it
// is, holding the lane. An execution recovered after a crash that already has a plan
// re-applies that plan; the driver's apply() makes that a no-op when it had already taken effect.
//
// Workers wake at once on enqueue (condition variable, no polling). pause() holds all work:
// executions keep being accepted and queued, and run after resume().
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../drivers/driver.h"
#include "metrics.h"
#include "retry.h"
#include "store.h"

namespace tripline {

struct Job {
  int64_t id = 0;
  const Driver* driver = nullptr;
  std::shared_ptr<const DriverConfig> config;
  std::string lane;         // driver name + ":" + target
  int attempts = 0;         // tries already made
  nlohmann::json plan;      // null until planned
  int64_t created_at = 0;
  int64_t first_started_at = 0;
  // The outcome is known but could not be recorded (database busy, disk full): only the record
  // is retried, and the lane stays held until it lands, so no later execution on the target runs
  // over an execution the database still calls "running" (a restart would re-apply its plan).
  struct Unrecorded {
    ExecutionStatus status = ExecutionStatus::kFailed;
    nlohmann::json result;
    std::string error;
    int64_t finished_at = 0;
    int tries = 0;
  };
  std::optional<Unrecorded> unrecorded;
};

class Executor {
 public:
  Executor(Store& store, Metrics& metrics, RetryPolicy policy, int workers);
  ~Executor();

  void start();
  void stop();  // lets running executions finish; queued ones stay queued in the database

  void enqueue(Job job);
  void pause();
  void resume();
  bool paused() const;
  size_t depth() const;  // queued + running

 private:
  struct Lane {
    std::deque<Job> jobs;
  };
  using Clock = std::chrono::steady_clock;
  struct Timer {
    Clock::time_point due;
    std::string lane;
    bool operator>(const Timer& o) const { return due > o.due; }
  };

  void work();
  // Runs one attempt; answers true when the job is done (succeeded or failed for good) and that
  // is recorded.
  bool run_once(Job& job, std::chrono::milliseconds* retry_in);
  // Records a finished job's outcome; false (retry in *retry_in) when the store refused.
  bool record_finish(Job& job, std::chrono::milliseconds* retry_in);

  Store& store_;
  Metrics& metrics_;
  const RetryPolicy policy_;
  const int worker_count_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Lane> lanes_;  // a lane exists while it has work
  std::deque<std::string> ready_;                // lanes whose front job may start now
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  size_t depth_ = 0;
  bool paused_ = false;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace tripline
