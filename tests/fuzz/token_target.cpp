// Target "token": the trigger-token parser, Keyring::verify, with the strict base64url under it.
//
// Every input is used three ways:
//  1. As a token: verify() accepts it only when it is byte-identical to a token this keyring
//     signed (the fuzzer cannot forge HMAC-SHA256, so anything else accepted is a parser bug:
//     non-canonical base64url, a second header accepted, trailing bytes ignored...), and then
//     yields exactly the claims that token was signed with.
//  2. As edits of a validly signed token (byte 0 picks the token, then 3-byte edit commands:
//     replace / insert / erase / flip a bit): the edited token verifies if and only if it equals
//     a signed token.
//  3. As claims: sign() then verify() gives back the same claims (strings that are not UTF-8 are
//     refused by sign's JSON encoder, and never reach a token).
// And base64url: decoding accepts one spelling per byte string (decode(t) -> encode -> t) and
// encode/decode round-trips any bytes.
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto.h"
#include "fuzz.h"
#include "token.h"

namespace tripline::fuzz {
namespace {

struct Fixture {
  Keyring old_ring = Keyring::from_keys({{"k20240101000000-aaaaaa", std::string(32, 'a')}});
  Keyring ring = Keyring::from_keys({{"k20240101000000-aaaaaa", std::string(32, 'a')},
                                     {"k20250101000000-bbbbbb", std::string(32, 'b')}});
  Keyring other = Keyring::from_keys({{"k20250101000000-bbbbbb", std::string(32, 'c')}});
  std::vector<std::pair<std::string, TokenClaims>> signed_tokens;

  Fixture() {
    const TokenClaims claims[] = {
        {42, 3, "scale-service", "swarm:web", "up"},
        {1, 1, "dns-update", "rfc2136:example.com/home.example.com/A", "upsert"},
        {9007199254740993, -1, "", "", ""},
        {7, 2, "scale-service", "swarm:web", "up", "q3Jd9x0kL1mN2bV4cX6zAw"},  // with a nonce
    };
    for (const auto& c : claims) {
      signed_tokens.emplace_back(ring.sign(c), c);      // newest key
      signed_tokens.emplace_back(old_ring.sign(c), c);  // older key, still verifies
    }
  }
  // The claims of a token this keyring signed, or null.
  const TokenClaims* known(std::string_view token) const {
    for (const auto& [t, c] : signed_tokens)
      if (t == token) return &c;
    return nullptr;
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

void check_verify(const Fixture& f, std::string_view token) {
  TokenClaims out;
  TokenError e = f.ring.verify(token, &out);
  const TokenClaims* want = f.known(token);
  if (e == TokenError::kNone) {
    FUZZ_CHECK(want != nullptr, "accepted a token that was never signed");
    FUZZ_CHECK(out == *want, "accepted token yields other claims than were signed");
  } else {
    FUZZ_CHECK(want == nullptr, std::string("rejected a signed token: ") + to_string(e));
  }
  // A keyring with a different secret under the same kid never accepts anything signed here.
  TokenClaims ignored;
  if (f.other.verify(token, &ignored) == TokenError::kNone)
    FUZZ_CHECK(false, "a keyring with another secret accepted the token");
  if (token.size() > kMaxTokenLength) FUZZ_CHECK(e == TokenError::kMalformed, "over-long token");
}

void check_base64url(std::string_view input) {
  auto decoded = crypto::base64url_decode(input);
  if (decoded)
    FUZZ_CHECK(crypto::base64url_encode(*decoded) == input,
               "base64url accepts a non-canonical spelling");
  std::string encoded = crypto::base64url_encode(input);
  auto back = crypto::base64url_decode(encoded);
  FUZZ_CHECK(back && *back == input, "base64url does not round-trip");
  FUZZ_CHECK(
      encoded.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos,
      "base64url_encode wrote a character outside the alphabet");
}

void check_edits(const Fixture& f, const uint8_t* data, size_t size) {
  if (size == 0) return;
  std::string token = f.signed_tokens[data[0] % f.signed_tokens.size()].first;
  for (size_t i = 1; i + 2 < size && i < 1 + 3 * 16; i += 3) {
    uint8_t op = data[i] % 4, pos = data[i + 1], val = data[i + 2];
    switch (op) {
      case 0:
        if (!token.empty()) token[pos % token.size()] = char(val);
        break;
      case 1:
        token.insert(token.begin() + pos % (token.size() + 1), char(val));
        break;
      case 2:
        if (!token.empty()) token.erase(pos % token.size(), 1 + val % 4);
        break;
      case 3:
        if (!token.empty()) token[pos % token.size()] ^= char(1u << (val % 8));
        break;
    }
  }
  check_verify(f, token);
}

void check_sign_roundtrip(const Fixture& f, const uint8_t* data, size_t size) {
  if (size < 16) return;
  TokenClaims c;
  std::memcpy(&c.receiver_id, data, 8);
  std::memcpy(&c.generation, data + 8, 8);
  std::string rest(reinterpret_cast<const char*>(data + 16), size - 16);
  size_t a = rest.find('\0'), b = a == std::string::npos ? a : rest.find('\0', a + 1);
  c.driver = rest.substr(0, a);
  if (a != std::string::npos) c.target = rest.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  if (b != std::string::npos) c.action = rest.substr(b + 1);
  std::string token;
  try {
    token = f.ring.sign(c);
  } catch (const nlohmann::json::type_error& e) {
    FUZZ_CHECK(e.id == 316, e.what());  // 316: a string that is not UTF-8
    return;
  }
  TokenClaims out;
  TokenError e = f.ring.verify(token, &out);
  if (token.size() > kMaxTokenLength) {
    FUZZ_CHECK(e == TokenError::kMalformed, "over-long signed token");
    return;
  }
  FUZZ_CHECK(e == TokenError::kNone, std::string("own token rejected: ") + to_string(e));
  FUZZ_CHECK(out == c, "claims changed in a sign/verify round trip");
}

}  // namespace

int fuzz_token(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_verify(f, input);
  check_base64url(input);
  check_edits(f, data, size);
  check_sign_roundtrip(f, data, size);
  return 0;
}

}  // namespace tripline::fuzz
