// The request log's background writer (docs/requests-log.md). Entries for requests that were
// not accepted (ignored, refused, limited, malformed) are handed over here and written off the
// trigger path: a bounded queue, drained in batches of one relaxed transaction each. When the
// queue is full an entry is dropped and counted (tripline_request_log_dropped_total): a flood
// costs the log entries, never the trigger path's time. Accepted requests are written by the
// ingest's group commit with their execution (Store::commit_group) and only touch() here; or,
// on a store that defers them (StoreOptions::defer_accepted_log), handed over once their
// execution is committed (record_accepted()) and written by this writer every kTrimEvery
// (250 ms), at once when a sync() waits: per receiver, only the newest keep_per_receiver of
// what waits (and at most half its share of the byte budget), as the cap would
// delete the older ones right after. A flood of accepted triggers then costs the log a few
// thousand rows a second per receiver, not one row per trigger. Reads of the log sync() first.
//
// The cap per receiver (the newest keep_per_receiver entries) is applied by this writer after
// each batch, to the receivers the batch or a touch() named, at most trim_per_batch entries
// deleted per transaction (the rest in the next ones). Age retention is the pruner's.
//
// Thread safety: record(), touch() and flush() from any thread.
//
// Memory: every entry alive (captured on the trigger path, waiting in the ingest's queue for its
// group commit, or queued for this writer) is claimed from one byte budget when it is captured
// (admit()) and given back when it is written or dropped (RequestLogEntry's deleter). Over the
// budget, the entry is dropped and counted, never the trigger: the trigger goes on without it.
// One receiver may hold at most 1/receiver_share of the budget and of the writer's queue, so a
// flooded receiver cannot crowd out the other receivers' entries (docs/requests-log.md).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "metrics.h"
#include "store.h"

namespace tripline {

class RequestLog;

// Gives an admitted entry's bytes back to its log's budget when the entry goes.
struct RequestLogRelease {
  RequestLog* log = nullptr;  // null: not claimed from any budget (tests)
  int64_t receiver_id = 0;
  size_t bytes = 0;
  void operator()(RequestLogRow* row) const;
};
// An entry claimed from the log's budget (RequestLog::admit); null: none is kept.
using RequestLogEntry = std::unique_ptr<RequestLogRow, RequestLogRelease>;

// The most bytes an entry's detail may hold (App::log_request shortens it to fit); claimed with
// the entry when it is captured, before its outcome is known.
inline constexpr size_t kRequestLogDetailBytes = 2048;

class RequestLog {
 public:
  struct Options {
    int64_t keep_per_receiver = 1000;  // 0: the log is off (nothing recorded)
    size_t max_queued = 4096;          // entries waiting for the writer; then dropped
    // The bytes of every entry alive (headers, body, detail...; an entry holds at most about
    // 8.5 KiB, request_record.h), from capture until written: over it, new entries are
    // dropped, so the log's memory is bounded whatever the ingest's queue holds.
    size_t max_live_bytes = 16 << 20;
    // A receiver holds at most 1/receiver_share of max_live_bytes and of max_queued.
    size_t receiver_share = 4;
    size_t batch = 512;  // entries per transaction
    // Entries deleted by the cap per transaction: a lowered --request-log is applied over
    // several, at most one every 250 ms while no new entries wait, so the trigger path's commits
    // never wait long for the write lock.
    int trim_per_batch = 2000;
  };
  RequestLog(Store& store, Metrics& metrics, Options options);
  ~RequestLog();

  bool enabled() const { return options_.keep_per_receiver > 0; }
  int64_t keep_per_receiver() const { return options_.keep_per_receiver; }
  // Claims the budget for a captured entry (never blocks): null, counted as dropped, when the
  // log is off, the budget is spent, or this receiver holds its share. `force`: claimed even
  // over the budget (an admin's redelivery, one entry per API call).
  RequestLogEntry admit(RequestLogRow row, bool force = false);
  // Queues an entry (never blocks); drops it, counted, when the queue or the receiver's share
  // of it is full.
  void record(RequestLogEntry entry);
  // The bytes claimed by entries alive now (tests, metrics).
  size_t live_bytes();
  // Entries of this receiver were written elsewhere (the group commit): apply its cap.
  void touch(int64_t receiver_id);
  // An accepted request's entry whose execution is committed and which the commit deferred
  // (RequestLogRow::deferred): kept until written, at most keep_per_receiver waiting per
  // receiver, the oldest dropped first (counted as capped). Entries must come in the order of
  // their ids (the commits' order: the ingest's answerer's).
  // Takes all of `entries` (a committed batch's, one lock for them all).
  void record_accepted(std::vector<RequestLogEntry>& entries);
  // Returns once every entry given to record_accepted() before the call is written (or no
  // longer wanted, or its write failed: then it waits for the next write, logged and counted):
  // the API's reads of the log see every accepted request answered before them
  // (the other outcomes' entries go through record()'s queue, written as soon as it can).
  void sync();
  // Returns once everything queued before the call is written (tests; a redelivery's answer).
  void flush();
  void stop();  // writes what is queued, then stops

 private:
  friend struct RequestLogRelease;
  void release(int64_t receiver_id, size_t bytes);
  void release_locked(int64_t receiver_id, size_t bytes);
  void run();
  Store& store_;
  Metrics& metrics_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_, idle_;
  std::vector<RequestLogEntry> queue_;
  // What each receiver holds (bytes alive, entries queued); bounded by the number of receivers
  // with entries alive, an element erased when both are 0.
  struct Held {
    size_t bytes = 0;
    size_t queued = 0;
  };
  std::unordered_map<int64_t, Held> held_;
  size_t live_bytes_ = 0;                // the sum of held_'s bytes
  std::unordered_set<int64_t> touched_;  // bounded by the number of receivers
  bool writing_ = false;
  bool stopping_ = false;
  // record_accepted()'s entries, per receiver, oldest first; each with its number in the order
  // they came (sync() waits for a number).
  struct Waiting {
    RequestLogEntry entry;
    uint64_t seq = 0;
  };
  struct Accepted {
    std::deque<Waiting> entries;
    size_t bytes = 0;  // the bytes their admit() claimed
  };
  std::unordered_map<int64_t, Accepted> accepted_;  // no empty element is kept
  size_t accepted_waiting_ = 0;
  uint64_t accepted_seq_ = 0;   // entries given to record_accepted() so far
  uint64_t accepted_done_ = 0;  // every entry numbered up to it is written or dropped
  int64_t accepted_upto_ = 0;   // the largest entry id given to record_accepted()
  size_t syncs_waiting_ = 0;    // sync() calls waiting: the writer goes at once
  std::condition_variable synced_;
  // Takes what to write of accepted_ (at most `limit` entries, oldest first) into `out`; answers
  // the (seq, entry id) up to which everything is then handled. mu_ held.
  std::pair<uint64_t, int64_t> take_accepted_locked(std::vector<RequestLogEntry>& out, size_t limit,
                                                    size_t max_bytes);
  static constexpr size_t kAcceptedBytesPerBatch = 4 << 20;  // a short hold of the write lock
  int64_t last_taken_ = 0;                                   // the receiver the last take ended at
  std::thread writer_;
};

}  // namespace tripline
