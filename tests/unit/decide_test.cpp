// decide() (server/trigger/decide.h) without a server: a receiver made as the service makes it
// (make_receiver, real drivers, no peer), a request built in memory.
#include "decide.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "../support/fake_request.h"
#include "drivers/dns_update/dns_update.h"
#include "registry.h"

using namespace tripline;
using nlohmann::json;
using tripline::test::FakeRequest;

namespace {

const SecretBox& box() {
  static const SecretBox b = SecretBox::from_key(std::string(32, 's'));
  return b;
}

const DriverRegistry& drivers() {
  static const DriverRegistry* r = [] {
    auto* reg = new DriverRegistry;
    register_drivers(*reg, DriverEnv().set("docker-host", "http://127.0.0.1:1"));
    return reg;
  }();
  return *r;
}

std::shared_ptr<const Receiver> scale_receiver(json rules, json auth = nullptr) {
  ReceiverRow row;
  row.id = 1;
  row.name = "web";
  row.driver = "scale-service";
  row.config =
      json::parse(R"({"backend":"swarm","service":"web","action":"up","by":1,"min":1,"max":5})");
  row.rules = std::move(rules);
  if (!auth.is_null()) {
    auto stored = InboundAuth::prepare_for_storage(auth, nullptr, box());
    REQUIRE(stored.ok());
    row.auth = *stored;
  }
  row.nonce = "n1";
  auto r = make_receiver(std::move(row), drivers(), box(), /*check_peer=*/false);
  REQUIRE(r.ok());
  return *r;
}

TriggerDecision run(const Receiver& r, const FakeRequest& req, std::string caller = "203.0.113.7",
                    std::string key = "") {
  return decide(TriggerInput{req, caller, 1'700'000'000'000, std::move(key), false, false}, r,
                box());
}

}  // namespace

TEST_CASE("decide: a receiver with no auth, rules or bound values accepts as configured") {
  auto r = scale_receiver(nullptr);
  CHECK(r->simple);
  FakeRequest req;
  auto d = run(*r, req, "203.0.113.7", "delivery-1");
  REQUIRE(std::holds_alternative<Accept>(d));
  const auto& a = std::get<Accept>(d);
  CHECK(a.idempotency_key == "delivery-1");
  CHECK(a.config == nullptr);
  CHECK(a.action.empty());
}

TEST_CASE("decide: a rule that ignores the request is an Ignore naming the rule") {
  auto r = scale_receiver(json::parse(
      R"({"rules":[{"name":"not prod","when":{"field":"body:/env","op":"not_equals","value":"prod"},"then":"ignore"}]})"));
  FakeRequest req;
  req.body_ = R"({"env":"dev"})";
  auto d = run(*r, req);
  REQUIRE(std::holds_alternative<Ignore>(d));
  CHECK(std::get<Ignore>(d).why == IgnoreReason::kRule);
  CHECK(std::get<Ignore>(d).rule_index == 0);
  CHECK(std::get<Ignore>(d).rule_name == "not prod");
  req.body_ = R"({"env":"prod"})";
  CHECK(std::holds_alternative<Accept>(run(*r, req)));
}

TEST_CASE("decide: a per-request value changes the config, within the schema, not the grant") {
  auto r = scale_receiver(json::parse(R"({"rules":[{"set":{"by":{"from_request":"body:/by"}}}]})"));
  FakeRequest req;
  req.body_ = R"({"by":3})";
  auto d = run(*r, req);
  REQUIRE(std::holds_alternative<Accept>(d));
  const auto& a = std::get<Accept>(d);
  REQUIRE(a.config != nullptr);
  CHECK(json::parse(a.config_text)["by"] == 3);
  CHECK(a.action.empty());  // still "up"

  req.body_ = R"({"by":100000})";  // over the schema's maximum (10000)
  auto over = run(*r, req);
  REQUIRE(std::holds_alternative<Reject>(over));
  CHECK(std::get<Reject>(over).auth == AuthFailure::kNone);
  CHECK(std::get<Reject>(over).status.code() == Status::Code::kInvalid);

  req.body_ = R"({"other":1})";  // the value is missing
  CHECK(std::holds_alternative<Reject>(run(*r, req)));
}

