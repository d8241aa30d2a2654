#include "request_record.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace tripline {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

bool is_secret_header(std::string_view name) {
  std::string n = lower(name);
  static const char* kExact[] = {
      "authorization",     "proxy-authorization",      "www-authenticate",
      "x-tripline-token",  "x-hub-signature",          "x-hub-signature-256",
      "webhook-signature", "x-link-webhook-signature", "x-api-key"};
  for (const char* e : kExact)
    if (n == e) return true;
  static const char* kParts[] = {
      "token",   "secret", "signature", "password",   "passwd", "auth",      "cookie", "session",
      "api-key", "apikey", "api_key",   "credential", "jwt",    "assertion", "oidc",   "hmac"};
  for (const char* p : kParts)
    if (n.find(p) != std::string::npos) return true;
  // X-Api-Key, X-Functions-Key, Ocp-Apim-Subscription-Key...: a name ending in "key".
  return n.size() >= 3 && n.compare(n.size() - 3, 3, "key") == 0;
}

std::string_view utf8_prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t end = max;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character, then keep
  // that character only if it is whole.
  size_t start = end;
  while (start > 0 && (static_cast<unsigned char>(s[start - 1]) & 0xC0) == 0x80 && end - start < 3)
    --start;
  if (start > 0) {
    unsigned char lead = static_cast<unsigned char>(s[start - 1]);
    size_t len = lead < 0x80           ? 1
                 : (lead >> 5) == 0x6  ? 2
                 : (lead >> 4) == 0xE  ? 3
                 : (lead >> 3) == 0x1E ? 4
                                       : 1;
    if (len > 1 && start - 1 + len > end) end = start - 1;
  }
  return s.substr(0, end);
}

bool redact_token(std::string& s, std::string_view token) {
  if (token.empty()) return false;
  size_t at = s.find(token);
  if (at == std::string::npos) return false;
  std::string out;
  out.reserve(s.size());
  size_t from = 0;
  for (; at != std::string::npos; at = s.find(token, from)) {
    out.append(s, from, at - from);
    out += kRedactedHeader;
    from = at + token.size();
  }
  out.append(s, from, std::string::npos);
  s = std::move(out);
  return true;
}

bool redact_token(nlohmann::json& j, std::string_view token) {
  if (token.empty()) return false;
  bool found = false;
  if (j.is_string()) return redact_token(j.get_ref<std::string&>(), token);
  if (j.is_array()) {
    for (auto& v : j) found |= redact_token(v, token);
  } else if (j.is_object()) {
    bool in_key = false;
    for (auto it = j.begin(); it != j.end(); ++it) {
      found |= redact_token(it.value(), token);
      in_key |= it.key().find(token) != std::string::npos;
    }
    if (in_key) {  // keys cannot be changed in place: the object is built again
      nlohmann::json out = nlohmann::json::object();
      for (auto it = j.begin(); it != j.end(); ++it) {
        std::string key = it.key();
        redact_token(key, token);
        out[key] = std::move(it.value());
      }
      j = std::move(out);
      found = true;
    }
  }
  return found;
}

RequestLogRow capture_request(const InboundRequest& req, std::string_view source,
                              int64_t receiver_id, int64_t now_ms, std::string_view token) {
  RequestLogRow row;
  row.receiver_id = receiver_id;
  row.received_at = now_ms;
  row.source = std::string(source);
  row.method = std::string(req.method());
  nlohmann::json headers = nlohmann::json::array();
  size_t bytes = 0, left_out = 0;
  for (auto& [name, value] : req.headers()) {
    bool secret = is_secret_header(name);
    row.token_redacted |= redact_token(name, token);
    if (!secret) row.token_redacted |= redact_token(value, token);
    size_t size = name.size() + (secret ? 10 : value.size()) + 8;
    if (bytes + size > kRequestLogHeaderBytes) {
      ++left_out;
      continue;
    }
    bytes += size;
    headers.push_back({std::move(name), secret ? std::string(kRedactedHeader) : std::move(value)});
  }
  if (left_out > 0)
    headers.push_back({"", std::to_string(left_out) + " more headers not kept (over " +
                               std::to_string(kRequestLogHeaderBytes) + " bytes)"});
  row.headers = headers.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string_view body = req.body();
  row.body_size = static_cast<int64_t>(body.size());
  // The token is taken out of the whole body before it is cut, so that no cut leaves a part
  // of it at the end. Only a body holding it is copied in full.
  std::string redacted;
  if (!token.empty() && body.find(token) != std::string_view::npos) {
    redacted = std::string(body);
    row.token_redacted |= redact_token(redacted, token);
    body = redacted;
  }
  std::string_view kept = utf8_prefix(body, kRequestLogBodyBytes);
  row.body = std::string(kept);
  row.body_truncated = kept.size() < body.size();
  return row;
}

}  // namespace tripline
