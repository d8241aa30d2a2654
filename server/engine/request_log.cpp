#include "request_log.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "log.h"

namespace tripline {

RequestLog::RequestLog(Store& store, Metrics& metrics, Options options)
    : store_(store), metrics_(metrics), options_(options) {
  if (enabled()) writer_ = std::thread([this] { run(); });
}

RequestLog::~RequestLog() {
  stop();
  // Entries left (none once the writer has drained the queue) give their bytes back while the
  // members they touch are still there.
  std::vector<RequestLogEntry> left;
  std::unordered_map<int64_t, Accepted> accepted;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
    accepted.swap(accepted_);
  }
}

namespace {
// What an entry holds in memory, near enough: its strings, and the most its detail may hold
// (filled in later, with the outcome). Allocator overhead is not counted.
size_t entry_bytes(const RequestLogRow& r) {
  return sizeof(RequestLogRow) + r.outcome.size() + r.error.size() + r.source.size() +
         r.method.size() + r.headers.size() + r.body.size() + kRequestLogDetailBytes;
}
}  // namespace

void RequestLogRelease::operator()(RequestLogRow* row) const {
  delete row;
  if (log) log->release(receiver_id, bytes);
}

RequestLogEntry RequestLog::admit(RequestLogRow row, bool force) {
  if (!enabled()) return nullptr;
  const size_t bytes = entry_bytes(row);
  const int64_t receiver = row.receiver_id;
  {
    std::unique_lock lock(mu_);
    Held& held = held_[receiver];
    const size_t share = options_.max_live_bytes / std::max<size_t>(options_.receiver_share, 1);
    if (!force && (stopping_ || live_bytes_ + bytes > options_.max_live_bytes ||
                   held.bytes + bytes > share)) {
      if (held.bytes == 0 && held.queued == 0) held_.erase(receiver);
      lock.unlock();
      metrics_.request_log_dropped();
      return nullptr;
    }
    held.bytes += bytes;
    live_bytes_ += bytes;
  }
  return RequestLogEntry(new RequestLogRow(std::move(row)),
                         RequestLogRelease{this, receiver, bytes});
}

void RequestLog::release_locked(int64_t receiver_id, size_t bytes) {
  live_bytes_ -= bytes;
  auto it = held_.find(receiver_id);
  if (it == held_.end()) return;
  it->second.bytes -= bytes;
  if (it->second.bytes == 0 && it->second.queued == 0) held_.erase(it);
}

size_t RequestLog::live_bytes() {
  std::lock_guard lock(mu_);
  return live_bytes_;
}

