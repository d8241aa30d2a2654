#include "api_client.h"

#include <cstdio>

#include "http_client.h"
#include "json_limits.h"
#include "output.h"

namespace tripline::cli {

using nlohmann::json;

namespace {

// A list of 500 receivers with their configs and last executions runs to a few MiB; anything
// past this is not an answer of tripline's.
constexpr size_t kMaxAnswerBytes = size_t{32} << 20;
// A stored document nests at most kMaxJsonDepth levels; an answer wraps it in a few more.
constexpr JsonLimits kAnswerLimits{kMaxJsonDepth + 8, kMaxAnswerBytes};

// The API's one error shape (docs/api.md): {"error","message","fields"?}. Printed with the
// status so a script's log says what was refused and why.
void print_error(const std::string& what, int status, const std::string& body) {
  json j = parse_json_bounded(body).value;  // discarded when not JSON
  std::string message;
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    message = j["message"].get<std::string>();
  else
    message = body.substr(0, 200);
  std::fprintf(stderr, "tripline: %s: HTTP %d: %s\n", what.c_str(), status,
               printable(message).c_str());
  if (j.is_object() && j.contains("fields") && j["fields"].is_array())
    for (const auto& f : j["fields"])
      if (f.is_object())
        std::fprintf(stderr, "  %s: %s\n", printable(f.value("field", "")).c_str(),
                     printable(f.value("message", "")).c_str());
  if (status == 401)
    std::fprintf(stderr,
                 "  (the admin token is given by --token, TRIPLINE_ADMIN_TOKEN or the config "
                 "file's `token = ...`; see tripline --help)\n");
}

}  // namespace

int exit_for_status(int status) {
  if (status >= 200 && status < 300) return kOk;
  if (status == 404) return kNotFound;
  if (status == 429 || status >= 500 || status == 0) return kUnavailable;
  if (status >= 400) return kRefused;
  return kUnavailable;  // 1xx/3xx: not an answer tripline gives (redirects are not followed)
}

Reply Api::call(const std::string& method, const std::string& url, const std::string& body,
                std::vector<std::pair<std::string, std::string>> headers, bool with_token,
                int also_ok) const {
  OutboundRequest r;
  r.method = method;
  r.url =
      url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0 ? url : settings_.server + url;
  r.body = body;
  r.headers = std::move(headers);
  if (with_token) r.headers.emplace_back("Authorization", "Bearer " + settings_.token);
  r.connect_timeout = std::min(timeout_, std::chrono::milliseconds(5000));
  r.timeout = timeout_;
  r.max_response_bytes = kMaxAnswerBytes;
  // The URL shown in messages leaves out the path: a trigger URL's path is its token.
  std::string what =
      method + " " + (url.find("/_webhooks/") != std::string::npos ? "trigger URL" : r.url);
  OutboundResponse a = http_request(r);
  Reply reply;
  reply.status = a.status;
  reply.body = std::move(a.body);
  if (a.transport_failed()) {
    std::fprintf(stderr, "tripline: %s: no answer: %s\n", what.c_str(), printable(a.error).c_str());
    reply.exit = kUnavailable;
    return reply;
  }
  reply.exit = a.status == also_ok ? kOk : exit_for_status(a.status);
  if (reply.exit != kOk) {
    print_error(what, a.status, reply.body);
    return reply;
  }
  if (!reply.body.empty()) {
    // Bounded like any JSON from outside: --server may name a server that is not tripline.
    auto parsed = parse_json_bounded(reply.body, kAnswerLimits);
    if (!parsed.ok()) {
      std::fprintf(stderr, "tripline: %s: HTTP %d with an answer that %s\n", what.c_str(), a.status,
                   parsed.why(kAnswerLimits).c_str());
      reply.exit = kUnavailable;
    } else {
      reply.json = std::move(parsed.value);
    }
  }
  return reply;
}

Reply Api::admin(const std::string& method, const std::string& path, const json* body,
                 const std::string& if_match) const {
  if (settings_.token.empty()) {
    std::fprintf(stderr,
                 "tripline: no admin token: pass --token, set TRIPLINE_ADMIN_TOKEN, or put "
                 "`token = ...` in %s (mode 600)\n",
                 config_path("").empty() ? "~/.config/tripline/config" : config_path("").c_str());
    Reply r;
    r.exit = kUsage;
    return r;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  std::string text;
  if (body) {
    text = body->dump();
    headers.emplace_back("Content-Type", "application/json");
  }
  if (!if_match.empty()) headers.emplace_back("If-Match", if_match);
  return call(method, "/api/v1" + path, text, std::move(headers), true);
}

}  // namespace tripline::cli
