// scale-service against a real dockerd in swarm mode, through a real tripline server.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "../../tests/integration/harness.h"
#include "store.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {
json receiver(const std::string& name, const std::string& service, const std::string& action,
              int by, int min, int max) {
  return {{"name", name},
          {"driver", "scale-service"},
          {"config",
           {{"backend", "swarm"},
            {"service", service},
            {"action", action},
            {"by", by},
            {"min", min},
            {"max", max}}}};
}
int64_t accepted_id(const OutboundResponse& r) {
  INFO(r.body);
  REQUIRE(r.status == 202);
  return json::parse(r.body)["execution_id"].get<int64_t>();
}
}  // namespace

TEST_CASE("scale-service: create, trigger, and the swarm service scales up") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("web", 1);
  TestServer s;
  // The example body from the issue, exactly as written.
  auto r = s.create_receiver(json::parse(
      R"({"name":"web-up","driver":"scale-service","config":{"backend":"swarm","service":"web","action":"up","by":2,"min":1,"max":5}})"));
  CHECK(r["description"] == "Scale up web by 2, between 1 and 5");
  std::string url = r["trigger_url"];
  CHECK(url.rfind(s.url() + "/_webhooks/", 0) == 0);

  auto e = s.wait_finished(accepted_id(s.trigger(url)));
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["attempts"] == 1);
  CHECK(e["result"]["replicas_before"] == 1);
  CHECK(e["result"]["replicas_after"] == 3);
  CHECK(e["result"]["clamped"] == false);
  CHECK(swarm.replicas("web") == 3);

  {  // clamping at max, recorded in the result
    auto e2 = s.wait_finished(accepted_id(s.trigger(url)));
    CHECK(e2["result"]["replicas_after"] == 5);
    CHECK(e2["result"]["clamped"] == false);  // 3 + 2 is exactly max
    CHECK(swarm.replicas("web") == 5);
    auto e3 = s.wait_finished(accepted_id(s.trigger(url)));
    CHECK(e3["status"] == "succeeded");
    CHECK(e3["result"]["clamped"] == true);  // 5 + 2 is over max
    CHECK(e3["result"]["replicas_after"] == 5);
    CHECK(e3["result"]["changed"] == false);
    CHECK(swarm.replicas("web") == 5);
  }
  swarm.docker("service rm web");
}

TEST_CASE("scale-service: scale down stops at min, and set scales to a number") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("api", 4);
  TestServer s;
  auto down = s.create_receiver(receiver("api-down", "api", "down", 3, 2, 10));
  auto e = s.wait_finished(accepted_id(s.trigger(down["trigger_url"])));
  CHECK(e["result"]["replicas_after"] == 2);
  CHECK(e["result"]["clamped"] == true);
  CHECK(swarm.replicas("api") == 2);
  auto set = s.create_receiver(
      {{"name", "api-set"},
       {"driver", "scale-service"},
       {"config", {{"service", "api"}, {"action", "set"}, {"replicas", 6}, {"max", 8}}}});
  CHECK(set["description"] == "Scale api to 6 replicas, between 0 and 8");
  s.wait_finished(accepted_id(s.trigger(set["trigger_url"])));
  CHECK(swarm.replicas("api") == 6);
  swarm.docker("service rm api");
}

TEST_CASE("scale-service: config is checked against the swarm when saved") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  TestServer s;
  auto missing =
      s.request("POST", "/api/v1/receivers", receiver("ghost", "no-such-service", "up", 1, 0, 3));
  INFO(missing.body);
  CHECK(missing.status == 422);
  CHECK(json::parse(missing.body)["fields"][0]["field"] == "config.service");
  swarm.docker(
      "service create --detach --quiet --mode global --name everywhere --no-resolve-image "
      "--stop-grace-period 1s tripline-test/busybox:latest sleep 3600");
  auto global =
      s.request("POST", "/api/v1/receivers", receiver("glob", "everywhere", "up", 1, 0, 3));
  INFO(global.body);
  CHECK(global.status == 422);
  CHECK(global.body.find("global") != std::string::npos);
  auto bad = s.request("POST", "/api/v1/receivers", receiver("bad", "everywhere", "up", 0, 5, 3));
  CHECK(bad.status == 422);
  CHECK(json::parse(bad.body)["fields"].size() == 2);
  swarm.docker("service rm everywhere");
}

