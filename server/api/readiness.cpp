#include "readiness.h"

namespace tripline {

Readiness::Readiness(Store& store, const DriverRegistry& drivers,
                     std::chrono::milliseconds interval)
    : store_(store), drivers_(drivers), interval_(interval) {
  current_.checks = nlohmann::json::object();
  current_.checks["database"] = "not checked yet";
  for (const Driver* d : drivers_.all()) current_.checks[std::string(d->name())] = "not probed yet";
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
}

void Readiness::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    check_database();
    // Each result is published as soon as it is known, so a hung peer holds back only its own.
    for (const Driver* d : drivers_.all()) {
      Status s = d->probe();
      std::lock_guard publish(mu_);
      current_.checks[std::string(d->name())] = s.ok() ? "ok" : s.message();
      if (stopping_) break;
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace tripline
