#include "ingest.h"

#include <cstdlib>

#include "log.h"

namespace tripline {

Ingest::Ingest(Store& store, OnCommitted on_committed, size_t max_pending, RequestLog* log,
               Sync sync)
    : store_(store),
      on_committed_(std::move(on_committed)),
      sync_(sync ? std::move(sync) : Sync([&store] { return store.sync_wal(); })),
      log_(log),
      max_pending_(max_pending) {
  pending_.reserve(1024);
  answerer_ = std::thread([this] { answer(); });
  writer_ = std::thread([this] { run(); });
}

Ingest::~Ingest() { stop(); }

void Ingest::submit(Trigger trigger, Done done) {
  trigger.created_at = store_.clock().now_ms();
  {
    std::unique_lock lock(mu_);
    // Every trigger not answered yet counts, waiting or committed: the bound holds however far
    // the writer runs ahead of the answerer.
    if (!stopping_ && in_flight_.load(std::memory_order_relaxed) < max_pending_) {
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      pending_.push_back({std::move(trigger), std::move(done)});
      lock.unlock();
      cv_.notify_one();
      return;
    }
  }
  Accepted refused;
  refused.overloaded = true;
  log_unrecorded(trigger, true);
  done(Status::Unavailable("overloaded"), refused);
}

void Ingest::log_unrecorded(Trigger& t, bool overloaded) {
  if (!t.request || !log_) return;
  RequestLogRow& r = *t.request;
  // A failed commit may have filled in what it was writing (Store::commit_group): its entry id
  // and execution were rolled back with it, and an execution id may be handed out again.
  r.id = 0;
  r.execution_id = 0;
  r.deferred = false;
  r.outcome = "unavailable";
  r.status = 503;
  r.error = overloaded ? "overloaded" : "unavailable";
  r.detail = {{"message", overloaded ? "too many triggers were waiting to be recorded"
                                     : "the execution could not be recorded"}};
  log_->record(std::move(t.request));
}

Status Ingest::record_plans(const std::vector<Store::PlannedRun>& runs, int64_t started_at) {
  PlanWait wait;
  wait.batch = {&runs, started_at};
  {
    std::unique_lock lock(mu_);
    if (!stopping_) {
      plan_waits_.push_back(&wait);
      lock.unlock();
      cv_.notify_one();
      lock.lock();
      plans_done_.wait(lock, [&] { return wait.done; });
      return wait.status;
    }
  }
  return store_.start_planned(runs, started_at);
}

void Ingest::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(answer_mu_);
    writer_done_ = true;
  }
  answer_cv_.notify_one();
  if (answerer_.joinable()) answerer_.join();  // after the last batch's answers
}

void Ingest::hand_over(Committed& c) {
  {
    std::unique_lock lock(answer_mu_);
    taken_cv_.wait(lock, [&] { return ring_count_ < kCommitted; });
    ring_[(ring_first_ + ring_count_++) % kCommitted].swap(c);
  }
  answer_cv_.notify_one();
}

void Ingest::answer() {
  std::vector<Committed> done(kCommitted);
  for (;;) {
    size_t n = 0;
    {
      std::unique_lock lock(answer_mu_);
      answer_cv_.wait(lock, [&] { return ring_count_ > 0 || writer_done_; });
      if (ring_count_ == 0) return;  // the writer ended and every batch was answered
      for (; ring_count_ > 0; --ring_count_, ring_first_ = (ring_first_ + 1) % kCommitted)
        done[n++].swap(ring_[ring_first_]);
    }
    taken_cv_.notify_one();
    answer_all(done, n);
  }
}

