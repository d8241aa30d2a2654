// The operations page's API (docs/operations.md "The operations page"), against a real server and
// SQLite file: who a token is (whoami), what each role may see and do of tokens and workers, the
// workers' queue by state, the peers' health with details for operators only, and the
// scale-service target picker against the real swarm, an unreachable Docker and a hostile one.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "../support/canned_peer.h"
#include "../support/webhook_sink.h"
#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

ServiceOptions docker_at(const std::string& host, ServiceOptions o = {}) {
  o.drivers.set("docker-host", host);
  return o;
}

OutboundResponse as(const TestServer& s, const std::string& token, const std::string& method,
                    const std::string& path, const json& body = nullptr) {
  return s.request(method, path, body, false, {{"Authorization", "Bearer " + token}});
}

json expect(const OutboundResponse& r, int status) {
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == status);
  return r.body.empty() ? json() : json::parse(r.body);
}

// The one error shape (server/api/responses.h): {"error", "message"} and nothing else.
void expect_error(const OutboundResponse& r, int status, const std::string& code) {
  json e = expect(r, status);
  CHECK(e["error"] == code);
  CHECK(e["message"].is_string());
  CHECK(e.size() == 2);
}

struct Tokens {
  std::string op, ro;
};

Tokens role_tokens(const TestServer& s) {
  Tokens t;
  t.op =
      expect(s.request("POST", "/api/v1/tokens", {{"name", "night-shift"}, {"role", "operator"}}),
             201)["token"];
  t.ro = expect(s.request("POST", "/api/v1/tokens", {{"name", "wallboard"}, {"role", "read-only"}}),
                201)["token"];
  return t;
}

// Waits until the readiness prober has answered for `peer` (its first round runs at start).
json peers_when_checked(const TestServer& s, const std::string& token, const std::string& peer) {
  json body;
  for (int i = 0; i < 100; ++i) {
    body = expect(as(s, token, "GET", "/api/v1/peers"), 200);
    for (const auto& p : body["items"])
      if (p["peer"] == peer && !p["checked_at"].is_null()) return body;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  FAIL("the peer " << peer << " was never checked: " << body.dump());
  return body;
}

const json* find_peer(const json& body, const std::string& peer) {
  for (const auto& p : body["items"])
    if (p["peer"] == peer) return &p;
  return nullptr;
}

}  // namespace

TEST_CASE("operations: whoami names the caller's token and role") {
  TestServer s("", docker_at("http://127.0.0.1:1"));
  Tokens t = role_tokens(s);
  json admin = expect(s.request("GET", "/api/v1/whoami"), 200);
  CHECK(admin["role"] == "admin");
  CHECK(admin["name"].is_string());
  CHECK(admin["id"].is_number_integer());
  json op = expect(as(s, t.op, "GET", "/api/v1/whoami"), 200);
  CHECK(op["name"] == "night-shift");
  CHECK(op["role"] == "operator");
  json ro = expect(as(s, t.ro, "GET", "/api/v1/whoami"), 200);
  CHECK(ro["name"] == "wallboard");
  CHECK(ro["role"] == "read-only");
  CHECK(ro.size() == 3);  // id, name, role: never the token or its hash
  CHECK(s.request("GET", "/api/v1/whoami", nullptr, false).status == 401);
  CHECK(s.request("POST", "/api/v1/whoami").status == 405);
}

