#include "json_limits.h"

#include <simdjson.h>

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

namespace {
using nlohmann::json;

// simdjson's DOM as nlohmann json, the type every caller reads. Recursion is bounded by the
// nesting pre-scan (at most max_depth levels). Types as nlohmann's own parser gives them: a
// non-negative integer is number_unsigned, a negative one number_integer; of a key given twice,
// the last value stays.
json from_simdjson(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      json o(json::value_t::object);
      for (auto field : simdjson::dom::object(e))
        o[std::string(field.key)] = from_simdjson(field.value);
      return o;
    }
    case simdjson::dom::element_type::ARRAY: {
      json a(json::value_t::array);
      for (auto v : simdjson::dom::array(e)) a.push_back(from_simdjson(v));
      return a;
    }
    case simdjson::dom::element_type::STRING:
      return json(std::string(std::string_view(e)));
    case simdjson::dom::element_type::INT64: {
      int64_t v = int64_t(e);
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case simdjson::dom::element_type::UINT64:
      return json(uint64_t(e));
    case simdjson::dom::element_type::DOUBLE:
      return json(double(e));
    case simdjson::dom::element_type::BOOL:
      return json(bool(e));
    case simdjson::dom::element_type::NULL_VALUE:
      return json(nullptr);
  }
  return json(json::value_t::discarded);
}

// Documents up to this size are parsed with a parser kept per thread (its buffers are reused,
// so a parse allocates only the values it returns); larger ones, rare, with one of their own,
// so no thread keeps a buffer sized for a 1 MiB body.
constexpr size_t kReusedParserBytes = 64 * 1024;
}  // namespace

BoundedJson parse_json_bounded(std::string_view text, const JsonLimits& limits) {
  BoundedJson out{json(json::value_t::discarded), BoundedJson::Error::kNone};
  if (text.size() > limits.max_bytes) {
    out.error = BoundedJson::Error::kTooLarge;
    return out;
  }
  // Reject deep nesting before the parser builds it. Note, too, any \u escape of a UTF-16
  // surrogate: those documents go to nlohmann's parser, which checks that each is paired.
  int depth = 0;
  bool in_string = false, surrogate_escape = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\0') {
      out.error = BoundedJson::Error::kNotJson;
      return out;
    }
    if (in_string) {
      if (c == '\\') {
        if (i + 3 < text.size() && text[i + 1] == 'u' && (text[i + 2] | 0x20) == 'd' &&
            std::string_view("89abcdefABCDEF").find(text[i + 3]) != std::string_view::npos)
          surrogate_escape = true;
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
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
  // simdjson validates and indexes the whole document (UTF-8 included) several times faster
  // than nlohmann's lexer, which reads a character at a time; the values are then built once.
  // Whatever simdjson refuses (malformed, or what nlohmann reads differently: integers past
  // 64 bits become doubles there) is left to nlohmann's parser, whose answer is the reference
  // (tests/fuzz/body_target.cpp checks that the two agree).
  if (!surrogate_escape) {
    auto parse = [&](simdjson::dom::parser& parser) {
      simdjson::dom::element root;
      if (parser.parse(text.data(), text.size()).get(root) == simdjson::SUCCESS)
        out.value = from_simdjson(root);
    };
    if (text.size() <= kReusedParserBytes) {
      thread_local simdjson::dom::parser parser(kReusedParserBytes);
      parse(parser);
    } else {
      simdjson::dom::parser parser(text.size());
      parse(parser);
    }
    if (!out.value.is_discarded()) return out;
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
