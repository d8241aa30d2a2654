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
// Workers wake at once on enqueue (condition variable, no polling). Retry backoff is timed by the
// store's Clock (clock.h), so tests move time on instead of waiting. pause() holds all work:
// executions keep being accepted and queued, and run after resume().
//
// Bounded memory: at most `max_held` executions are held in memory. They are always a prefix of
// the unfinished executions by id (every unfinished one with id <= the watermark). Past the
// bound, enqueue() keeps nothing (the execution is already durable) and the executor is
// "spilled": workers read the next page (id > watermark, oldest first) from the store through
// the Loader once half the room is free. Start-up begins spilled, so recovery after a restart is
// the same paging. Order per lane is kept: whatever is in the store is newer than all that is held.
//
// Planning together: when a lane holds several queued executions that have no plan yet, a worker
// takes up to kMaxBatch of them at once. The first is planned against the peer; each next one
// from the plan before it (Driver::plan_after: what it would plan once that one took effect),
// until the driver cannot say. Their plans are recorded in ONE transaction, only the last plan is
// applied (the earlier ones are absolute states the last one passes through), and the outcomes
// are recorded in one transaction: a flood on one target costs one peer read and one write per
// batch, not per execution. The earlier executions' results say which execution applied them
// ("applied_with"); their own plans stay recorded. Executions that already have recorded plans
// (after a crash, or a retry) run together the same way: each plan is an absolute state, so
// applying the last alone ends where applying each in turn would, and the target is never moved
// back through the earlier states. A retryable failure retries them together with backoff; a
// final one (or retries used up) sends each back to run on its own, in order, so that one
// execution's failure (another receiver's credentials on the same target, a bound the peer
// refuses) is its alone.
//
// Gathering: a lane whose batch held several executions is flooded. Its next batch waits
// kGatherMs after that one ended (a timer, as a retry's), taking everything that arrived
// meanwhile: under a flood the peer is read once per kGatherMs or so instead of once per batch,
// which with batches that end within a millisecond was a read per millisecond (dockerd's CPU,
// bench/RESULTS.md). A lane that ran one execution goes on at once, and so does one that ran or
// holds a whole batch (kMaxBatch): its drain is not slowed. Under a test's ManualClock
// a gathering lane waits until the test moves the clock on, as a retrying one does.
//
// Fairness: a lane runs one execution at a time and goes to the back of the ready queue after
// each, so targets share the workers round-robin; one flooded target holds at most one worker.
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "driver.h"
#include "metrics.h"
#include "retry.h"
#include "store.h"

namespace tripline {

struct Job {
  int64_t id = 0;
  const Driver* driver = nullptr;
  std::shared_ptr<const DriverConfig> config;
  std::string lane;     // driver name + ":" + target
  int attempts = 0;     // tries already made
  nlohmann::json plan;  // null until planned
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
  // The receiver's count of unfinished executions (its queue cap), decremented when this one is
  // finished and recorded. May be null.
  std::shared_ptr<std::atomic<int64_t>> backlog;
  // Runs on its own, never planned or applied together again: a combined apply that included it
  // failed for good, and each execution must now meet its own fate (Executor::run_batch).
  bool alone = false;
};

// Reads the next page of unfinished executions (id > after_id, oldest first, at most `limit`
// rows) and turns them into jobs; rows that cannot be resumed are failed in the store and left
// out. `last_id` is the id of the last row read, `rows` how many were read.
struct LoadedPage {
  std::vector<Job> jobs;
  int64_t last_id = 0;
  int rows = 0;
};
using Loader = std::function<Result<LoadedPage>(int64_t after_id, int limit)>;

class Executor {
 public:
  Executor(Store& store, Metrics& metrics, RetryPolicy policy, int workers, Loader loader,
           size_t max_held = 10000);
  ~Executor();

  // `backlog`: unfinished executions in the store at start (for depth() until they are read).
  void start(size_t backlog = 0);
  void stop();  // lets running executions finish; queued ones stay queued in the database

