// redeploy against the real peers: Debian's docker-registry (distribution 2.8) sending its push
// notifications to a real tripline server, and a real dockerd in swarm mode pulling from it.
//
// The swarm's dockerd lives in a private network namespace (tests/support/dockerd-harness.sh), the
// registry and tripline on the host's loopback. socat joins them: inside the namespace it listens
// on the registry's address 127.0.0.1:PORT and forwards, through a unix socket, to a socat on the
// host that connects to the registry. So one name, 127.0.0.1:PORT/team/web, is the image for the
// swarm's pushes and pulls, tripline's digest lookups and the notifications alike.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "../../tests/integration/harness.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

using Steady = std::chrono::steady_clock;

// A registry on 127.0.0.1:PORT, reachable from the swarm's namespace at the same address.
// Its notification endpoint is fixed when it starts, and the receiver's URL exists only after
// the service (which needs a pushed image) does: notify() restarts it, data kept, with the
// endpoint. Everything it started is stopped by pid when it goes.
class LocalRegistry {
 public:
  explicit LocalRegistry(const Swarm& swarm) : port_(free_port()) {
    dir_ = make_temp_dir("tl-registry");
    start("");
    pids_.push_back(
        spawn("socat UNIX-LISTEN:" + dir_ + "/r.sock,fork TCP:" + addr(), "socat-host"));
    for (int i = 0; i < 100 && ::access((dir_ + "/r.sock").c_str(), F_OK) != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // nsenter execs socat in place: the pid is socat's.
    pids_.push_back(spawn("nsenter --net=" + swarm.dir() +
                              "/netns socat TCP-LISTEN:" + std::to_string(port_) +
                              ",bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:" + dir_ + "/r.sock",
                          "socat-netns"));
  }
  ~LocalRegistry() {
    stop();
    for (auto it = pids_.rbegin(); it != pids_.rend(); ++it)
      if (*it > 0) sh("kill " + std::to_string(*it) + " 2>/dev/null");
    sh("rm -rf " + dir_);
  }
  void notify(const std::string& endpoint) {
    stop();
    start(endpoint);
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string url() const { return "http://" + addr(); }
  std::string log() const { return sh("tail -20 " + dir_ + "/registry.log"); }
  // How many lines of the registry's whole log hold `text`.
  int count_in_log(const std::string& text) const {
    return std::atoi(sh("grep -c -- '" + text + "' " + dir_ + "/registry.log").c_str());
  }

 private:
  void start(const std::string& endpoint) {
    std::ofstream config(dir_ + "/config.yml");
    config << "version: 0.1\n"
           << "log: {level: info}\n"
           << "http: {addr: " << addr() << "}\n"
           << "storage: {filesystem: {rootdirectory: " << dir_ << "/data}}\n";
    if (!endpoint.empty())
      config << "notifications:\n  endpoints:\n"
             << "    - {name: tripline, url: \"" << endpoint
             << "\", timeout: 2s, threshold: 3, backoff: 1s}\n";
    config.close();
    registry_ = spawn("docker-registry serve " + dir_ + "/config.yml", "registry");
    for (int i = 0; i < 200; ++i) {
      OutboundRequest req;
      req.url = url() + "/v2/";
      if (http_request(req).status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    FAIL("docker-registry did not start: " << log());
  }
  void stop() {
    if (registry_ <= 0) return;
    sh("kill " + std::to_string(registry_) + " 2>/dev/null; for i in $(seq 50); do kill -0 " +
       std::to_string(registry_) + " 2>/dev/null || break; sleep 0.05; done");
    registry_ = -1;
  }
  int spawn(const std::string& command, const std::string& name) {
    std::string pid = sh(command + " >>" + dir_ + "/" + name + ".log 2>&1 & echo $!");
    return std::atoi(pid.c_str());
  }
  int port_;
  int registry_ = -1;
  std::string dir_;
  std::vector<int> pids_;
};

bool peers_or_skip() {
  return swarm_or_skip() && binary_or_skip("/usr/bin/docker-registry", "docker-registry") &&
         binary_or_skip("/usr/bin/socat", "socat");
}

// "v1.0.0: digest: sha256:... size: 527" -> "sha256:...".
std::string pushed_digest(const std::string& out) {
  auto p = out.rfind("digest: sha256:");
  REQUIRE(p != std::string::npos);
  return out.substr(p + 8, 7 + 64);
}

// Every running task of `service` runs `digest` (and there is at least one).
bool tasks_run(const Swarm& swarm, const std::string& service, const std::string& digest) {
  std::string ids = swarm.docker("service ps -q --filter desired-state=running " + service);
  if (ids.empty() || ids.find("Error") != std::string::npos) return false;
  for (auto& c : ids) c = c == '\n' ? ' ' : c;
  std::string states =
      swarm.docker("inspect --format '{{.Spec.ContainerSpec.Image}} {{.Status.State}}' " + ids);
  size_t lines = 0;
  for (size_t start = 0; start < states.size();) {
    size_t end = states.find('\n', start);
    std::string line = states.substr(start, end - start);
    if (line.find(digest) == std::string::npos || line.find(" running") == std::string::npos)
      return false;
    ++lines;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines > 0;
}

// A distribution notification of one manifest push, as the registry sends it (PROTOCOLS §10).
json push_event(const std::string& registry, const std::string& tag, const std::string& id) {
  return {{"events",
           {{{"id", id},
             {"timestamp", "2026-01-01T00:00:00Z"},
             {"action", "push"},
             {"target",
              {{"mediaType", "application/vnd.docker.distribution.manifest.v2+json"},
               {"digest", "sha256:" + std::string(64, 'e')},
               {"repository", "team/web"},
               {"tag", tag}}},
             {"request", {{"host", registry}, {"method", "PUT"}}}}}}};
}

OutboundResponse post(const std::string& url, const json& body) {
  OutboundRequest req;
  req.method = "POST";
  req.url = url;
  req.body = body.dump();
  req.headers = {{"Content-Type", "application/vnd.docker.distribution.events.v1+json"}};
  return http_request(req);
}

json executions(const TestServer& s) {
  auto r = s.request("GET", "/api/v1/executions?limit=100");
  REQUIRE(r.status == 200);
  return json::parse(r.body)["items"];
}

json receiver_for(const LocalRegistry& registry, const std::string& service) {
  return {{"name", "redeploy " + service},
          {"driver", "redeploy"},
          {"rules", {{"preset", "registry-push"}}},
          {"config",
           {{"image", registry.addr() + "/team/web"},
            {"registry_url", registry.url()},
            {"tag_pattern", "v[0-9]+\\.[0-9]+\\.[0-9]+"},
            {"services", {service}},
            {"update_parallelism", 1},
            {"update_order", "start-first"},
            {"failure_action", "rollback"},
            {"update_monitor_seconds", 1}}}};
}

// Pushes tripline-test/busybox as REGISTRY/team/web:TAG, made distinct by a label (a build of
// a LABEL alone runs no container): a new digest per tag. Answers the pushed digest.
std::string push(const Swarm& swarm, const LocalRegistry& registry, const std::string& tag) {
  const std::string ref = registry.addr() + "/team/web:" + tag;
  int rc = 0;
  std::string out =
      sh("printf 'FROM tripline-test/busybox:latest\\nLABEL tripline.test.tag=" + tag +
             "\\n' | /usr/bin/docker -H " + swarm.docker_host() + " build -q -t " + ref + " - 2>&1",
         &rc);
  INFO(out);
  REQUIRE(rc == 0);
  out = swarm.docker("push " + ref, &rc);
  INFO(out);
  REQUIRE(rc == 0);
  return pushed_digest(out);
}

}  // namespace

TEST_CASE("redeploy: a push to the registry rolls the swarm service onto its digest") {
  if (!peers_or_skip()) return;
  auto& swarm = Swarm::get();
  LocalRegistry registry(swarm);
  const std::string v1 = push(swarm, registry, "v1.0.0");
  int rc = 0;
  std::string out = swarm.docker(
      "service create --detach --quiet --name rd-web --replicas 2 "
      "--stop-grace-period 1s " +
          registry.addr() + "/team/web:v1.0.0 sleep 3600",
      &rc);
  INFO(out);
  REQUIRE(rc == 0);
  for (int i = 0; i < 200 && !tasks_run(swarm, "rd-web", v1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(tasks_run(swarm, "rd-web", v1));

  TestServer s;
  auto r = s.create_receiver(receiver_for(registry, "rd-web"));
  CHECK_THAT(r["description"].get<std::string>(), Catch::Contains("rd-web"));
  registry.notify(r["trigger_url"].get<std::string>());

  // The push: the registry notifies tripline (blob uploads and its own reads are ignored), the
  // execution resolves v2.0.0 on the registry and updates the service.
  auto t0 = Steady::now();
  const std::string v2 = push(swarm, registry, "v2.0.0");
  auto pushed = Steady::now();
  REQUIRE(v2 != v1);
  json e;
  Steady::time_point noticed{};
  for (int i = 0; i < 600; ++i) {
    json items = executions(s);
    if (!items.empty()) {
      if (noticed == Steady::time_point{}) noticed = Steady::now();
      e = s.wait_finished(items[0]["id"].get<int64_t>());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  INFO(registry.log());
  REQUIRE(e.is_object());
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  const std::string want = registry.addr() + "/team/web:v2.0.0@" + v2;
  CHECK(e["plan"]["digest"] == v2);
  CHECK(e["plan"]["tag"] == "v2.0.0");
  CHECK(e["result"]["image_after"] == want);
  CHECK(e["result"]["services"][0]["service"] == "rd-web");
  CHECK_THAT(e["result"]["services"][0]["image_before"].get<std::string>(), Catch::Contains(v1));
  CHECK(e["result"]["services"][0]["changed"] == true);
  // The rollout settings went with the image.
  CHECK(swarm.docker("service inspect --format '{{.Spec.UpdateConfig.Order}} "
                     "{{.Spec.UpdateConfig.FailureAction}} {{.Spec.UpdateConfig.Parallelism}}' "
                     "rd-web") == "start-first rollback 1");
  bool running = false;
  for (int i = 0; i < 1200 && !(running = tasks_run(swarm, "rd-web", v2)); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  auto done = Steady::now();
  const int64_t done_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  CHECK(running);
  CHECK(swarm.docker("service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "
                     "rd-web") == want);
  auto ms = [](Steady::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  // created_at: "2026-11-30T01:10:18.755Z", when tripline accepted the notification.
  std::tm tm{};
  const std::string created = e["created_at"];
  REQUIRE(strptime(created.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) != nullptr);
  const int64_t created_ms = int64_t(timegm(&tm)) * 1000 + std::atoi(created.substr(20, 3).c_str());
  WARN(
      "redeploy timing: from the push notification's acceptance to both tasks running the new "
      "digest: "
      << done_ms - created_ms << " ms (push took " << ms(pushed - t0) << " ms; plan and update ran "
      << e["started_at"] << " .. " << e["finished_at"] << ")");

  // Every notification the registry sent was answered 2xx: a refused one would be re-sent
  // forever and block those behind it.
  // (distribution's retryingsink logs "retrying" for each failed delivery.)
  CHECK(registry.count_in_log("retrying") == 0);
  CHECK(registry.count_in_log("uri=/v2/team/web/manifests/v2.0.0 http.request.useragent=tripline") >
        0);

  // A second delivery of the same state: the executor finds it settled, nothing is updated.
  auto again = post(r["trigger_url"].get<std::string>(),
                    push_event(registry.addr(), "v2.0.0", "a-later-delivery"));
  INFO(again.body);
  REQUIRE(again.status == 202);
  auto e2 = s.wait_finished(json::parse(again.body)["execution_id"].get<int64_t>());
  CHECK(e2["status"] == "succeeded");
  CHECK(e2["result"]["changed"] == false);
  swarm.docker("service rm rd-web");
}

TEST_CASE("redeploy: a forged notification naming a tag the registry lacks changes nothing") {
  if (!peers_or_skip()) return;
  auto& swarm = Swarm::get();
  LocalRegistry registry(swarm);
  const std::string v1 = push(swarm, registry, "v1.0.0");
  int rc = 0;
  swarm.docker(
      "service create --detach --quiet --name rd-forged --replicas 1 "
      "--stop-grace-period 1s " +
          registry.addr() + "/team/web:v1.0.0 sleep 3600",
      &rc);
  REQUIRE(rc == 0);
  TestServer s;
  auto r = s.create_receiver(receiver_for(registry, "rd-forged"));
  const std::string url = r["trigger_url"];
  const std::string before = swarm.docker(
      "service inspect --format '{{.Version.Index}} "
      "{{.Spec.TaskTemplate.ContainerSpec.Image}}' rd-forged");
  CHECK_THAT(before, Catch::Contains(v1));

  // The registry's own envelope, as a forger would write it: a tag that matches the pattern,
  // with a digest of the forger's choosing that tripline must not use.
  json forged = push_event(registry.addr(), "v9.9.9", "forged-1");
  auto accepted = post(url, forged);
  INFO(accepted.body);
  REQUIRE(accepted.status == 202);
  auto e = s.wait_finished(json::parse(accepted.body)["execution_id"].get<int64_t>());
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);  // final: not retried
  CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("MANIFEST_UNKNOWN"));
  CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("v9.9.9"));
  CHECK(swarm.docker("service inspect --format '{{.Version.Index}} "
                     "{{.Spec.TaskTemplate.ContainerSpec.Image}}' rd-forged") == before);

  // A tag the pattern does not allow, a pull, and another repository: ignored with a reason
  // (200), nothing recorded.
  const auto count = s.execution_count();
  forged["events"][0]["target"]["tag"] = "latest";
  auto latest = post(url, forged);
  CHECK(latest.status == 200);
  CHECK_THAT(latest.body, Catch::Contains("tag_pattern"));
  forged["events"][0]["target"]["tag"] = "v1.0.0";
  forged["events"][0]["action"] = "pull";
  auto pull = post(url, forged);
  CHECK(pull.status == 200);
  CHECK_THAT(pull.body, Catch::Contains("no push of a tag"));
  forged["events"][0]["action"] = "push";
  forged["events"][0]["target"]["repository"] = "team/other";
  auto other = post(url, forged);
  CHECK(other.status == 200);
  CHECK_THAT(other.body, Catch::Contains("team/other"));
  // Not a registry notification at all: refused.
  auto junk = post(url, json{{"hello", "world"}});
  CHECK(junk.status / 100 == 4);
  CHECK(s.execution_count() == count);
  CHECK(swarm.docker("service inspect --format '{{.Version.Index}} "
                     "{{.Spec.TaskTemplate.ContainerSpec.Image}}' rd-forged") == before);
  swarm.docker("service rm rd-forged");
}
