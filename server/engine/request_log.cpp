#include "request_log.h"

#include <chrono>

#include "log.h"

namespace tripline {

RequestLog::RequestLog(Store& store, Metrics& metrics, Options options)
    : store_(store), metrics_(metrics), options_(options) {
  if (enabled()) writer_ = std::thread([this] { run(); });
}

RequestLog::~RequestLog() { stop(); }

namespace {
// What an entry holds in memory, near enough: its strings and its detail's text.
size_t entry_bytes(const RequestLogRow& r) {
  return sizeof(RequestLogRow) + r.outcome.size() + r.error.size() + r.source.size() +
         r.method.size() + r.headers.size() + r.body.size() +
         (r.detail.is_object() && r.detail.empty()
              ? 0
              : r.detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size());
}
}  // namespace

void RequestLog::record(RequestLogRow row) {
  if (!enabled()) return;
  const size_t bytes = entry_bytes(row);
  {
    std::unique_lock lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queued ||
        queued_bytes_ + bytes > options_.max_queued_bytes) {
      lock.unlock();
      metrics_.request_log_dropped();
      return;
    }
    queue_.push_back(std::move(row));
    sizes_.push_back(bytes);
    queued_bytes_ += bytes;
  }
  cv_.notify_one();
}

void RequestLog::touch(int64_t receiver_id) {
  if (!enabled()) return;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    touched_.insert(receiver_id);
  }
  cv_.notify_one();
}

void RequestLog::flush() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return stopping_ || (queue_.empty() && touched_.empty() && !writing_); });
}

void RequestLog::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  idle_.notify_all();
}

void RequestLog::run() {
  std::vector<RequestLogRow> batch;
  std::vector<int64_t> trim, untrimmed;
  std::unordered_set<int64_t> seen;
  auto last_trim = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (queue_.empty() && touched_.empty()) idle_.notify_all();
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty() || !touched_.empty(); });
      // Stopping: what is queued is written; a cap still being applied in steps is left for
      // the next start (the receiver's next entry names it again).
      if (queue_.empty() && (touched_.empty() || stopping_)) return;
      // Receivers touched by accepted triggers only: their cap is applied at most every
      // kTrimEvery, so a flood of accepted triggers does not put a transaction of ours
      // between each two of the ingest's commits (both take the store's write lock).
      if (queue_.empty() && !stopping_) {
        constexpr auto kTrimEvery = std::chrono::milliseconds(500);
        cv_.wait_until(lock, last_trim + kTrimEvery, [&] { return stopping_ || !queue_.empty(); });
      }
      last_trim = std::chrono::steady_clock::now();
      size_t n = std::min(queue_.size(), options_.batch);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      for (size_t k = 0; k < n; ++k) queued_bytes_ -= sizes_[k];
      sizes_.erase(sizes_.begin(), sizes_.begin() + static_cast<ptrdiff_t>(n));
      seen.swap(touched_);
      writing_ = true;
    }
    for (const RequestLogRow& r : batch) seen.insert(r.receiver_id);
    trim.assign(seen.begin(), seen.end());
    seen.clear();
    Status s = store_.insert_request_logs(batch, trim, options_.keep_per_receiver, &untrimmed,
                                          options_.trim_per_batch);
    if (s.ok()) {
      metrics_.request_log_written(batch.size());
      if (!untrimmed.empty()) {
        std::lock_guard lock(mu_);
        touched_.insert(untrimmed.begin(), untrimmed.end());
      }
    } else {
      metrics_.request_log_dropped(batch.size());
      log::error("could not write the request log",
                 {{"entries", batch.size()}, {"error", s.message()}});
    }
    batch.clear();
  }
}

}  // namespace tripline
