#include "registry.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include "dns_update/dns_update.h"
#include "redeploy/redeploy.h"
#include "scale_service/scale_service.h"
#include "webhook/webhook.h"

namespace tripline {

namespace {

// What registry.cpp needs of a driver class: `static std::vector<DriverOption> options()` and
// `static std::unique_ptr<Driver> create(const DriverEnv&)`.
struct DriverEntry {
  std::vector<DriverOption> (*options)();
  std::unique_ptr<Driver> (*create)(const DriverEnv&);
};
template <typename D>
constexpr DriverEntry entry() {
  return {&D::options, &D::create};
}

// Every driver this binary offers: adding one is one line here.
constexpr DriverEntry kDrivers[] = {
    entry<ScaleServiceDriver>(),
    entry<DnsUpdateDriver>(),
    entry<WebhookDriver>(),
    entry<RedeployDriver>(),
};

}  // namespace

void register_drivers(DriverRegistry& registry, const DriverEnv& env) {
  for (const auto& d : kDrivers) registry.add(d.create(env));
}

// An option two drivers declare (scale-service's and redeploy's --docker-host) is offered once:
// both read the one value.
std::vector<DriverOption> driver_options() {
  std::vector<DriverOption> out;
  for (const auto& d : kDrivers)
    for (const auto& o : d.options())
      if (std::none_of(out.begin(), out.end(), [&](const DriverOption& seen) {
            return std::string_view(seen.name) == o.name;
          }))
        out.push_back(o);
  return out;
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
