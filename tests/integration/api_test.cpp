// The management API and the trigger path's refusals, against a real server and SQLite file.
#include <catch2/catch.hpp>

#include "../support/webhook_sink.h"
#include "crypto.h"
#include "harness.h"
#include "token.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {
void check_error_shape(const OutboundResponse& r, int status) {
  INFO(r.body);
  CHECK(r.status == status);
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["error"].is_string());
  CHECK(j["message"].is_string());
}
}  // namespace

TEST_CASE("api: the management API requires an admin token") {
  TestServer s;
  check_error_shape(s.request("GET", "/api/v1/receivers", nullptr, false), 401);
  check_error_shape(s.request("GET", "/api/v1/receivers", nullptr, false,
                              {{"Authorization", "Bearer not-the-token"}}),
                    401);
  CHECK(s.request("GET", "/api/v1/receivers").status == 200);
}

TEST_CASE("api: errors have one JSON shape and the right status") {
  TestServer s;
  check_error_shape(s.request("GET", "/nope"), 404);
  check_error_shape(s.request("GET", "/api/v1/receivers/999"), 404);
  check_error_shape(s.request("GET", "/api/v1/receivers/abc"), 404);
  auto not_allowed = s.request("PATCH", "/api/v1/receivers");
  check_error_shape(not_allowed, 405);
  REQUIRE(not_allowed.header("allow"));
  CHECK(*not_allowed.header("allow") == "GET, POST");
  CHECK(s.request("GET", "/api/v1/receivers").header("x-request-id"));
  check_error_shape(s.request("GET", "/_webhooks/abc.def.ghi", nullptr, false), 405);
  OutboundRequest raw;
  raw.method = "POST";
  raw.url = s.url() + "/api/v1/receivers";
  raw.body = "{not json";
  raw.headers = {{"Authorization", "Bearer " + kAdminToken}, {"Content-Type", "application/json"}};
  check_error_shape(http_request(raw), 400);
  raw.headers = {{"Authorization", "Bearer " + kAdminToken}, {"Content-Type", "text/plain"}};
  check_error_shape(http_request(raw), 415);
  raw.headers = {{"Authorization", "Bearer " + kAdminToken}, {"Content-Type", "application/json"}};
  raw.body = "{\"name\":\"\xff\xfe\"}";  // invalid UTF-8
  check_error_shape(http_request(raw), 400);
  auto r = s.request("POST", "/api/v1/receivers",
                     {{"name", "x"}, {"driver", "teleport"}, {"config", json::object()}});
  check_error_shape(r, 422);
  CHECK(json::parse(r.body)["fields"][0]["field"] == "driver");
  check_error_shape(s.request("GET", "/api/v1/executions?status=bogus"), 400);
  CHECK(s.request("GET", "/healthz").status == 200);
}

TEST_CASE("api: forged trigger tokens get 401 and record nothing") {
  TestServer s;
  auto real = Keyring::load_or_create(s.data_dir() + "/keys");
  REQUIRE(real.ok());
  TokenClaims claims{1, 1, "scale-service", "swarm:web", "up"};
  std::string good_shape = real->sign(claims);
  auto forger = Keyring::from_keys({{real->keys().back().kid, std::string(32, 'f')}});
  std::vector<std::string> forged = {
      forger.sign(claims),                                              // right kid, wrong secret
      Keyring::from_keys({{"kX", std::string(32, 'f')}}).sign(claims),  // unknown kid
      good_shape.substr(0, good_shape.size() - 3),                      // truncated
      good_shape + "=",                                                 // padded
      "eyJhbGciOiJub25lIn0.eyJyaWQiOjF9.",                              // alg none
      "not-a-token",
      std::string(4000, 'A'),
  };
  for (const auto& t : forged) {
    auto r = s.trigger(s.url() + "/_webhooks/" + t);
    INFO(t.substr(0, 40));
    check_error_shape(r, 401);
    CHECK(r.body.find(t) == std::string::npos);
  }
  // In the header form too, and with no token at all.
  check_error_shape(s.trigger(s.url() + "/_webhooks/trigger", {{"X-Tripline-Token", forged[0]}}),
                    401);
  check_error_shape(s.trigger(s.url() + "/_webhooks/trigger"), 401);
  // A validly signed token for a receiver that does not exist.
  check_error_shape(s.trigger(s.url() + "/_webhooks/" + good_shape), 401);
  CHECK(s.execution_count() == 0);
  auto metrics = s.request("GET", "/metrics", nullptr, false).body;
  CHECK(metrics.find("tripline_triggers_rejected_total{reason=\"bad_signature\"} 2") !=
        std::string::npos);
  CHECK(metrics.find("tripline_triggers_accepted_total 0") != std::string::npos);
}

