// libFuzzer's entry for one target; FUZZ_ENTRY names the target's function (see CMakeLists.txt).
// A broken invariant aborts with its message, so libFuzzer saves the input as a crash. Any other
// exception is left uncaught: std::terminate runs at the throw site, so the report's stack shows
// where it came from.
#include <cstdio>
#include <cstdlib>

#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    return tripline::fuzz::FUZZ_ENTRY(data, size);
  } catch (const tripline::fuzz::InvariantViolation& e) {
    std::fprintf(stderr, "\n==== %s\n", e.what());
    std::abort();
  }
}