TEST_CASE("decide: inbound auth refuses before rules are read") {
  auto r = scale_receiver(nullptr, json{{"bearer_token", "s3cret-bearer"}});
  FakeRequest req;
  auto missing = run(*r, req);
  REQUIRE(std::holds_alternative<Reject>(missing));
  CHECK(std::get<Reject>(missing).auth == AuthFailure::kMissingCredential);
  req.headers_.push_back({"Authorization", "Bearer wrong"});
  CHECK(std::get<Reject>(run(*r, req)).auth == AuthFailure::kBadCredential);
  req.headers_.back().second = "Bearer s3cret-bearer";
  CHECK(std::holds_alternative<Accept>(run(*r, req)));

  auto only_lan = scale_receiver(nullptr, json{{"allow_sources", {"10.0.0.0/8"}}});
  CHECK(std::get<Reject>(run(*only_lan, req, "203.0.113.7")).auth ==
        AuthFailure::kSourceNotAllowed);
  CHECK(std::holds_alternative<Accept>(run(*only_lan, req, "10.1.2.3")));
}

TEST_CASE("decide: Alertmanager firing runs, resolved runs the inverse, re-sends share a key") {
  auto r = scale_receiver(json{{"preset", "alertmanager"}, {"on_resolved", "inverse"}});
  FakeRequest req;
  req.body_ =
      R"({"version":"4","status":"firing","receiver":"r","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"High"},"fingerprint":"f1","startsAt":"2024-01-01T00:00:00Z"}]})";
  auto firing = run(*r, req);
  REQUIRE(std::holds_alternative<Accept>(firing));
  CHECK_FALSE(std::get<Accept>(firing).idempotency_key.empty());
  CHECK(std::get<Accept>(firing).idempotency_key == std::get<Accept>(run(*r, req)).idempotency_key);

  auto resolved_body = json::parse(req.body_);
  resolved_body["status"] = "resolved";
  resolved_body["alerts"][0]["status"] = "resolved";
  req.body_ = resolved_body.dump();
  auto resolved = run(*r, req);
  REQUIRE(std::holds_alternative<Accept>(resolved));
  CHECK(std::get<Accept>(resolved).action == "down");

  req.body_ = R"({"status":"firing"})";  // not an Alertmanager payload
  CHECK(std::holds_alternative<Reject>(run(*r, req)));

  auto ignoring = scale_receiver(json{{"preset", "alertmanager"}});
  req.body_ = resolved_body.dump();
  auto ignored = run(*ignoring, req);
  REQUIRE(std::holds_alternative<Ignore>(ignored));
  CHECK(std::get<Ignore>(ignored).why == IgnoreReason::kResolved);
}

namespace {

// dns-update, watching whether the body had been parsed when bind() was called and after it.
struct BodySpy : DnsUpdateDriver {
  mutable bool parsed_before = false, parsed_after = false;
  mutable int binds = 0;
  Result<json> bind(const json& stored, const TriggerRequest& request) const override {
    ++binds;
    parsed_before = request.body.was_parsed();
    auto out = DnsUpdateDriver::bind(stored, request);
    parsed_after = request.body.was_parsed();
    return out;
  }
};

std::shared_ptr<const Receiver> dns_receiver(const DriverRegistry& reg, json value, json rules) {
  ReceiverRow row;
  row.id = 2;
  row.name = "www";
  row.driver = "dns-update";
  row.config = {{"backend", "externaldns-webhook"},
                {"provider_url", "http://127.0.0.1:8888"},
                {"record", {{"name", "www.example.org"}, {"type", "A"}}},
                {"action", "upsert"},
                {"value", std::move(value)}};
  row.rules = std::move(rules);
  row.nonce = "n2";
  auto r = make_receiver(std::move(row), reg, box(), /*check_peer=*/false);
  REQUIRE(r.ok());
  return *r;
}

}  // namespace

TEST_CASE("decide: the body is parsed once, shared by the rules and bind(), and only if read") {
  DriverRegistry reg;
  auto owned = std::make_unique<BodySpy>();
  const BodySpy& spy = *owned;
  reg.add(std::move(owned));
  json from_body = {{"from", "body"}, {"pointer", "/ip"}};
  json env_rule = json::parse(
      R"({"rules":[{"when":{"field":"body:/env","op":"equals","value":"dev"},"then":"ignore"}]})");
  FakeRequest req;
  req.body_ = R"({"env":"prod","ip":"192.0.2.44"})";

  // Rules and the driver both read the body: the driver gets the rules' parse.
  auto both = dns_receiver(reg, from_body, env_rule);
  auto d = run(*both, req);
  REQUIRE(std::holds_alternative<Accept>(d));
  CHECK(json::parse(std::get<Accept>(d).config_text)["value"] == "192.0.2.44");
  CHECK(spy.binds == 1);
  CHECK(spy.parsed_before);

  // Only the driver reads it: parsed inside bind(), on first use.
  auto driver_only = dns_receiver(reg, from_body, nullptr);
  REQUIRE(std::holds_alternative<Accept>(run(*driver_only, req)));
  CHECK(spy.binds == 2);
  CHECK_FALSE(spy.parsed_before);
  CHECK(spy.parsed_after);

  // Nobody reads it (the value is the caller's address): never parsed, even when it is not JSON.
  auto caller = dns_receiver(reg, {{"from", "caller-ip"}}, nullptr);
  req.body_ = "not json";
  auto c = run(*caller, req, "198.51.100.9");
  REQUIRE(std::holds_alternative<Accept>(c));
  CHECK(json::parse(std::get<Accept>(c).config_text)["value"] == "198.51.100.9");
  CHECK(spy.binds == 3);
  CHECK_FALSE(spy.parsed_before);
  CHECK_FALSE(spy.parsed_after);
}

