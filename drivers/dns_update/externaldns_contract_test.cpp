// dns-update's externaldns-webhook backend against a provider that follows the upstream webhook
// contract (tests/support/externaldns_fake.h): no real provider runs here. Driven at the driver
// level: validate -> plan -> apply, as the executor calls them.
#include <catch2/catch.hpp>

#include "../../tests/integration/harness.h"
#include "../../tests/support/externaldns_fake.h"
#include "dns_update.h"
#include "http_client.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

constexpr const char* kMediaType = "application/external.dns.webhook+json;version=1";

json config(const FakeExternalDns& provider, json value = "192.0.2.10",
            const std::string& action = "upsert", const std::string& name = "www.example.org") {
  json c = {{"backend", "externaldns-webhook"},
            {"provider_url", provider.url()},
            {"record", {{"name", name}, {"type", "A"}, {"ttl", 120}}},
            {"action", action}};
  if (!value.is_null()) c["value"] = value;
  return c;
}

std::shared_ptr<const DriverConfig> valid(const DnsUpdateDriver& d, const json& c) {
  auto v = d.validate(c, true);
  INFO(v.status().message());
  REQUIRE(v.ok());
  return *v;
}

json endpoint(const std::string& name, std::vector<std::string> targets, int64_t ttl = 300) {
  return {{"dnsName", name}, {"targets", targets}, {"recordType", "A"}, {"recordTTL", ttl}};
}

bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}

int posts(const FakeExternalDns& p) {
  int n = 0;
  for (const auto& r : p.requests()) n += r.method == "POST";
  return n;
}

OutboundResponse call(const FakeExternalDns& p, const std::string& method, const std::string& path,
                      const std::string& body, std::vector<std::pair<std::string, std::string>> h) {
  OutboundRequest r;
  r.method = method;
  r.url = p.url() + path;
  r.body = body;
  r.headers = std::move(h);
  return http_request(r);
}

}  // namespace

TEST_CASE("externaldns contract: the fake provider holds the upstream media-type rules") {
  FakeExternalDns p;
  CHECK(call(p, "GET", "/", "", {}).status == 406);
  CHECK(call(p, "GET", "/records", "", {{"Accept", "application/json"}}).status == 406);
  CHECK(call(p, "GET", "/records", "", {{"Accept", kMediaType}}).status == 200);
  CHECK(call(p, "POST", "/records", "{}", {{"Content-Type", "application/json"}}).status == 415);
  CHECK(call(p, "POST", "/records", "{not json", {{"Content-Type", kMediaType}}).status == 400);
  CHECK(
      call(p, "POST", "/records", R"({"create":[{"targets":[]}]})", {{"Content-Type", kMediaType}})
          .status == 400);
  CHECK(call(p, "POST", "/records", "{}", {{"Content-Type", kMediaType}}).status == 204);
}

TEST_CASE("externaldns contract: negotiation sends the media type and reads the domain filter") {
  FakeExternalDns p(json{{"include", {"example.org"}}, {"exclude", {"internal.example.org"}}});
  DnsUpdateDriver d;
  valid(d, config(p));
  auto reqs = p.requests();
  REQUIRE_FALSE(reqs.empty());
  CHECK(reqs[0].method == "GET");
  CHECK(reqs[0].path == "/");
  CHECK(reqs[0].accept == kMediaType);
}

TEST_CASE("externaldns contract: a name outside the domain filter is rejected at validation") {
  FakeExternalDns p(json{{"include", {"example.org"}}, {"exclude", {"internal.example.org"}}});
  DnsUpdateDriver d;
  for (std::string name : {"api.example.com", "db.internal.example.org", "example.org.evil.net"}) {
    auto v = d.validate(config(p, "192.0.2.10", "upsert", name), true);
    INFO(name);
    REQUIRE_FALSE(v.ok());
    CHECK(has_field(v.status(), "config.record.name"));
    CHECK(v.status().message().find("domain filter") != std::string::npos);
  }
  // Without check_peer (a restart), nothing is asked.
  size_t before = p.requests().size();
  CHECK(d.validate(config(p, "192.0.2.10", "upsert", "api.example.com"), false).ok());
  CHECK(p.requests().size() == before);

  FakeExternalDns regex(json{{"regexInclude", "^[a-z]+\\.example\\.org$"}});
  CHECK(d.validate(config(regex, "192.0.2.10", "upsert", "www.example.org"), true).ok());
  CHECK_FALSE(d.validate(config(regex, "192.0.2.10", "upsert", "a.b.example.org"), true).ok());
}

