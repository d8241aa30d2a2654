// /readyz's answer, computed off the HTTP threads (trust 10b): a background thread checks the
// database and probes each driver's peer (Driver::probe, bounded by its client's timeout) every
// `interval`, and /readyz serves the last answer. A hung Docker therefore delays only the next
// refresh, never a request.
//
// Readiness means "the database is writable"; a driver's peer being down is reported in the
// checks but does not make tripline unready (triggers are still accepted and queued).
// Thread safety: snapshot() may run concurrently with the prober.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "registry.h"
#include "store.h"

namespace tripline {

class Readiness {
 public:
  Readiness(Store& store, const DriverRegistry& drivers,
            std::chrono::milliseconds interval = std::chrono::seconds(5));
  ~Readiness();
  // Checks the database once on the caller's thread (so the first answer is known before the
  // server serves), then starts the prober.
  void start();
  void stop();  // waits for a probe in progress (bounded by the drivers' client timeouts)

  struct Snapshot {
    bool ready = false;
    nlohmann::json checks;  // {"database":"ok","scale-service":"ok" | why | "not probed yet"}
  };
  Snapshot snapshot() const;

 private:
  void run();
  void check_database();

  Store& store_;
  const DriverRegistry& drivers_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  Snapshot current_;
  std::thread thread_;
};

}  // namespace tripline
