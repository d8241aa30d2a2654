#include "json_limits.h"

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

}  // namespace tripline
