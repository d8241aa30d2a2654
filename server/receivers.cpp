#include "receivers.h"

#include "crypto.h"

namespace tripline {

Result<std::shared_ptr<const Receiver>> make_receiver(ReceiverRow row, const DriverRegistry& drivers,
                                                      const SecretBox& secrets, bool check_peer) {
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
  auto limits = Limits::parse(row.limits);
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
  r->binds_request = driver->binds_request(**config);
  r->simple = !r->binds_request && r->auth->empty() && r->rules->trivial() && !r->limits.any();
  r->config_text = row.config.dump();
  r->target = driver->target(**config);
  r->action = driver->action(**config);
  r->description = driver->describe(**config);
  r->row = std::move(row);
  return std::shared_ptr<const Receiver>(std::move(r));
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

void ReceiverCache::put(std::shared_ptr<const Receiver> receiver) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<Snapshot>();
  auto current = snapshot_.load();
  next->by_id = current->by_id;
  next->tokens = current->tokens;
  int64_t id = receiver->row.id;
  next->tokens[id] = keyring_.sign(receiver->claims());
  next->by_id[id] = std::move(receiver);
  publish(std::move(next));
}

void ReceiverCache::erase(int64_t id) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<Snapshot>();
  auto current = snapshot_.load();
  next->by_id = current->by_id;
  next->tokens = current->tokens;
  next->by_id.erase(id);
  next->tokens.erase(id);
  publish(std::move(next));
}

}  // namespace tripline
