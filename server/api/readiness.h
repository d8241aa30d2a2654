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
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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

  // One peer of the process as last probed (Driver::probe_peers): the operations page's table
  // (GET /api/v1/peers). Peers several drivers share (Docker at one address) are one row.
  struct Peer {
    std::string peer;                  // "database", "docker", "kubernetes"
    std::string address;               // where it is; empty when not known
    std::vector<std::string> used_by;  // the drivers that talk to it, in registry order
    std::string state = "unknown";     // "ok", "down" or "unknown" (not probed yet)
    std::string detail;                // the probe's error, empty when ok
    int64_t checked_at = 0;            // the store clock's ms of the last answer; 0: none yet
  };
  struct Snapshot {
    bool ready = false;
    nlohmann::json checks;  // {"database":"ok","scale-service":"ok" | why | "not probed yet"}
    std::vector<Peer> peers;
  };
  Snapshot snapshot() const;

 private:
  void run();
  void check_database();
  // Records one probe answer in current_.peers (mu_ held).
  void publish_peer(const PeerCheck& check, std::string_view driver);

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