  void enqueue(Job job);
  // Where a batch's plans are recorded (before start()): by default Store::start_planned, a
  // synced commit of its own; the service records them in the ingest's next group commit
  // (Ingest::record_plans), which syncs anyway. Either way on disk before the apply.
  using PlanRecorder =
      std::function<Status(const std::vector<Store::PlannedRun>& runs, int64_t started_at)>;
  void record_plans_with(PlanRecorder recorder) { record_plans_ = std::move(recorder); }
  // Replicas on one database (docs/scale-out.md): a worker runs a lane's round only while this
  // replica holds the lock of its target, so two replicas never act on one target at once.
  // acquire() answers the lock's token, or 0 (or an error) while another replica holds it: the
  // lane waits kTargetBusy and asks again, its executions queued. The lock is kept while the
  // lane holds an execution whose plan is recorded or whose outcome is not (a recorded plan is
  // re-applied as is, so the target must stay as this replica left it), and released with its
  // token (release()) once none is left. Set before start().
  struct TargetLocks {
    std::function<Result<int64_t>(const std::string& lane)> acquire;
    std::function<void(const std::string& lane, int64_t token)> release;
  };
  void lock_targets_with(TargetLocks locks) { target_locks_ = std::move(locks); }
  static constexpr std::chrono::milliseconds kTargetBusy{200};
  // Executions taken over from a replica whose lease ran out (Store::take_over_expired), in two
  // steps that keep the paging's promise (every unfinished execution up to the watermark is
  // held): adopt_ids() leaves those above the watermark to the pages, which read them in order,
  // and answers the others, which the caller turns into jobs for adopt() (they join the back of
  // their lanes).
  //
  // Except those whose plan is recorded (`planned`, all of them answered whatever their id: at
  // most a round's per lane): the dead replica held their target's lock, which came over with
  // them, and their plan is re-applied as is, so it must run before anything else moves the
  // target: before this replica's own executions queued on the lane, and now rather than when
  // a page gets to it (the lock would be let go meanwhile, and another replica could move the
  // target). adopt() puts them at the front of their lanes, in id order; a page skips them.
  std::vector<int64_t> adopt_ids(const std::vector<int64_t>& ids,
                                 const std::vector<int64_t>& planned = {});
  void adopt(std::vector<Job> jobs);
  // Around a take-over (from before Store::take_over_expired to after adopt() and hold_target()):
  // no page is read (one read between the take-over's commit and adopt_ids() would bring the
  // executions taken over, and adopt() would hold them twice) and no lane takes a target's lock
  // (the lock taken over is this replica's from the commit on: a lane of this replica's own
  // executions would take it, and move the target before the recorded plan is re-applied). A
  // lane that asks meanwhile waits kTargetBusy, as when another replica holds the lock.
  // begin_take_over() waits for a page being read and for the lock requests under way.
  void begin_take_over();
  void end_take_over();
  // An execution adopt_ids() answered that the caller could not turn into a job (its row could
  // not be read): true when it is left to the pages, which read it when they pass its id; false
  // (one at or below the watermark) when the caller must try again.
  bool adopt_failed(int64_t id);
  // A target's lock taken over with a dead replica's executions (after adopt()): kept while the
  // lane holds a recorded plan, as if this replica had taken it; released at once otherwise.
  void hold_target(const std::string& lane, int64_t token);
  // An operator's cancel of a queued execution (one waiting to run or to retry): recorded as
  // failed with the error "cancelled" (Store::cancel_execution) and never run. Decided under the
  // executor's lock, which a worker needs to take a job: a job still in its lane's queue is
  // cancelled and removed together, one a worker holds is running (Conflict), one that only
  // the store holds (spilled) is cancelled there and skipped if a page being read brings it.
  // *held: the executor held the job (and gave its receiver's queue slot back); when false the
  // caller gives the slot back (and only it: a page that brings the job later does not). The
  // synced write is made without the lock (workers and enqueue() need it): the job is taken out
  // of its lane first, and put back where it was if the write fails.
  // `audit` (who cancels) is written with the cancel, in its transaction.
  Status cancel(int64_t id, bool* held, const AuditEntry* audit = nullptr);
  void pause();
  void resume();
  bool paused() const;
  // Total tries an execution gets, the first included (--max-attempts): the API shows it.
  int max_attempts() const { return policy_.max_attempts; }
  size_t depth() const;  // queued + running, held or not
  size_t held() const;   // in memory now (for tests and metrics)
  // depth() by state, from counters kept as work moves (no store read): running (taken by a
  // worker now), retrying (waiting out a backoff, or a record to be retried: an outcome, or a
  // batch's plans the store refused) and queued (the rest, held or not). One lock, one
  // consistent view: total is depth() read under it, always queued + running + retrying, and
  // held and paused are held() and paused() at the same moment.
  struct Counts {
    size_t queued = 0, running = 0, retrying = 0, total = 0, held = 0;
    bool paused = false;
  };
  Counts counts() const;

 private:
  // Bounded by what is held anyway (max_held); larger batches mean fewer peer reads and fewer
  // commits per execution while a flood drains (bench/RESULTS.md).
  static constexpr size_t kMaxBatch = 1000;
  // How long a flooded lane gathers before its next batch (see the header).
  static constexpr int64_t kGatherMs = 20;
  struct Lane {
    std::deque<Job> jobs;
    // Waiting in timers_ to retry (the Timer's id; 0: not waiting), and until when. A lane is
    // in exactly one of ready_, timers_ or a worker's hands.
    uint64_t timer = 0;
    int64_t due = 0;
    int64_t lock = 0;  // the target lock's token while this replica keeps it (TargetLocks)
  };
  struct Timer {
    int64_t due;  // Clock::steady_ms()
    std::string lane;
    size_t jobs = 0;  // the executions that wait for it to retry (counted in retrying_)
    uint64_t id = 0;  // stale (skipped) when its lane no longer names it: the lane was cancelled
    bool operator>(const Timer& o) const { return due > o.due; }
  };