TEST_CASE("api: admin tokens can be created, used and revoked; only hashes are stored") {
  TestServer s;
  auto r = s.request("POST", "/api/v1/tokens", {{"name", "ci"}});
  INFO(r.body);
  REQUIRE(r.status == 201);
  auto created = json::parse(r.body);
  std::string token = created["token"];
  auto with = [&](const std::string& t) {
    return s.request("GET", "/api/v1/receivers", nullptr, false, {{"Authorization", "Bearer " + t}})
        .status;
  };
  CHECK(with(token) == 200);
  auto list = json::parse(s.request("GET", "/api/v1/tokens").body);
  CHECK(list["items"].size() == 2);
  CHECK(list.dump().find(token) == std::string::npos);
  CHECK(sh("sqlite3 " + s.data_dir() + "/tripline.db .dump | grep -c '" + token + "' || true") ==
        "0");
  CHECK(s.request("DELETE", "/api/v1/tokens/" + std::to_string(created["id"].get<int>())).status ==
        204);
  CHECK(with(token) == 401);
}

TEST_CASE("api: drivers are listed with a JSON Schema of their config") {
  TestServer s;
  auto r = s.request("GET", "/api/v1/drivers");
  REQUIRE(r.status == 200);
  auto j = json::parse(r.body);
  REQUIRE(j["items"].size() >= 1);
  bool found = false;
  for (const auto& d : j["items"]) {
    CHECK(d["config_schema"]["type"] == "object");
    found |= d["name"] == "scale-service";
  }
  CHECK(found);
}

TEST_CASE("api: workers can be paused and resumed") {
  TestServer s;
  CHECK(json::parse(s.request("POST", "/api/v1/workers/pause").body)["paused"] == true);
  CHECK(json::parse(s.request("GET", "/api/v1/workers").body)["paused"] == true);
  CHECK(json::parse(s.request("POST", "/api/v1/workers/resume").body)["paused"] == false);
}

TEST_CASE("api: readyz checks the database and metrics are Prometheus text") {
  TestServer s;
  auto r = s.request("GET", "/readyz", nullptr, false);
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) == json{{"status", "ready"}});  // details only for an admin
  CHECK(json::parse(s.request("GET", "/readyz").body)["checks"]["database"] == "ok");
  auto m = s.request("GET", "/metrics", nullptr, false);
  CHECK(m.status == 200);
  CHECK(m.body.find("# TYPE tripline_http_requests_total counter") != std::string::npos);
  CHECK(m.body.find("tripline_queue_depth 0") != std::string::npos);
}

TEST_CASE("api: the web UI is served with a strict CSP, content types and revalidation") {
  TestServer s;
  auto page = s.request("GET", "/", nullptr, false);
  REQUIRE(page.status == 200);
  REQUIRE(page.header("content-type"));
  CHECK(page.header("content-type")->rfind("text/html", 0) == 0);
  REQUIRE(page.header("content-security-policy"));
  CHECK(page.header("content-security-policy")->find("script-src 'self'") != std::string::npos);
  CHECK(page.header("content-security-policy")->find("unsafe-inline") == std::string::npos);
  REQUIRE(page.header("etag"));
  auto again = s.request("GET", "/", nullptr, false, {{"If-None-Match", *page.header("etag")}});
  CHECK(again.status == 304);
  CHECK(s.request("GET", "/no-such-file.js", nullptr, false).status == 404);
}

