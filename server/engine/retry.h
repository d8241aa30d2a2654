// When to try a retryable execution again: exponential backoff with "equal jitter" (a random
// delay in [d/2, d], d = base * 2^(attempt-1) capped at max), so executions that failed together
// do not come back together.
#pragma once

#include <chrono>
#include <random>

namespace tripline {

struct RetryPolicy {
  std::chrono::milliseconds base{500};
  std::chrono::milliseconds max{60000};
  int max_attempts = 8;  // total tries, the first included

  bool should_retry(int attempts_made) const { return attempts_made < max_attempts; }

  // Delay before the next try, after `attempts_made` (>= 1) tries.
  template <typename Rng>
  std::chrono::milliseconds delay(int attempts_made, Rng& rng) const {
    double d = static_cast<double>(base.count());
    for (int i = 1; i < attempts_made && d < max.count(); ++i) d *= 2;
    if (d > max.count()) d = static_cast<double>(max.count());
    std::uniform_real_distribution<double> jitter(d / 2, d);
    return std::chrono::milliseconds(static_cast<long long>(jitter(rng)));
  }
};

}  // namespace tripline
