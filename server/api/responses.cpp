#include "responses.h"

#include <algorithm>
#include <charconv>

#include "json_limits.h"
#include "log.h"

namespace tripline {

using nlohmann::json;

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse from_status(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return json_response(200, json::object());
    case Status::Code::kInvalid:
      return error_response(422, "validation_failed", s.message(), s.fields());
    case Status::Code::kNotFound:
      return error_response(404, "not_found", s.message());
    case Status::Code::kConflict:
      return error_response(409, "conflict", s.message());
    case Status::Code::kUnavailable:
      return error_response(503, "unavailable", s.message());
    case Status::Code::kInternal:
      break;
  }
  log::error("internal error", {{"error", s.message()}});
  return error_response(500, "internal", "an internal error occurred; see the server log");
}

HttpResponse accepted_response(int64_t execution_id, int64_t receiver_id, bool replayed) {
  HttpResponse r;
  r.status = 202;
  r.body = "{\"execution_id\":" + std::to_string(execution_id) +
           ",\"receiver_id\":" + std::to_string(receiver_id) + ",\"status\":\"queued\"" +
           (replayed ? ",\"replayed\":true}" : "}");
  return r;
}

HttpResponse method_not_allowed(std::string allow) {
  auto r = error_response(405, "method_not_allowed", "this path accepts only " + allow);
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<int64_t> parse_id(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

std::optional<int64_t> query_int(const HttpRequest& req, std::string_view name, int64_t fallback,
                                 int64_t lo, int64_t hi) {
  auto v = req.query(name);
  if (!v) return fallback;
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < lo || n > hi) return std::nullopt;
  return n;
}

std::optional<HttpResponse> parse_body(const HttpRequest& req, json* out) {
  auto ct = req.header("Content-Type");
  if (!ct || ct->rfind("application/json", 0) != 0)
    return error_response(415, "unsupported_media_type", "send the body as application/json");
  *out = parse_body_json(req.body());
  if (out->is_discarded())
    return error_response(400, "malformed_json",
                          "the request body is not valid JSON (UTF-8, nested at most 64 deep)");
  if (!out->is_object())
    return error_response(400, "malformed_json", "the request body must be a JSON object");
  return std::nullopt;
}

bool valid_name(const json& j) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return !s.empty() && s.size() <= 100 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

namespace {
// The stored history with its times as the API writes times.
json attempt_errors_json(const json& stored) {
  json out = json::array();
  for (const json& a : stored) {
    if (!a.is_object()) continue;
    json entry = {{"attempt", a.value("attempt", 0)}, {"error", a.value("error", "")}};
    auto at = a.find("at");
    entry["at"] = at != a.end() && at->is_number_integer()
                      ? json(log::format_time(at->get<int64_t>()))
                      : json(nullptr);
    out.push_back(std::move(entry));
  }
  return out;
}
}  // namespace

json execution_json(const ExecutionRow& e, int max_attempts, const Store::ReceiverName* receiver) {
  auto t = [](const std::optional<int64_t>& ms) -> json {
    return ms ? json(log::format_time(*ms)) : json(nullptr);
  };
  return {{"id", e.id},
          {"receiver_id", e.receiver_id},
          {"receiver_name", receiver ? json(receiver->name) : json(nullptr)},
          {"receiver_deleted", receiver != nullptr && receiver->deleted},
          {"driver", e.driver},
          {"status", to_string(e.status)},
          {"attempts", e.attempts},
          {"max_attempts", max_attempts},
          {"created_at", log::format_time(e.created_at)},
          {"started_at", t(e.started_at)},
          {"finished_at", t(e.finished_at)},
          {"next_attempt_at", t(e.next_attempt_at)},
          {"plan", e.plan},
          {"result", e.result},
          {"error", e.error.empty() ? json(nullptr) : json(e.error)},
          {"attempt_errors", attempt_errors_json(e.attempt_errors)},
          // The request log entry that made it (docs/requests-log.md; it may have been pruned
          // since) and the rule that matched (null: no rule did, the default ran it).
          {"request_id", e.request_id ? json(e.request_id) : json(nullptr)},
          {"rule", e.rule}};
}

}  // namespace tripline
