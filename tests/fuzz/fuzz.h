// Fuzz targets: one entry function per target, called by libFuzzer (libfuzzer_main.cpp, built
// with -DTRIPLINE_FUZZ=ON and clang) and by the unit test that replays tests/fuzz/corpus and
// tests/fuzz/regressions (replay_test.cpp, in the normal unit_tests binary).
//
// Input convention shared by the targets that read a request: an optional NUL byte splits the
// input into a prefix (rules JSON, a field name, a config, a caller address: see each target)
// and the request body; without a NUL the whole input is the body (and the prefix role gets the
// whole input too where that makes sense). See docs/fuzzing.md.
//
// An entry function returns 0. A broken invariant throws InvariantViolation (FUZZ_CHECK); any
// other exception that escapes is a finding too: the code under test must not throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tripline::fuzz {

int fuzz_token(const uint8_t* data, size_t size);  // Keyring::verify, sign, base64url
int fuzz_rules(const uint8_t* data, size_t size);  // RuleSet::compile / evaluate, Alertmanager key
int fuzz_body(const uint8_t* data, size_t size);   // parse_body_json, read_field, dns-update bind()
int fuzz_peer(const uint8_t* data, size_t size);   // Docker service and ExternalDNS answers

struct InvariantViolation : std::logic_error {
  using std::logic_error::logic_error;
};

[[noreturn]] void fail(const char* file, int line, const char* cond, const std::string& detail);

}  // namespace tripline::fuzz

#define FUZZ_CHECK(cond, detail)                                              \
  do {                                                                        \
    if (!(cond)) ::tripline::fuzz::fail(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)
