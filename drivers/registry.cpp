#include "registry.h"

#include <stdexcept>

#include "dns_update/dns_update.h"
#include "scale_service/scale_service.h"

namespace tripline {

void register_drivers(DriverRegistry& registry, const DriverEnv& env) {
  registry.add(std::make_unique<ScaleServiceDriver>(env.docker_host));
  registry.add(std::make_unique<DnsUpdateDriver>());
}

void DriverRegistry::add(std::unique_ptr<Driver> driver) {
  std::string name(driver->name());
  if (!drivers_.emplace(name, std::move(driver)).second)
    throw std::logic_error("driver registered twice: " + name);
}

const Driver* DriverRegistry::find(std::string_view name) const {
  auto it = drivers_.find(name);
  return it == drivers_.end() ? nullptr : it->second.get();
}

std::vector<const Driver*> DriverRegistry::all() const {
  std::vector<const Driver*> out;
  for (const auto& [_, d] : drivers_) out.push_back(d.get());
  return out;
}

}  // namespace tripline
