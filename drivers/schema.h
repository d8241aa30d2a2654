// Reading the annotations of a driver's config schema (driver.h, config_schema()): which
// top-level properties are secrets ("writeOnly": true) and which a rule may set per request
// ("x-tripline-per-request": true). No I/O, no shared state.
#pragma once

#include <string>
#include <vector>

#include "driver.h"

namespace tripline {

// The top-level config properties the driver's schema marks `annotation`: true.
std::vector<std::string> schema_fields_marked(const Driver& driver, const std::string& annotation);
// The top-level config properties the driver's schema marks writeOnly: sealed at rest, never shown.
std::vector<std::string> secret_fields(const Driver& driver);

}  // namespace tripline