TEST_CASE("api: an edit with If-Match saves only over the version it read") {
  WebhookSink sink;
  ServiceOptions o;
  o.drivers.set("allow-local-webhook-targets", "true");  // the sink is on 127.0.0.1
  TestServer s("", o);
  json hook = s.create_receiver(
      {{"name", "hook"},
       {"driver", "webhook"},
       {"config",
        {{"url", sink.url("/hook")}, {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}});
  const std::string path = "/api/v1/receivers/" + hook["id"].dump();
  auto got = s.request("GET", path);
  REQUIRE(got.status == 200);
  json read = json::parse(got.body);
  REQUIRE(got.header("etag"));
  CHECK(*got.header("etag") == "\"" + read["version"].dump() + "\"");
  const std::string etag = *got.header("etag");
  json edit = {{"name", "hook"}, {"config", read["config"]}};

  // Someone else saves first: the version moves on, and the edit made from the old read is
  // refused without saving anything.
  json theirs = edit;
  theirs["name"] = "theirs";
  auto first = s.request("PUT", path, theirs, true, {{"If-Match", etag}});
  INFO(first.body);
  REQUIRE(first.status == 200);
  CHECK(json::parse(first.body)["version"].get<int64_t>() > read["version"].get<int64_t>());
  json mine = edit;
  mine["name"] = "mine";
  auto stale = s.request("PUT", path, mine, true, {{"If-Match", etag}});
  INFO(stale.body);
  CHECK(stale.status == 412);
  CHECK(json::parse(stale.body)["error"] == "precondition_failed");
  CHECK(json::parse(s.request("GET", path).body)["name"] == "theirs");
  // Read again, then it saves.
  auto again = s.request("GET", path);
  auto saved = s.request("PUT", path, mine, true, {{"If-Match", *again.header("etag")}});
  CHECK(saved.status == 200);
  CHECK(json::parse(s.request("GET", path).body)["name"] == "mine");
  // Malformed: 400 in the one error shape, nothing saved. Without If-Match: saved as before.
  for (const char* bad :
       {"3", "\"\"", "\"x\"", "\"0\"", "*", "W/\"3\"", "\"3\" ", "\"99999999999999999999\""}) {
    INFO(bad);
    auto r = s.request("PUT", path, theirs, true, {{"If-Match", bad}});
    CHECK(r.status == 400);
    CHECK(json::parse(r.body)["error"] == "bad_header");
  }
  CHECK(json::parse(s.request("GET", path).body)["name"] == "mine");
  CHECK(s.request("PUT", path, theirs).status == 200);
}

TEST_CASE("api: ?check_peer=false saves a receiver while its peer is unreachable") {
  ServiceOptions o;
  o.drivers.set("docker-host", "tcp://127.0.0.1:1");  // nothing listens on port 1
  TestServer s("", o);
  json body = {{"name", "web-up"},
               {"driver", "scale-service"},
               {"config", {{"service", "web"}, {"action", "up"}, {"by", 1}, {"max", 5}}}};
  // By default the live check refuses it, naming the field and saying why.
  auto checked = s.request("POST", "/api/v1/receivers", body);
  INFO(checked.body);
  REQUIRE(checked.status == 422);
  json err = json::parse(checked.body);
  CHECK(err["fields"][0]["field"] == "config.service");
  CHECK(err["fields"][0]["message"].get<std::string>().rfind("could not be checked", 0) == 0);

  CHECK(s.request("POST", "/api/v1/receivers?check_peer=maybe", body).status == 400);
  // Without the peer check the config is still validated in full.
  json bad = body;
  bad["config"]["min"] = 9;
  CHECK(s.request("POST", "/api/v1/receivers?check_peer=false", bad).status == 422);

  auto saved = s.request("POST", "/api/v1/receivers?check_peer=false", body);
  INFO(saved.body);
  REQUIRE(saved.status == 201);
  json r = json::parse(saved.body);
  const std::string path = "/api/v1/receivers/" + r["id"].dump();
  json edit = {{"name", "web-up"}, {"config", r["config"]}};
  edit["config"]["max"] = 6;
  CHECK(s.request("PUT", path, edit).status == 422);  // the edit is checked again
  CHECK(s.request("PUT", path + "?dry_run=true&check_peer=false", edit).status == 200);
  auto put = s.request("PUT", path + "?check_peer=false", edit);
  INFO(put.body);
  REQUIRE(put.status == 200);
  CHECK(json::parse(put.body)["config"]["max"] == 6);
}