TEST_CASE("scale-service: concurrent triggers on one service lose no update") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("burst", 1);
  TestServer s;
  auto r = s.create_receiver(receiver("burst-up", "burst", "up", 1, 0, 50));
  std::string url = r["trigger_url"];
  constexpr int kThreads = 4, kEach = 5;
  std::vector<std::thread> threads;
  std::vector<int64_t> ids(kThreads * kEach);
  std::atomic<int> accepted{0};
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto resp = s.trigger(url);
        if (resp.status == 202) {
          ids[t * kEach + i] = json::parse(resp.body)["execution_id"];
          ++accepted;
        }
      }
    });
  for (auto& t : threads) t.join();
  REQUIRE(accepted == kThreads * kEach);
  for (int64_t id : ids) CHECK(s.wait_finished(id, 60000)["status"] == "succeeded");
  CHECK(swarm.replicas("burst") == 1 + kThreads * kEach);
  swarm.docker("service rm burst");
}

TEST_CASE("scale-service: retried while dockerd is unreachable, then succeeds") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("flaky", 1);
  // tripline reaches Docker through a symlink we can take away and put back.
  std::string real = swarm.docker_host().substr(7);
  std::string link = make_temp_dir("tl-link") + "/d.sock";
  sh("ln -s " + real + " " + link);
  ServiceOptions o;
  o.drivers.set("docker-host", "unix://" + link);
  o.retry.base = std::chrono::milliseconds(200);
  o.retry.max = std::chrono::milliseconds(400);
  o.retry.max_attempts = 30;
  TestServer s("", o);
  auto r = s.create_receiver(receiver("flaky-up", "flaky", "up", 2, 0, 9));
  sh("rm " + link);
  int64_t id = accepted_id(s.trigger(r["trigger_url"]));
  // Wait until at least two attempts failed.
  json e;
  for (int i = 0; i < 100; ++i) {
    e = json::parse(s.request("GET", "/api/v1/executions/" + std::to_string(id)).body);
    if (e["attempts"].get<int>() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  INFO(e.dump());
  CHECK(e["attempts"].get<int>() >= 2);
  CHECK(e["status"] != "succeeded");
  CHECK(e["error"].get<std::string>().find("cannot reach Docker") != std::string::npos);
  CHECK(swarm.replicas("flaky") == 1);
  sh("ln -s " + real + " " + link);
  e = s.wait_finished(id);
  CHECK(e["status"] == "succeeded");
  CHECK(swarm.replicas("flaky") == 3);
  sh("rm -rf " + link.substr(0, link.rfind('/')));
  swarm.docker("service rm flaky");
}

TEST_CASE("scale-service: executions queued at shutdown run after restart, each once") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("later", 1);
  std::string dir = make_temp_dir("tl-restart");
  std::string url;
  std::vector<int64_t> ids;
  {
    TestServer s(dir);
    url = s.create_receiver(receiver("later-up", "later", "up", 1, 0, 10))["trigger_url"];
    s.request("POST", "/api/v1/workers/pause");
    for (int i = 0; i < 3; ++i) ids.push_back(accepted_id(s.trigger(url)));
  }
  CHECK(swarm.replicas("later") == 1);
  {
    TestServer s(dir);
    // The pause outlives the restart (trust 9): nothing runs until someone resumes.
    auto workers = json::parse(s.request("GET", "/api/v1/workers").body);
    CHECK(workers["paused"] == true);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    CHECK(swarm.replicas("later") == 1);
    REQUIRE(s.request("POST", "/api/v1/workers/resume").status == 200);
    for (int64_t id : ids) CHECK(s.wait_finished(id)["status"] == "succeeded");
    CHECK(swarm.replicas("later") == 4);
    // The same token still works after a restart (keys and receivers persisted); only the
    // port differs, since each test server binds port 0.
    s.wait_finished(accepted_id(s.trigger(s.url() + url.substr(url.find("/_webhooks/")))));
    CHECK(swarm.replicas("later") == 5);
  }
  sh("rm -rf " + dir);
  swarm.docker("service rm later");
}

TEST_CASE("scale-service: a crash after apply re-applies the recorded plan, not the action") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("crashy", 2);
  std::string dir = make_temp_dir("tl-crash");
  int64_t id = 0;
  {
    TestServer s(dir);
    s.create_receiver(receiver("crashy-up", "crashy", "up", 2, 0, 10));
  }
  {
    // Reproduce the state a kill -9 between apply and the outcome's commit leaves behind: the
    // execution is "running" with its plan (2 -> 4) recorded, and the swarm already at 4.
    auto store = std::move(Store::open(dir + "/tripline.db")).value();
    std::string driver = "scale-service";
    auto rcv = store->all_receivers()->at(0);
    std::string config = rcv.config.dump(), action = "up";
    std::vector<NewExecution> batch(1);
    batch[0] = {rcv.id, rcv.generation, &driver, &config, &action, "", Clock::system().now_ms()};
    REQUIRE(store->insert_executions(batch).ok());
    id = batch[0].id;
    REQUIRE(store->mark_running(id, 1, Clock::system().now_ms()).ok());
    REQUIRE(store
                ->record_plan(id, {{"service", "crashy"},
                                   {"replicas_before", 2},
                                   {"replicas", 4},
                                   {"clamped", false}})
                .ok());
    swarm.docker("service update --detach --replicas 4 crashy");
  }
  REQUIRE(swarm.replicas("crashy") == 4);
  {
    TestServer s(dir);
    auto e = s.wait_finished(id);
    INFO(e.dump());
    CHECK(e["status"] == "succeeded");
    CHECK(e["attempts"] == 2);
    CHECK(e["result"]["changed"] == false);
    CHECK(swarm.replicas("crashy") == 4);  // not 6
  }
  sh("rm -rf " + dir);
  swarm.docker("service rm crashy");
}

