#include "token.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "crypto.h"

using namespace tripline;

namespace {
const std::string kSecret(32, 'k');
Keyring ring() { return Keyring::from_keys({{"k1", kSecret}}); }
TokenClaims sample() { return {42, 3, "scale-service", "swarm:web", "up"}; }

std::vector<std::string> parts(const std::string& t) {
  auto a = t.find('.'), b = t.find('.', a + 1);
  return {t.substr(0, a), t.substr(a + 1, b - a - 1), t.substr(b + 1)};
}
std::string seg(const nlohmann::json& j) { return crypto::base64url_encode(j.dump()); }
std::string sign_with(const std::string& key, const std::string& input) {
  return input + "." + crypto::base64url_encode(crypto::view(crypto::hmac_sha256(key, input)));
}
}  // namespace

TEST_CASE("token: a signed token verifies and yields its claims") {
  auto k = ring();
  TokenClaims out;
  REQUIRE(k.verify(k.sign(sample()), &out) == TokenError::kNone);
  CHECK(out == sample());
}

TEST_CASE("token: it is a standard JWS with HS256 and a kid") {
  auto p = parts(ring().sign(sample()));
  auto header = nlohmann::json::parse(*crypto::base64url_decode(p[0]));
  CHECK(header["alg"] == "HS256");
  CHECK(header["kid"] == "k1");
  auto claims = nlohmann::json::parse(*crypto::base64url_decode(p[1]));
  CHECK(claims["rid"] == 42);
  CHECK(claims["tgt"] == "swarm:web");
}

TEST_CASE("token: a tampered signature is rejected") {
  auto k = ring();
  std::string t = k.sign(sample());
  t[t.size() - 2] = t[t.size() - 2] == 'A' ? 'B' : 'A';
  TokenClaims out;
  CHECK(k.verify(t, &out) != TokenError::kNone);
}

TEST_CASE("token: altered claims are rejected") {
  auto k = ring();
  auto p = parts(k.sign(sample()));
  auto claims = nlohmann::json::parse(*crypto::base64url_decode(p[1]));
  claims["act"] = "down";
  TokenClaims out;
  CHECK(k.verify(p[0] + "." + seg(claims) + "." + p[2], &out) == TokenError::kBadSignature);
}

TEST_CASE("token: alg none is rejected") {
  auto k = ring();
  auto p = parts(k.sign(sample()));
  std::string none = seg({{"alg", "none"}, {"kid", "k1"}, {"typ", "JWT"}});
  TokenClaims out;
  CHECK(k.verify(none + "." + p[1] + ".", &out) != TokenError::kNone);
  CHECK(k.verify(none + "." + p[1] + "." + p[2], &out) == TokenError::kUnknownKey);
}

TEST_CASE(
    "token: other algorithms and re-serialized headers are rejected even when correctly signed") {
  auto k = ring();
  auto p = parts(k.sign(sample()));
  TokenClaims out;
  for (const auto& h : {seg({{"alg", "HS384"}, {"kid", "k1"}, {"typ", "JWT"}}),
                        seg({{"alg", "RS256"}, {"kid", "k1"}}),
                        crypto::base64url_encode(R"({"kid":"k1","alg":"HS256","typ":"JWT"})"),
                        crypto::base64url_encode(R"({"alg":"HS256", "kid":"k1","typ":"JWT"})"),
                        seg({{"alg", "HS256"}, {"kid", "k1"}, {"typ", "JWT"}, {"crit", {"x"}}})}) {
    CHECK(k.verify(sign_with(kSecret, h + "." + p[1]), &out) == TokenError::kUnknownKey);
  }
}

TEST_CASE("token: an unknown key id is rejected") {
  auto other = Keyring::from_keys({{"k9", kSecret}});
  TokenClaims out;
  CHECK(ring().verify(other.sign(sample()), &out) == TokenError::kUnknownKey);
}