namespace {
std::shared_ptr<const Receiver> redeploy_receiver() {
  ReceiverRow row;
  row.id = 2;
  row.name = "rd";
  row.driver = "redeploy";
  row.config =
      json::parse(R"({"image":"127.0.0.1:5000/team/web","registry_url":"http://127.0.0.1:5000",
    "tag_pattern":"v[0-9.]+","services":["web"]})");
  row.rules = json::parse(R"({"preset":"registry-push"})");
  row.nonce = "n2";
  auto r = make_receiver(std::move(row), drivers(), box(), /*check_peer=*/false);
  REQUIRE(r.ok());
  return *r;
}
std::string push_body(const std::string& action, const std::string& repo, const std::string& tag,
                      const std::string& id) {
  return json{{"events",
               {{{"id", id},
                 {"action", action},
                 {"target",
                  {{"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
                   {"repository", repo},
                   {"tag", tag}}},
                 {"request", {{"host", "127.0.0.1:5000"}}}}}}}
      .dump();
}
}  // namespace

TEST_CASE("decide: registry-push runs a tag push, ignores the rest, and keys re-sends") {
  auto r = redeploy_receiver();
  CHECK_FALSE(r->simple);
  FakeRequest req;
  req.body_ = push_body("push", "team/web", "v1.2", "event-1");
  auto d = run(*r, req);
  REQUIRE(std::holds_alternative<Accept>(d));
  const auto& a = std::get<Accept>(d);
  REQUIRE(a.config != nullptr);
  CHECK(a.idempotency_key.rfind("push:distribution:", 0) == 0);
  CHECK(json::parse(a.config_text)["tag"] == "v1.2");
  // The same delivery re-sent: the same key (the store answers it as a replay).
  auto again = run(*r, req);
  REQUIRE(std::holds_alternative<Accept>(again));
  CHECK(std::get<Accept>(again).idempotency_key == a.idempotency_key);
  // A request's own Idempotency-Key wins, as for Alertmanager.
  CHECK(std::get<Accept>(run(*r, req, "203.0.113.7", "k1")).idempotency_key == "k1");

  req.body_ = push_body("pull", "team/web", "v1.2", "event-2");
  auto pull = run(*r, req);
  REQUIRE(std::holds_alternative<Ignore>(pull));
  CHECK(std::get<Ignore>(pull).why == IgnoreReason::kNoPush);

  req.body_ = push_body("push", "team/api", "v1.2", "event-3");
  auto other = run(*r, req);
  REQUIRE(std::holds_alternative<Ignore>(other));
  CHECK(std::get<Ignore>(other).why == IgnoreReason::kUnmatched);
  CHECK_THAT(std::get<Ignore>(other).reason, Catch::Contains("team/api:v1.2"));

  req.body_ = push_body("push", "team/web", "latest", "event-4");
  auto disallowed = run(*r, req);
  REQUIRE(std::holds_alternative<Ignore>(disallowed));
  CHECK(std::get<Ignore>(disallowed).why == IgnoreReason::kUnmatched);

  // Not a registry's notification at all (a plain {"tag"} too): refused.
  req.body_ = R"({"tag":"v1.2"})";
  auto plain = run(*r, req);
  REQUIRE(std::holds_alternative<Reject>(plain));
  CHECK(std::get<Reject>(plain).status.code() == Status::Code::kInvalid);
}

TEST_CASE("decide: registry-push is a rules field like alertmanager, on_resolved is not for it") {
  CHECK(RuleSet::compile(json::parse(R"({"preset":"registry-push"})")).ok());
  CHECK_FALSE(
      RuleSet::compile(json::parse(R"({"preset":"registry-push","on_resolved":"run"})")).ok());
  CHECK_FALSE(RuleSet::compile(json::parse(R"({"preset":"harbor"})")).ok());
  CHECK_FALSE((*RuleSet::compile(json::parse(R"({"preset":"registry-push"})")))->trivial());
}
