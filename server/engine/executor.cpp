#include "executor.h"

#include <algorithm>
#include <limits>

#include "log.h"

namespace tripline {

namespace {
// Counts executions as running (Executor::counts) while in scope.
class Running {
 public:
  Running(std::atomic<size_t>& counter, size_t n) : counter_(counter), n_(n) { counter_ += n_; }
  ~Running() { counter_ -= n_; }
  void set(size_t n) {
    counter_ += n;
    counter_ -= n_;
    n_ = n;
  }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;

 private:
  std::atomic<size_t>& counter_;
  size_t n_;
};

// The target a job's lane names ("driver:target"), for the notifications its status changes
// record (docs/webhooks.md).
std::string_view target_of(const Job& job) {
  std::string_view lane = job.lane;
  std::string_view driver = job.driver ? job.driver->name() : std::string_view();
  if (lane.size() > driver.size() && lane.substr(0, driver.size()) == driver &&
      lane[driver.size()] == ':')
    return lane.substr(driver.size() + 1);
  return lane;
}
}  // namespace

Executor::Executor(Store& store, Metrics& metrics, RetryPolicy policy, int workers, Loader loader,
                   size_t max_held)
    : store_(store),
      clock_(store.clock()),
      metrics_(metrics),
      policy_(policy),
      worker_count_(workers),
      loader_(std::move(loader)),
      max_held_(std::max<size_t>(max_held, 2)) {}

Executor::~Executor() { stop(); }

void Executor::start(size_t backlog) {
  {
    std::lock_guard lock(mu_);
    spilled_ = static_cast<bool>(loader_);  // what the store holds is read in pages
    unheld_ = backlog;
  }
  for (int i = 0; i < worker_count_; ++i) workers_.emplace_back([this] { work(); });
}

void Executor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void Executor::enqueue(Job job) {
  bool ready = false;
  {
    std::lock_guard lock(mu_);
    // Already read by a page: the ingest commits a batch before handing its rows over one by
    // one, and a page read in between holds them. Holding it again would run it twice.
    if (loader_ && job.id <= watermark_) return;
    if (loader_ && (spilled_ || held_ >= max_held_)) {
      // Durable already: a later page reads it, after everything older.
      spilled_ = true;
      spilled_max_ = std::max(spilled_max_, job.id);
      ++unheld_;
      return;
    }
    watermark_ = std::max(watermark_, job.id);
    ready = add_locked(std::move(job));
  }
  // Only a lane that became ready needs a worker. A job joining a lane that is queued or running
  // wakes nobody: a flood on one target would otherwise wake an idle worker per trigger, to find
  // nothing it may run and sleep again (two context switches a trigger, on the cores the trigger
  // path needs).
  if (ready) cv_.notify_one();
}

std::vector<int64_t> Executor::adopt_ids(const std::vector<int64_t>& ids,
                                         const std::vector<int64_t>& planned) {
  std::vector<int64_t> now;
  std::lock_guard lock(mu_);
  for (int64_t id : planned) {
    if (loader_ && id > watermark_) adopted_ahead_.insert(id);
    now.push_back(id);
  }
  for (int64_t id : ids) {
    if (loader_ && id > watermark_) {  // a later page reads it, in order
      spilled_ = true;
      spilled_max_ = std::max(spilled_max_, id);
      ++unheld_;
    } else {
      now.push_back(id);
    }
  }
  cv_.notify_all();
  return now;
}

void Executor::hold_target(const std::string& lane, int64_t token) {
  {
    std::lock_guard lock(mu_);
    auto it = lanes_.find(lane);
    if (it != lanes_.end() && std::any_of(it->second.jobs.begin(), it->second.jobs.end(),
                                          [](const Job& j) { return !j.plan.is_null(); })) {
      it->second.lock = token;
      return;
    }
  }
  if (target_locks_.release) target_locks_.release(lane, token);
}

void Executor::begin_take_over() {
  std::unique_lock lock(mu_);
  taking_over_ = true;
  cv_.wait(lock, [&] { return !loading_ && acquiring_ == 0; });
}

void Executor::end_take_over() {
  {
    std::lock_guard lock(mu_);
    taking_over_ = false;
  }
  cv_.notify_all();
}

bool Executor::adopt_failed(int64_t id) {
  std::lock_guard lock(mu_);
  adopted_ahead_.erase(id);
  if (!loader_ || id <= watermark_) return false;
  spilled_ = true;
  spilled_max_ = std::max(spilled_max_, id);
  ++unheld_;
  cv_.notify_all();
  return true;
}

void Executor::adopt(std::vector<Job> jobs) {
  bool ready = false;
  {
    std::lock_guard lock(mu_);
    // Each with a recorded plan before the first job of its lane without one; the others at the
    // back (a worker holding the lane's round has taken its jobs out: see adopt_ids()).
    for (Job& j : jobs) {
      bool ahead = !j.plan.is_null();
      ready |= add_locked(std::move(j), ahead);
    }
  }
  if (ready) cv_.notify_all();
}

bool Executor::add_locked(Job job, bool ahead) {
  // Cancelled in the store only: the canceller gave its queue slot back (App::cancel_execution).
  if (!cancelled_.empty() && cancelled_.erase(job.id)) return false;
  if (!cancelling_.empty())
    if (auto it = cancelling_.find(job.id); it != cancelling_.end()) {
      it->second = std::move(job);
      return false;
    }
  ++held_;
  auto [it, created] = lanes_.try_emplace(job.lane);
  auto& queued = it->second.jobs;
  if (ahead)
    queued.insert(std::find_if(queued.begin(), queued.end(),
                               [&](const Job& q) { return q.plan.is_null() || q.id > job.id; }),
                  std::move(job));
  else
    queued.push_back(std::move(job));
  // A busy lane's job runs when the one before it finishes.
  if (created) ready_.push_back(it->first);
  return created;
}

void Executor::refill(std::unique_lock<std::mutex>& lock) {
  loading_ = true;
  int64_t after = watermark_;
  int want = static_cast<int>(max_held_ - held_);
  lock.unlock();
  auto page = loader_(after, want);
  lock.lock();
  loading_ = false;
  if (taking_over_) cv_.notify_all();  // begin_take_over() waits for this page
  if (!page.ok()) {
    log::error("could not read queued executions; trying again in 1 s",
               {{"error", page.status().message()}});
    next_load_ = clock_.steady_ms() + 1000;
    return;
  }
  size_t skipped = 0;  // held already (adopt_ids), so never counted in unheld_
  for (Job& j : page.value().jobs) {
    if (!adopted_ahead_.empty() && adopted_ahead_.count(j.id))
      ++skipped;
    else
      add_locked(std::move(j));
  }
  size_t counted = size_t(page->rows) - std::min(skipped, size_t(page->rows));
  unheld_ -= std::min(unheld_, counted);
  if (page->rows > 0) watermark_ = std::max(watermark_, page->last_id);
  for (auto it = cancelled_.begin(); it != cancelled_.end();)
    it = *it <= watermark_ ? cancelled_.erase(it) : std::next(it);
  for (auto it = adopted_ahead_.begin(); it != adopted_ahead_.end();)
    it = *it <= watermark_ ? adopted_ahead_.erase(it) : std::next(it);
  // A short page means the store had nothing more when it was read; anything enqueue() let go
  // since then has an id above the watermark and keeps us spilled for one more page.
  if (page->rows < want && spilled_max_ <= watermark_) {
    spilled_ = false;
    unheld_ = 0;
  }
  if (!page->jobs.empty()) cv_.notify_all();
}

Status Executor::cancel(int64_t id, bool* held, const AuditEntry* audit) {
  *held = false;
  std::unique_lock lock(mu_);
  for (auto lit = lanes_.begin(); lit != lanes_.end(); ++lit) {
    Lane& lane = lit->second;
    auto it =
        std::find_if(lane.jobs.begin(), lane.jobs.end(), [&](const Job& j) { return j.id == id; });
    if (it == lane.jobs.end()) continue;
    if (it->unrecorded)
      return Status::Conflict("its outcome is known and being recorded; it cannot be cancelled");
    // Out of its lane, so no worker takes it while the store is written without the lock.
    std::string name = lit->first;
    Job job = std::move(*it);
    lane.jobs.erase(it);
    uint64_t timer = lane.timer;
    int64_t due = lane.due;
    if (lane.jobs.empty() && timer != 0) {
      // Waiting to retry, and nothing else in it: the lane goes now, and its timer is skipped
      // when due, so a job enqueued for this lane meanwhile runs at once, not at that time.
      lanes_.erase(lit);
    }
    // An emptied lane in ready_ stays until a worker finds it empty (one in a worker's hands is
    // the worker's).
    lock.unlock();
    Status s = store_.cancel_execution(id, clock_.now_ms(), audit);
    lock.lock();
    if (!s.ok()) {
      // Put back where it was: before the first job after it (a lane runs in id order).
      auto [back, created] = lanes_.try_emplace(name);
      auto& jobs = back->second.jobs;
      jobs.insert(std::find_if(jobs.begin(), jobs.end(), [&](const Job& j) { return j.id > id; }),
                  std::move(job));
      if (created) {
        if (timer != 0) {
          back->second.timer = ++next_timer_;
          back->second.due = due;
          timers_.push({due, name, 0, back->second.timer});
        } else {
          ready_.push_back(name);
        }
        cv_.notify_all();
      }
      return s;
    }
    if (job.backlog) job.backlog->fetch_sub(1, std::memory_order_relaxed);
    --held_;
    *held = true;
    return Status::Ok();
  }
  if (!loader_ || id <= watermark_) {
    // Held and not in a lane: a worker has it (the store may still say queued for a moment).
    // Or finished, or unknown: the store says which.
    lock.unlock();
    auto e = store_.get_execution(id);
    if (!e.ok()) return e.status();
    if (e->status == ExecutionStatus::kQueued || e->status == ExecutionStatus::kRunning)
      return Status::Conflict("this execution is running and cannot be cancelled");
    return Status::Conflict(std::string("only a queued execution (or one waiting to retry) can "
                                        "be cancelled; this one is ") +
                            to_string(e->status));
  }
  // Only the store holds it. A page read while the store is written parks it in cancelling_.
  if (!cancelling_.try_emplace(id).second)
    return Status::Conflict("this execution is being cancelled");
  lock.unlock();
  Status s = store_.cancel_execution(id, clock_.now_ms(), audit);
  lock.lock();
  auto node = cancelling_.extract(id);
  std::optional<Job>& parked = node.mapped();
  if (!s.ok()) {
    if (parked) {
      add_locked(std::move(*parked));
      cv_.notify_one();
    }
    return s;
  }
  if (!parked) cancelled_.insert(id);  // a later page or enqueue() skips it
  if (unheld_ > 0) --unheld_;
  return s;
}

void Executor::pause() {
  std::lock_guard lock(mu_);
  paused_ = true;
}

void Executor::resume() {
  {
    std::lock_guard lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

bool Executor::paused() const {
  std::lock_guard lock(mu_);
  return paused_;
}

size_t Executor::depth() const {
  std::lock_guard lock(mu_);
  return held_ + unheld_;
}

Executor::Counts Executor::counts() const {
  std::lock_guard lock(mu_);
  // Both counters move outside this lock's order (running_ is atomic): clamped to what is held,
  // so no state is ever counted twice or below zero.
  Counts c;
  c.retrying = std::min(retrying_, held_);
  c.running = std::min(running_.load(), held_ - c.retrying);
  c.total = held_ + unheld_;
  c.queued = c.total - c.running - c.retrying;
  c.held = held_;
  c.paused = paused_;
  return c;
}

size_t Executor::held() const {
  std::lock_guard lock(mu_);
  return held_;
}

void Executor::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    for (;;) {
      if (stopping_) return;
      int64_t now = clock_.steady_ms();
      while (!timers_.empty() && timers_.top().due <= now) {
        const Timer& t = timers_.top();
        // A stale timer's executions were cancelled meanwhile: they wait to retry no more.
        retrying_ -= std::min(retrying_, t.jobs);
        if (auto it = lanes_.find(t.lane); it != lanes_.end() && it->second.timer == t.id) {
          it->second.timer = 0;
          ready_.push_back(t.lane);
        }
        timers_.pop();
      }
      // Read the next page once half the room is free (not while paused: nothing would run).
      if (spilled_ && !loading_ && !paused_ && !taking_over_ && held_ <= max_held_ / 2 &&
          now >= next_load_) {
        refill(lock);
        continue;
      }
      if (!paused_ && !ready_.empty()) break;
      constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
      int64_t due = timers_.empty() ? kNever : timers_.top().due;
      if (spilled_ && !loading_ && !paused_ && !taking_over_ && held_ <= max_held_ / 2)
        due = std::min(due, next_load_);
      if (due != kNever)
        clock_.wait_until(cv_, lock, due);
      else
        cv_.wait(lock);
    }
    std::string lane = std::move(ready_.front());
    ready_.pop_front();
    std::deque<Job>& queued = lanes_[lane].jobs;
    if (queued.empty()) {  // its jobs were cancelled (cancel())
      lanes_.erase(lane);
      continue;
    }
    std::vector<Job> jobs;
    jobs.push_back(std::move(queued.front()));
    queued.pop_front();
    // The executions behind it that are alike (all unplanned, or all with recorded plans) run
    // together (see the header).
    auto alike = [&](const Job& j) {
      return !j.unrecorded && !j.alone && j.plan.is_null() == jobs.front().plan.is_null() &&
             j.driver == jobs.front().driver;
    };
    if (!jobs.front().unrecorded && !jobs.front().alone)
      while (jobs.size() < kMaxBatch && !queued.empty() && alike(queued.front())) {
        jobs.push_back(std::move(queued.front()));
        queued.pop_front();
      }
    std::vector<int> tries(jobs.size());  // to tell which of them this round attempted
    for (size_t i = 0; i < jobs.size(); ++i) tries[i] = jobs[i].attempts;
    int64_t token = lanes_[lane].lock;
    bool taking_over = taking_over_;
    // An acquire under way when a take-over begins may be answered with the lock taken over:
    // begin_take_over() waits for it (executor.h).
    bool acquiring = target_locks_.acquire && token == 0 && !taking_over;
    if (acquiring) ++acquiring_;
    lock.unlock();

    if (target_locks_.acquire && token == 0) {
      auto held = taking_over ? Result<int64_t>(int64_t{0}) : target_locks_.acquire(lane);
      if (acquiring) {
        std::lock_guard counted(mu_);
        if (--acquiring_ == 0 && taking_over_) cv_.notify_all();
      }
      if (!held.ok() || *held == 0) {
        if (!held.ok())
          log::warn("cannot take a target's lock; trying again",
                    {{"lane", lane}, {"error", held.status().message()}});
        lock.lock();
        Lane& l = lanes_[lane];
        for (size_t i = jobs.size(); i-- > 0;) l.jobs.push_front(std::move(jobs[i]));
        l.timer = ++next_timer_;
        l.due = clock_.steady_ms() + kTargetBusy.count();
        timers_.push({l.due, lane, 0, l.timer});
        cv_.notify_all();  // a sleeping worker may need to wake earlier for this timer
        continue;
      }
      token = *held;
    }

    std::chrono::milliseconds retry_in{0};
    bool plans_unrecorded = false;
    size_t done = jobs.size() == 1 ? size_t(run_once(jobs.front(), &retry_in))
                                   : run_batch(jobs, &retry_in, &plans_unrecorded);

    lock.lock();
    Lane& l = lanes_[lane];
    // Waiting to retry (when a timer is set below): those this round tried, or whose outcome
    // waits to be recorded; the rest of the lane waits behind them, queued.
    size_t retrying = 0;
    for (size_t i = done; i < jobs.size(); ++i)
      retrying +=
          plans_unrecorded || jobs[i].attempts != tries[i] || jobs[i].unrecorded.has_value();
    for (size_t i = 0; i < done; ++i) {
      --held_;
      if (jobs[i].backlog) jobs[i].backlog->fetch_sub(1, std::memory_order_relaxed);
    }
    for (size_t i = jobs.size(); i-- > done;) l.jobs.push_front(std::move(jobs[i]));
    // The target's lock stays while the lane holds an execution whose plan is recorded (or whose
    // outcome is not): its plan, re-applied later, must find the target as this replica left it.
    // Otherwise it goes, and another replica's executions on the target may take their turn.
    int64_t release = 0;
    if (token != 0) {
      l.lock = token;
      if (std::none_of(l.jobs.begin(), l.jobs.end(), [](const Job& j) {
            return !j.plan.is_null() || j.unrecorded.has_value();
          })) {
        release = token;
        l.lock = 0;
      }
    }
    if (release != 0 && target_locks_.release) {
      lock.unlock();
      target_locks_.release(lane, release);
      lock.lock();
    }
    Lane& now = lanes_[lane];  // the reference above may be stale after the unlock
    // Several ran together: the lane is flooded, and gathers before its next batch (kGatherMs),
    // even if nothing is queued yet: what arrives meanwhile waits for the gathering to end. Not
    // when a whole batch already waits (or this one was whole): gathering would only slow the
    // lane's drain, to kMaxBatch per kGatherMs.
    const bool gather =
        done == jobs.size() && done > 1 && done < kMaxBatch && now.jobs.size() < kMaxBatch;
    if (now.jobs.empty() && now.lock == 0 && !gather) {
      lanes_.erase(lane);
    } else if (done < jobs.size() && retry_in.count() > 0) {
      now.timer = ++next_timer_;
      now.due = clock_.steady_ms() + retry_in.count();
      timers_.push({now.due, lane, retrying, now.timer});
      retrying_ += retrying;
      cv_.notify_all();  // a sleeping worker may need to wake earlier for this timer
    } else if (gather) {
      now.timer = ++next_timer_;
      now.due = clock_.steady_ms() + kGatherMs;
      timers_.push({now.due, lane, 0, now.timer});
      cv_.notify_all();  // a sleeping worker may need to wake earlier for this timer
    } else {
      ready_.push_back(lane);
      cv_.notify_one();
    }
  }
}

size_t Executor::run_batch(std::vector<Job>& jobs, std::chrono::milliseconds* retry_in,
                           bool* plans_unrecorded) {
  const Driver& driver = *jobs.front().driver;
  size_t n = jobs.size();
  const bool fresh = jobs.front().plan.is_null();  // planned now, from a peer read
  Running running(running_, 1);  // the first, while its plan is read; run_once counts its own
  std::vector<nlohmann::json> plans;
  if (jobs.front().plan.is_null()) {
    // 1. The first plan from the peer. A failure there is the first execution's alone: it runs
    // on its own (planning again), and the rest wait their turn.
    Plan first;
    try {
      first = driver.plan(*jobs.front().config);
    } catch (const std::exception&) {
      first = Plan::failed(Outcome::final("driver error"));
    }
    if (!first.ok()) {
      running.set(0);
      return run_once(jobs.front(), retry_in) ? 1 : 0;
    }
    plans.push_back(std::move(first.desired));
    // 2. Each next plan from the one before, while the driver can say.
    for (size_t i = 1; i < n; ++i) {
      std::optional<nlohmann::json> next;
      try {
        next = driver.plan_after(*jobs[i].config, plans.back());
      } catch (const std::exception&) {
        next.reset();
      }
      if (!next || next->is_null()) break;
      plans.push_back(std::move(*next));
    }
    n = plans.size();
  } else {
    // Plans recorded already (after a crash, or a retry of plans applied together). A driver
    // that chains plans (plan_after) declares them absolute states: applying the last alone ends
    // where applying each in turn would, without moving the target back through the earlier
    // states. Any other driver's executions run one by one.
    plans.push_back(jobs.front().plan);
    for (size_t i = 1; i < n; ++i) {
      bool chains = false;
      try {
        chains = driver.plan_after(*jobs[i].config, jobs[i - 1].plan).has_value();
      } catch (const std::exception&) {
      }
      if (!chains) break;
      plans.push_back(jobs[i].plan);
    }
    n = plans.size();
    if (n == 1) {
      running.set(0);
      return run_once(jobs.front(), retry_in) ? 1 : 0;
    }
  }
  running.set(n);
  // 3. Recorded before anything changes, with this attempt, in one transaction.
  int64_t started = clock_.now_ms();
  std::vector<Store::PlannedRun> runs(n);
  for (size_t i = 0; i < n; ++i)
    runs[i] = {jobs[i].id, jobs[i].attempts + 1, &plans[i], target_of(jobs[i])};
  // 3a. Nothing to change (Driver::settled: the last plan asks for the state the peer was just
  // read at): plans and outcomes in one relaxed transaction, off the ingest's synced commit.
  // A flood at a bound (an alert storm asking for more replicas than the maximum) is all this.
  if (fresh) {
    std::optional<Outcome> settled;
    try {
      settled = driver.settled(*jobs[n - 1].config, plans.front(), plans.back());
    } catch (const std::exception&) {
      settled.reset();
    }
    if (settled && settled->ok() && finish_settled(jobs, runs, plans, *settled, started)) return n;
  }
  Status recorded =
      record_plans_ ? record_plans_(runs, started) : store_.start_planned(runs, started);
  if (Status s = std::move(recorded); !s.ok()) {
    // Nothing was applied; all of them wait and try again together. (Running the first alone
    // would apply its recorded plan over a later one's the peer may already hold.)
    *retry_in = std::chrono::milliseconds(100);
    *plans_unrecorded = true;
    metrics_.store_write_failed();
    log::warn("could not record a lane's plans; trying again",
              {{"execution_id", jobs.front().id}, {"error", s.message()}});
    return 0;
  }
  note_started(jobs, n, plans, started);
  // 4. Only the last plan is applied: the earlier ones are states it passes through. Not even
  // that when the peer was read at the last plan's state just now (Driver::settled).
  Job& last = jobs[n - 1];
  Outcome outcome;
  try {
    std::optional<Outcome> settled;
    if (fresh) settled = driver.settled(*last.config, jobs.front().plan, last.plan);
    outcome = settled ? std::move(*settled) : driver.apply(*last.config, last.plan);
  } catch (const std::exception& e) {
    outcome = Outcome::final(std::string("driver error: ") + e.what());
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  int attempts = 0;  // the most any of them has made: the retry budget is each one's
  for (size_t i = 0; i < n; ++i) attempts = std::max(attempts, jobs[i].attempts);
  if (outcome.kind == Outcome::Kind::kRetryable && policy_.should_retry(attempts)) {
    // All of them keep their recorded plans and try again together.
    *retry_in = policy_.delay(attempts, rng);
    log::warn("executions planned together will be retried", {{"execution_id", last.id},
                                                              {"driver", driver.name()},
                                                              {"together", n},
                                                              {"attempt", attempts},
                                                              {"retry_in_ms", retry_in->count()},
                                                              {"reason", outcome.reason}});
    std::vector<int64_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = jobs[i].id;
    if (Status s = store_.requeue_all(ids, outcome.reason, clock_.now_ms() + retry_in->count(),
                                      target_of(jobs.front()));
        !s.ok())
      log::error("could not record the retry", {{"execution_id", last.id}, {"error", s.message()}});
    return 0;
  }
  if (!outcome.ok()) {
    // Failed for good: each runs alone from here, in order, applying its own recorded plan,
    // so the last one's failure does not become the others'.
    log::warn("executions planned together failed to apply; each runs on its own",
              {{"execution_id", last.id},
               {"driver", driver.name()},
               {"together", n},
               {"reason", outcome.reason}});
    for (size_t i = 0; i < n; ++i) jobs[i].alone = true;
    return 0;
  }
  // 5. Every outcome in one transaction: the last's own, and the others' through it.
  int64_t finished = clock_.now_ms();
  nlohmann::json applied_with = {{"applied_with", last.id}};
  auto outcomes = batch_outcomes(jobs, n, outcome.result, applied_with, finished);
  if (Status s = store_.finish_all(outcomes); !s.ok()) {
    // Recorded one by one from here (run_once's path for an outcome the store refused).
    for (size_t i = 0; i < n; ++i)
      jobs[i].unrecorded = Job::Unrecorded{
          ExecutionStatus::kSucceeded, i + 1 < n ? applied_with : outcome.result, {}, finished, 0};
    metrics_.store_write_failed();
    log::error("could not record the outcomes of executions planned together; recording each",
               {{"execution_id", last.id}, {"error", s.message()}});
    *retry_in = std::chrono::milliseconds(100);
    return 0;
  }
  note_succeeded(jobs, n, finished);
  return n;
}

bool Executor::finish_settled(std::vector<Job>& jobs, const std::vector<Store::PlannedRun>& runs,
                              std::vector<nlohmann::json>& plans, const Outcome& outcome,
                              int64_t started) {
  size_t n = runs.size();
  const Job& last = jobs[n - 1];
  int64_t finished = clock_.now_ms();
  nlohmann::json applied_with = {{"applied_with", last.id}};
  auto outcomes = batch_outcomes(jobs, n, outcome.result, applied_with, finished);
  if (Status s = store_.finish_settled(runs, started, outcomes); !s.ok()) {
    // Nothing recorded: the usual way (plans recorded, then the outcomes) records them.
    log::warn("could not record settled executions at once; recording plans first",
              {{"execution_id", last.id}, {"error", s.message()}});
    return false;
  }
  note_started(jobs, n, plans, started);
  note_succeeded(jobs, n, finished);
  return true;
}

void Executor::note_started(std::vector<Job>& jobs, size_t n, std::vector<nlohmann::json>& plans,
                            int64_t started) {
  for (size_t i = 0; i < n; ++i) {
    Job& j = jobs[i];
    ++j.attempts;
    j.plan = std::move(plans[i]);
    if (j.first_started_at == 0) {
      j.first_started_at = started;
      if (j.created_at > 0) metrics_.execution_started((started - j.created_at) / 1000.0);
    }
  }
}

std::vector<Store::Finished> Executor::batch_outcomes(const std::vector<Job>& jobs, size_t n,
                                                      const nlohmann::json& result,
                                                      const nlohmann::json& applied_with,
                                                      int64_t finished) {
  std::vector<Store::Finished> outcomes(n);
  for (size_t i = 0; i < n; ++i)
    outcomes[i] = {jobs[i].id, ExecutionStatus::kSucceeded, i + 1 < n ? &applied_with : &result, {},
                   finished,   target_of(jobs[i])};
  return outcomes;
}

void Executor::note_succeeded(const std::vector<Job>& jobs, size_t n, int64_t finished) {
  const bool logged = log::enabled(log::Level::kInfo);
  const std::string driver(jobs.front().driver->name());
  for (size_t i = 0; i < n; ++i) {
    metrics_.execution_finished(driver, "succeeded",
                                (finished - jobs[i].first_started_at) / 1000.0);
    if (!logged) continue;
    nlohmann::json fields = {{"execution_id", jobs[i].id},
                             {"driver", driver},
                             {"attempt", jobs[i].attempts},
                             {"status", "succeeded"}};
    if (i + 1 < n) fields["applied_with"] = jobs[n - 1].id;
    log::info("execution finished", fields);
  }
}

bool Executor::run_once(Job& job, std::chrono::milliseconds* retry_in) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  Running running(running_, 1);
  if (job.unrecorded) return record_finish(job, retry_in);
  ++job.attempts;
  int64_t started = clock_.now_ms();
  if (job.first_started_at == 0) {
    job.first_started_at = started;
    if (job.created_at > 0) metrics_.execution_started((started - job.created_at) / 1000.0);
  }

  Outcome outcome;
  try {
    Status s = store_.mark_running(job.id, job.attempts, started, target_of(job));
    if (!s.ok()) {
      outcome = Outcome::retryable(s.message());
    } else {
      std::optional<Outcome> settled;
      if (job.plan.is_null()) {
        Plan p = job.driver->plan(*job.config);
        if (!p.ok()) {
          outcome = p.failure;
        } else if (Status r = store_.record_plan(job.id, p.desired); !r.ok()) {
          outcome = Outcome::retryable(r.message());  // never apply a plan we did not record
        } else {
          job.plan = std::move(p.desired);
          // Read just now at the plan's state: nothing to apply (Driver::settled).
          settled = job.driver->settled(*job.config, job.plan, job.plan);
        }
      }
      if (settled)
        outcome = std::move(*settled);
      else if (!job.plan.is_null())
        outcome = job.driver->apply(*job.config, job.plan);
    }
  } catch (const std::exception& e) {
    outcome = Outcome::final(std::string("driver error: ") + e.what());
  }

  nlohmann::json fields = {
      {"execution_id", job.id}, {"driver", job.driver->name()}, {"attempt", job.attempts}};
  if (outcome.kind == Outcome::Kind::kRetryable && policy_.should_retry(job.attempts)) {
    *retry_in = policy_.delay(job.attempts, rng);
    fields["retry_in_ms"] = retry_in->count();
    fields["reason"] = outcome.reason;
    log::warn("execution will be retried", fields);
    // Not recorded: the row stays "running" with its plan; the retry goes on from memory, and
    // after a restart the recorded plan is re-applied, in the same lane order.
    if (Status s = store_.requeue(job.id, outcome.reason, clock_.now_ms() + retry_in->count(),
                                  target_of(job));
        !s.ok())
      log::error("could not record the retry", {{"execution_id", job.id}, {"error", s.message()}});
    return false;
  }
  ExecutionStatus final_status =
      outcome.ok() ? ExecutionStatus::kSucceeded : ExecutionStatus::kFailed;
  std::string error = outcome.reason;
  if (outcome.kind == Outcome::Kind::kRetryable)
    error += " (gave up after " + std::to_string(job.attempts) + " attempts)";
  job.unrecorded = Job::Unrecorded{final_status, std::move(outcome.result), std::move(error),
                                   clock_.now_ms(), 0};
  return record_finish(job, retry_in);
}

bool Executor::record_finish(Job& job, std::chrono::milliseconds* retry_in) {
  Job::Unrecorded& u = *job.unrecorded;
  ++u.tries;
  Status s = store_.finish(job.id, u.status, u.result, u.error, u.finished_at, target_of(job));
  if (!s.ok()) {
    // 100 ms, doubling, at most 10 s between tries: the lane waits for the record.
    *retry_in =
        std::chrono::milliseconds(std::min<int64_t>(10000, 100LL << std::min(u.tries - 1, 7)));
    metrics_.store_write_failed();
    log::error("could not record execution outcome; the target's lane waits until it is recorded",
               {{"execution_id", job.id},
                {"status", to_string(u.status)},
                {"try", u.tries},
                {"retry_in_ms", retry_in->count()},
                {"error", s.message()}});
    return false;
  }
  metrics_.execution_finished(std::string(job.driver->name()), to_string(u.status),
                              (u.finished_at - job.first_started_at) / 1000.0);
  nlohmann::json fields = {{"execution_id", job.id},
                           {"driver", job.driver->name()},
                           {"attempt", job.attempts},
                           {"status", to_string(u.status)}};
  if (!u.error.empty()) fields["error"] = u.error;
  log::info("execution finished", fields);
  job.unrecorded.reset();
  return true;
}

}  // namespace tripline
