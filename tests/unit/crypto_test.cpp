#include "crypto.h"

#include <catch2/catch.hpp>

using namespace tripline::crypto;

TEST_CASE("base64url: round-trips every length") {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    auto decoded = base64url_decode(base64url_encode(bytes));
    REQUIRE(decoded);
    CHECK(*decoded == bytes);
    bytes += static_cast<char>(n * 37 + 11);
  }
}

TEST_CASE("base64url: known vectors from RFC 4648 (url alphabet, no padding)") {
  CHECK(base64url_encode("f") == "Zg");
  CHECK(base64url_encode("foobar") == "Zm9vYmFy");
  CHECK(base64url_encode("\xfb\xff") == "-_8");
}

TEST_CASE("base64url: rejects padding, other alphabets and non-canonical tails") {
  CHECK_FALSE(base64url_decode("Zg=="));
  CHECK_FALSE(base64url_decode("Zm9v+mFy"));
  CHECK_FALSE(base64url_decode("Zm9v/mFy"));
  CHECK_FALSE(base64url_decode("Z"));
  CHECK(base64url_decode("Zg"));
  CHECK_FALSE(base64url_decode("Zh"));  // same byte 'f' with a non-zero unused bit
}

TEST_CASE("hmac_sha256: RFC 4231 test case 2") {
  auto mac = hmac_sha256("Jefe", "what do ya want for nothing?");
  CHECK(hex(view(mac)) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("constant_time_equal: compares content and length") {
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
}
