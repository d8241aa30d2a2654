// The request log's background writer (docs/requests-log.md). Entries for requests that were
// not accepted (ignored, refused, limited, malformed) are handed over here and written off the
// trigger path: a bounded queue, drained in batches of one relaxed transaction each. When the
// queue is full an entry is dropped and counted (tripline_request_log_dropped_total): a flood
// costs the log entries, never the trigger path's time. Accepted requests are written by the
// ingest's group commit with their execution (Store::commit_group) and only touch() here.
//
// The cap per receiver (the newest keep_per_receiver entries) is applied by this writer after
// each batch, to the receivers the batch or a touch() named, at most trim_per_batch entries
// deleted per transaction (the rest in the next ones). Age retention is the pruner's.
//
// Thread safety: record(), touch() and flush() from any thread.
//
// The queue is bounded by entries and by bytes (Options), not per receiver: one noisy receiver
// can fill it and crowd out others' entries while the flood lasts (counted as dropped).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <vector>

#include "metrics.h"
#include "store.h"

namespace tripline {

class RequestLog {
 public:
  struct Options {
    int64_t keep_per_receiver = 1000;  // 0: the log is off (nothing recorded)
    size_t max_queued = 4096;          // entries waiting for the writer; then dropped
    // And their bytes (headers, body, detail...; an entry holds up to about 13 KiB): then
    // dropped too, so the queue's memory is bounded whatever the entries hold.
    size_t max_queued_bytes = 8 << 20;
    size_t batch = 512;  // entries per transaction
    // Entries deleted by the cap per transaction: a lowered --request-log is applied over
    // several, at most one every 500 ms while no new entries wait, so the trigger path's commits
    // never wait long for the write lock.
    int trim_per_batch = 2000;
  };
  RequestLog(Store& store, Metrics& metrics, Options options);
  ~RequestLog();

  bool enabled() const { return options_.keep_per_receiver > 0; }
  int64_t keep_per_receiver() const { return options_.keep_per_receiver; }
  // Queues an entry (never blocks); drops it, counted, when the queue is full.
  void record(RequestLogRow row);
  // Entries of this receiver were written elsewhere (the group commit): apply its cap.
  void touch(int64_t receiver_id);
  // Returns once everything queued before the call is written (tests; a redelivery's answer).
  void flush();
  void stop();  // writes what is queued, then stops

 private:
  void run();
  Store& store_;
  Metrics& metrics_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_, idle_;
  std::vector<RequestLogRow> queue_;
  std::vector<size_t> sizes_;            // each queued entry's bytes (entry_bytes), as queue_
  size_t queued_bytes_ = 0;              // their sum
  std::unordered_set<int64_t> touched_;  // bounded by the number of receivers
  bool writing_ = false;
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace tripline
