// Bounded JSON parsing for everything that comes from outside: request bodies and peers' answers
// (Docker Engine API, ExternalDNS webhook providers). nlohmann's parser itself is iterative, but
// copying, comparing, dumping and walking a document recurse once per nesting level, so a
// 100k-deep answer would overflow the stack wherever it is next touched. Every such document is
// therefore refused before it is parsed when it is nested deeper or is larger than these limits.
//
// No I/O, no shared state: thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tripline {

inline constexpr int kMaxJsonDepth = 64;                  // nesting levels ({ and [)
inline constexpr size_t kMaxJsonBytes = size_t{1} << 20;  // the request body limit, 1 MiB

struct JsonLimits {
  int max_depth = kMaxJsonDepth;
  size_t max_bytes = kMaxJsonBytes;
};

// A parsed document, or why there is none.
struct BoundedJson {
  enum class Error { kNone, kTooLarge, kTooDeep, kNotJson };
  nlohmann::json value;  // discarded unless error == kNone
  Error error = Error::kNone;
  bool ok() const { return error == Error::kNone; }
  // For messages: "is nested deeper than 64 levels", "is larger than 1048576 bytes", ...
  std::string why(const JsonLimits& limits = {}) const;
};

// Parses `text` within `limits`. A raw NUL byte is refused (nlohmann's lexer would stop there
// and accept what came before it). Never throws.
BoundedJson parse_json_bounded(std::string_view text, const JsonLimits& limits = {});

// Parses a request body as JSON with a nesting limit; discarded JSON when it is not JSON or
// nests deeper than max_depth. (The body's size is bounded by the HTTP layer.)
nlohmann::json parse_body_json(std::string_view body, int max_depth = kMaxJsonDepth);

// A peer's bytes made fit for a JSON string: at most `max_bytes` of `bytes` are kept, cut at a
// character boundary (never inside a UTF-8 sequence), and every byte that is not part of valid
// UTF-8 is replaced with U+FFFD. nlohmann's dump() throws on invalid UTF-8, and a result or an
// attempt that cannot be dumped cannot be stored: whatever a receiver answers must pass through
// here before it goes into a json value. `cut` is set when bytes were left out.
std::string utf8_text(std::string_view bytes, size_t max_bytes = std::string_view::npos,
                      bool* cut = nullptr);

// The rules' dotted field syntax as an RFC 6901 JSON pointer: "a.b[0].c" -> "/a/b/0/c"; a path
// that starts with "/" already is one and is answered as it is. nullopt when malformed.
std::optional<std::string> dotted_to_pointer(const std::string& path);

// A trigger request's body, parsed at most once and only when something reads it: the rules and
// a driver's bind() share one parse, and a request nobody reads the body of is never parsed.
// A view: valid while the body it was made from lives. Not thread-safe (one per request, on the
// thread that handles it).
class LazyBody {
 public:
  LazyBody(std::string_view text) : text_(text) {}    // NOLINT: implicit, a body is its text
  LazyBody(const char* text) : text_(text) {}         // NOLINT
  LazyBody(const std::string& text) : text_(text) {}  // NOLINT

  std::string_view text() const { return text_; }
  // The body parsed within the default JsonLimits (nesting, and the request body limit).
  const BoundedJson& parsed() const {
    if (!parsed_) parsed_ = parse_json_bounded(text_);
    return *parsed_;
  }
  // Whether parsed() has run: for tests of who reads the body.
  bool was_parsed() const { return parsed_.has_value(); }

 private:
  std::string_view text_;
  mutable std::optional<BoundedJson> parsed_;
};

}  // namespace tripline
