// The registry's answers mapped to outcomes (registry_client.h): which retry, which are final; and
// the WWW-Authenticate challenge and digest checks the resolver relies on (docs/redeploy.md).
#include "registry_client.h"

#include <catch2/catch.hpp>

using namespace tripline;
using namespace tripline::redeploy;
using Kind = Outcome::Kind;

namespace {
OutboundResponse http(int status, std::string body = "") {
  OutboundResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}
OutboundResponse transport(std::string error, bool too_large = false, bool tls = false) {
  OutboundResponse r;
  r.error = std::move(error);
  r.too_large = too_large;
  r.tls_failed = tls;
  return r;
}
Outcome outcome(const OutboundResponse& r) {
  return to_outcome(RegistryApi::classify(r), "127.0.0.1:5000/team/web:v1");
}
}  // namespace

TEST_CASE("registry answers: what retries and what is final") {
  CHECK(outcome(transport("Connection refused")).kind == Kind::kRetryable);
  CHECK(outcome(http(500)).kind == Kind::kRetryable);
  CHECK(outcome(http(503)).kind == Kind::kRetryable);
  CHECK(outcome(http(429)).kind == Kind::kRetryable);
  CHECK(outcome(http(401)).kind == Kind::kFinal);
  CHECK(outcome(http(403)).kind == Kind::kFinal);
  CHECK(outcome(http(400)).kind == Kind::kFinal);
  CHECK(outcome(transport("too large", true)).kind == Kind::kFinal);
  CHECK(outcome(transport("certificate verify failed", false, true)).kind == Kind::kFinal);
  Outcome missing = outcome(http(
      404,
      R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]})"));
  CHECK(missing.kind == Kind::kFinal);
  CHECK_THAT(missing.reason, Catch::Contains("MANIFEST_UNKNOWN"));
  CHECK_THAT(missing.reason, Catch::Contains("127.0.0.1:5000/team/web:v1"));
  CHECK_THAT(missing.reason, Catch::Contains("nothing was deployed"));
  // A huge or odd error body never makes a huge reason.
  Outcome odd = outcome(http(404, R"({"errors":[{"code":")" + std::string(5000, 'x') + R"("}]})"));
  CHECK(odd.reason.size() < 700);
}

TEST_CASE("registry digests: only sha256 with 64 lower-case hex digits") {
  CHECK(RegistryApi::valid_digest("sha256:" + std::string(64, 'a')));
  CHECK_FALSE(RegistryApi::valid_digest("sha256:" + std::string(63, 'a')));
  CHECK_FALSE(RegistryApi::valid_digest("sha256:" + std::string(64, 'A')));
  CHECK_FALSE(RegistryApi::valid_digest("sha512:" + std::string(64, 'a')));
  CHECK_FALSE(RegistryApi::valid_digest("sha256:" + std::string(63, 'a') + "\n"));
}

TEST_CASE("registry challenges: Bearer and Basic parameters are read") {
  auto b = RegistryApi::parse_challenge(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push")");
  CHECK(b.scheme == "bearer");
  CHECK(b.realm == "https://auth.docker.io/token");
  CHECK(b.service == "registry.docker.io");
  CHECK(b.scope == "repository:library/nginx:pull,push");
  auto basic = RegistryApi::parse_challenge(R"(Basic realm="Registry Realm")");
  CHECK(basic.scheme == "basic");
  CHECK(basic.realm == "Registry Realm");
  CHECK(RegistryApi::parse_challenge("Negotiate abc").scheme.empty());
  CHECK(RegistryApi::parse_challenge("").scheme.empty());
  auto broken = RegistryApi::parse_challenge(R"(Bearer realm="unterminated)");
  CHECK(broken.scheme == "bearer");
  CHECK(broken.realm.empty());
}
