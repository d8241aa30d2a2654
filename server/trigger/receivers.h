// Receivers as the trigger path sees them: immutable snapshots with their driver and typed config
// resolved, held in memory so a trigger never reads the database.
//
// Thread safety: ReceiverCache readers take no lock of ours (an atomic snapshot); writers (the
// management API, start-up) are serialized and publish a new snapshot per change, sharing with
// the previous one everything the change does not touch.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "inbound_auth.h"
#include "receiver_limits.h"
#include "registry.h"
#include "rules.h"
#include "schema.h"
#include "secrets.h"
#include "store.h"
#include "token.h"

namespace tripline {

struct Receiver {
  // As stored, except `row.config`, which is left null: the config is held once, as the text
  // below (a parsed copy cost ~1 KB a receiver; 100,000 receivers are held). stored_row() and
  // stored_config() give it back parsed, for the management API and the rare trigger that
  // changes the config per request.
  ReceiverRow row;
  const Driver* driver = nullptr;
  std::shared_ptr<const DriverConfig> config;
  // Secrets opened: what bind() and validate() see. Held only when it differs from the stored
  // config (a sealed value was opened): most configs hold no secret.
  nlohmann::json opened_config;
  // The driver's schema annotations (drivers/driver.h), shared by all its receivers.
  const std::vector<std::string>* secret_fields = nullptr;   // sealed at rest, never shown
  const std::vector<std::string>* request_fields = nullptr;  // what a rule's "set" may change
  bool binds_request = false;  // executions take values from the trigger request
  std::string
      config_text;  // the stored config (secrets sealed), serialized: the execution snapshot
  std::string target;
  std::string action;
  std::string description;
  std::shared_ptr<const RuleSet> rules;     // never null (empty: run always)
  std::shared_ptr<const InboundAuth> auth;  // never null (empty: token only)
  Limits limits;
  std::shared_ptr<LimiterState> limiter;  // shared by successive versions of the receiver
  // No inbound auth, rules or request-bound values: the trigger path needs only the token and
  // the limits (which every receiver has).
  bool simple = true;

  // The config as stored (secrets sealed).
  nlohmann::json stored_config() const { return nlohmann::json::parse(config_text); }
  // The row as stored, config included: what an insert or update writes.
  ReceiverRow stored_row() const {
    ReceiverRow r = row;
    r.config = stored_config();
    return r;
  }
  // The config with secrets opened: what bind(), inverse() and validate() take.
  nlohmann::json plain_config() const {
    return opened_config.is_null() ? stored_config() : opened_config;
  }
  TokenClaims claims() const {
    return {row.id, row.generation, row.driver, target, action, row.nonce};
  }
};

// The top-level config fields a driver lets a rule's "set" change per request: those its schema
// marks "x-tripline-per-request": true (drivers/driver.h). Everything else (above all the target
// and the action) is what the trigger URL grants, and no request can change it.
std::vector<std::string> request_fields(const Driver& driver);

// Resolves a stored row (secrets sealed) against the registry. check_peer asks the driver to
// check its peer too.
Result<std::shared_ptr<const Receiver>> make_receiver(
    ReceiverRow row, const DriverRegistry& drivers, const SecretBox& secrets, bool check_peer,
    const Limits& default_limits = Limits::builtin());

// The receivers the trigger path sees, indexed by id and by current token.
//
// Thread safety: readers take no lock of ours: they load one immutable snapshot (an atomic
// shared_ptr) and look up in it. Writers are serialized by a mutex and publish a new snapshot.
//
// Cost of a change: a snapshot is a fixed table of kShards shard pointers per index; a change
// copies that table (pointers only) and the one id shard and at most two token shards it touches,
// so a put() or erase() costs O(kShards + n / kShards), not O(n), and every reader still sees one
// consistent state of both indexes. put_all() publishes a whole batch (start-up) in one snapshot.
class ReceiverCache {
 public:
  static constexpr size_t kShards = 1024;

  explicit ReceiverCache(const Keyring& keyring);
  std::shared_ptr<const Receiver> find(int64_t id) const;
  std::vector<std::shared_ptr<const Receiver>> all() const;
  // The receiver whose CURRENT token (signed with the newest key) is exactly `token`, compared
  // in constant time. The trigger path's fast lane: a hit needs no HMAC and no JSON parse, since
  // the token is one this server issued for the receiver's current generation. A miss is not a
  // verdict: tokens signed with an older key still go through Keyring::verify.
  std::shared_ptr<const Receiver> find_by_token(std::string_view token) const;
  // Publishes a receiver read back from committed state. The cache never moves backwards: a
  // receiver older than (or as old as) the cached version of the same id is dropped, and so is
  // one whose id was erased. Answers whether it was published.
  bool put(std::shared_ptr<const Receiver> receiver);
  // put() for many receivers at once, published as ONE snapshot (start-up: the whole store).
  // The same rules hold per receiver (within the batch too: the newest version of an id wins).
  // Answers how many were published.
  // Tokens are signed on up to `threads` threads.
  size_t put_all(const std::vector<std::shared_ptr<const Receiver>>& receivers, size_t threads = 1);
  // Removes a receiver. `deleted`: it is gone for good, and no later put() may bring it back.
  void erase(int64_t id, bool deleted);
  // Receivers in the current snapshot.
  size_t size() const;

 private:
  struct ConstantTimeEqual {
    bool operator()(std::string_view a, std::string_view b) const;
  };
  // A receiver with its current token; immutable once published, shared by successive snapshots.
  struct Entry {
    std::shared_ptr<const Receiver> receiver;
    std::string token;
  };
  using EntryPtr = std::shared_ptr<const Entry>;
  using IdShard = std::unordered_map<int64_t, EntryPtr>;
  // Keys view the token string of the Entry they map to, which the value keeps alive.
  using TokenShard = std::unordered_map<std::string_view, EntryPtr, std::hash<std::string_view>,
                                        ConstantTimeEqual>;
  struct Snapshot {
    std::vector<std::shared_ptr<const IdShard>> by_id;        // kShards
    std::vector<std::shared_ptr<const TokenShard>> by_token;  // kShards
    size_t size = 0;
  };
  class Edit;  // copy-on-write changes to one snapshot (receivers.cpp)

  const Keyring& keyring_;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
  std::mutex write_mu_;
  // Ids erased (deleted receivers): ids are never reused, so a put() for one of these is a stale
  // read racing the delete. 8 bytes per deleted receiver.
  std::unordered_set<int64_t> erased_;
};

}  // namespace tripline
