// The registry client (registry_client.h) against a fake registry and token service on loopback
// that keep the distribution spec's contract (docs/redeploy.md, "Resolving a tag"): a HEAD
// without credentials answers 401 with a challenge; Basic is answered with the configured
// credentials; Bearer by a token from the realm, fetched with them. The real registry (no auth)
// is exercised by redeploy_integration_test.cpp.
#include <catch2/catch.hpp>

#include "../../tests/support/loopback_http.h"
#include "crypto.h"
#include "registry_client.h"

using namespace tripline;
using namespace tripline::redeploy;
using test::HttpRequest;
using test::HttpResponse;
using test::LoopbackHttpServer;

namespace {

const std::string kDigest = "sha256:" + std::string(64, 'c');
const RegistryCredentials kCreds{"deployer", "s3cret-password"};
std::string basic_header(const RegistryCredentials& c) {
  return "Basic " + crypto::base64_encode(c.username + ":" + c.password);
}

// A registry whose manifests need `Authorization: want`, answering `challenge` otherwise.
struct FakeRegistry {
  std::string challenge, want, digest = kDigest;
  LoopbackHttpServer server{
      "fake registry", [this](const HttpRequest& r) {
        HttpResponse out;
        if (r.path.rfind("/v2/team/web/manifests/", 0) != 0) {
          out.status = 404;
          return out;
        }
        if (r.header("authorization") != want) {
          out.status = 401;
          out.headers = {{"WWW-Authenticate", challenge}};
          return out;
        }
        if (r.path != "/v2/team/web/manifests/v1.0.0") {
          out.status = 404;
          out.content_type = "application/json";
          if (r.method == "GET")
            out.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
          return out;
        }
        out.content_type = "application/vnd.docker.distribution.manifest.v2+json";
        out.headers = {{"Docker-Content-Digest", digest}};
        return out;
      }};
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server.port()); }
};

// The token service: a token for the right Basic credentials, 401 otherwise.
struct FakeTokenService {
  LoopbackHttpServer server{"fake token service", [](const HttpRequest& r) {
                              HttpResponse out;
                              if (r.header("authorization") != basic_header(kCreds)) {
                                out.status = 401;
                                return out;
                              }
                              out.content_type = "application/json";
                              out.body = R"({"token":"tok-123","expires_in":300})";
                              return out;
                            }};
  std::string realm() const {
    return "http://127.0.0.1:" + std::to_string(server.port()) + "/token";
  }
};

}  // namespace

TEST_CASE(
    "registry contract: a Bearer challenge is answered with a token fetched with the credentials") {
  FakeTokenService tokens;
  FakeRegistry registry;
  registry.challenge = "Bearer realm=\"" + tokens.realm() +
                       "\",service=\"fake-registry\",scope=\"repository:team/web:pull\"";
  registry.want = "Bearer tok-123";
  std::string digest;
  auto a = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest);
  INFO(a.message);
  REQUIRE(a.error == RegistryApi::Error::kNone);
  CHECK(digest == kDigest);
  // The token request names the scope and service the challenge gave.
  auto asked = tokens.server.exchanges();
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].request.path.find("scope=repository%3Ateam%2Fweb%3Apull") != std::string::npos);
  CHECK(asked[0].request.path.find("service=fake-registry") != std::string::npos);
  // The manifest request asked for the manifest types, HEAD first.
  auto calls = registry.server.exchanges();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].request.method == "HEAD");
  CHECK(calls[1].request.header("accept").find("application/vnd.oci.image.index.v1+json") !=
        std::string::npos);

  // Wrong credentials: the token service refuses, the outcome is final and names no secret.
  std::string ignored;
  auto wrong =
      RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", {"deployer", "nope"}, &ignored);
  CHECK(wrong.error == RegistryApi::Error::kUnauthorized);
  Outcome o = to_outcome(wrong, "team/web:v1.0.0");
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("nope") == std::string::npos);
  CHECK(o.reason.find(kCreds.password) == std::string::npos);
}

TEST_CASE("registry contract: Basic is answered with the credentials, or fails without them") {
  FakeRegistry registry;
  registry.challenge = "Basic realm=\"Registry Realm\"";
  registry.want = basic_header(kCreds);
  std::string digest;
  auto a = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest);
  INFO(a.message);
  REQUIRE(a.error == RegistryApi::Error::kNone);
  CHECK(digest == kDigest);
  auto none = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", {}, &digest);
  CHECK(none.error == RegistryApi::Error::kUnauthorized);
}

TEST_CASE("registry contract: a missing tag is MANIFEST_UNKNOWN, a bad digest is refused") {
  FakeRegistry registry;
  registry.challenge = "Basic realm=\"r\"";
  registry.want = basic_header(kCreds);
  std::string digest;
  auto missing = RegistryApi::resolve(registry.url(), "team/web", "v9.9.9", kCreds, &digest);
  CHECK(missing.error == RegistryApi::Error::kNotFound);
  CHECK_THAT(missing.message, Catch::Contains("MANIFEST_UNKNOWN"));
  CHECK(to_outcome(missing, "team/web:v9.9.9").kind == Outcome::Kind::kFinal);

  registry.digest = "sha256:not-hex";
  auto bad = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest);
  CHECK(bad.error == RegistryApi::Error::kBadAnswer);
  registry.digest = "";  // a header with no value
  auto empty = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest);
  CHECK(empty.error == RegistryApi::Error::kBadAnswer);
}

TEST_CASE("registry contract: a token realm that is not http(s) is never followed") {
  FakeTokenService tokens;
  FakeRegistry registry;
  registry.challenge = "Bearer realm=\"" + tokens.realm() + "\",service=\"s\"";
  registry.want = "Bearer tok-123";
  // The registry is plain http here, so an http realm is allowed ...
  std::string digest;
  CHECK(RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest).error ==
        RegistryApi::Error::kNone);
  // ... while a realm that is neither is never asked (the scheme is checked first).
  registry.challenge = "Bearer realm=\"file:///etc/passwd\",service=\"s\"";
  auto refused = RegistryApi::resolve(registry.url(), "team/web", "v1.0.0", kCreds, &digest);
  CHECK(refused.error == RegistryApi::Error::kBadAnswer);
  CHECK(tokens.server.exchanges().size() == 1);
}
