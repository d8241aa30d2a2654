#include "receivers.h"

#include <algorithm>
#include <map>
#include <thread>

#include "crypto.h"

namespace tripline {

namespace {
// What make_receiver needs from a driver's schema. config_schema() builds the whole schema as JSON
// on every call, which cost more than the rest of make_receiver together when 100,000 receivers
// load; a driver's schema never changes (its name is a stable identifier), so it is read once.
struct SchemaFields {
  std::vector<std::string> secret;
  std::vector<std::string> request;
};
const SchemaFields& schema_fields(const Driver& driver) {
  static std::mutex mu;
  static std::map<std::string, SchemaFields, std::less<>> by_driver;
  std::lock_guard lock(mu);
  auto it = by_driver.find(driver.name());
  if (it == by_driver.end())
    it = by_driver
             .emplace(std::string(driver.name()),
                      SchemaFields{secret_fields(driver), request_fields(driver)})
             .first;
  return it->second;
}
}  // namespace

Result<std::shared_ptr<const Receiver>> make_receiver(ReceiverRow row,
                                                      const DriverRegistry& drivers,
                                                      const SecretBox& secrets, bool check_peer,
                                                      const Limits& default_limits) {
  const Driver* driver = drivers.find(row.driver);
  if (!driver)
    return Status::Invalid("unknown driver \"" + row.driver + "\"",
                           {{"driver", "is not one of this server's drivers"}});
  const SchemaFields& schema = schema_fields(*driver);
  auto plain = open_config(row.config, schema.secret, secrets);
  if (!plain.ok()) return plain.status();
  auto config = driver->validate(*plain, check_peer);
  if (!config.ok()) return config.status();
  // Most receivers have no rules and no inbound auth: they share one empty (immutable) instance.
  static const auto kNoRules = *RuleSet::compile(nullptr);
  static const auto kNoAuth = *InboundAuth::compile(nullptr, secrets);
  auto rules = row.rules.is_null() ? kNoRules : RuleSet::compile(row.rules);
  if (!rules.ok()) return rules.status();
  auto auth = row.auth.is_null() ? kNoAuth : InboundAuth::compile(row.auth, secrets);
  if (!auth.ok()) return auth.status();
  auto limits = Limits::parse(row.limits, default_limits);
  if (!limits.ok()) return limits.status();
  auto r = std::make_shared<Receiver>();
  r->rules = *rules;
  r->auth = *auth;
  r->limits = *limits;
  r->limiter = std::make_shared<LimiterState>();
  r->driver = driver;
  r->config = *config;
  if (*plain != row.config) r->opened_config = std::move(plain).value();
  r->secret_fields = &schema.secret;
  r->request_fields = &schema.request;
  r->binds_request = driver->binds_request(**config);
  r->simple = !r->binds_request && r->auth->empty() && r->rules->trivial();
  r->config_text = row.config.dump();
  r->target = driver->target(**config);
  r->action = driver->action(**config);
  r->description = driver->describe(**config);
  r->row = std::move(row);
  r->row.config = nullptr;  // held as config_text (see Receiver)
  return std::shared_ptr<const Receiver>(std::move(r));
}

std::vector<std::string> request_fields(const Driver& driver) {
  return schema_fields_marked(driver, "x-tripline-per-request");
}

bool ReceiverCache::ConstantTimeEqual::operator()(std::string_view a, std::string_view b) const {
  return crypto::constant_time_equal(a, b);
}

namespace {
static_assert((ReceiverCache::kShards & (ReceiverCache::kShards - 1)) == 0, "a power of two");
// Fibonacci hashing: the shard takes the high bits of the product, while the shard's own hash
// table takes its bucket from the plain hash, so the two do not line up.
size_t shard_of(uint64_t hash) {
  return size_t((hash * 0x9E3779B97F4A7C15ull) >> 32) & (ReceiverCache::kShards - 1);
}
size_t shard_of_id(int64_t id) { return shard_of(uint64_t(id)); }
size_t shard_of_token(std::string_view token) {
  return shard_of(std::hash<std::string_view>{}(token));
}
}  // namespace

// Changes to one snapshot, copy-on-write per shard: a shard is copied the first time the edit
// touches it; finish() makes the next snapshot from the copies and the untouched shards.
class ReceiverCache::Edit {
 public:
  explicit Edit(const Snapshot& base)
      : base_(base), ids_(kShards), tokens_(kShards), size_(base.size) {}

  const Entry* find(int64_t id) const {
    size_t s = shard_of_id(id);
    const IdShard& shard = ids_[s] ? *ids_[s] : *base_.by_id[s];
    auto it = shard.find(id);
    return it == shard.end() ? nullptr : it->second.get();
  }

  // Adds the entry, or replaces the one with its id (and that one's token).
  void set(EntryPtr entry) {
    int64_t id = entry->receiver->row.id;
    IdShard& ids = ids_for(id);
    auto it = ids.find(id);
    if (it != ids.end()) {
      tokens_for(it->second->token).erase(it->second->token);
      it->second = entry;
    } else {
      ids.emplace(id, entry);
      ++size_;
    }
    tokens_for(entry->token).emplace(entry->token, entry);
  }

