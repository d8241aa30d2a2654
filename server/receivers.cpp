#include "receivers.h"

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
  auto r = std::make_shared<Receiver>();
  r->driver = driver;
  r->config = *config;
  r->plain_config = std::move(plain).value();
  r->secret_fields = std::move(fields);
  r->binds_request = driver->binds_request(**config);
  r->config_text = row.config.dump();
  r->target = driver->target(**config);
  r->action = driver->action(**config);
  r->description = driver->describe(**config);
  r->row = std::move(row);
  return std::shared_ptr<const Receiver>(std::move(r));
}

ReceiverCache::ReceiverCache() : map_(std::make_shared<const Map>()) {}

std::shared_ptr<const Receiver> ReceiverCache::find(int64_t id) const {
  auto snapshot = map_.load(std::memory_order_acquire);
  auto it = snapshot->find(id);
  return it == snapshot->end() ? nullptr : it->second;
}

void ReceiverCache::put(std::shared_ptr<const Receiver> receiver) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<Map>(*map_.load());
  (*next)[receiver->row.id] = std::move(receiver);
  map_.store(std::move(next), std::memory_order_release);
}

void ReceiverCache::erase(int64_t id) {
  std::lock_guard lock(write_mu_);
  auto next = std::make_shared<Map>(*map_.load());
  next->erase(id);
  map_.store(std::move(next), std::memory_order_release);
}

}  // namespace tripline
