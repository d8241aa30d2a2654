// The client commands' one way to the server: an HTTP call over libcurl (server/base's client,
// without the outbound guard: the CLI's server is usually on loopback) and the mapping of its
// outcome to an exit code, which scripts rely on (docs/cli.md).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config.h"

namespace tripline::cli {

// The exit codes of every client command (docs/cli.md, `tripline --help`).
enum Exit : int {
  kOk = 0,
  kRefused = 1,      // the API answered 4xx other than 404 (bad token, invalid input, conflict)
  kUsage = 2,        // bad flags or arguments, unusable config file, no token (as `serve`)
  kUnavailable = 3,  // no answer, a 5xx or 429 (worth retrying later), or an answer not understood
  kNotFound = 4,     // the API answered 404: no such receiver, execution or token
  kCheckFailed = 5,  // the server answered, and said no: a dry run's plan failed, not ready
};

// An answer, or why there is none: `exit` is kOk for a 2xx, else the code to exit with (the
// message is already printed on stderr).
struct Reply {
  int exit = kOk;
  int status = 0;
  std::string body;
  nlohmann::json json;  // the parsed body (null for an empty one)
};

class Api {
 public:
  Api(Settings settings, std::chrono::milliseconds timeout)
      : settings_(std::move(settings)), timeout_(timeout) {}

  const Settings& settings() const { return settings_; }

  // A call to the management API: `path` is under /api/v1 (e.g. "/receivers?limit=5"). Needs the
  // admin token (kUsage, with how to give one, when there is none).
  // `if_match`: an If-Match header's value (a receiver's ETag), saving only over that version.
  Reply admin(const std::string& method, const std::string& path,
              const nlohmann::json* body = nullptr, const std::string& if_match = "") const;
  // A call without the admin token unless `with_token` (health checks, trigger URLs): `url` is
  // absolute, or a path on the server. `also_ok`: a status besides 2xx that is an answer, not an
  // error (503 from /readyz).
  Reply call(const std::string& method, const std::string& url, const std::string& body,
             std::vector<std::pair<std::string, std::string>> headers, bool with_token,
             int also_ok = 0) const;

 private:
  Settings settings_;
  std::chrono::milliseconds timeout_;
};

// The exit code for an HTTP status (0: no answer).
int exit_for_status(int status);

}  // namespace tripline::cli