  void remove(int64_t id) {
    IdShard& ids = ids_for(id);
    auto it = ids.find(id);
    if (it == ids.end()) return;
    tokens_for(it->second->token).erase(it->second->token);
    ids.erase(it);
    --size_;
  }

  std::shared_ptr<const Snapshot> finish() {
    auto next = std::make_shared<Snapshot>();
    next->by_id.reserve(kShards);
    next->by_token.reserve(kShards);
    for (size_t s = 0; s < kShards; ++s) {
      next->by_id.push_back(ids_[s] ? std::shared_ptr<const IdShard>(std::move(ids_[s]))
                                    : base_.by_id[s]);
      next->by_token.push_back(tokens_[s] ? std::shared_ptr<const TokenShard>(std::move(tokens_[s]))
                                          : base_.by_token[s]);
    }
    next->size = size_;
    return next;
  }

 private:
  IdShard& ids_for(int64_t id) {
    size_t s = shard_of_id(id);
    if (!ids_[s]) ids_[s] = std::make_shared<IdShard>(*base_.by_id[s]);
    return *ids_[s];
  }
  // A copied token shard keeps viewing the same Entry strings: its values hold them alive.
  TokenShard& tokens_for(std::string_view token) {
    size_t s = shard_of_token(token);
    if (!tokens_[s]) tokens_[s] = std::make_shared<TokenShard>(*base_.by_token[s]);
    return *tokens_[s];
  }

  const Snapshot& base_;
  std::vector<std::shared_ptr<IdShard>> ids_;
  std::vector<std::shared_ptr<TokenShard>> tokens_;
  size_t size_;
};

ReceiverCache::ReceiverCache(const Keyring& keyring) : keyring_(keyring) {
  auto empty = std::make_shared<Snapshot>();
  auto no_ids = std::make_shared<const IdShard>();
  auto no_tokens = std::make_shared<const TokenShard>();
  empty->by_id.assign(kShards, no_ids);
  empty->by_token.assign(kShards, no_tokens);
  snapshot_.store(std::move(empty));
}

std::shared_ptr<const Receiver> ReceiverCache::find(int64_t id) const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  const IdShard& shard = *snap->by_id[shard_of_id(id)];
  auto it = shard.find(id);
  return it == shard.end() ? nullptr : it->second->receiver;
}

std::vector<std::shared_ptr<const Receiver>> ReceiverCache::all() const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<const Receiver>> out;
  out.reserve(snap->size);
  for (const auto& shard : snap->by_id)
    for (const auto& [_, entry] : *shard) out.push_back(entry->receiver);
  return out;
}

std::shared_ptr<const Receiver> ReceiverCache::find_by_token(std::string_view token) const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  const TokenShard& shard = *snap->by_token[shard_of_token(token)];
  auto it = shard.find(token);
  return it == shard.end() ? nullptr : it->second->receiver;
}

size_t ReceiverCache::size() const { return snapshot_.load(std::memory_order_acquire)->size; }

bool ReceiverCache::put(std::shared_ptr<const Receiver> receiver) {
  std::lock_guard lock(write_mu_);
  int64_t rid = receiver->row.id;
  if (erased_.count(rid)) return false;
  auto current = snapshot_.load();
  Edit edit(*current);
  if (const Entry* cached = edit.find(rid);
      cached && cached->receiver->row.version >= receiver->row.version)
    return false;
  std::string token = keyring_.sign(receiver->claims());
  edit.set(std::make_shared<const Entry>(Entry{std::move(receiver), std::move(token)}));
  snapshot_.store(edit.finish(), std::memory_order_release);
  return true;
}

size_t ReceiverCache::put_all(const std::vector<std::shared_ptr<const Receiver>>& receivers,
                              size_t threads) {
  // Signing is most of the cost and needs no lock: the keyring is immutable.
  const size_t n = receivers.size();
  std::vector<EntryPtr> entries(n);
  auto sign = [&](size_t first, size_t step) {
    for (size_t i = first; i < n; i += step)
      if (const auto& r = receivers[i])
        entries[i] = std::make_shared<const Entry>(Entry{r, keyring_.sign(r->claims())});
  };
  threads = std::clamp<size_t>(threads, 1, std::max<size_t>(1, n / 1000));
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(sign, t, threads);
  sign(0, threads);
  for (auto& h : helpers) h.join();
  std::lock_guard lock(write_mu_);
  auto current = snapshot_.load();
  Edit edit(*current);
  size_t published = 0;
  for (auto& entry : entries) {
    if (!entry) continue;
    const Receiver& r = *entry->receiver;
    if (erased_.count(r.row.id)) continue;
    if (const Entry* cached = edit.find(r.row.id);
        cached && cached->receiver->row.version >= r.row.version)
      continue;
    edit.set(std::move(entry));
    ++published;
  }
  if (published) snapshot_.store(edit.finish(), std::memory_order_release);
  return published;
}

void ReceiverCache::erase(int64_t id, bool deleted) {
  std::lock_guard lock(write_mu_);
  if (deleted) erased_.insert(id);
  auto current = snapshot_.load();
  Edit edit(*current);
  if (!edit.find(id)) return;
  edit.remove(id);
  snapshot_.store(edit.finish(), std::memory_order_release);
}

}  // namespace tripline