TEST_CASE("externaldns contract: a provider that does not negotiate version 1 is rejected") {
  FakeExternalDns p;
  p.set_negotiate_content_type("application/json");
  DnsUpdateDriver d;
  auto v = d.validate(config(p), true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.provider_url"));
  CHECK(v.status().message().find("Content-Type") != std::string::npos);

  std::string gone;
  {
    FakeExternalDns closed;
    gone = closed.url();
  }
  json c = config(p);
  c["provider_url"] = gone;
  v = d.validate(c, true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.provider_url"));
  auto offline = d.validate(c, false);
  REQUIRE(offline.ok());
  Plan plan = d.plan(**offline);
  REQUIRE_FALSE(plan.ok());
  CHECK(plan.failure.kind == Outcome::Kind::kRetryable);
}

TEST_CASE(
    "externaldns contract: upsert of a new record sends create, and a re-run changes nothing") {
  FakeExternalDns p;
  p.set_records(json::array({endpoint("other.example.org", {"192.0.2.99"})}));
  DnsUpdateDriver d;
  auto c = valid(d, config(p));
  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  CHECK(plan.desired["before"] == json::array());
  CHECK(plan.desired["ttl_before"].is_null());
  CHECK(plan.desired["after"] == json::array({"192.0.2.10"}));
  CHECK(plan.desired["ttl"] == 120);

  Outcome o = d.apply(*c, plan.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["changed"] == true);
  CHECK(o.result["before"] == json::array());
  CHECK(o.result["after"] == json::array({"192.0.2.10"}));
  auto sent = p.changes();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].size() == 1);  // empty fields omitted
  REQUIRE(sent[0].contains("create"));
  CHECK(sent[0]["create"][0] == json({{"dnsName", "www.example.org"},
                                      {"targets", {"192.0.2.10"}},
                                      {"recordType", "A"},
                                      {"recordTTL", 120}}));
  for (const auto& r : p.requests())
    if (r.method == "POST") CHECK(r.content_type == kMediaType);

  // The same recorded plan again (a retry, a crash): the same end state, no second change.
  json end_state = p.records();
  Outcome again = d.apply(*c, plan.desired);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);
  CHECK(p.records() == end_state);
  CHECK(p.changes().size() == 1);
}

TEST_CASE("externaldns contract: upsert of an existing record sends updateOld and updateNew") {
  FakeExternalDns p;
  json current = endpoint("www.example.org", {"192.0.2.1"}, 300);
  current["labels"] = {{"owner", "tripline"}};
  current["providerSpecific"] = json::array({{{"name", "proxied"}, {"value", "true"}}});
  p.set_records(json::array({current}));
  DnsUpdateDriver d;
  auto c = valid(d, config(p, "192.0.2.20"));
  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  CHECK(plan.desired["before"] == json::array({"192.0.2.1"}));
  CHECK(plan.desired["ttl_before"] == 300);

  Outcome o = d.apply(*c, plan.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  auto sent = p.changes();
  REQUIRE(sent.size() == 1);
  CHECK_FALSE(sent[0].contains("create"));
  CHECK(sent[0]["updateOld"] == json::array({current}));
  json expected = current;
  expected["targets"] = {"192.0.2.20"};
  expected["recordTTL"] = 120;
  CHECK(sent[0]["updateNew"] == json::array({expected}));  // labels and providerSpecific kept
  CHECK(p.records() == json::array({expected}));
  CHECK(o.result["before"] == json::array({"192.0.2.1"}));
  CHECK(o.result["after"] == json::array({"192.0.2.20"}));

  Outcome again = d.apply(*c, plan.desired);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);
  CHECK(p.records() == json::array({expected}));
  CHECK(posts(p) == 1);

  // Only the TTL differs: still an update.
  auto longer = config(p, "192.0.2.20");
  longer["record"]["ttl"] = 600;
  auto c2 = valid(d, longer);
  Plan p2 = d.plan(*c2);
  REQUIRE(p2.ok());
  REQUIRE(d.apply(*c2, p2.desired).ok());
  CHECK(p.records()[0]["recordTTL"] == 600);
}

