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
#include "inbound_auth.h"
#include "receiver_limits.h"
#include "rules.h"
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
  std::shared_ptr<const RuleSet> rules;     // never null (empty: run always)
  std::shared_ptr<const InboundAuth> auth;  // never null (empty: token only)
  Limits limits;
  std::shared_ptr<LimiterState> limiter;    // shared by successive versions of the receiver
  // No inbound auth, rules, limits or request-bound values: the trigger path needs only the token.
  bool simple = true;

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
  explicit ReceiverCache(const Keyring& keyring);
  std::shared_ptr<const Receiver> find(int64_t id) const;
  // The receiver whose CURRENT token (signed with the newest key) is exactly `token`, compared
  // in constant time. The trigger path's fast lane: a hit needs no HMAC and no JSON parse, since
  // the token is one this server issued for the receiver's current generation. A miss is not a
  // verdict: tokens signed with an older key still go through Keyring::verify.
  std::shared_ptr<const Receiver> find_by_token(std::string_view token) const;
  void put(std::shared_ptr<const Receiver> receiver);
  void erase(int64_t id);

 private:
  struct ConstantTimeEqual {
    bool operator()(std::string_view a, std::string_view b) const;
  };
  struct Snapshot {
    std::unordered_map<int64_t, std::shared_ptr<const Receiver>> by_id;
    // Keys view the token strings held in `tokens`.
    std::unordered_map<std::string_view, std::shared_ptr<const Receiver>,
                       std::hash<std::string_view>, ConstantTimeEqual>
        by_token;
    std::unordered_map<int64_t, std::string> tokens;
  };
  void publish(std::shared_ptr<Snapshot> next);

  const Keyring& keyring_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::mutex write_mu_;
};

}  // namespace tripline
