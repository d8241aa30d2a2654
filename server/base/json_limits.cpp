#include "json_limits.h"

#include <algorithm>

namespace tripline {

std::string BoundedJson::why(const JsonLimits& limits) const {
  switch (error) {
    case Error::kNone:
      return "is valid JSON";
    case Error::kTooLarge:
      return "is larger than " + std::to_string(limits.max_bytes) + " bytes";
    case Error::kTooDeep:
      return "is nested deeper than " + std::to_string(limits.max_depth) + " levels";
    case Error::kNotJson:
      return "is not JSON";
  }
  return {};
}

namespace {
// The length of the valid UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when it does not start with one.
size_t utf8_sequence(std::string_view s) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) > 0x9F) return 0;  // a surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}
}  // namespace

std::string utf8_text(std::string_view bytes, size_t max_bytes, bool* cut) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(bytes.size(), max_bytes));
  size_t i = 0;
  while (i < bytes.size()) {
    size_t n = utf8_sequence(bytes.substr(i));
    size_t take = n == 0 ? 1 : n;
    if (i + take > max_bytes) break;  // the character would cross the limit: cut before it
    if (n == 0)
      out += kReplacement;
    else
      out.append(bytes.data() + i, n);
    i += take;
  }
  if (cut) *cut = i < bytes.size();
  return out;
}

BoundedJson parse_json_bounded(std::string_view text, const JsonLimits& limits) {
  using nlohmann::json;
  BoundedJson out{json(json::value_t::discarded), BoundedJson::Error::kNone};
  if (text.size() > limits.max_bytes) {
    out.error = BoundedJson::Error::kTooLarge;
    return out;
  }
  // Reject deep nesting before the parser builds it.
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\0') {
      out.error = BoundedJson::Error::kNotJson;
      return out;
    }
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limits.max_depth) {
        out.error = BoundedJson::Error::kTooDeep;
        return out;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  out.value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (out.value.is_discarded()) out.error = BoundedJson::Error::kNotJson;
  return out;
}

nlohmann::json parse_body_json(std::string_view body, int max_depth) {
  // The HTTP layer bounds the body's size; only the nesting is checked here.
  return parse_json_bounded(body, {max_depth, body.size()}).value;
}

std::optional<std::string> dotted_to_pointer(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  std::string out;
  std::string token;
  auto flush = [&] {
    std::string escaped;
    for (char c : token) escaped += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    out += "/" + escaped;
    token.clear();
  };
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '.') {
      if (token.empty() && (i == 0 || path[i - 1] != ']')) return std::nullopt;
      if (!token.empty()) flush();
    } else if (c == '[') {
      if (!token.empty()) flush();
      size_t close = path.find(']', i);
      if (close == std::string::npos || close == i + 1) return std::nullopt;
      std::string index = path.substr(i + 1, close - i - 1);
      for (char d : index)
        if (!isdigit(static_cast<unsigned char>(d))) return std::nullopt;
      out += "/" + index;
      i = close;
    } else {
      token += c;
    }
  }
  if (!token.empty()) flush();
  return out;
}

}  // namespace tripline
