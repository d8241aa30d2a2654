// The request log's view of a trigger request (docs/requests-log.md): what is kept of it, with
// its secrets taken out before it leaves the request's thread. No I/O: the route layer fills in
// the outcome and hands the entry to the store (accepted: in the execution's group commit) or to
// the background writer (engine/request_log.h).
//
// Kept: the method, the caller's address, every header in order with the values of secret ones
// replaced by "[redacted]" (is_secret_header), and the body's first kRequestLogBodyBytes bytes,
// cut on a UTF-8 character boundary. Not kept: the path (a trigger URL holds the token) and the
// query string (a sender may put a credential there).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "request.h"
#include "store.h"

namespace tripline {

inline constexpr size_t kRequestLogBodyBytes = 4096;
inline constexpr size_t kRequestLogHeaderBytes = 8192;  // the headers' JSON, then cut
inline constexpr const char* kRedactedHeader = "[redacted]";

// Headers whose values are credentials: Authorization, Proxy-Authorization, Cookie, Set-Cookie,
// X-Tripline-Token, every signature header of inbound_auth.h (X-Hub-Signature-256,
// webhook-signature, X-Link-Webhook-Signature) and any name containing "token", "secret",
// "signature", "password", "auth", "cookie", "session" or "api-key"/"apikey" (case-insensitive).
// This covers every header a receiver's "auth" can name: those are fixed by its schemes.
bool is_secret_header(std::string_view name);

// The longest prefix of `s` of at most `max` bytes that does not end inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max);

// A log entry for a request to `receiver_id` received at `now_ms`; the outcome is left to fill.
RequestLogRow capture_request(const InboundRequest& req, std::string_view source,
                              int64_t receiver_id, int64_t now_ms);

}  // namespace tripline
