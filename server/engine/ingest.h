// The durable half of the trigger path: accepted triggers are queued here and one writer thread
// commits whatever has gathered in ONE transaction (group commit), then answers every waiting
// request and hands the new executions to the executor. Under load a commit carries as many
// triggers as arrived during the previous fsync, so throughput grows with concurrency while each
// answer still comes only after its row is on disk. The executor's plans ride on the same commits
// (record_plans; docs/durability.md).
//
// The writer does not wait for the disk: it commits without a sync (Store::commit_group's
// deferred_sync) and hands the batch to a second thread, the answerer, which syncs the WAL once
// for every batch committed so far (Store::sync_wal) and only then answers them (a send() each)
// and hands their executions to the executor. Meanwhile the writer commits the next batch: the
// disk's wait and the answers' system calls overlap the next commit instead of adding to it
// (bench/RESULTS.md). An answer, a plan's record_plans() return, and an execution's hand-over
// all still come after the sync that covers its commit.
//
// Thread safety: submit() may be called from any thread; `done` and `on_committed` run on the
// answerer thread, in commit order. `done` runs while the ingest still holds its trigger, and so
// its receiver: it may use a plain pointer to that Receiver.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "receivers.h"
#include "request_log.h"
#include "store.h"

namespace tripline {

struct Accepted {
  int64_t execution_id = 0;
  bool replayed = false;    // an Idempotency-Key matched: this is the earlier execution
  bool overloaded = false;  // refused without trying: the queue was full
  bool revoked = false;     // refused at the commit: the URL was revoked while it waited
  int64_t request_id = 0;   // its request log entry, when one was written
  // Refused at the commit: the receiver's limits were reached across the replicas (a shared
  // store, NewExecution::limited); limit_wait as there.
  LimitRefusal limited = LimitRefusal::kNone;
  int64_t limit_wait = 0;
  // Nothing was recorded for it to run: replayed, revoked or limited.
  bool recorded() const { return !replayed && !revoked && limited == LimitRefusal::kNone; }
};

class Ingest {
 public:
  using Done = std::function<void(const Status&, const Accepted&)>;
  // A trigger to record. config/config_text override the receiver's when the execution took
  // values from its request (Driver::bind, a rule's "set"); otherwise they are empty. So does
  // action, when it differs from the receiver's (the inverse run on a resolved alert).
  struct Trigger {
    std::shared_ptr<const Receiver> receiver;
    std::shared_ptr<const DriverConfig> config;
    std::string config_text;
    std::string action;
    std::string idempotency_key;
    int64_t created_at = 0;
    // The request's log entry (docs/requests-log.md), written in the same commit, or after it by
    // the request log's writer when the store defers it (RequestLog::record_accepted); null: none.
    // Its outcome is "accepted" (the store makes it "refused" when the URL was revoked).
    RequestLogEntry request;
    nlohmann::json rule;  // the rule that matched, recorded with the execution
    // Which of the receiver's limits a shared store holds it to (store.h LimitsCheck).
    LimitsCheck::Kind limits = LimitsCheck::Kind::kTrigger;
    const DriverConfig& effective_config() const { return config ? *config : *receiver->config; }
  };
  using OnCommitted = std::function<void(const Trigger&, int64_t id)>;

  // `log` (may be null) gets the log entries of triggers that could not be recorded (overload,
  // a failed commit) and is told which receivers' entries the commits wrote (its cap).
  // `sync` makes the commits made so far durable; empty: Store::sync_wal (a test's hook).
  using Sync = std::function<Status()>;
  Ingest(Store& store, OnCommitted on_committed, size_t max_pending = 20000,
         RequestLog* log = nullptr, Sync sync = {});
  ~Ingest();

  // Queues one trigger; `done` runs after its commit and its sync (or at once, overloaded, when
  // max_pending triggers are already waiting or committed and not answered yet, or the ingest
  // is stopping).
  void submit(Trigger trigger, Done done);
  void stop();  // commits what is queued, then stops the writer

  // Records the executor's plans in the next group commit (Store::commit_group) and returns once
  // that commit is on disk, with its status: plans ride on the triggers' fsync instead of paying
  // one of their own. Blocks the calling thread (a worker) for about one commit. After stop(),
  // records them directly (Store::start_planned).
  Status record_plans(const std::vector<Store::PlannedRun>& runs, int64_t started_at);

  // Group commits made.
  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    Trigger trigger;
    Done done;
  };
  // A worker waiting in record_plans(); lives on its stack.
  struct PlanWait {
    Store::PlannedBatch batch;
    Status status;
    bool done = false;
  };
  void run();
  void answer();  // the answerer thread
  // A batch committed by the writer, waiting for its sync and answers.
  struct Committed {
    std::vector<Pending> batch;
    std::vector<Accepted> outcomes;
    Status status = Status::Ok();
    std::vector<PlanWait*> waits;
    std::vector<Status> plan_status;
    // Trades contents with `o`: each side keeps reusing the other's buffers.
    void swap(Committed& o) {
      batch.swap(o.batch);
      outcomes.swap(o.outcomes);
      waits.swap(o.waits);
      plan_status.swap(o.plan_status);
      std::swap(status, o.status);
    }
  };
  // Hands a committed batch to the answerer (its vectors are swapped with an empty slot's, so
  // both sides keep reusing buffers); waits while kCommitted batches already wait.
  void hand_over(Committed& c);
  // Syncs, then answers every batch in `done` (the answerer's thread).
  void answer_all(std::vector<Committed>& done, size_t n);
  std::vector<RequestLogEntry> deferred_;  // the answerer's, reused: a batch's deferred entries

  // A trigger that was not recorded: its log entry says why, off the trigger path.
  void log_unrecorded(Trigger& t, bool overloaded);
  Store& store_;
  OnCommitted on_committed_;
  Sync sync_;
  RequestLog* log_;
  const size_t max_pending_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;
  std::atomic<size_t> in_flight_{0};  // submitted, not answered yet: at most max_pending_
  std::atomic<uint64_t> commits_{0};  // group commits made

  std::vector<PlanWait*> plan_waits_;  // unbounded only by the executor's worker count
  std::condition_variable plans_done_;
  bool stopping_ = false;
  std::thread writer_;

  // Committed batches between the writer and the answerer (answer_mu_): a ring of kCommitted.
  static constexpr size_t kCommitted = 4;
  std::mutex answer_mu_;
  std::condition_variable answer_cv_;  // a batch was handed over, or the writer ended
  std::condition_variable taken_cv_;   // the answerer took what was waiting
  std::vector<Committed> ring_{kCommitted};
  size_t ring_first_ = 0, ring_count_ = 0;
  bool writer_done_ = false;
  std::thread answerer_;
};

}  // namespace tripline