TEST_CASE(
    "scale-service: rotate, disable, delete and a new target revoke trigger URLs, other edits keep "
    "them") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("rev", 1);
  swarm.create_service("rev2", 1);
  TestServer s;
  auto r = s.create_receiver(receiver("rev-up", "rev", "up", 1, 0, 20));
  std::string id = std::to_string(r["id"].get<int>());
  std::string first = r["trigger_url"];

  auto rotated = json::parse(s.request("POST", "/api/v1/receivers/" + id + "/rotate").body);
  std::string second = rotated["trigger_url"];
  CHECK(second != first);
  CHECK(rotated["generation"] == 2);
  CHECK(rotated["url_revoked"] == true);
  CHECK(s.trigger(first).status == 401);
  accepted_id(s.trigger(second));

  // An edit of the bounds keeps the URL (trust 11): the alerting config that holds it works on.
  auto edited =
      s.request("PUT", "/api/v1/receivers/" + id, receiver("rev-up", "rev", "up", 2, 0, 20));
  REQUIRE(edited.status == 200);
  CHECK(json::parse(edited.body)["trigger_url"] == second);
  CHECK(json::parse(edited.body)["url_revoked"] == false);
  accepted_id(s.trigger(second));

  // The token header form works too and keeps the token out of the URL.
  accepted_id(s.trigger(s.url() + "/_webhooks/trigger",
                        {{"X-Tripline-Token", second.substr(second.rfind('/') + 1)}}));

  // A new target is a new grant: the old URL dies.
  auto moved =
      s.request("PUT", "/api/v1/receivers/" + id, receiver("rev-up", "rev2", "up", 2, 0, 20));
  REQUIRE(moved.status == 200);
  std::string third = json::parse(moved.body)["trigger_url"];
  CHECK(json::parse(moved.body)["url_revoked"] == true);
  CHECK(s.trigger(second).status == 401);
  accepted_id(s.trigger(third));

  // Disabling revokes: the URL issued before it never works again, even after an enable.
  auto disabled = json::parse(s.request("POST", "/api/v1/receivers/" + id + "/disable").body);
  std::string fourth = disabled["trigger_url"];
  CHECK(fourth != third);
  CHECK(s.trigger(third).status == 401);
  CHECK(s.trigger(fourth).status == 403);
  REQUIRE(s.request("POST", "/api/v1/receivers/" + id + "/enable").status == 200);
  CHECK(s.trigger(third).status == 401);
  accepted_id(s.trigger(fourth));
  REQUIRE(s.request("DELETE", "/api/v1/receivers/" + id).status == 204);
  CHECK(s.trigger(fourth).status == 401);
  swarm.docker("service rm rev");
  swarm.docker("service rm rev2");
}

TEST_CASE("scale-service: an Idempotency-Key returns the same execution") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("idem", 1);
  TestServer s;
  std::string url = s.create_receiver(receiver("idem-up", "idem", "up", 1, 0, 20))["trigger_url"];
  int64_t a = accepted_id(s.trigger(url, {{"Idempotency-Key", "deploy-42"}}));
  auto again = s.trigger(url, {{"Idempotency-Key", "deploy-42"}});
  CHECK(accepted_id(again) == a);
  CHECK(json::parse(again.body)["replayed"] == true);
  int64_t b = accepted_id(s.trigger(url, {{"Idempotency-Key", "deploy-43"}}));
  CHECK(b != a);
  s.wait_finished(a);
  s.wait_finished(b);
  CHECK(swarm.replicas("idem") == 3);
  swarm.docker("service rm idem");
}

TEST_CASE("scale-service: a dry run reports the plan and changes nothing") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("dry", 2);
  TestServer s;
  auto r = s.create_receiver(receiver("dry-up", "dry", "up", 2, 0, 10));
  auto t = s.request("POST", "/api/v1/receivers/" + std::to_string(r["id"].get<int>()) + "/test");
  INFO(t.body);
  REQUIRE(t.status == 200);
  auto j = json::parse(t.body);
  CHECK(j["plan"]["replicas_before"] == 2);
  CHECK(j["plan"]["replicas"] == 4);
  CHECK(swarm.replicas("dry") == 2);
  CHECK(s.execution_count() == 0);
  swarm.docker("service rm dry");
}