TEST_CASE(
    "operations: a read-only token can neither create tokens nor pause; who paused is for "
    "operators") {
  TestServer s("", docker_at("http://127.0.0.1:1"));
  Tokens t = role_tokens(s);
  expect_error(as(s, t.ro, "POST", "/api/v1/tokens", {{"name", "x"}, {"role", "read-only"}}), 403,
               "forbidden");
  expect_error(as(s, t.op, "POST", "/api/v1/tokens", {{"name", "x"}, {"role", "read-only"}}), 403,
               "forbidden");
  expect_error(as(s, t.ro, "POST", "/api/v1/workers/pause"), 403, "forbidden");
  CHECK(expect(as(s, t.ro, "GET", "/api/v1/workers"), 200)["paused"] == false);

  json paused = expect(as(s, t.op, "POST", "/api/v1/workers/pause"), 200);
  CHECK(paused["paused"] == true);
  CHECK(paused["paused_by"] == "night-shift");
  CHECK(paused["paused_at"].is_string());
  // The read-only token sees that and since when, not who (the audit log is operator+).
  json seen = expect(as(s, t.ro, "GET", "/api/v1/workers"), 200);
  CHECK(seen["paused"] == true);
  CHECK(seen["paused_at"] == paused["paused_at"]);
  CHECK(seen["paused_by"].is_null());
  CHECK(expect(s.request("GET", "/api/v1/workers"), 200)["paused_by"] == "night-shift");
  // Pausing again (another operator, a second click) changes nothing and records nothing: who
  // paused and since when still name the first pause.
  auto workers_rows = [&] {
    return expect(s.request("GET", "/api/v1/audit?target=workers"), 200)["items"].size();
  };
  REQUIRE(workers_rows() == 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // paused_at has milliseconds
  json again = expect(s.request("POST", "/api/v1/workers/pause"), 200);
  CHECK(again["paused"] == true);
  CHECK(again["paused_by"] == "night-shift");
  CHECK(again["paused_at"] == paused["paused_at"]);
  CHECK(workers_rows() == 1);
  expect_error(as(s, t.ro, "POST", "/api/v1/workers/resume"), 403, "forbidden");
  json resumed = expect(as(s, t.op, "POST", "/api/v1/workers/resume"), 200);
  CHECK(resumed["paused"] == false);
  CHECK(resumed["paused_at"].is_null());
  CHECK(resumed["paused_by"].is_null());
  CHECK(workers_rows() == 2);
  // Resuming running workers records nothing either.
  CHECK(expect(s.request("POST", "/api/v1/workers/resume"), 200)["paused"] == false);
  CHECK(workers_rows() == 2);
}

TEST_CASE("operations: the workers' queue by state, queued, running and waiting to retry") {
  WebhookSink sink;
  sink.script({{503, "busy"}, {503, "busy"}, {503, "busy"}, {503, "busy"}});
  ServiceOptions o = docker_at("http://127.0.0.1:1");
  o.drivers.set("allow-local-webhook-targets", "true");  // the sink is on 127.0.0.1
  o.retry.base = std::chrono::hours(1);                  // a retry waits longer than the test
  o.retry.max = std::chrono::hours(1);
  TestServer s("", o);
  json hook = s.create_receiver(
      {{"name", "hook"},
       {"driver", "webhook"},
       {"config",
        {{"url", sink.url("/hook")}, {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}});
  expect(s.request("POST", "/api/v1/workers/pause"), 200);
  for (int i = 0; i < 3; ++i)
    REQUIRE(s.request("POST", hook["trigger_url"], json{{"n", i}}, false).status == 202);
  json w = expect(s.request("GET", "/api/v1/workers"), 200);
  CHECK(w["queued"] == 3);
  CHECK(w["running"] == 0);
  CHECK(w["retrying"] == 0);
  CHECK(w["queue_depth"] == 3);

  expect(s.request("POST", "/api/v1/workers/resume"), 200);
  // The first fails with 503 (retryable) and waits an hour; the two behind it keep its lane's
  // order and stay queued.
  REQUIRE(sink.wait_for(1, std::chrono::seconds(10)));
  for (int i = 0; i < 100; ++i) {
    w = expect(s.request("GET", "/api/v1/workers"), 200);
    if (w["retrying"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(w.dump());
  CHECK(w["retrying"] == 1);
  CHECK(w["queued"] == 2);
  CHECK(w["running"] == 0);
  CHECK(w["queue_depth"] == 3);
}

TEST_CASE(
    "operations: peers' health, names and states for read-only, addresses and errors for "
    "operators") {
  TestServer s("", docker_at("http://127.0.0.1:1"));
  Tokens t = role_tokens(s);
  json ro = peers_when_checked(s, t.ro, "docker");
  INFO(ro.dump());
  const json* docker = find_peer(ro, "docker");
  REQUIRE(docker);
  CHECK((*docker)["state"] == "down");
  CHECK((*docker)["checked_at"].is_string());
  CHECK((*docker)["used_by"].size() >= 1);  // scale-service, and redeploy on the same Docker
  CHECK_FALSE(docker->contains("address"));
  CHECK_FALSE(docker->contains("detail"));
  const json* db = find_peer(ro, "database");
  REQUIRE(db);
  CHECK((*db)["state"] == "ok");
  CHECK(ro.dump().find("127.0.0.1") == std::string::npos);
  CHECK(ro.dump().find(s.data_dir()) == std::string::npos);
  // Docker at one address is one row, whichever drivers use it.
  int dockers = 0;
  for (const auto& p : ro["items"]) dockers += p["peer"] == "docker";
  CHECK(dockers == 1);

  json op = expect(as(s, t.op, "GET", "/api/v1/peers"), 200);
  docker = find_peer(op, "docker");
  REQUIRE(docker);
  CHECK((*docker)["address"] == "http://127.0.0.1:1");
  CHECK((*docker)["detail"].is_string());
  CHECK_FALSE((*docker)["detail"].get<std::string>().empty());

  // /readyz keeps the same line: its checks for operators and admins, not for read-only.
  CHECK_FALSE(expect(as(s, t.ro, "GET", "/readyz"), 200).contains("checks"));
  CHECK(expect(as(s, t.op, "GET", "/readyz"), 200)["checks"].contains("scale-service"));
}

TEST_CASE("operations: the scale-service picker lists the swarm's services with their replicas") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("picker-api", 2);
  swarm.create_service("picker-web", 1);
  TestServer s("", docker_at(swarm.docker_host()));
  Tokens t = role_tokens(s);
  const std::string path = "/api/v1/drivers/scale-service/targets?backend=swarm";
  json list = expect(as(s, t.op, "GET", path), 200);
  INFO(list.dump());
  CHECK(list["driver"] == "scale-service");
  CHECK(list["truncated"] == false);
  std::map<std::string, json> by_name;
  std::vector<std::string> order;
  for (const auto& i : list["items"]) {
    by_name[i["name"]] = i;
    order.push_back(i["name"]);
  }
  REQUIRE(by_name.count("picker-api"));
  REQUIRE(by_name.count("picker-web"));
  CHECK(by_name["picker-api"]["replicas"] == 2);
  CHECK(by_name["picker-web"]["replicas"] == 1);
  CHECK(by_name["picker-api"]["config"] == json{{"backend", "swarm"}, {"service", "picker-api"}});
  CHECK(std::is_sorted(order.begin(), order.end()));
  // Scaled outside tripline: the next listing says so (read from Docker, not remembered; another
  // limit is another listing, not the answer shared for a few seconds).
  swarm.docker("service scale --detach picker-web=3");
  CHECK(
      expect(as(s, t.op, "GET", path + "&limit=199"), 200)["items"].dump().find(
          R"({"config":{"backend":"swarm","service":"picker-web"},"name":"picker-web","replicas":3})") !=
      std::string::npos);

  // Bounded by limit, and says it left some out.
  json one = expect(as(s, t.op, "GET", path + "&limit=1"), 200);
  CHECK(one["items"].size() == 1);
  CHECK(one["truncated"] == true);
  // Admin too; read-only not (it lists every service of the swarm).
  expect(s.request("GET", path), 200);
  expect_error(as(s, t.ro, "GET", path), 403, "forbidden");
  // Hostile or wrong queries and drivers.
  expect_error(as(s, t.op, "GET", path + "&limit=0"), 400, "bad_query");
  expect_error(as(s, t.op, "GET", path + "&limit=501"), 400, "bad_query");
  expect_error(as(s, t.op, "GET", "/api/v1/drivers/scale-service/targets?backend=nomad"), 400,
               "bad_query");
  expect_error(as(s, t.op, "GET", "/api/v1/drivers/scale-service/targets?backend=kubernetes"), 404,
               "not_supported");  // no kubeconfig here
  expect_error(as(s, t.op, "GET", "/api/v1/drivers/webhook/targets"), 404, "not_supported");
  expect_error(as(s, t.op, "GET", "/api/v1/drivers/no-such/targets"), 404, "not_found");
  CHECK(as(s, t.op, "POST", path).status == 405);
}

TEST_CASE("operations: the picker's peer unreachable or hostile is a 502 in the one error shape") {
  SECTION("nothing listens") {
    TestServer s("", docker_at("http://127.0.0.1:1"));
    auto r = s.request("GET", "/api/v1/drivers/scale-service/targets?backend=swarm");
    expect_error(r, 502, "peer_unavailable");
    CHECK(json::parse(r.body)["message"].get<std::string>().find("cannot list the services") !=
          std::string::npos);
  }
  SECTION("Docker answers past the limits, or not a list, or odd items") {
    CannedPeer docker;
    TestServer s("", docker_at(docker.url()));
    const std::string path = "/api/v1/drivers/scale-service/targets?backend=swarm";
    // Each answer with its own limit: one listing's answer is shared for a few seconds.
    // Nested past json_limits.h's depth.
    docker.answer("/v1.41/services", 200, "application/json",
                  std::string(200, '[') + std::string(200, ']'));
    expect_error(s.request("GET", path + "&limit=101"), 502, "peer_unavailable");
    // Past the 1 MiB a peer's answer may take.
    docker.answer("/v1.41/services", 200, "application/json",
                  "[\"" + std::string(2 << 20, 'x') + "\"]");
    expect_error(s.request("GET", path + "&limit=102"), 502, "peer_unavailable");
    docker.answer("/v1.41/services", 200, "application/json", R"({"not":"a list"})");
    expect_error(s.request("GET", path + "&limit=103"), 502, "peer_unavailable");
    // Items without a name, with a negative or fractional count, or not objects, are left out;
    // a global service has no replicas.
    docker.answer("/v1.41/services", 200, "application/json", R"([
      {"Spec":{"Name":"ok","Mode":{"Replicated":{"Replicas":4}}}},
      {"Spec":{"Name":"zero","Mode":{"Replicated":{}}}},
      {"Spec":{"Name":"agent","Mode":{"Global":{}}}},
      {"Spec":{"Name":"neg","Mode":{"Replicated":{"Replicas":-1}}}},
      {"Spec":{"Name":"frac","Mode":{"Replicated":{"Replicas":1.5}}}},
      {"Spec":{"Mode":{"Replicated":{"Replicas":1}}}},
      {"Spec":{"Name":7}}, 42, null, "web"])");
    json list = expect(s.request("GET", path), 200);
    CHECK(list["items"] ==
          json::parse(
              R"([{"name":"agent","config":{"backend":"swarm","service":"agent"},"replicas":null},
                          {"name":"ok","config":{"backend":"swarm","service":"ok"},"replicas":4},
                          {"name":"zero","config":{"backend":"swarm","service":"zero"},"replicas":0}])"));
  }
}

TEST_CASE("operations: one picker listing serves every request for it until it expires") {
  CannedPeer docker;
  auto services = [](int replicas) {
    return R"([{"Spec":{"Name":"web","Mode":{"Replicated":{"Replicas":)" +
           std::to_string(replicas) + "}}}}]";
  };
  docker.answer("/v1.41/services", 200, "application/json", services(2));
  ServiceOptions o = docker_at(docker.url());
  o.targets_cache_ttl = std::chrono::milliseconds(1500);
  TestServer s("", o);
  const std::string path = "/api/v1/drivers/scale-service/targets?backend=swarm";
  auto listings = [&] {
    auto p = docker.paths();
    return std::count(p.begin(), p.end(), "/v1.41/services");
  };
  auto replicas = [&](const std::string& p) {
    return expect(s.request("GET", p), 200)["items"][0]["replicas"].get<int>();
  };
  // Many tabs focusing the field at once: one listing.
  std::vector<std::thread> tabs;
  std::atomic<int> ok{0};
  for (int i = 0; i < 6; ++i)
    tabs.emplace_back([&] { ok += s.request("GET", path).status == 200; });
  for (auto& t : tabs) t.join();
  CHECK(ok == 6);
  CHECK(listings() == 1);
  // Shared while fresh, even though the peer changed; another limit is another listing.
  docker.answer("/v1.41/services", 200, "application/json", services(5));
  CHECK(replicas(path) == 2);
  CHECK(listings() == 1);
  CHECK(replicas(path + "&limit=7") == 5);
  CHECK(listings() == 2);
  // Expired: listed again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  CHECK(replicas(path) == 5);
  CHECK(listings() == 3);
  // A failure is shared too (a hung peer must not hold a thread per request).
  docker.answer("/v1.41/services", 200, "application/json", R"({"not":"a list"})");
  expect_error(s.request("GET", path + "&limit=8"), 502, "peer_unavailable");
  expect_error(s.request("GET", path + "&limit=8"), 502, "peer_unavailable");
  CHECK(listings() == 4);
}

TEST_CASE("operations: a hung peer holds a picker request no longer than the listing's deadline") {
  CannedPeer docker;
  docker.hang(true);
  ServiceOptions o = docker_at(docker.url());
  o.targets_deadline = std::chrono::milliseconds(700);
  TestServer s("", o);
  auto start = std::chrono::steady_clock::now();
  expect_error(s.request("GET", "/api/v1/drivers/scale-service/targets?backend=swarm"), 502,
               "peer_unavailable");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(took >= std::chrono::milliseconds(600));
  CHECK(took < std::chrono::milliseconds(2500));  // Docker's own call timeout is 5 s
  docker.hang(false);
}
