// The set of drivers this binary offers, filled once at start-up by register_drivers() and
// read-only afterwards (safe to share between threads).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driver.h"

namespace tripline {

class DriverRegistry {
 public:
  // Throws std::logic_error on a duplicate name: a start-up bug, not a runtime condition.
  void add(std::unique_ptr<Driver> driver);
  const Driver* find(std::string_view name) const;
  std::vector<const Driver*> all() const;

 private:
  std::map<std::string, std::unique_ptr<Driver>, std::less<>> drivers_;
};

// The one place every driver is registered (registry.cpp: one line per driver).
void register_drivers(DriverRegistry& registry, const DriverEnv& env);
// The options every registered driver declares, in registration order (for main's flags).
std::vector<DriverOption> driver_options();

}  // namespace tripline
