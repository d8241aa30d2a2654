// The request log's view of a trigger request (docs/requests-log.md): what is kept of it, with
// its secrets taken out before it leaves the request's thread. No I/O: the route layer fills in
// the outcome and hands the entry to the store (accepted: in the execution's group commit) or to
// the background writer (engine/request_log.h).
//
// Kept: the method, the caller's address, every header in order with the values of secret ones
// replaced by "[redacted]" (is_secret_header), and the body's first kRequestLogBodyBytes bytes,
// cut on a UTF-8 character boundary. Not kept: the path (a trigger URL holds the token) and the
// query string (a sender may put a credential there). The trigger token itself is replaced by
// "[redacted]" wherever else it appears, percent-encoded too, in the body (GitHub's ping event
// carries the hook's URL) and in header values (X-Original-URI, X-Forwarded-Uri, Referer...): such
// an entry is marked token_redacted, and cannot be redelivered.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "request.h"
#include "store.h"

namespace tripline {

inline constexpr size_t kRequestLogBodyBytes = 4096;
inline constexpr size_t kRequestLogHeaderBytes = 2048;  // the headers' JSON, then cut
inline constexpr const char* kRedactedHeader = "[redacted]";

// Headers whose values are credentials: Authorization, Proxy-Authorization, Cookie, Set-Cookie,
// X-Tripline-Token, every signature header of inbound_auth.h (X-Hub-Signature-256,
// webhook-signature, X-Link-Webhook-Signature) and any name containing "token", "secret",
// "signature", "password", "auth", "cookie", "session", "api-key"/"apikey", "credential", "jwt",
// "assertion", "oidc" or "hmac", or ending in "key" (case-insensitive).
// This covers every header a receiver's "auth" can name: those are fixed by its schemes.
bool is_secret_header(std::string_view name);

// The longest prefix of `s` of at most `max` bytes that does not end inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max);

// Replaces every occurrence of `token` in `s` by "[redacted]"; true if there was one. An
// occurrence may have any of its characters percent-encoded, in either case of hex digits, once
// or twice ("%2E" or "%2e" for '.', "%252E" inside a URL's query): a Referer or a body may carry
// the trigger URL encoded. An empty token replaces nothing.
bool redact_token(std::string& s, std::string_view token);
// The same in every string of `j` (values and keys).
bool redact_token(nlohmann::json& j, std::string_view token);

// `detail` made to fit in `max` bytes of JSON: strings longer than 128 bytes cut (marked "…"),
// then compared values left out from the last (counted in "compared_left_out"), then all but
// its reason, check, rule and message. What fits is returned as it was.
nlohmann::json fit_detail(nlohmann::json detail, size_t max);

// A log entry for a request to `receiver_id` received at `now_ms`, made with the trigger token
// `token` (taken out wherever it appears); the outcome is left to fill.
RequestLogRow capture_request(const InboundRequest& req, std::string_view source,
                              int64_t receiver_id, int64_t now_ms, std::string_view token);

}  // namespace tripline
