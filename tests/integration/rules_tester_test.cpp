// The rules tester (docs/api.md "Testing rules"), against a real server in-process (real SQLite
// file, real sockets) and, for the plan, the real swarm: what it answers is what a trigger with
// the same request decides, it records nothing, and it never echoes a secret.
#include <catch2/catch.hpp>
#include <set>

#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

ServiceOptions no_docker() {
  ServiceOptions o;
  o.drivers.set("docker-host", "http://127.0.0.1:1");
  return o;
}

json expect(const OutboundResponse& r, int status) {
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == status);
  return r.body.empty() ? json() : json::parse(r.body);
}

const json kRules = json::parse(R"({
  "default": "ignore",
  "rules": [
    {"name": "not prod", "when": {"field": "query:env", "op": "not_equals", "value": "prod"},
     "then": "ignore"},
    {"name": "critical",
     "when": {"all": [{"field": "header:X-Kind", "op": "equals", "value": "alert"},
                      {"field": "body:/labels/severity", "op": "in",
                       "value": ["critical", "page"]}]},
     "set": {"by": {"from_request": "body:/scale_by"}}}]})");

json scale_receiver(const std::string& name, const std::string& service,
                    const json& rules = kRules) {
  return {{"name", name},
          {"driver", "scale-service"},
          {"config", {{"service", service}, {"action", "up"}, {"by", 1}, {"min", 0}, {"max", 5}}},
          {"rules", rules}};
}

json sample(const json& body, const std::string& env = "prod", const std::string& kind = "alert") {
  return {{"headers", {{"x-kind", kind}}}, {"query", {{"env", env}}}, {"body", body}};
}

}  // namespace

