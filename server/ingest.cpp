#include "ingest.h"

#include "log.h"

namespace tripline {

Ingest::Ingest(Store& store, OnCommitted on_committed, size_t max_pending)
    : store_(store), on_committed_(std::move(on_committed)), max_pending_(max_pending) {
  pending_.reserve(1024);
  writer_ = std::thread([this] { run(); });
}

Ingest::~Ingest() { stop(); }

bool Ingest::submit(std::shared_ptr<const Receiver> receiver, std::string key, Done done) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || pending_.size() >= max_pending_) return false;
    pending_.push_back({std::move(receiver), std::move(key), now_ms(), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

void Ingest::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

void Ingest::run() {
  std::vector<Pending> batch;
  std::vector<NewExecution> rows;
  batch.reserve(1024);
  rows.reserve(1024);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) return;
      batch.swap(pending_);
    }
    rows.clear();
    for (const Pending& p : batch) {
      NewExecution e;
      e.receiver_id = p.receiver->row.id;
      e.generation = p.receiver->row.generation;
      e.driver = &p.receiver->row.driver;
      e.config = &p.receiver->config_text;
      e.idempotency_key = p.idempotency_key;
      e.created_at = p.created_at;
      rows.push_back(std::move(e));
    }
    Status s = store_.insert_executions(rows);
    if (!s.ok()) log::error("could not commit executions", {{"count", batch.size()}, {"error", s.message()}});
    for (size_t i = 0; i < batch.size(); ++i) {
      Accepted a{rows[i].id, rows[i].replayed};
      if (s.ok() && !a.replayed) on_committed_(batch[i].receiver, a.execution_id, batch[i].created_at);
      batch[i].done(s, a);
    }
    batch.clear();
  }
}

}  // namespace tripline
