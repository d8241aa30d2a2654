// Where the client commands find the server and the admin token (docs/cli.md): a flag, else the
// environment (TRIPLINE_SERVER, TRIPLINE_ADMIN_TOKEN), else the config file, else the default.
#pragma once

#include <string>

#include "status.h"

namespace tripline::cli {

// The server's own default listen address (main.cpp, --listen).
inline constexpr const char* kDefaultServer = "http://127.0.0.1:8080";

struct Settings {
  std::string server;       // no trailing '/'
  std::string token;        // empty: none given anywhere
  std::string config_path;  // the file read, or empty when there was none
};

// The config file's path: `explicit_path` (--config) when given, else TRIPLINE_CONFIG, else
// $XDG_CONFIG_HOME/tripline/config, else ~/.config/tripline/config.
std::string config_path(const std::string& explicit_path);

// Reads a config file: `key = value` lines, `#` comments, keys `server` and `token`. Invalid when
// a line is not understood, and, as ssh does with keys, when the file holds a token and another
// user could read or write it (or it is not the caller's own). A missing file is no error unless
// `must_exist`.
[[nodiscard]] Status read_config(const std::string& path, bool must_exist, std::string* server,
                                 std::string* token);

// Resolves the settings in precedence order; Invalid for an unusable config file or server URL.
[[nodiscard]] Result<Settings> resolve_settings(const std::string& flag_server,
                                                const std::string& flag_token,
                                                const std::string& flag_config);

}  // namespace tripline::cli
