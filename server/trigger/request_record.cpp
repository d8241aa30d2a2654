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
  static const char* kParts[] = {"token",   "secret", "signature", "password",
                                 "passwd",  "auth",   "cookie",    "session",
                                 "api-key", "apikey", "api_key",   "credential"};
  for (const char* p : kParts)
    if (n.find(p) != std::string::npos) return true;
  return false;
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

RequestLogRow capture_request(const InboundRequest& req, std::string_view source,
                              int64_t receiver_id, int64_t now_ms) {
  RequestLogRow row;
  row.receiver_id = receiver_id;
  row.received_at = now_ms;
  row.source = std::string(source);
  row.method = std::string(req.method());
  nlohmann::json headers = nlohmann::json::array();
  size_t bytes = 0, left_out = 0;
  for (auto& [name, value] : req.headers()) {
    bool secret = is_secret_header(name);
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
  std::string_view kept = utf8_prefix(body, kRequestLogBodyBytes);
  row.body = std::string(kept);
  row.body_truncated = kept.size() < body.size();
  return row;
}

}  // namespace tripline
