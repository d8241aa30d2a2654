// Trust 8: a peer tripline calls (Docker Engine API, ExternalDNS webhook provider) may answer
// anything. Answers nested deeper or larger than the limits of server/base/json_limits.h used to be
// parsed and copied as they came: 100k levels of nesting overflowed the stack, and since the
// execution stays queued the crash came back at every restart. Each peer here is a real loopback
// HTTP server (tests/support/canned_peer.h).
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "../support/canned_peer.h"
#include "drivers/dns_update/dns_update.h"
#include "drivers/dns_update/externaldns.h"
#include "drivers/scale_service/scale_service.h"
#include "harness.h"
#include "json_limits.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

constexpr const char* kMediaType = "application/external.dns.webhook+json;version=1";
constexpr int kDeep = 100000;

std::string nested(int depth, const std::string& inner = "1") {
  return std::string(size_t(depth), '[') + inner + std::string(size_t(depth), ']');
}

// A Docker service whose labels hold `labels` (raw JSON).
std::string service_json(const std::string& labels) {
  return R"({"ID":"svc1","Version":{"Index":5},"Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":2}},"Labels":)" +
         labels + "}}";
}

// Valid JSON, well over the 1 MiB limit.
std::string oversized_records() {
  std::string out = "[";
  while (out.size() < kMaxJsonBytes + 1000)
    out += R"({"dnsName":"a.example.org","targets":["192.0.2.1"],"recordType":"A"},)";
  out.back() = ']';
  return out;
}

std::shared_ptr<const DriverConfig> scale_config(const ScaleServiceDriver& d) {
  auto c = d.validate(json{{"service", "web"}, {"action", "up"}, {"by", 1}, {"max", 5}}, false);
  REQUIRE(c.ok());
  return *c;
}

}  // namespace

TEST_CASE("trust 8: a provider answering deeply nested JSON cannot crash tripline") {
  SECTION("Docker: a 100k-deep service is a final failure, not a stack overflow") {
    CannedPeer docker;
    docker.answer("/v1.41/services/web", 200, "application/json", service_json(nested(kDeep)));
    ScaleServiceDriver d(docker.url());
    auto c = scale_config(d);
    Plan p = d.plan(*c);
    REQUIRE_FALSE(p.ok());
    CHECK(p.failure.kind == Outcome::Kind::kFinal);
    CHECK(p.failure.reason.find("nested deeper than 64 levels") != std::string::npos);
    CHECK(d.apply(*c, json{{"replicas", 3}, {"replicas_before", 2}, {"clamped", false}}).kind ==
          Outcome::Kind::kFinal);
    // The same answer nested within the limit is read as a service.
    docker.answer("/v1.41/services/web", 200, "application/json", service_json(nested(60)));
    Plan fine = d.plan(*c);
    INFO(fine.failure.reason);
    CHECK(fine.ok());
  }
  SECTION("Docker: a deep error message and an oversized answer are refused too") {
    CannedPeer docker;
    docker.answer("/v1.41/services/web", 500, "application/json",
                  R"({"message":)" + nested(kDeep) + "}");
    ScaleServiceDriver d(docker.url());
    auto c = scale_config(d);
    Plan p = d.plan(*c);
    REQUIRE_FALSE(p.ok());
    CHECK(p.failure.kind ==
          Outcome::Kind::kRetryable);  // a 5xx stays retryable; its text is ignored
    CHECK(p.failure.reason == "Docker answered: HTTP 500");
    for (bool no_length : {false, true}) {
      docker.answer("/v1.41/services/web", 200, "application/json",
                    service_json("\"" + std::string(kMaxJsonBytes, 'x') + "\""), no_length);
      Plan big = d.plan(*c);
      REQUIRE_FALSE(big.ok());
      CHECK(big.failure.kind == Outcome::Kind::kFinal);
      CHECK(big.failure.reason.find("larger than 1048576 bytes") != std::string::npos);
    }
  }
  SECTION("ExternalDNS: deep and oversized answers to GET / and GET /records are final failures") {
    CannedPeer provider;
    provider.answer("/", 200, kMediaType, R"({"include":["example.org"]})");
    provider.answer("/records", 200, kMediaType,
                    R"([{"dnsName":"www.example.org","labels":{"x":)" + nested(kDeep) + "}}]");
    DnsUpdateDriver d;
    json config = {{"backend", "externaldns-webhook"},
                   {"provider_url", provider.url()},
                   {"record", {{"name", "www.example.org"}, {"type", "A"}, {"ttl", 120}}},
                   {"action", "upsert"},
                   {"value", "192.0.2.10"}};
    auto c = d.validate(config, true);
    INFO(c.status().message());
    REQUIRE(c.ok());
    Plan p = d.plan(**c);
    REQUIRE_FALSE(p.ok());
    CHECK(p.failure.kind == Outcome::Kind::kFinal);
    CHECK(p.failure.reason.find("nested deeper than 64 levels") != std::string::npos);
    CHECK(p.failure.reason.find(provider.url()) != std::string::npos);

    provider.answer("/records", 200, kMediaType, oversized_records(), /*no_length=*/true);
    Plan big = d.plan(**c);
    REQUIRE_FALSE(big.ok());
    CHECK(big.failure.kind == Outcome::Kind::kFinal);
    CHECK(big.failure.reason.find("larger than 1048576 bytes") != std::string::npos);

    provider.answer("/", 200, kMediaType,
                    R"({"include":)" + nested(kDeep, "\"example.org\"") + "}");
    auto refused = d.validate(config, true);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.status().message().find("nested deeper than 64 levels") != std::string::npos);
  }
}

TEST_CASE("trust 8: a hostile provider fails the execution and the server keeps serving") {
  CannedPeer provider;
  provider.answer("/", 200, kMediaType, R"({"include":["example.org"]})");
  provider.answer("/records", 200, kMediaType, "[]");
  ServiceOptions o;
  o.drivers.set("docker-host", "http://127.0.0.1:1");  // no Docker needed: no dockerd started
  TestServer s("", o);
  auto r =
      s.create_receiver({{"name", "hostile"},
                         {"driver", "dns-update"},
                         {"config",
                          {{"backend", "externaldns-webhook"},
                           {"provider_url", provider.url()},
                           {"record", {{"name", "www.example.org"}, {"type", "A"}, {"ttl", 120}}},
                           {"action", "upsert"},
                           {"value", "192.0.2.10"}}}});
  provider.answer("/records", 200, kMediaType, nested(kDeep));
  auto t = s.trigger(r["trigger_url"]);
  REQUIRE(t.status == 202);
  json e = s.wait_finished(json::parse(t.body)["execution_id"].get<int64_t>());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);  // final at once: a hostile answer is not retried
  CHECK(e["error"].get<std::string>().find("nested deeper than 64 levels") != std::string::npos);
  CHECK(s.request("GET", "/healthz", nullptr, false).status == 200);
}
