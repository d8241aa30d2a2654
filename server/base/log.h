// Structured logs: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-23T04:05:06.123Z","level":"info","msg":"request","request_id":"..."}
// Never pass a secret or a full token in `fields`; redact_token() keeps a short prefix.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace tripline::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
bool enabled(Level level);
void write(Level level, std::string_view msg, nlohmann::json fields = nlohmann::json::object());

inline void debug(std::string_view m, nlohmann::json f = nlohmann::json::object()) {
  if (enabled(Level::kDebug)) write(Level::kDebug, m, std::move(f));
}
inline void info(std::string_view m, nlohmann::json f = nlohmann::json::object()) {
  write(Level::kInfo, m, std::move(f));
}
inline void warn(std::string_view m, nlohmann::json f = nlohmann::json::object()) {
  write(Level::kWarn, m, std::move(f));
}
inline void error(std::string_view m, nlohmann::json f = nlohmann::json::object()) {
  write(Level::kError, m, std::move(f));
}

// "eyJhbGciOi…(212 chars)": enough to tell tokens apart in a log, useless to an attacker.
std::string redact_token(std::string_view token);

// RFC 3339 UTC with milliseconds.
std::string format_time(int64_t ms_since_epoch);

}  // namespace tripline::log
