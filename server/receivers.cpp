#include "receivers.h"

#include "crypto.h"

namespace tripline {

Result<std::shared_ptr<const Receiver>> make_receiver(ReceiverRow row, const DriverRegistry& drivers,
                                                      const SecretBox& secrets, bool check_peer,
                                                      const Limits& default_limits) {
  const Driver* driver = drivers.find(row.driver);
  if (!driver)
    return Status::Invalid("unknown driver \"" + row.driver + "\"",
                           {{"driver", "is not one of this server's drivers"}});
  auto fields = secret_fields(*driver);
  auto plain = open_config(row.config, fields, secrets);
  if (!plain.ok()) return plain.status();
  auto config = driver->validate(*plain, check_peer);
  if (!config.ok()) return config.status();
  auto rules = RuleSet::compile(row.rules);
  if (!rules.ok()) return rules.status();
  auto auth = InboundAuth::compile(row.auth, secrets);
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
  r->plain_config = std::move(plain).value();
  r->secret_fields = std::move(fields);
  r->request_fields = request_fields(*driver);
  r->binds_request = driver->binds_request(**config);
  r->simple = !r->binds_request && r->auth->empty() && r->rules->trivial();
  r->config_text = row.config.dump();
  r->target = driver->target(**config);
  r->action = driver->action(**config);
  r->description = driver->describe(**config);
  r->row = std::move(row);
  return std::shared_ptr<const Receiver>(std::move(r));
}

std::vector<std::string> request_fields(const Driver& driver) {
  std::vector<std::string> out;
  auto schema = driver.config_schema();
  if (auto props = schema.find("properties"); props != schema.end() && props->is_object())
    for (const auto& [name, prop] : props->items())
      if (prop.is_object() && prop.value("x-tripline-per-request", false)) out.push_back(name);
  return out;
}

bool ReceiverCache::ConstantTimeEqual::operator()(std::string_view a, std::string_view b) const {
  return crypto::constant_time_equal(a, b);
}

ReceiverCache::ReceiverCache(const Keyring& keyring)
    : keyring_(keyring), snapshot_(std::make_shared<const Snapshot>()) {}

std::shared_ptr<const Receiver> ReceiverCache::find(int64_t id) const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  auto it = snap->by_id.find(id);
  return it == snap->by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Receiver>> ReceiverCache::all() const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  std::vector<std::shared_ptr<const Receiver>> out;
  out.reserve(snap->by_id.size());
  for (const auto& [_, r] : snap->by_id) out.push_back(r);
  return out;
}

std::shared_ptr<const Receiver> ReceiverCache::find_by_token(std::string_view token) const {
  auto snap = snapshot_.load(std::memory_order_acquire);
  auto it = snap->by_token.find(token);
  return it == snap->by_token.end() ? nullptr : it->second;
}

// Rebuilds the token index so its string_view keys point into the new snapshot's own strings.
void ReceiverCache::publish(std::shared_ptr<Snapshot> next) {
  next->by_token.clear();
  for (const auto& [id, token] : next->tokens) next->by_token.emplace(token, next->by_id.at(id));
  snapshot_.store(std::move(next), std::memory_order_release);
}

bool ReceiverCache::put(std::shared_ptr<const Receiver> receiver) {
  std::lock_guard lock(write_mu_);
  auto current = snapshot_.load();
  int64_t rid = receiver->row.id;
  if (erased_.count(rid)) return false;
  if (auto it = current->by_id.find(rid); it != current->by_id.end() &&
                                          it->second->row.version >= receiver->row.version)
    return false;
  auto next = std::make_shared<Snapshot>();
  next->by_id = current->by_id;
  next->tokens = current->tokens;
  next->tokens[rid] = keyring_.sign(receiver->claims());
  next->by_id[rid] = std::move(receiver);
  publish(std::move(next));
  return true;
}

void ReceiverCache::erase(int64_t id, bool deleted) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<Snapshot>();
  auto current = snapshot_.load();
  next->by_id = current->by_id;
  next->tokens = current->tokens;
  next->by_id.erase(id);
  next->tokens.erase(id);
  if (deleted) erased_.insert(id);
  publish(std::move(next));
}

}  // namespace tripline