TEST_CASE("rules tester: the matching rule, the compared values and what set makes") {
  TestServer s("", no_docker());
  json rec = expect(
      s.request("POST", "/api/v1/receivers?check_peer=false", scale_receiver("tested", "web")),
      201);
  const std::string path = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());

  SECTION("a matching rule runs, with set's value in the effective config") {
    json out = expect(
        s.request("POST", path + "/rules/test",
                  {{"request", sample({{"labels", {{"severity", "page"}}}, {"scale_by", 3}})}}),
        200);
    CHECK(out["outcome"] == "accepted");
    CHECK(out["status"] == 202);
    CHECK(out["matched"] == json{{"index", 1}, {"name", "critical"}});
    CHECK(out["set"] == json{{"by", 3}});
    CHECK(out["config"]["by"] == 3);
    CHECK(out["config"]["service"] == "web");
    CHECK(out["action"] == "up");
    CHECK(out["plan"].is_null());  // not asked
    REQUIRE(out["rules"].size() == 2);
    CHECK(out["rules"][0]["evaluated"] == true);
    CHECK(out["rules"][0]["matched"] == false);
    CHECK(out["rules"][0]["compared"][0] == json{{"path", "query:env"},
                                                 {"op", "not_equals"},
                                                 {"expected", "prod"},
                                                 {"actual", "prod"},
                                                 {"result", false}});
    const json& compared = out["rules"][1]["compared"];
    REQUIRE(compared.size() == 2);
    CHECK(compared[0]["actual"] == "alert");  // header names compare without case
    CHECK(compared[1]["path"] == "body:/labels/severity");
    CHECK(compared[1]["actual"] == "page");
    CHECK(compared[1]["result"] == true);
    CHECK(out["not_checked"].size() == 2);
    CHECK(s.execution_count() == 0);  // a test records nothing
  }

  SECTION("an ignored request shows the values each rule compared") {
    json out = expect(s.request("POST", path + "/rules/test",
                                {{"request", sample({{"labels", {{"severity", "info"}}}})}}),
                      200);
    CHECK(out["outcome"] == "ignored");
    CHECK(out["status"] == 200);
    CHECK(out["matched"].is_null());  // the default ignored it
    CHECK(out["reason"] == "no rule matched, and the rules' default ignores the request");
    CHECK(out["set"].is_null());
    CHECK(out["config"].is_null());
    const json& compared = out["rules"][1]["compared"];
    REQUIRE(compared.size() == 2);
    CHECK(compared[1]["expected"] == json{"critical", "page"});
    CHECK(compared[1]["actual"] == "info");
    CHECK(compared[1]["result"] == false);

    // The first rule decides; the second is then not evaluated (as on a trigger).
    json dev =
        expect(s.request("POST", path + "/rules/test", {{"request", sample({}, "dev")}}), 200);
    CHECK(dev["outcome"] == "ignored");
    CHECK(dev["matched"]["name"] == "not prod");
    CHECK(dev["reason"] == "rule \"not prod\" ignored the request");
    CHECK(dev["rules"][1]["evaluated"] == false);
    CHECK(dev["rules"][1]["compared"].empty());
  }

  SECTION("a disabled receiver is the trigger's 403, with what its rules would decide") {
    expect(s.request("POST", path + "/disable"), 200);
    json out =
        expect(s.request("POST", path + "/rules/test", {{"request", sample({}, "dev")}}), 200);
    CHECK(out["outcome"] == "rejected");
    CHECK(out["status"] == 403);
    CHECK(out["error"]["error"] == "receiver_disabled");
    CHECK(out["matched"]["name"] == "not prod");
  }

  SECTION("a set value the request lacks is the trigger's 422, inside a 200") {
    json out = expect(s.request("POST", path + "/rules/test",
                                {{"request", sample({{"labels", {{"severity", "page"}}}})}}),
                      200);
    CHECK(out["outcome"] == "rejected");
    CHECK(out["status"] == 422);
    CHECK(out["error"]["error"] == "validation_failed");
    CHECK(out["error"]["fields"][0]["field"] == "rules.rules[1].set.by");
  }

  SECTION("what the tester answers is what a trigger answers") {
    // Only an admin sees the URL; the receiver's own trigger with the same request.
    std::string url = expect(s.request("GET", path), 200)["trigger_url"];
    OutboundRequest t;
    t.method = "POST";
    t.url = url + "?env=dev";
    t.body = "{}";
    t.headers = {{"Content-Type", "application/json"}};
    auto ignored = http_request(t);
    CHECK(ignored.status == 200);
    CHECK(json::parse(ignored.body)["rule_name"] == "not prod");
    json out =
        expect(s.request("POST", path + "/rules/test", {{"request", sample({}, "dev")}}), 200);
    CHECK(out["status"] == ignored.status);
  }

  SECTION("unsaved rules are tried instead of the saved ones, and not saved") {
    json rules = json::parse(R"({"rules": [{"name": "always two", "set": {"by": 2},
      "when": {"field": "body:kind", "op": "equals", "value": "x"}}]})");
    json out = expect(s.request("POST", path + "/rules/test",
                                {{"request", {{"body", R"({"kind":"x"})"}}}, {"rules", rules}}),
                      200);
    CHECK(out["outcome"] == "accepted");
    CHECK(out["matched"]["name"] == "always two");
    CHECK(out["config"]["by"] == 2);
    CHECK(expect(s.request("GET", path), 200)["rules"] == kRules);
    // rules: null tries no rules at all: every request runs as configured.
    json none = expect(s.request("POST", path + "/rules/test",
                                 {{"request", sample({}, "dev")}, {"rules", nullptr}}),
                       200);
    CHECK(none["outcome"] == "accepted");
    CHECK(none["rules"].empty());
  }

  SECTION("invalid rules are the save's 422, with the field's path") {
    json bad = {{"rules", {{{"when", {{"field", "body:x"}, {"op", "like"}, {"value", 1}}}}}}};
    json err = expect(
        s.request("POST", path + "/rules/test", {{"request", sample({})}, {"rules", bad}}), 422);
    CHECK(err["error"] == "validation_failed");
    CHECK(err["fields"][0]["field"] == "rules.rules[0].when");
    // A set of a field the driver does not let rules set, as the save refuses it.
    json target = {{"rules", {{{"set", {{"service", "other"}}}}}}};
    err = expect(
        s.request("POST", path + "/rules/test", {{"request", sample({})}, {"rules", target}}), 422);
    CHECK(err["fields"][0]["field"] == "rules.rules[0].set.service");
  }

  SECTION("malformed input is 400/422 in the one shape; a body past the trigger limit is 413") {
    OutboundRequest raw;
    raw.method = "POST";
    raw.url = s.url() + path + "/rules/test";
    raw.body = "{\"request\":";
    raw.headers = {{"Authorization", "Bearer " + kAdminToken},
                   {"Content-Type", "application/json"}};
    json e = expect(http_request(raw), 400);
    CHECK(e["error"] == "malformed_json");
    e = expect(s.request("POST", path + "/rules/test", {{"rules", nullptr}}), 422);
    CHECK(e["fields"][0]["field"] == "request");
    e = expect(s.request("POST", path + "/rules/test",
                         {{"request", {{"headers", {{"X-A", 1}}}, {"method", "GET"}}}}),
               422);
    std::set<std::string> fields;
    for (const auto& f : e["fields"]) fields.insert(f["field"].get<std::string>());
    CHECK(fields == std::set<std::string>{"request.headers.X-A", "request.method"});
    e = expect(s.request("POST", path + "/rules/test", {{"request", {{"source", "nope"}}}}), 422);
    CHECK(e["fields"][0]["field"] == "request.source");
    // A whole request over the HTTP limit (1 MiB) is refused before it is read.
    json big = json::array();
    std::string chunk(1000, 'a');
    for (int i = 0; i < 1050; ++i) big.push_back(chunk);
    auto too_big = s.request("POST", path + "/rules/test", {{"request", {{"body", big}}}});
    CHECK(too_big.status == 413);
    CHECK(json::parse(too_big.body)["error"] == "payload_too_large");
    // One within it whose body, as the JSON text a sender would POST, is over a trigger's limit:
    // 1e1 is sent as 10.0, so 230,000 of them are 920 KB here and 1.15 MB as a body.
    raw.body = R"({"request":{"body":[)";
    for (int i = 0; i < 230000; ++i) raw.body += i ? ",1e1" : "1e1";
    raw.body += "]}}";
    REQUIRE(raw.body.size() < (size_t{1} << 20));
    json over = expect(http_request(raw), 413);
    CHECK(over["error"] == "payload_too_large");
    CHECK(over["message"].get<std::string>().rfind("request.body is larger than 1048576", 0) == 0);
    CHECK(expect(s.request("POST", "/api/v1/receivers/999999/rules/test",
                           {{"request", json::object()}}),
                 404)["error"] == "not_found");
  }

  SECTION("a read-only token is refused; an operator may test") {
    json ro =
        expect(s.request("POST", "/api/v1/tokens", {{"name", "dash"}, {"role", "read-only"}}), 201);
    json op =
        expect(s.request("POST", "/api/v1/tokens", {{"name", "ops"}, {"role", "operator"}}), 201);
    auto as = [&](const json& token, const std::string& p, const json& body) {
      return s.request("POST", p, body, false,
                       {{"Authorization", "Bearer " + token["token"].get<std::string>()}});
    };
    json body = {{"request", sample({})}};
    json e = expect(as(ro, path + "/rules/test", body), 403);
    CHECK(e["error"] == "forbidden");
    CHECK(e.size() == 2);
    expect(as(ro, "/api/v1/rules/test", body), 403);
    CHECK(expect(as(op, path + "/rules/test", body), 200)["outcome"] == "ignored");
  }
}

