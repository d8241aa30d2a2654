// Time bounds in tests are stated for the optimized build. Under AddressSanitizer (make
// test-sanitize) the same code runs several times slower, so bounds are scaled by kTimeScale:
// they still catch what they are for (a quadratic start-up, a stop that waits for the whole load).
#pragma once

namespace tripline::test {
#if defined(__SANITIZE_ADDRESS__)
inline constexpr double kTimeScale = 5;
#else
inline constexpr double kTimeScale = 1;
#endif
}  // namespace tripline::test
