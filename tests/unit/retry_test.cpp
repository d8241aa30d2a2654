#include "retry.h"

#include <catch2/catch.hpp>
#include <set>

using namespace tripline;
using std::chrono::milliseconds;

TEST_CASE("retry: delays double from the base, with jitter in [d/2, d]") {
  RetryPolicy p{milliseconds(100), milliseconds(10000), 8};
  std::mt19937_64 rng(1);
  for (int attempt = 1; attempt <= 5; ++attempt) {
    double d = 100.0 * (1 << (attempt - 1));
    for (int i = 0; i < 200; ++i) {
      auto delay = p.delay(attempt, rng).count();
      CHECK(delay >= d / 2 - 1);
      CHECK(delay <= d);
    }
  }
}

TEST_CASE("retry: delays never exceed the maximum") {
  RetryPolicy p{milliseconds(500), milliseconds(2000), 50};
  std::mt19937_64 rng(2);
  for (int attempt = 1; attempt < 50; ++attempt) CHECK(p.delay(attempt, rng).count() <= 2000);
}

TEST_CASE("retry: gives up after max_attempts tries") {
  RetryPolicy p{milliseconds(1), milliseconds(1), 3};
  CHECK(p.should_retry(1));
  CHECK(p.should_retry(2));
  CHECK_FALSE(p.should_retry(3));
}

TEST_CASE("retry: jitter spreads executions that failed together") {
  RetryPolicy p{milliseconds(1000), milliseconds(60000), 8};
  std::mt19937_64 rng(3);
  std::set<long long> seen;
  for (int i = 0; i < 50; ++i) seen.insert(p.delay(3, rng).count());
  CHECK(seen.size() > 25);
}