  void work();
  // Reads one page from the store while spilled; called by a worker with `lock` held.
  void refill(std::unique_lock<std::mutex>& lock);
  // Answers whether the job made its lane ready (a new lane), i.e. whether a worker is needed.
  // `ahead`: a recorded plan taken over (adopt()), put before the lane's first job without a
  // recorded plan (or with a higher id), not at its back.
  bool add_locked(Job job, bool ahead = false);
  // Runs one attempt; answers true when the job is done (succeeded or failed for good) and that
  // is recorded.
  bool run_once(Job& job, std::chrono::milliseconds* retry_in);
  // A batch's first n jobs: started (attempt, recorded plan, first start) at `started`.
  void note_started(std::vector<Job>& jobs, size_t n, std::vector<nlohmann::json>& plans,
                    int64_t started);
  // Their outcomes as recorded: the last's own result, the others' through it (applied_with).
  static std::vector<Store::Finished> batch_outcomes(const std::vector<Job>& jobs, size_t n,
                                                     const nlohmann::json& result,
                                                     const nlohmann::json& applied_with,
                                                     int64_t finished);
  // Their successes in the metrics and, at info level, the log.
  void note_succeeded(const std::vector<Job>& jobs, size_t n, int64_t finished);
  // run_batch()'s way for executions that change nothing (Driver::settled): recorded planned
  // and succeeded at once (Store::finish_settled). False when the store refused: nothing was
  // recorded, and the caller goes the usual way.
  bool finish_settled(std::vector<Job>& jobs, const std::vector<Store::PlannedRun>& runs,
                      std::vector<nlohmann::json>& plans, const Outcome& outcome, int64_t started);

  // Runs jobs (2 or more executions of one lane, in order; all unplanned, or all with recorded
  // plans) together; answers how many of them, from the front, are done and recorded. The others
  // keep their order (with their plans when recorded), to run next or, when *retry_in is set,
  // after it. *plans_unrecorded: the store refused the batch's plans, so all of them wait for
  // *retry_in to record them again (counted as retrying, not queued).
  size_t run_batch(std::vector<Job>& jobs, std::chrono::milliseconds* retry_in,
                   bool* plans_unrecorded);
  // Records a finished job's outcome; false (retry in *retry_in) when the store refused.
  bool record_finish(Job& job, std::chrono::milliseconds* retry_in);

  Store& store_;
  const Clock& clock_;  // the store's: backoff timers and recorded times (clock.h)
  Metrics& metrics_;
  const RetryPolicy policy_;
  const int worker_count_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Lane> lanes_;  // a lane exists while it has work
  std::deque<std::string> ready_;                // lanes whose front job may start now
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  const Loader loader_;
  PlanRecorder record_plans_;
  TargetLocks target_locks_;
  const size_t max_held_;
  size_t held_ = 0;    // jobs in lanes_ (queued, retrying or running)
  size_t unheld_ = 0;  // unfinished executions in the store only (an estimate while spilled)
  // Of held_: being planned, applied or recorded now (run_once, or a batch's executions once
  // it knows how many run together). Atomic: counted outside mu_, where the work is done.
  std::atomic<size_t> running_{0};
  size_t retrying_ = 0;   // of held_: waiting for a timer to retry
  bool spilled_ = false;  // the store may hold unfinished executions with id > watermark_
  bool loading_ = false;
  int64_t watermark_ = 0;    // every unfinished execution with id <= this is held
  int64_t spilled_max_ = 0;  // highest id enqueue() did not keep
  int64_t next_load_ = 0;    // Clock::steady_ms()
  bool paused_ = false;
  bool stopping_ = false;
  // Cancelled in the store only, above the watermark: skipped if a page or enqueue brings them
  // (a page may have been read before the cancel). Erased once the watermark passes them.
  std::unordered_set<int64_t> cancelled_;
  // Taken over with a recorded plan and held above the watermark (adopt_ids): skipped when a
  // page brings them. Erased once the watermark passes them.
  std::unordered_set<int64_t> adopted_ahead_;
  bool taking_over_ = false;  // begin_take_over() .. end_take_over()
  int acquiring_ = 0;         // workers asking for a target's lock now
  // Being cancelled in the store only (the write is made without the lock): a page that brings
  // one parks it here, to be dropped if the write succeeds, held if it fails.
  std::unordered_map<int64_t, std::optional<Job>> cancelling_;
  uint64_t next_timer_ = 0;
  std::vector<std::thread> workers_;
};

}  // namespace tripline