TEST_CASE("token: a token signed with another secret under our kid is rejected") {
  auto forger = Keyring::from_keys({{"k1", std::string(32, 'x')}});
  TokenClaims out;
  CHECK(ring().verify(forger.sign(sample()), &out) == TokenError::kBadSignature);
}

TEST_CASE("token: truncation, extra segments, padding and oversize are rejected") {
  auto k = ring();
  std::string t = k.sign(sample());
  TokenClaims out;
  CHECK(k.verify(t.substr(0, t.size() - 1), &out) != TokenError::kNone);
  CHECK(k.verify(t.substr(0, t.rfind('.')), &out) == TokenError::kMalformed);
  CHECK(k.verify(t + "=", &out) == TokenError::kMalformed);
  CHECK(k.verify(t + ".x", &out) == TokenError::kMalformed);
  CHECK(k.verify("", &out) == TokenError::kMalformed);
  CHECK(k.verify("..", &out) != TokenError::kNone);
  CHECK(k.verify(std::string(5000, 'a'), &out) == TokenError::kMalformed);
  auto p = parts(t);
  CHECK(k.verify(p[0] + "." + p[1] + "=." + p[2], &out) != TokenError::kNone);
}

TEST_CASE("token: a non-canonical signature encoding is rejected") {
  auto k = ring();
  std::string t = k.sign(sample());
  // 32 bytes -> 43 chars; the last char carries 2 unused bits. Flip one of them.
  char& last = t.back();
  std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  last = alphabet[alphabet.find(last) ^ 1];
  TokenClaims out;
  CHECK(k.verify(t, &out) == TokenError::kMalformed);
}

TEST_CASE("token: during rotation old keys verify and only the newest signs") {
  auto old_ring = Keyring::from_keys({{"k1", kSecret}});
  auto rotated = Keyring::from_keys({{"k1", kSecret}, {"k2", std::string(32, 'n')}});
  TokenClaims out;
  CHECK(rotated.verify(old_ring.sign(sample()), &out) == TokenError::kNone);
  auto header = nlohmann::json::parse(*crypto::base64url_decode(parts(rotated.sign(sample()))[0]));
  CHECK(header["kid"] == "k2");
  CHECK(old_ring.verify(rotated.sign(sample()), &out) == TokenError::kUnknownKey);
}

TEST_CASE("token: keys are created on first load with mode 0600 and reloaded") {
  char tmpl[] = "/tmp/tripline-keys-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto first = Keyring::load_or_create(dir + "/keys");
  REQUIRE(first.ok());
  REQUIRE(first->keys().size() == 1);
  CHECK(first->keys()[0].secret.size() == 32);
  auto again = Keyring::load_or_create(dir + "/keys");
  REQUIRE(again.ok());
  TokenClaims out;
  CHECK(again->verify(first->sign(sample()), &out) == TokenError::kNone);
  auto added = Keyring::add_key(dir + "/keys");
  REQUIRE(added.ok());
  auto rotated = Keyring::load_or_create(dir + "/keys");
  REQUIRE(rotated->keys().size() == 2);
  CHECK(rotated->verify(first->sign(sample()), &out) == TokenError::kNone);
  std::system(("rm -rf " + dir).c_str());
}

// Regression: a secrets.key written next to the signing keys was once loaded as the newest
// signing key ("secrets" sorts after "k2026..."), silently re-signing every URL.
TEST_CASE("token: files that are not signing keys are never loaded as keys") {
  char tmpl[] = "/tmp/tripline-keys-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto first = Keyring::load_or_create(dir);
  REQUIRE(first.ok());
  std::system(("printf '%064d\\n' 7 > " + dir + "/secrets.key && chmod 600 " + dir + "/secrets.key")
                  .c_str());
  auto again = Keyring::load_or_create(dir);
  REQUIRE(again.ok());
  REQUIRE(again->keys().size() == 1);
  CHECK(again->keys()[0].kid == first->keys()[0].kid);
  std::system(("rm -rf " + dir).c_str());
}