TEST_CASE("rules tester: an unsaved receiver (the create form), secrets never echoed") {
  TestServer s("", no_docker());
  const std::string secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10aGUtdGVzdA==";
  const std::string authz = "Bearer very-secret-peer-credential";
  json body = {
      {"driver", "webhook"},
      {"config",
       {{"url", "https://hooks.invalid/in"}, {"secret", secret}, {"authorization", authz}}},
      {"rules",
       {{"rules",
         {{{"name", "pushes"},
           {"when", {{"field", "header:X-GitHub-Event"}, {"op", "equals"}, {"value", "push"}}}}}},
        {"default", "ignore"}}},
      {"request", {{"headers", {{"X-GitHub-Event", "push"}}}, {"body", "not json"}}},
      {"plan", true}};
  auto resp = s.request("POST", "/api/v1/rules/test", body);
  json out = expect(resp, 200);
  CHECK(out["outcome"] == "accepted");
  CHECK(out["matched"]["name"] == "pushes");
  CHECK(out["config"]["url"] == "https://hooks.invalid/in");
  CHECK(out["config"]["secret"] == kRedacted);
  CHECK(out["config"]["authorization"] == kRedacted);
  CHECK(resp.body.find(secret) == std::string::npos);
  CHECK(resp.body.find("very-secret") == std::string::npos);
  CHECK(out["plan"]["ok"] == true);  // an admin may have the unsaved config planned

  // An operator's plan of an unsaved config is refused (it could name any peer); the rest runs.
  json op =
      expect(s.request("POST", "/api/v1/tokens", {{"name", "ops"}, {"role", "operator"}}), 201);
  json as_op = expect(s.request("POST", "/api/v1/rules/test", body, false,
                                {{"Authorization", "Bearer " + op["token"].get<std::string>()}}),
                      200);
  CHECK(as_op["outcome"] == "accepted");
  CHECK(as_op["plan"]["ok"] == false);
  CHECK(as_op["plan"]["error"].get<std::string>().find("admin") != std::string::npos);

  // The save's config checks, with their field paths.
  json bad = body;
  bad["config"].erase("url");
  CHECK(expect(s.request("POST", "/api/v1/rules/test", bad), 422)["fields"][0]["field"] ==
        "config.url");
  bad = body;
  bad.erase("driver");
  CHECK(expect(s.request("POST", "/api/v1/rules/test", bad), 422)["fields"][0]["field"] ==
        "driver");
  CHECK(s.execution_count() == 0);
}

