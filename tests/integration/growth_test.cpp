// Stores with many receivers ("Floods", growth with receivers). Regression: start-up put the
// receivers into the cache one by one, each put copying the whole cache: 20,000 receivers took
// 354 s to start, and the process ignored SIGTERM meanwhile.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "../support/externaldns_fake.h"
#include "../support/timing.h"
#include "harness.h"
#include "seed_receivers.h"

extern char** environ;

using namespace tripline;
using namespace tripline::test;
using SteadyClock = std::chrono::steady_clock;

namespace {
double seconds_since(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}
std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("growth: start-up with 20,000 receivers takes seconds, and they all answer") {
  FakeExternalDns provider;
  std::string dir = make_temp_dir("tl-growth");
  REQUIRE(seed_receivers(dir + "/tripline.db", 20000, provider.url()).ok());
  ServiceOptions o;
  o.drivers.set("docker-host", "unix:///nonexistent/docker.sock");  // no swarm needed
  auto started = SteadyClock::now();
  std::optional<TestServer> server;
  server.emplace(dir, o);
  double startup = seconds_since(started);
  INFO("start-up took " << startup << " s");
  CHECK(startup < 10 * kTimeScale);  // about 1 s on a 2-core VM; 354 s before

  auto page = server->request("GET", "/api/v1/receivers?limit=50&offset=19950");
  REQUIRE(page.status == 200);
  auto body = nlohmann::json::parse(page.body);
  CHECK(body["total"] == 20000);
  REQUIRE(body["items"].size() == 50);
  CHECK(body["items"][49]["name"] == "bench-19999");
  CHECK_FALSE(body["items"][0].contains("error"));

  // A loaded receiver's URL takes the trigger path; a new one and an edit are published.
  std::string url = body["items"][0]["trigger_url"];
  auto created =
      server->create_receiver({{"name", "growth-new"},
                               {"driver", "dns-update"},
                               {"config",
                                {{"backend", "externaldns-webhook"},
                                 {"provider_url", provider.url()},
                                 {"record", {{"name", "new.example.org"}, {"type", "A"}}},
                                 {"action", "upsert"},
                                 {"value", "192.0.2.1"}}}});
  auto edit = created;
  edit["config"]["value"] = "192.0.2.2";
  auto edited =
      server->request("PUT", "/api/v1/receivers/" + std::to_string(created["id"].get<int64_t>()),
                      {{"name", "growth-new"}, {"config", edit["config"]}});
  CHECK(edited.status == 200);
  CHECK(server->request("POST", "/api/v1/workers/pause").status == 200);
  CHECK(server->trigger(url).status == 202);
  CHECK(server->trigger(created["trigger_url"]).status == 202);
  server.reset();
  sh("rm -rf " + dir);
}

TEST_CASE("growth: SIGTERM while 100,000 receivers load stops the binary within 1 s") {
  std::string dir = make_temp_dir("tl-growth");
  REQUIRE(seed_receivers(dir + "/tripline.db", 100000, "http://127.0.0.1:9").ok());
  std::string log = dir + "/server.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  posix_spawn_file_actions_adddup2(&actions, fd, 2);
  std::string listen = "127.0.0.1:" + std::to_string(free_port());
  std::vector<std::string> args = {
      TRIPLINE_BINARY, "serve", "--listen",      listen,
      "--data-dir",    dir,     "--docker-host", "unix:///nonexistent/docker.sock"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string token_env = "TRIPLINE_ADMIN_TOKEN=" + kAdminToken;
  std::vector<char*> envp = {token_env.data(), nullptr};
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, TRIPLINE_BINARY, &actions, nullptr, argv.data(), envp.data()) == 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);

  // Into the load (about 1 s of reading and building at 100,000 receivers on a 2-core VM); the
  // log line below proves the signal did not arrive after it.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  auto signalled = SteadyClock::now();
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0 && seconds_since(signalled) < 10)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  double took = seconds_since(signalled);
  if (took >= 10) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::string out = read_file(log);
  INFO("exit after SIGTERM took " << took << " s; log:\n" << out);
  CHECK(took < 1.0 * kTimeScale);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(out.find("stop signal received during start-up") != std::string::npos);
  CHECK(out.find("tripline serving") == std::string::npos);
  sh("rm -rf " + dir);
}
