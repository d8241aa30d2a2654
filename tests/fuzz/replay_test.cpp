// Replays every checked-in fuzz input through the fuzz targets' entry functions, in the normal
// unit test binary (no clang, no libFuzzer needed): the seed corpora (tests/fuzz/corpus/<target>)
// and the inputs that once broke something (tests/fuzz/regressions/<target>). A crash input that
// `make fuzz` found becomes a regression test by copying it into regressions/<target>/.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz.h"

namespace fs = std::filesystem;

namespace {

std::vector<fs::path> inputs(const std::string& kind, const std::string& target) {
  std::vector<fs::path> out;
  fs::path dir = fs::path(TRIPLINE_FUZZ_DIR) / kind / target;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().front() != '.' &&
        e.path().filename() != "README.md")
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void replay(const std::string& kind, const std::string& target,
            int (*entry)(const uint8_t*, size_t)) {
  auto files = inputs(kind, target);
  if (kind == "corpus") REQUIRE_FALSE(files.empty());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO("input: " << f.string());
    CHECK_NOTHROW(entry(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  }
}

}  // namespace

TEST_CASE("fuzz: token corpus and regressions replay cleanly") {
  replay("corpus", "token", tripline::fuzz::fuzz_token);
  replay("regressions", "token", tripline::fuzz::fuzz_token);
}

TEST_CASE("fuzz: rules corpus and regressions replay cleanly") {
  replay("corpus", "rules", tripline::fuzz::fuzz_rules);
  replay("regressions", "rules", tripline::fuzz::fuzz_rules);
}

TEST_CASE("fuzz: body corpus and regressions replay cleanly") {
  replay("corpus", "body", tripline::fuzz::fuzz_body);
  replay("regressions", "body", tripline::fuzz::fuzz_body);
}

TEST_CASE("fuzz: peer corpus and regressions replay cleanly") {
  replay("corpus", "peer", tripline::fuzz::fuzz_peer);
  replay("regressions", "peer", tripline::fuzz::fuzz_peer);
}
