// End to end with the real Alertmanager from Debian, configured by the shipped
// deploy/alertmanager/alertmanager.yml: firing scales up once, re-sends do nothing more,
// resolving scales back down. Alertmanager sends the trigger token as its bearer credential, out
// of the URL.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "harness.h"
#include "log.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {
const char* kAlertmanager = "/usr/bin/prometheus-alertmanager";

// deploy/alertmanager/alertmanager.yml as shipped, changing only what must differ here: the URL's
// scheme and host (its path stays), the credential's file, and the intervals (a re-send every
// 2 s, not 4 h). Each changed field must already be in the file: a shipped config that lost its
// bearer authorization or its URL fails here, not in a reader's Alertmanager.
std::string shipped_config(const std::string& server_url, const std::string& bearer_file) {
  YAML::Node c =
      YAML::LoadFile(std::string(TRIPLINE_SOURCE_DIR) + "/deploy/alertmanager/alertmanager.yml");
  YAML::Node route = c["route"];
  for (const char* interval : {"group_wait", "group_interval", "repeat_interval"})
    REQUIRE(route[interval].IsScalar());
  route["group_wait"] = "1s";
  route["group_interval"] = "1s";
  route["repeat_interval"] = "2s";
  YAML::Node webhook;
  for (const auto& r : c["receivers"])
    if (r["name"].as<std::string>() == route["receiver"].as<std::string>())
      webhook = r["webhook_configs"][0];
  REQUIRE(webhook.IsMap());
  REQUIRE(webhook["url"].IsScalar());
  std::string shipped_url = webhook["url"].as<std::string>();
  const std::string path = "/_webhooks/trigger";  // the token is not in the URL
  REQUIRE(shipped_url.size() > path.size());
  REQUIRE(shipped_url.compare(shipped_url.size() - path.size(), path.size(), path) == 0);
  webhook["url"] = server_url + path;
  YAML::Node auth = webhook["http_config"]["authorization"];
  REQUIRE(auth["type"].as<std::string>() == "Bearer");
  REQUIRE(auth["credentials_file"].IsScalar());
  auth["credentials_file"] = bearer_file;
  YAML::Emitter out;
  out << c;
  return out.c_str();
}

