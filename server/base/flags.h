// How a boolean option's text is read, one parse for every reader: a driver's DriverEnv value and
// the service's own use of the same option (--allow-local-webhook-targets is read by both the
// webhook driver and the notification dispatcher, and must not mean two things).
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace tripline {

// Whether a flag/option value means "on": 1, true, yes, on, in any case.
inline bool option_enabled(std::string_view value) {
  std::string lower(value);
  for (auto& c : lower) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return lower == "1" || lower == "true" || lower == "yes" || lower == "on";
}

}  // namespace tripline