void RequestLog::record(RequestLogEntry entry) {
  if (!entry || !enabled()) return;
  {
    std::unique_lock lock(mu_);
    const size_t share =
        std::max<size_t>(options_.max_queued / std::max<size_t>(options_.receiver_share, 1), 1);
    auto held = held_.find(entry->receiver_id);
    size_t queued = held == held_.end() ? 0 : held->second.queued;
    if (stopping_ || queue_.size() >= options_.max_queued || queued >= share) {
      lock.unlock();
      metrics_.request_log_dropped();
      return;  // the entry's bytes are given back as it goes
    }
    // An entry not claimed from this log (tests) is held under its receiver all the same.
    held_[entry->receiver_id].queued += 1;
    queue_.push_back(std::move(entry));
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

void RequestLog::release(int64_t receiver_id, size_t bytes) {
  std::lock_guard lock(mu_);
  release_locked(receiver_id, bytes);
}

void RequestLog::record_accepted(std::vector<RequestLogEntry>& entries) {
  if (entries.empty() || !enabled()) return;
  // The rows of entries the cap drops, freed outside the lock; their bytes are given back under
  // it (not by their deleter, which would take it once per entry).
  std::vector<std::unique_ptr<RequestLogRow>> dropped;
  bool first = false;
  {
    std::lock_guard lock(mu_);
    // Stopped: the writer wrote its last batch. The executions are recorded, and the store
    // rebuilds their entries at the next start (StoreOptions::defer_accepted_log); the entries
    // go back below, outside the lock.
    const size_t share = options_.max_live_bytes / std::max<size_t>(options_.receiver_share, 1);
    for (RequestLogEntry& entry : entries) {
      if (!entry || stopping_) continue;
      accepted_upto_ = std::max(accepted_upto_, entry->id);
      Accepted& a = accepted_[entry->receiver_id];
      a.bytes += entry.get_deleter().bytes;
      a.entries.push_back({std::move(entry), ++accepted_seq_});
      first |= accepted_waiting_++ == 0;
      // The newest keep_per_receiver only: the cap would delete the older ones right after
      // they were written. And at most half the receiver's share of the byte budget, so that
      // its requests still being recorded can claim theirs (admit()): with large requests,
      // fewer than keep_per_receiver of the newest wait between two writes. Writing them
      // sooner instead (at each half share) measured as writing most of a flood's entries,
      // which is what the cap saves.
      while (a.entries.size() > 1 &&
             (a.entries.size() > static_cast<size_t>(options_.keep_per_receiver) ||
              a.bytes > share / 2)) {
        RequestLogEntry& old = a.entries.front().entry;
        const RequestLogRelease claim = old.get_deleter();
        a.bytes -= claim.bytes;
        if (claim.log == this) release_locked(claim.receiver_id, claim.bytes);
        dropped.emplace_back(old.release());
        a.entries.pop_front();
        --accepted_waiting_;
      }
    }
  }
  entries.clear();
  if (!dropped.empty()) metrics_.request_log_capped(dropped.size());
  // Only the first wakes the writer, which then waits out kTrimEvery: not a wake-up per
  // trigger.
  if (first) cv_.notify_one();
}

std::pair<uint64_t, int64_t> RequestLog::take_accepted_locked(std::vector<RequestLogEntry>& out,
                                                              size_t limit, size_t max_bytes) {
  // Receivers in turn, starting after the one the last take ended at: under a flood of many
  // receivers, none waits behind the others for long.
  std::vector<int64_t> order;
  order.reserve(accepted_.size());
  for (const auto& [id, a] : accepted_) order.push_back(id);
  std::sort(order.begin(), order.end());
  size_t start = std::upper_bound(order.begin(), order.end(), last_taken_) - order.begin();
  size_t bytes = 0;
  for (size_t k = 0; k < order.size() && limit > 0 && bytes < max_bytes; ++k) {
    const int64_t id = order[(start + k) % order.size()];
    Accepted& a = accepted_[id];
    last_taken_ = id;
    while (!a.entries.empty() && limit > 0 && bytes < max_bytes) {
      const size_t b = a.entries.front().entry.get_deleter().bytes;
      a.bytes -= b;
      bytes += b;
      out.push_back(std::move(a.entries.front().entry));
      a.entries.pop_front();
      --accepted_waiting_;
      --limit;
    }
    if (a.entries.empty()) accepted_.erase(id);
  }
  if (accepted_.empty()) return {accepted_seq_, accepted_upto_};
  // Some wait for the next batch: everything before the oldest of them is handled.
  uint64_t seq = UINT64_MAX;
  int64_t request = INT64_MAX;
  for (const auto& [id, a] : accepted_) {
    seq = std::min(seq, a.entries.front().seq);
    request = std::min(request, a.entries.front().entry->id);
  }
  // Left over, they go at the next round (at once for a sync()): a flood of many receivers
  // costs the log at most one transaction of kAcceptedBytesPerBatch per kTrimEvery.
  return {seq - 1, request - 1};
}

void RequestLog::sync() {
  if (!enabled()) return;
  std::unique_lock lock(mu_);
  const uint64_t want = accepted_seq_;
  if (accepted_done_ >= want) return;
  ++syncs_waiting_;
  cv_.notify_one();
  synced_.wait(lock, [&] { return accepted_done_ >= want; });
  --syncs_waiting_;
}

void RequestLog::flush() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] {
    return stopping_ || (queue_.empty() && touched_.empty() && accepted_waiting_ == 0 && !writing_);
  });
}

void RequestLog::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  {
    // Nothing more is written: no sync() waits for it (what was left is rebuilt at the next
    // start, StoreOptions::defer_accepted_log).
    std::lock_guard lock(mu_);
    accepted_done_ = accepted_seq_;
  }
  synced_.notify_all();
  idle_.notify_all();
}

