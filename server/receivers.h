// Receivers as the trigger path sees them: immutable snapshots with their driver and typed config
// resolved, held in memory so a trigger never reads the database.
//
// Thread safety: ReceiverCache readers take no lock of ours (an atomic snapshot of the whole map);
// writers (the management API, rarely) copy the map under a mutex and publish the new snapshot.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "../drivers/registry.h"
#include "secrets.h"
#include "store.h"
#include "token.h"

namespace tripline {

struct Receiver {
  ReceiverRow row;                      // row.config as stored: secrets sealed
  const Driver* driver = nullptr;
  std::shared_ptr<const DriverConfig> config;
  nlohmann::json plain_config;          // secrets opened: what bind() and validate() see
  std::vector<std::string> secret_fields;
  bool binds_request = false;           // executions take values from the trigger request
  std::string config_text;  // row.config serialized once: the execution snapshot
  std::string target;
  std::string action;
  std::string description;

  TokenClaims claims() const {
    return {row.id, row.generation, row.driver, target, action};
  }
};

// Resolves a stored row (secrets sealed) against the registry. check_peer asks the driver to
// check its peer too.
Result<std::shared_ptr<const Receiver>> make_receiver(ReceiverRow row, const DriverRegistry& drivers,
                                                      const SecretBox& secrets, bool check_peer);

class ReceiverCache {
 public:
  ReceiverCache();
  std::shared_ptr<const Receiver> find(int64_t id) const;
  void put(std::shared_ptr<const Receiver> receiver);
  void erase(int64_t id);

 private:
  using Map = std::unordered_map<int64_t, std::shared_ptr<const Receiver>>;
  std::atomic<std::shared_ptr<const Map>> map_;
  std::mutex write_mu_;
};

}  // namespace tripline
