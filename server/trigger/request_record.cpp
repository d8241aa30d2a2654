#include "request_record.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

namespace tripline {

bool is_secret_header(std::string_view name) {
  // Lower-cased into a buffer on the stack: the trigger path asks this of every header.
  char buf[128];
  std::string long_name;
  char* n = buf;
  if (name.size() > sizeof(buf)) {
    long_name.resize(name.size());
    n = long_name.data();
  }
  for (size_t i = 0; i < name.size(); ++i)
    n[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  std::string_view lower(n, name.size());
  static constexpr std::string_view kExact[] = {
      "authorization",     "proxy-authorization",      "www-authenticate",
      "x-tripline-token",  "x-hub-signature",          "x-hub-signature-256",
      "webhook-signature", "x-link-webhook-signature", "x-api-key"};
  for (std::string_view e : kExact)
    if (lower == e) return true;
  static constexpr std::string_view kParts[] = {
      "token",   "secret", "signature", "password",   "passwd", "auth",      "cookie", "session",
      "api-key", "apikey", "api_key",   "credential", "jwt",    "assertion", "oidc",   "hmac"};
  for (std::string_view p : kParts)
    if (lower.find(p) != std::string_view::npos) return true;
  // X-Api-Key, X-Functions-Key, Ocp-Apim-Subscription-Key...: a name ending in "key".
  return lower.size() >= 3 && lower.substr(lower.size() - 3) == "key";
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

namespace {
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte a percent-encoding at s[i] stands for ("%2E", "%2e", or "%252E" encoded twice, as a
// URL inside a URL's query is), and its length; 0 when s[i] starts none.
size_t percent_decoded(std::string_view s, size_t i, char* out) {
  if (i >= s.size() || s[i] != '%') return 0;
  size_t at = i + 1;
  if (s.size() - at >= 4 && s[at] == '2' && s[at + 1] == '5' && hex_value(s[at + 2]) >= 0 &&
      hex_value(s[at + 3]) >= 0)
    at += 2;  // "%25" is '%': encoded twice
  if (s.size() - at < 2) return 0;
  int hi = hex_value(s[at]), lo = hex_value(s[at + 1]);
  if (hi < 0 || lo < 0) return 0;
  *out = static_cast<char>(hi * 16 + lo);
  return at + 2 - i;
}

// The length of the token's occurrence at s[i], each of its characters as itself or
// percent-encoded (any case of hex digits, once or twice); 0 when none starts there.
size_t token_at(std::string_view s, size_t i, std::string_view token) {
  size_t at = i;
  for (char want : token) {
    if (at >= s.size()) return 0;
    if (s[at] == want) {
      ++at;
      continue;
    }
    char got = 0;
    size_t n = percent_decoded(s, at, &got);
    if (n == 0 || got != want) return 0;
    at += n;
  }
  return at - i;
}

// Copies `s` into `out` with every occurrence of the token replaced by "[redacted]", stopping
// once `out` holds more than `max_out` bytes; *read is how much of `s` was copied. A match is
// tried at every byte that can start one (the token's first character, or '%') before it is
// copied, so no part of an occurrence that starts in what was copied is left; the bytes between
// are copied in runs. The work is bounded by max_out times the token's length, not by s.
bool redact_into(std::string_view s, std::string_view token, size_t max_out, std::string& out,
                 size_t* read) {
  bool found = false;
  size_t i = 0;
  while (i < s.size() && out.size() <= max_out) {
    size_t next = s.size();
    for (char c : {token.front(), '%'})
      if (const void* p = std::memchr(s.data() + i, c, next - i))
        next = static_cast<size_t>(static_cast<const char*>(p) - s.data());
    // As many bytes as the byte-at-a-time rule would copy before `out` passes max_out.
    size_t run = std::min(next - i, max_out + 1 - out.size());
    out.append(s.data() + i, run);
    i += run;
    if (i < next || i == s.size() || out.size() > max_out) continue;
    if (size_t n = token_at(s, i, token); n > 0) {
      out += kRedactedHeader;
      i += n;
      found = true;
    } else {
      out += s[i++];
    }
  }
  *read = i;
  return found;
}

// Whether `s` can hold the token at all: a byte that can start an occurrence.
bool may_hold(std::string_view s, std::string_view token) {
  return !token.empty() &&
         (s.find(token.front()) != std::string_view::npos || s.find('%') != std::string_view::npos);
}

// `s` as a JSON string (its bytes that are not UTF-8 as U+FFFD, as nlohmann's dump with
// error_handler_t::replace writes them), appended to `out`. Printable ASCII without quote or
// backslash, what nearly every header is, is copied as it is.
void append_json_string(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out.append(s);
    out += '"';
  } else {
    out += nlohmann::json(std::string(s))
               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

// One [name, value] element appended to the JSON array open in `out` ("[" or "[...").
void append_pair(std::string& out, std::string_view name, std::string_view value) {
  if (out.size() > 1) out += ',';
  out += '[';
  append_json_string(out, name);
  out += ',';
  append_json_string(out, value);
  out += ']';
}
}  // namespace

bool redact_token(std::string& s, std::string_view token) {
  if (!may_hold(s, token)) return false;
  std::string out;
  size_t read = 0;
  if (!redact_into(s, token, SIZE_MAX - 1, out, &read)) return false;
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
      std::string key = it.key();
      in_key |= redact_token(key, token);
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

namespace {
size_t dumped_size(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size();
}
void cut_strings(nlohmann::json& j) {
  constexpr size_t kCut = 128;
  if (j.is_string()) {
    auto& s = j.get_ref<std::string&>();
    if (s.size() > kCut) s = std::string(utf8_prefix(s, kCut)) + "\u2026";
  } else if (j.is_structured()) {
    for (auto& v : j) cut_strings(v);
  }
}
}  // namespace

nlohmann::json fit_detail(nlohmann::json detail, size_t max) {
  if (dumped_size(detail) <= max) return detail;
  cut_strings(detail);
  if (dumped_size(detail) <= max) return detail;
  if (detail.is_object() && detail.contains("compared") && detail["compared"].is_array()) {
    auto& compared = detail["compared"];
    size_t left_out = 0;
    while (!compared.empty() && dumped_size(detail) > max) {
      compared.erase(compared.size() - 1);
      detail["compared_left_out"] = ++left_out;
    }
    if (dumped_size(detail) <= max) return detail;
  }
  nlohmann::json kept = nlohmann::json::object();
  if (detail.is_object())
    for (const char* key : {"reason", "check", "rule", "message"})
      if (detail.contains(key)) kept[key] = detail[key];
  kept["detail_left_out"] = true;
  if (dumped_size(kept) <= max) return kept;
  return {{"detail_left_out", true}};
}

RequestLogRow capture_request(const InboundRequest& req, std::string_view source,
                              int64_t receiver_id, int64_t now_ms, std::string_view token) {
  RequestLogRow row;
  row.receiver_id = receiver_id;
  row.received_at = now_ms;
  row.source = std::string(source);
  row.method = std::string(req.method());
  // The headers' JSON ([[name, value], ...]) is written as it goes, from views into the request:
  // a copy is made only of a name or value that may hold the token.
  struct Headers {
    RequestLogRow& row;
    std::string_view token;
    size_t bytes = 0, left_out = 0;
    std::string name, value;  // redacted copies, when needed
  } h{row, token};
  row.headers.reserve(512);
  row.headers += '[';
  req.visit_headers(
      [](void* ctx, std::string_view name, std::string_view value) {
        auto& h = *static_cast<Headers*>(ctx);
        bool secret = is_secret_header(name);
        if (may_hold(name, h.token)) {
          h.name.assign(name);
          h.row.token_redacted |= redact_token(h.name, h.token);
          name = h.name;
        }
        if (secret) {
          value = kRedactedHeader;
        } else if (may_hold(value, h.token)) {
          h.value.assign(value);
          h.row.token_redacted |= redact_token(h.value, h.token);
          value = h.value;
        }
        size_t size = name.size() + value.size() + 8;
        if (h.bytes + size > kRequestLogHeaderBytes) {
          ++h.left_out;
          return;
        }
        h.bytes += size;
        append_pair(h.row.headers, name, value);
      },
      &h);
  if (h.left_out > 0)
    append_pair(row.headers, "",
                std::to_string(h.left_out) + " more headers not kept (over " +
                    std::to_string(kRequestLogHeaderBytes) + " bytes)");
  row.headers += ']';
  std::string_view body = req.body();
  row.body_size = static_cast<int64_t>(body.size());
  // The token (as sent, or percent-encoded) is taken out before the body is cut, so that no cut
  // leaves a part of it at the end; only as much of the body as is kept is looked at.
  std::string redacted;
  size_t read = body.size();
  if (token.empty()) {
    redacted = std::string(body.substr(0, kRequestLogBodyBytes + 4));  // enough to cut well
    read = redacted.size();
  } else {
    row.token_redacted |= redact_into(body, token, kRequestLogBodyBytes, redacted, &read);
  }
  std::string_view kept = utf8_prefix(redacted, kRequestLogBodyBytes);
  row.body_truncated = kept.size() < redacted.size() || read < body.size();
  if (kept.size() == redacted.size())
    row.body = std::move(redacted);  // the whole of it kept: no second copy
  else
    row.body = std::string(kept);
  return row;
}

}  // namespace tripline