void RequestLog::run() {
  std::vector<RequestLogEntry> taken;  // their bytes are given back once written
  std::vector<RequestLogRow> batch;
  std::vector<int64_t> trim, untrimmed;
  std::unordered_set<int64_t> seen;
  auto last_trim = std::chrono::steady_clock::now();
  // Accepted entries a failed write left unwritten: written with the next batch, in the same
  // transaction as the store's note of how far entries are written, which until then stays
  // below them (a failed transaction changes nothing). At most kRetryRows wait; past that the
  // oldest are dropped, counted.
  std::vector<RequestLogRow> retry;
  const size_t kRetryRows = 8 * options_.batch;
  for (;;) {
    std::optional<std::pair<uint64_t, int64_t>> accepted;  // handled up to (seq, entry id)
    {
      std::unique_lock lock(mu_);
      writing_ = false;
      if (queue_.empty() && touched_.empty() && accepted_waiting_ == 0) idle_.notify_all();
      cv_.wait(lock, [&] {
        return stopping_ || !queue_.empty() || !touched_.empty() || accepted_waiting_ > 0;
      });
      // Stopping: what is queued is written; a cap still being applied in steps is left for
      // the next start (the receiver's next entry names it again).
      if (queue_.empty() && accepted_waiting_ == 0 && (touched_.empty() || stopping_)) return;
      // Only accepted entries, or receivers touched by accepted triggers: at most every
      // kTrimEvery (at once for a sync()), so a flood of accepted triggers does not put a
      // transaction of ours between each two of the ingest's commits (both take the store's
      // write lock), and each of ours carries many entries.
      if (queue_.empty() && !stopping_ && syncs_waiting_ == 0) {
        constexpr auto kTrimEvery = std::chrono::milliseconds(250);
        cv_.wait_until(lock, last_trim + kTrimEvery,
                       [&] { return stopping_ || !queue_.empty() || syncs_waiting_ > 0; });
      }
      last_trim = std::chrono::steady_clock::now();
      size_t n = std::min(queue_.size(), options_.batch);
      taken.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
      for (const RequestLogEntry& e : taken) {
        auto held = held_.find(e->receiver_id);
        if (held == held_.end()) continue;
        if (held->second.queued > 0) --held->second.queued;
        if (held->second.queued == 0 && held->second.bytes == 0) held_.erase(held);
      }
      if (accepted_waiting_ > 0)
        accepted = take_accepted_locked(taken, 8 * options_.batch, kAcceptedBytesPerBatch);
      seen.swap(touched_);
      writing_ = true;
    }
    batch.clear();
    for (RequestLogRow& r : retry) batch.push_back(std::move(r));
    retry.clear();
    for (RequestLogEntry& e : taken) batch.push_back(std::move(*e));
    for (const RequestLogRow& r : batch) seen.insert(r.receiver_id);
    trim.assign(seen.begin(), seen.end());
    seen.clear();
    Status s = store_.insert_request_logs(batch, trim, options_.keep_per_receiver, &untrimmed,
                                          options_.trim_per_batch, accepted ? accepted->second : 0);
    if (s.ok()) {
      metrics_.request_log_written(batch.size());
      if (!untrimmed.empty()) {
        std::lock_guard lock(mu_);
        touched_.insert(untrimmed.begin(), untrimmed.end());
      }
    } else {
      size_t lost = 0;
      for (RequestLogRow& r : batch) {
        if (r.deferred)
          retry.push_back(std::move(r));
        else
          ++lost;
      }
      if (retry.size() > kRetryRows) {
        lost += retry.size() - kRetryRows;
        retry.erase(retry.begin(), retry.end() - static_cast<ptrdiff_t>(kRetryRows));
      }
      metrics_.request_log_dropped(lost);
      log::error("could not write the request log",
                 {{"entries", batch.size()}, {"error", s.message()}});
    }
    batch.clear();
    taken.clear();  // gives their bytes back (before a sync() returns)
    if (accepted) {
      {
        std::lock_guard lock(mu_);
        accepted_done_ = std::max(accepted_done_, accepted->first);
      }
      synced_.notify_all();
    }
  }
}

}  // namespace tripline