void Ingest::answer_all(std::vector<Committed>& done, size_t n) {
  // One sync for every batch committed before it started.
  bool any_committed = false;
  for (size_t k = 0; k < n; ++k) any_committed |= done[k].status.ok();
  if (any_committed) {
    Status synced = sync_();
    if (!synced.ok()) {
      // The kernel may have dropped the pages it could not write and report the next sync as a
      // success (as PostgreSQL learned): no later answer could be trusted. Stop; the service
      // manager restarts tripline, and recovery acts on what is on disk (docs/durability.md).
      log::error("cannot sync the database's WAL to disk; stopping", {{"error", synced.message()}});
      std::abort();
    }
  }
  for (size_t k = 0; k < n; ++k) {
    Committed& c = done[k];
    const Status& s = c.status;
    if (!c.waits.empty()) {
      {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < c.waits.size(); ++i) {
          c.waits[i]->status = s.ok() ? c.plan_status[i] : s;
          c.waits[i]->done = true;
        }
      }
      plans_done_.notify_all();
      c.waits.clear();
    }
    // Entries the commit deferred go to the log before any answer, so that a read of the log
    // made after one (RequestLog::sync) finds its entry; in the order of their ids.
    if (s.ok() && log_) {
      for (Pending& p : c.batch)
        if (p.trigger.request && p.trigger.request->deferred)
          deferred_.push_back(std::move(p.trigger.request));
      log_->record_accepted(deferred_);
    }
    int64_t touched = 0;  // a flood on one receiver touches it once per commit
    for (size_t i = 0; i < c.batch.size(); ++i) {
      Trigger& t = c.batch[i].trigger;
      const Accepted& a = c.outcomes[i];
      if (!s.ok())
        log_unrecorded(t, false);
      else if (t.request && log_ && t.receiver->row.id != touched)
        log_->touch(touched = t.receiver->row.id);
      if (s.ok() && a.recorded()) on_committed_(t, a.execution_id);
      c.batch[i].done(s, a);
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
    }
    c.batch.clear();
    c.outcomes.clear();
  }
}

void Ingest::run() {
  Committed c;
  std::vector<NewExecution> rows;
  std::vector<Store::PlannedBatch> plans;
  c.batch.reserve(1024);
  c.outcomes.reserve(1024);
  rows.reserve(1024);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || !plan_waits_.empty(); });
      if (pending_.empty() && plan_waits_.empty() && stopping_) return;
      c.batch.swap(pending_);
      c.waits.swap(plan_waits_);
    }
    plans.clear();
    for (const PlanWait* w : c.waits) plans.push_back(w->batch);
    rows.clear();
    for (const Pending& p : c.batch) {
      const Trigger& t = p.trigger;
      NewExecution e;
      e.receiver_id = t.receiver->row.id;
      e.generation = t.receiver->row.generation;
      e.driver = &t.receiver->row.driver;
      e.config = t.config ? &t.config_text : &t.receiver->config_text;
      e.action = t.action.empty() ? &t.receiver->action : &t.action;
      e.idempotency_key = t.idempotency_key;
      e.created_at = t.created_at;
      e.request = t.request.get();
      e.rule = &t.rule;
      const Limits& l = t.receiver->limits;
      const RuleSet* rules = t.receiver->rules.get();  // null in a hand-built receiver
      e.limits = {t.limits, l.cooldown_ms, l.rate_per_s,
                  l.burst,  l.max_queued,  rules ? rules->ignore_status() : 200};
      rows.push_back(std::move(e));
    }
    // Not synced here: the answerer syncs before anything is answered (see the header).
    c.status = store_.commit_group(rows, plans, &c.plan_status, /*deferred_sync=*/true);
    commits_.fetch_add(1, std::memory_order_relaxed);
    if (!c.status.ok())
      log::error("could not commit executions",
                 {{"count", c.batch.size()}, {"error", c.status.message()}});
    c.outcomes.clear();
    for (size_t i = 0; i < c.batch.size(); ++i) {
      const Trigger& t = c.batch[i].trigger;
      c.outcomes.push_back({rows[i].id, rows[i].replayed, false, rows[i].revoked,
                            c.status.ok() && t.request ? t.request->id : 0, rows[i].limited,
                            rows[i].limit_wait});
    }
    rows.clear();  // it points into the batch, which the answerer now owns
    hand_over(c);
  }
}

}  // namespace tripline