TEST_CASE("rules tester: plan: true asks the real swarm, as a dry run does") {
  if (!swarm_or_skip()) return;
  Swarm::get().create_service("rt-web", 2);
  TestServer s;
  json rec = s.create_receiver(scale_receiver("rt", "rt-web"));
  const std::string path = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  json out = expect(
      s.request("POST", path + "/rules/test",
                {{"request", sample({{"labels", {{"severity", "critical"}}}, {"scale_by", 2}})},
                 {"plan", true}}),
      200);
  CHECK(out["outcome"] == "accepted");
  CHECK(out["config"]["by"] == 2);
  INFO(out["plan"].dump());
  REQUIRE(out["plan"]["ok"] == true);
  // 2 replicas, up by the request's 2 (not the saved 1), within max 5.
  CHECK(out["plan"]["plan"]["replicas"] == 4);
  CHECK(Swarm::get().replicas("rt-web") == 2);  // planned, not applied
  CHECK(s.execution_count() == 0);

  // A service that is gone: the plan's error, not a failed test.
  Swarm::get().docker("service rm rt-web");
  out = expect(
      s.request("POST", path + "/rules/test",
                {{"request", sample({{"labels", {{"severity", "critical"}}}, {"scale_by", 2}})},
                 {"plan", true}}),
      200);
  CHECK(out["plan"]["ok"] == false);
  CHECK(out["plan"]["error"].is_string());
}

TEST_CASE(
    "rules tester: a saved receiver's secrets and inbound auth stay as stored; none is echoed") {
  TestServer s("", no_docker());
  const std::string secret = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LWZvci10aGUtdGVzdA==";
  const std::string bearer = "in-bearer-credential-0123456789";
  json rec = s.create_receiver({{"name", "signed"},
                                {"driver", "webhook"},
                                {"config",
                                 {{"url", "https://hooks.invalid/in"},
                                  {"secret", secret},
                                  {"authorization", "Bearer peer-credential-abcdef"}}},
                                {"auth", {{"bearer_token", bearer}}}});
  const std::string path = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  json before = expect(s.request("GET", path), 200);
  json rules = json::parse(R"({"default": "ignore", "rules": [{"name": "pushes",
    "when": {"field": "header:X-GitHub-Event", "value": "push"}}]})");
  auto resp = s.request(
      "POST", path + "/rules/test",
      {{"request", {{"headers", {{"X-GitHub-Event", "push"}}}}}, {"rules", rules}, {"plan", true}});
  json out = expect(resp, 200);
  CHECK(out["outcome"] == "accepted");  // inbound auth (the bearer) is not checked
  CHECK(out["matched"]["name"] == "pushes");
  CHECK(out["config"]["secret"] == kRedacted);
  CHECK(out["config"]["authorization"] == kRedacted);
  CHECK(out["plan"]["ok"] == true);
  CHECK(out["not_checked"][0].get<std::string>().find("inbound auth") != std::string::npos);
  for (const std::string& leak : {secret, bearer, std::string("peer-credential-abcdef")})
    CHECK(resp.body.find(leak) == std::string::npos);
  // The saved receiver is unchanged, and its real trigger still needs the bearer.
  json after = expect(s.request("GET", path), 200);
  CHECK(after["version"] == before["version"]);
  CHECK(after["rules"].is_null());
  OutboundRequest t;
  t.method = "POST";
  t.url = after["trigger_url"];
  t.body = "{}";
  t.headers = {{"Content-Type", "application/json"}};
  CHECK(http_request(t).status == 401);
}
