#include "ingest.h"

#include "log.h"

namespace tripline {

Ingest::Ingest(Store& store, OnCommitted on_committed, size_t max_pending, RequestLog* log)
    : store_(store), on_committed_(std::move(on_committed)), log_(log), max_pending_(max_pending) {
  pending_.reserve(1024);
  answerer_ = std::thread([this] { answer(); });
  writer_ = std::thread([this] { run(); });
}

Ingest::~Ingest() { stop(); }

void Ingest::submit(Trigger trigger, Done done) {
  trigger.created_at = store_.clock().now_ms();
  {
    std::unique_lock lock(mu_);
    if (!stopping_ && pending_.size() < max_pending_) {
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

void Ingest::hand_over(std::vector<Pending>& batch, std::vector<Accepted>& outcomes,
                       const Status& s) {
  {
    std::unique_lock lock(answer_mu_);
    taken_cv_.wait(lock, [&] { return !answer_full_; });
    // Swapped, not moved: each side keeps reusing the other's buffers.
    answer_batch_.swap(batch);
    answer_outcomes_.swap(outcomes);
    answer_status_ = s;
    answer_full_ = true;
  }
  answer_cv_.notify_one();
}

void Ingest::answer() {
  std::vector<Pending> batch;
  std::vector<Accepted> outcomes;
  Status s = Status::Ok();
  batch.reserve(1024);
  outcomes.reserve(1024);
  for (;;) {
    {
      std::unique_lock lock(answer_mu_);
      answer_cv_.wait(lock, [&] { return answer_full_ || writer_done_; });
      if (!answer_full_) return;  // the writer ended and every batch was answered
      batch.swap(answer_batch_);
      outcomes.swap(answer_outcomes_);
      s = std::move(answer_status_);
      answer_full_ = false;
    }
    taken_cv_.notify_one();
    int64_t touched = 0;  // a flood on one receiver touches it once per commit
    for (size_t i = 0; i < batch.size(); ++i) {
      Trigger& t = batch[i].trigger;
      const Accepted& a = outcomes[i];
      if (!s.ok())
        log_unrecorded(t, false);
      else if (t.request && log_ && t.receiver->row.id != touched)
        log_->touch(touched = t.receiver->row.id);
      if (s.ok() && !a.replayed && !a.revoked) on_committed_(t, a.execution_id);
      batch[i].done(s, a);
    }
    batch.clear();
    outcomes.clear();
  }
}

void Ingest::run() {
  std::vector<Pending> batch;
  std::vector<NewExecution> rows;
  std::vector<PlanWait*> waits;
  std::vector<Store::PlannedBatch> plans;
  std::vector<Status> plan_status;
  std::vector<Accepted> outcomes;
  batch.reserve(1024);
  outcomes.reserve(1024);
  rows.reserve(1024);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty() || !plan_waits_.empty(); });
      if (pending_.empty() && plan_waits_.empty() && stopping_) return;
      batch.swap(pending_);
      waits.swap(plan_waits_);
    }
    plans.clear();
    for (const PlanWait* w : waits) plans.push_back(w->batch);
    rows.clear();
    for (const Pending& p : batch) {
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
      rows.push_back(std::move(e));
    }
    Status s = store_.commit_group(rows, plans, &plan_status);
    commits_.fetch_add(1, std::memory_order_relaxed);
    if (!s.ok())
      log::error("could not commit executions", {{"count", batch.size()}, {"error", s.message()}});
    if (!waits.empty()) {
      {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < waits.size(); ++i) {
          waits[i]->status = s.ok() ? plan_status[i] : s;
          waits[i]->done = true;
        }
      }
      plans_done_.notify_all();
      waits.clear();
    }
    outcomes.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      const Trigger& t = batch[i].trigger;
      outcomes.push_back({rows[i].id, rows[i].replayed, false, rows[i].revoked,
                          s.ok() && t.request ? t.request->id : 0});
    }
    rows.clear();  // it points into the batch, which the answerer now owns
    hand_over(batch, outcomes, s);
  }
}

}  // namespace tripline