class Alertmanager {
 public:
  Alertmanager(const std::string& server_url, const std::string& bearer) {
    dir_ = make_temp_dir("tl-am");
    port_ = free_port();
    std::ofstream(dir_ + "/bearer") << bearer;
    std::ofstream(dir_ + "/am.yml") << shipped_config(server_url, dir_ + "/bearer");
    pid_ = ::fork();
    if (pid_ == 0) {
      // Dies with the test binary: a crashed test must not leave Alertmanager holding ctest's pipe.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::string log = dir_ + "/am.log";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      std::string config = "--config.file=" + dir_ + "/am.yml";
      std::string storage = "--storage.path=" + dir_ + "/data";
      ::execl(kAlertmanager, kAlertmanager, config.c_str(), storage.c_str(), listen.c_str(),
              "--cluster.listen-address=", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      OutboundRequest r;
      r.url = url() + "/-/ready";
      if (http_request(r).status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL("alertmanager did not become ready: " << sh("tail -5 " + dir_ + "/am.log"));
  }
  ~Alertmanager() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    sh("rm -rf " + dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void post_alert(const std::string& starts_at, const std::string& ends_at = "") const {
    json alert = {{"labels", {{"alertname", "HighLoad"}, {"service", "amweb"}}},
                  {"annotations", {{"summary", "load is high"}}},
                  {"startsAt", starts_at}};
    if (!ends_at.empty()) alert["endsAt"] = ends_at;
    OutboundRequest r;
    r.method = "POST";
    r.url = url() + "/api/v2/alerts";
    r.body = json::array({alert}).dump();
    r.headers = {{"Content-Type", "application/json"}};
    auto resp = http_request(r);
    INFO(resp.body);
    REQUIRE(resp.status == 200);
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

std::string rfc3339(std::chrono::system_clock::time_point t) {
  return log::format_time(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

json executions(const TestServer& s, int64_t receiver_id) {
  return json::parse(
      s.request("GET", "/api/v1/executions?receiver_id=" + std::to_string(receiver_id))
          .body)["items"];
}

uint64_t metric(const TestServer& s, const std::string& line_prefix) {
  std::string m = s.request("GET", "/metrics", nullptr, false).body;
  auto pos = m.find(line_prefix);
  if (pos == std::string::npos) return 0;
  return std::stoull(m.substr(pos + line_prefix.size()));
}

template <typename F>
bool eventually(F f, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 100) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return f();
}
}  // namespace

TEST_CASE("alertmanager: firing scales up once, re-sends do nothing, resolved scales down") {
  if (!swarm_or_skip() || !binary_or_skip(kAlertmanager, "prometheus-alertmanager")) return;
  auto& swarm = Swarm::get();
  swarm.create_service("amweb", 1);
  TestServer s;
  auto r = s.create_receiver(
      {{"name", "am-up"},
       {"driver", "scale-service"},
       {"config", {{"service", "amweb"}, {"action", "up"}, {"by", 2}, {"min", 1}, {"max", 5}}},
       {"rules", {{"preset", "alertmanager"}, {"on_resolved", "inverse"}}}});
  int64_t rid = r["id"];
  std::string url = r["trigger_url"];
  std::string token = url.substr(url.rfind('/') + 1);
  // Without the token in Authorization, /_webhooks/trigger does nothing.
  CHECK(s.trigger(s.url() + "/_webhooks/trigger").status == 401);

  Alertmanager am(s.url(), token);
  auto now = std::chrono::system_clock::now();
  std::string starts = rfc3339(now - std::chrono::minutes(1));
  am.post_alert(starts);

  REQUIRE(eventually([&] { return executions(s, rid).size() == 1; }, 15000));
  auto first = s.wait_finished(executions(s, rid)[0]["id"].get<int64_t>());
  CHECK(first["status"] == "succeeded");
  CHECK(swarm.replicas("amweb") == 3);

  // Alertmanager re-sends the group every repeat_interval (2 s): tripline answers each with the
  // same execution and acts no more.
  uint64_t accepted_202 =
      metric(s, "tripline_http_requests_total{route=\"trigger\",code=\"202\"} ");
  REQUIRE(eventually(
      [&] {
        return metric(s, "tripline_http_requests_total{route=\"trigger\",code=\"202\"} ") >=
               accepted_202 + 2;
      },
      15000));
  CHECK(executions(s, rid).size() == 1);
  CHECK(swarm.replicas("amweb") == 3);

  // Resolve: the inverse action (down by 2) runs once.
  am.post_alert(starts, rfc3339(std::chrono::system_clock::now()));
  REQUIRE(eventually([&] { return executions(s, rid).size() == 2; }, 15000));
  auto second = s.wait_finished(executions(s, rid)[0]["id"].get<int64_t>());
  CHECK(second["status"] == "succeeded");
  CHECK(second["result"]["replicas_after"] == 1);
  CHECK(swarm.replicas("amweb") == 1);
  swarm.docker("service rm amweb");
}

TEST_CASE(
    "rules over the API: ignored requests answer 200 and record nothing; cooldown and rate limit "
    "hold") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("ruled", 1);
  TestServer s;
  auto bad = s.request(
      "POST", "/api/v1/receivers",
      {{"name", "bad"},
       {"driver", "scale-service"},
       {"config", {{"service", "ruled"}, {"action", "up"}, {"max", 5}}},
       {"rules",
        {{"rules", {{{"when", {{"field", "body:/x"}, {"op", "regex"}, {"value", "("}}}}}}}}});
  CHECK(bad.status == 422);
  CHECK(json::parse(bad.body)["fields"][0]["field"] == "rules.rules[0].when");

  auto r = s.create_receiver(
      {{"name", "ruled-up"},
       {"driver", "scale-service"},
       {"config", {{"service", "ruled"}, {"action", "up"}, {"by", 1}, {"max", 9}}},
       {"rules",
        {{"default", "ignore"},
         {"rules",
          {{{"name", "main only"},
            {"when", {{"field", "body:ref"}, {"op", "equals"}, {"value", "refs/heads/main"}}},
            {"then", "run"},
            {"set", {{"by", {{"from_request", "body:/by"}}}}}}}}}},
       {"limits", {{"cooldown_seconds", 30}}}});
  std::string url = r["trigger_url"];
  auto post = [&](const json& body) {
    OutboundRequest req;
    req.method = "POST";
    req.url = url;
    req.body = body.dump();
    req.headers = {{"Content-Type", "application/json"}};
    return http_request(req);
  };
  auto ignored = post({{"ref", "refs/heads/dev"}, {"by", 1}});
  INFO(ignored.body);
  CHECK(ignored.status == 200);
  CHECK(json::parse(ignored.body)["ignored"] == true);
  CHECK(s.execution_count() == 0);
  auto bad_value = post({{"ref", "refs/heads/main"}, {"by", 0}});  // the driver refuses by < 1
  CHECK(bad_value.status == 422);
  auto ran = post({{"ref", "refs/heads/main"}, {"by", 3}});
  REQUIRE(ran.status == 202);
  auto e = s.wait_finished(json::parse(ran.body)["execution_id"].get<int64_t>());
  CHECK(e["result"]["replicas_after"] == 4);
  auto cooling = post({{"ref", "refs/heads/main"}, {"by", 1}});
  CHECK(cooling.status == 200);
  CHECK(json::parse(cooling.body)["reason"].get<std::string>().find("cooling down") !=
        std::string::npos);
  CHECK(s.execution_count() == 1);
  CHECK(swarm.replicas("ruled") == 4);

  auto limited = s.create_receiver(
      {{"name", "limited"},
       {"driver", "scale-service"},
       {"config", {{"service", "ruled"}, {"action", "set"}, {"replicas", 4}, {"max", 9}}},
       {"limits", {{"rate_per_minute", 1}, {"burst", 2}}}});
  std::string lurl = limited["trigger_url"];
  CHECK(s.trigger(lurl).status == 202);
  CHECK(s.trigger(lurl).status == 202);
  auto over = s.trigger(lurl);
  CHECK(over.status == 429);
  REQUIRE(over.header("retry-after"));
  CHECK(std::stoi(*over.header("retry-after")) >= 1);
  swarm.docker("service rm ruled");
}
