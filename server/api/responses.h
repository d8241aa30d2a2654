// The route layer's small helpers: JSON answers, Status -> HTTP status code (the one mapping),
// path and query parsing, the JSON view of an execution. Used by app.cpp, receivers_api.cpp and
// admin_api.cpp only.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http.h"
#include "status.h"
#include "store.h"

namespace tripline {

HttpResponse json_response(int status, const nlohmann::json& body);
// The HTTP answer for a Status: 422 with field errors, 404, 409, 503; 500 (logged) for Internal.
HttpResponse from_status(const Status& s);
// 202 for an accepted trigger; `replayed`: an earlier request already made this execution.
HttpResponse accepted_response(int64_t execution_id, int64_t receiver_id, bool replayed);
HttpResponse method_not_allowed(std::string allow);

std::vector<std::string_view> split_path(std::string_view path);
std::optional<int64_t> parse_id(std::string_view s);
// Query integer in [lo, hi]; `fallback` when absent. nullopt when present but invalid.
std::optional<int64_t> query_int(const HttpRequest& req, std::string_view name, int64_t fallback,
                                 int64_t lo, int64_t hi);
// Parses a JSON request body: 415 unless it is JSON, 400 when malformed.
std::optional<HttpResponse> parse_body(const HttpRequest& req, nlohmann::json* out);

// A receiver's or token's name: 1 to 100 printable characters.
bool valid_name(const nlohmann::json& j);

// `max_attempts`: the tries an execution gets (the executor's RetryPolicy), shown as
// "max_attempts" so a client can say "attempt 5 of 8". `receiver`: its receiver's name, kept
// after a delete (Store::receiver_names); null when unknown.
nlohmann::json execution_json(const ExecutionRow& e, int max_attempts,
                              const Store::ReceiverName* receiver);

}  // namespace tripline
