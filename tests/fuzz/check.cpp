#include "fuzz.h"

namespace tripline::fuzz {

void fail(const char* file, int line, const char* cond, const std::string& detail) {
  throw InvariantViolation(std::string(file) + ":" + std::to_string(line) + ": invariant broken: " +
                           cond + (detail.empty() ? "" : " (" + detail + ")"));
}

}  // namespace tripline::fuzz
