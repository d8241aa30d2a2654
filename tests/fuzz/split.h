// The input convention of the request targets (see fuzz.h): an optional NUL splits a prefix
// from the request body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tripline::fuzz {

struct Split {
  std::string_view prefix;  // before the first NUL; the whole input when there is none
  std::string_view body;    // after the first NUL; the whole input when there is none
  bool had_separator = false;
};

inline Split split_input(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return {in, in, false};
  return {in.substr(0, nul), in.substr(nul + 1), true};
}

}  // namespace tripline::fuzz
