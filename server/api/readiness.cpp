#include "readiness.h"

#include <algorithm>

namespace tripline {

Readiness::Readiness(Store& store, const DriverRegistry& drivers,
                     std::chrono::milliseconds interval)
    : store_(store), drivers_(drivers), interval_(interval) {
  current_.checks = nlohmann::json::object();
  current_.checks["database"] = "not checked yet";
  for (const Driver* d : drivers_.all()) current_.checks[std::string(d->name())] = "not probed yet";
  current_.peers.push_back({"database", "", {}, "unknown", "", 0});
}

void Readiness::publish_peer(const PeerCheck& check, std::string_view driver) {
  Peer* row = nullptr;
  for (Peer& p : current_.peers)
    if (p.peer == check.peer && p.address == check.address) row = &p;
  if (!row) {
    current_.peers.push_back({check.peer, check.address, {}, "unknown", "", 0});
    row = &current_.peers.back();
  }
  if (!driver.empty() &&
      std::find(row->used_by.begin(), row->used_by.end(), driver) == row->used_by.end())
    row->used_by.emplace_back(driver);
  row->state = check.status.ok() ? "ok" : "down";
  row->detail = check.status.ok() ? "" : check.status.message();
  row->checked_at = store_.clock().now_ms();
}

Readiness::~Readiness() { stop(); }

void Readiness::start() {
  check_database();
  thread_ = std::thread([this] { run(); });
}

void Readiness::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Readiness::Snapshot Readiness::snapshot() const {
  std::lock_guard lock(mu_);
  return current_;
}

void Readiness::check_database() {
  Status db = store_.check_writable();
  std::lock_guard lock(mu_);
  current_.checks["database"] = db.ok() ? "ok" : db.message();
  current_.ready = db.ok();
  publish_peer({"database", "", db}, "");
}

void Readiness::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    check_database();
    // Each result is published as soon as it is known, so a hung peer holds back only its own.
    for (const Driver* d : drivers_.all()) {
      // A driver that names its peers is asked once, and its /readyz line is their join.
      std::vector<PeerCheck> peers = d->probe_peers();
      Status s = Status::Ok();
      if (peers.empty()) {
        s = d->probe();
      } else {
        std::string problems;
        for (const PeerCheck& p : peers)
          if (!p.status.ok())
            problems += (problems.empty() ? "" : "; ") + p.peer + " at " + p.address + ": " +
                        p.status.message();
        if (!problems.empty()) s = Status::Unavailable(problems);
      }
      std::lock_guard publish(mu_);
      current_.checks[std::string(d->name())] = s.ok() ? "ok" : s.message();
      for (const PeerCheck& p : peers) publish_peer(p, d->name());
      if (stopping_) break;
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace tripline