TEST_CASE("externaldns contract: delete sends delete, and deleting nothing sends nothing") {
  FakeExternalDns p;
  json current = endpoint("www.example.org", {"192.0.2.1", "192.0.2.2"});
  json weighted = endpoint("www.example.org", {"192.0.2.3"});
  weighted["setIdentifier"] = "eu";  // a routing set: not ours
  p.set_records(json::array({current, weighted}));
  DnsUpdateDriver d;
  auto c = valid(d, config(p, nullptr, "delete"));
  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  CHECK(plan.desired["before"] == json::array({"192.0.2.1", "192.0.2.2"}));
  CHECK(plan.desired["after"] == json::array());
  Outcome o = d.apply(*c, plan.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["changed"] == true);
  auto sent = p.changes();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0] == json({{"delete", json::array({current})}}));
  CHECK(p.records() == json::array({weighted}));

  Outcome again = d.apply(*c, plan.desired);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);
  CHECK(p.records() == json::array({weighted}));
  CHECK(posts(p) == 1);
}

TEST_CASE("externaldns contract: 5xx is retryable, and the retry succeeds") {
  FakeExternalDns p;
  DnsUpdateDriver d;
  auto c = valid(d, config(p));

  p.fail_next(503, 1, "GET");
  Plan failed = d.plan(*c);
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.failure.kind == Outcome::Kind::kRetryable);
  CHECK(failed.failure.reason.find("503") != std::string::npos);

  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  p.fail_next(500, 1, "POST");
  Outcome o = d.apply(*c, plan.desired);
  CHECK(o.kind == Outcome::Kind::kRetryable);
  CHECK(o.reason.find("HTTP 500 to POST /records") != std::string::npos);
  CHECK(p.records() == json::array());

  Outcome retried = d.apply(*c, plan.desired);
  INFO(retried.reason);
  REQUIRE(retried.ok());
  CHECK(p.records().size() == 1);
}

TEST_CASE("externaldns contract: 4xx is final") {
  FakeExternalDns p;
  DnsUpdateDriver d;
  auto c = valid(d, config(p));
  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  p.fail_next(400, 1, "POST");
  Outcome o = d.apply(*c, plan.desired);
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("HTTP 400") != std::string::npos);

  p.fail_next(404, 1, "GET");
  Plan missing = d.plan(*c);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.failure.kind == Outcome::Kind::kFinal);
}

TEST_CASE("externaldns contract: the old capitalised casing is accepted") {
  // Providers built for external-dns v0.14-0.16 used Create/UpdateOld/UpdateNew/Delete; Go's
  // decoder reads keys case-insensitively, so the fake (like them) takes either spelling.
  FakeExternalDns p(json{{"include", {"example.org"}}});
  auto r =
      call(p, "POST", "/records",
           json({{"Create", json::array({endpoint("old.example.org", {"192.0.2.5"})})}}).dump(),
           {{"Content-Type", kMediaType}});
  CHECK(r.status == 204);
  REQUIRE(p.records().size() == 1);

  // And the driver reads a filter and records spelled with capitals.
  p.set_capitalised(true);
  DnsUpdateDriver d;
  auto c = valid(d, config(p, "192.0.2.6", "upsert", "old.example.org"));
  auto outside = d.validate(config(p, "192.0.2.6", "upsert", "api.example.com"), true);
  CHECK(has_field(outside.status(), "config.record.name"));
  Plan plan = d.plan(*c);
  REQUIRE(plan.ok());
  CHECK(plan.desired["before"] == json::array({"192.0.2.5"}));
  Outcome o = d.apply(*c, plan.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  auto sent = p.changes().back();
  REQUIRE(sent.contains("updateOld"));
  CHECK(sent["updateOld"][0]["dnsName"] == "old.example.org");
  CHECK(p.records()[0]["targets"] == json::array({"192.0.2.6"}));
}
