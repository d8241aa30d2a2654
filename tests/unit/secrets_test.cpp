#include "secrets.h"

#include <catch2/catch.hpp>

using namespace tripline;
using nlohmann::json;

namespace {
SecretBox box() { return SecretBox::from_key(std::string(32, 's')); }
const std::vector<std::string> kFields = {"tsig_secret"};
}  // namespace

TEST_CASE("secrets: sealed values open again and do not contain the plaintext") {
  auto b = box();
  std::string sealed = b.seal("hunter2-very-secret");
  CHECK(SecretBox::is_sealed(sealed));
  CHECK(sealed.find("hunter2") == std::string::npos);
  CHECK(b.open(sealed) == "hunter2-very-secret");
  CHECK(b.seal("x") != b.seal("x"));  // fresh nonce every time
}

TEST_CASE("secrets: a tampered or foreign sealed value does not open") {
  auto b = box();
  std::string sealed = b.seal("secret");
  std::string tampered = sealed;
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  CHECK_FALSE(b.open(tampered));
  CHECK_FALSE(SecretBox::from_key(std::string(32, 'o')).open(sealed));
  CHECK_FALSE(b.open("sealed:v1:"));
  CHECK_FALSE(b.open("plain"));
}

TEST_CASE("secrets: configs are sealed, redacted and opened field by field") {
  auto b = box();
  json config = {{"zone", "example.com"}, {"tsig_secret", "c2VjcmV0"}};
  json sealed = seal_config(config, kFields, b);
  CHECK(sealed["zone"] == "example.com");
  CHECK(sealed["tsig_secret"] != "c2VjcmV0");
  CHECK(redact_config(sealed, kFields)["tsig_secret"] == kRedacted);
  auto opened = open_config(sealed, kFields, b);
  REQUIRE(opened.ok());
  CHECK(*opened == config);
}

TEST_CASE("secrets: an edit that sends the secret back redacted or omits it keeps the old one") {
  auto b = box();
  json stored = seal_config({{"tsig_secret", "old"}}, kFields, b);
  json edited = seal_config({{"tsig_secret", kRedacted}, {"zone", "z"}}, kFields, b, stored);
  CHECK(edited["tsig_secret"] == stored["tsig_secret"]);
  json omitted = seal_config({{"zone", "z"}}, kFields, b, stored);
  CHECK(omitted["tsig_secret"] == stored["tsig_secret"]);
  json replaced = seal_config({{"tsig_secret", "new"}}, kFields, b, stored);
  CHECK(*open_config(replaced, kFields, b) == json{{"tsig_secret", "new"}});
}

TEST_CASE("secrets: a client value that looks sealed is sealed again, not trusted") {
  auto b = box();
  std::string forged = "sealed:v1:AAAA";
  json sealed = seal_config({{"tsig_secret", forged}}, kFields, b);
  CHECK(*open_config(sealed, kFields, b) == json{{"tsig_secret", forged}});
}
