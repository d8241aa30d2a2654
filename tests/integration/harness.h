// Integration test support: a real tripline Service in-process on a free loopback port with a
// real SQLite file, and a real isolated dockerd in swarm mode (tests/support/dockerd-harness.sh),
// started once per test binary and removed at exit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http_client.h"
#include "service.h"

namespace tripline::test {

// Runs a shell command; returns its stdout (trimmed). *rc gets the exit status.
std::string sh(const std::string& command, int* rc = nullptr);

// The isolated swarm. skip_unless_available() ends the current test with a loud warning when
// dockerd cannot run here, except under CI=true where that is a failure.
class Swarm {
 public:
  static Swarm& get();
  bool available() const { return !docker_host_.empty(); }
  const std::string& docker_host() const { return docker_host_; }
  const std::string& dir() const { return dir_; }
  std::string docker(const std::string& args, int* rc = nullptr) const;
  // A replicated busybox service with `replicas` replicas; removed at exit with the daemon.
  void create_service(const std::string& name, int replicas) const;
  int replicas(const std::string& name) const;  // Spec.Mode.Replicated.Replicas
  ~Swarm();

 private:
  Swarm();
  std::string dir_, docker_host_, why_unavailable_;
  friend bool swarm_or_skip();
};
// Call first in a test that needs the swarm; returns false (after WARN/FAIL) when absent.
bool swarm_or_skip();

inline const std::string kAdminToken = "test-admin-token-0123456789abcdef";

class TestServer {
 public:
  // data_dir empty: a fresh temporary one (removed by the destructor). overrides.admin_token
  // empty: kAdminToken, which request() sends.
  explicit TestServer(std::string data_dir = "", ServiceOptions overrides = {});
  ~TestServer();
  void stop();
  const std::string& url() const { return url_; }
  const std::string& data_dir() const { return data_dir_; }

  OutboundResponse request(const std::string& method, const std::string& path,
                           const nlohmann::json& body = nullptr, bool auth = true,
                           std::vector<std::pair<std::string, std::string>> headers = {}) const;
  nlohmann::json create_receiver(const nlohmann::json& body) const;  // requires 201
  OutboundResponse trigger(const std::string& trigger_url,
                           std::vector<std::pair<std::string, std::string>> headers = {}) const;
  // Polls the API until the execution is succeeded or failed (or the timeout passes).
  nlohmann::json wait_finished(int64_t execution_id, int timeout_ms = 20000) const;
  int64_t execution_count() const;

 private:
  std::string data_dir_;
  bool own_dir_ = false;
  std::unique_ptr<Service> service_;
  std::string url_;
};

std::string make_temp_dir(const std::string& prefix);

// The real `tripline` binary as a child process, so a test can SIGKILL it. stdout and stderr are
// appended to the given files; TRIPLINE_* variables of the test's environment are not passed on,
// TRIPLINE_ADMIN_TOKEN only when `admin_token` is not empty. The child dies with the test binary.
class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();  // SIGKILLs a running child; no assertions (it may run while a REQUIRE unwinds)
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Runs `tripline serve ARGS` and waits (15 s at most) until `url`/healthz answers 200.
  void start(const std::vector<std::string>& serve_args, const std::string& admin_token,
             const std::string& stdout_path, const std::string& stderr_path,
             const std::string& url);
  void kill9();                        // SIGKILL; checks the child died of it
  void terminate(bool expect_exit_0);  // SIGTERM; checks a clean exit
  // Waits up to `limit` for the child to end by itself: its wait status (WIFSIGNALED...), or
  // nullopt while it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds limit);

 private:
  pid_t pid_ = -1;
};
// A loopback TCP port that was free a moment ago (for peers that cannot bind port 0 and tell).
int free_port();
// Skips (or fails under CI=true) when `binary` is not installed; true when it is.
bool binary_or_skip(const std::string& binary, const std::string& package);

}  // namespace tripline::test
