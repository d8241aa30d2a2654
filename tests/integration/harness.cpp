#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <thread>

#include "log.h"

#ifndef TRIPLINE_BINARY
#error TRIPLINE_BINARY must be defined
#endif
#ifndef TRIPLINE_SOURCE_DIR
#error TRIPLINE_SOURCE_DIR must be defined
#endif

namespace tripline::test {

std::string sh(const std::string& command, int* rc) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) {
    if (rc) *rc = -1;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  if (rc) *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

namespace {
const std::string kHarness = std::string(TRIPLINE_SOURCE_DIR) + "/tests/support/dockerd-harness.sh";
bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}
struct Init {
  Init() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);  // as main() does: a peer that hangs up must not kill the server
    // Server logs go to stderr; keep the test report readable unless asked for them.
    if (!std::getenv("TRIPLINE_TEST_LOGS")) log::set_level(log::Level::kError);
  }
} init;
}  // namespace

Swarm::Swarm() {
  if (::geteuid() != 0) {
    why_unavailable_ = "dockerd needs root";
    return;
  }
  if (::access("/usr/sbin/dockerd", X_OK) != 0) {
    why_unavailable_ = "dockerd is not installed (apt-get install docker.io)";
    return;
  }
  dir_ = make_temp_dir("tl-swarm");
  int rc = 0;
  std::string out = sh(kHarness + " start " + dir_ + " 2>" + dir_ + ".start.log", &rc);
  auto pos = out.rfind("DOCKER_HOST=");
  if (rc != 0 || pos == std::string::npos) {
    why_unavailable_ = "the dockerd harness failed: " + sh("tail -20 " + dir_ + ".start.log");
    sh(kHarness + " stop " + dir_ + " 2>/dev/null");
    dir_.clear();
    return;
  }
  docker_host_ = out.substr(pos + 12);
}

Swarm::~Swarm() {
  if (!dir_.empty()) sh(kHarness + " stop " + dir_ + " 2>/dev/null");
  if (!dir_.empty()) sh("rm -f " + dir_ + ".start.log");
}

Swarm& Swarm::get() {
  static Swarm swarm;
  return swarm;
}

bool binary_or_skip(const std::string& binary, const std::string& package) {
  if (::access(binary.c_str(), X_OK) == 0) return true;
  if (in_ci()) FAIL("CI=true but " << binary << " is missing (apt-get install " << package << ")");
  WARN("SKIPPED: " << binary << " is missing (apt-get install " << package << ")");
  return false;
}

bool swarm_or_skip() {
  Swarm& s = Swarm::get();
  if (s.available()) return true;
  if (in_ci()) FAIL("CI=true but the swarm could not start: " << s.why_unavailable_);
  WARN("SKIPPED (no swarm here): " << s.why_unavailable_);
  return false;
}

std::string Swarm::docker(const std::string& args, int* rc) const {
  return sh("/usr/bin/docker -H " + docker_host_ + " " + args + " 2>&1", rc);
}

void Swarm::create_service(const std::string& name, int replicas) const {
  int rc = 0;
  std::string out = docker("service create --detach --quiet --name " + name + " --replicas " +
                               std::to_string(replicas) +
                               " --no-resolve-image --stop-grace-period 1s "
                               "tripline-test/busybox:latest sleep 3600",
                           &rc);
  REQUIRE(rc == 0);
  INFO(out);
}

int Swarm::replicas(const std::string& name) const {
  int rc = 0;
  std::string out =
      docker("service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' " + name, &rc);
  INFO(out);
  REQUIRE(rc == 0);
  return std::stoi(out);
}

TestServer::TestServer(std::string data_dir, ServiceOptions o) : data_dir_(std::move(data_dir)) {
  if (data_dir_.empty()) {
    data_dir_ = make_temp_dir("tl-data");
    own_dir_ = true;
  }
  o.listen = "127.0.0.1:0";
  o.data_dir = data_dir_;
  if (o.admin_token.empty()) o.admin_token = kAdminToken;
  // Only a server left on the default Docker host needs the swarm (started on first use).
  if (!o.drivers.is_set("docker-host") && Swarm::get().available())
    o.drivers.set("docker-host", Swarm::get().docker_host());
  if (o.retry.base == RetryPolicy{}.base) o.retry.base = std::chrono::milliseconds(100);
  if (o.retry.max == RetryPolicy{}.max) o.retry.max = std::chrono::milliseconds(1000);
  auto s = Service::start(o);
  INFO(s.status().message());
  REQUIRE(s.ok());
  service_ = std::move(s).value();
  url_ = service_->public_url();
}

TestServer::~TestServer() {
  stop();
  if (own_dir_) sh("rm -rf " + data_dir_);
}

void TestServer::stop() {
  if (service_) service_->stop();
  service_.reset();
}

OutboundResponse TestServer::request(
    const std::string& method, const std::string& path, const nlohmann::json& body, bool auth,
    std::vector<std::pair<std::string, std::string>> headers) const {
  OutboundRequest r;
  r.method = method;
  r.url = path.rfind("http", 0) == 0 ? path : url_ + path;
  if (!body.is_null()) {
    r.body = body.dump();
    r.headers.emplace_back("Content-Type", "application/json");
  }
  if (auth) r.headers.emplace_back("Authorization", "Bearer " + kAdminToken);
  for (auto& h : headers) r.headers.push_back(std::move(h));
  r.timeout = std::chrono::milliseconds(30000);
  return http_request(r);
}

nlohmann::json TestServer::create_receiver(const nlohmann::json& body) const {
  auto r = request("POST", "/api/v1/receivers", body);
  INFO(r.body);
  REQUIRE(r.status == 201);
  return nlohmann::json::parse(r.body);
}

OutboundResponse TestServer::trigger(
    const std::string& trigger_url,
    std::vector<std::pair<std::string, std::string>> headers) const {
  return request("POST", trigger_url, nullptr, false, std::move(headers));
}

nlohmann::json TestServer::wait_finished(int64_t id, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  nlohmann::json e;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = request("GET", "/api/v1/executions/" + std::to_string(id));
    REQUIRE(r.status == 200);
    e = nlohmann::json::parse(r.body);
    if (e["status"] == "succeeded" || e["status"] == "failed") return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("execution " << id << " did not finish in time: " << e.dump());
  return e;
}

int64_t TestServer::execution_count() const {
  auto r = request("GET", "/api/v1/executions?limit=500");
  REQUIRE(r.status == 200);
  return static_cast<int64_t>(nlohmann::json::parse(r.body)["items"].size());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

void ServerProcess::start(const std::vector<std::string>& serve_args,
                          const std::string& admin_token, const std::string& stdout_path,
                          const std::string& stderr_path, const std::string& url) {
  using std::chrono::milliseconds;
  REQUIRE(pid_ <= 0);
  std::vector<std::string> args = {TRIPLINE_BINARY, "serve"};
  args.insert(args.end(), serve_args.begin(), serve_args.end());
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("TRIPLINE_", 0) != 0) env.emplace_back(*e);
  if (!admin_token.empty()) env.push_back("TRIPLINE_ADMIN_TOKEN=" + admin_token);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  REQUIRE(out >= 0);
  REQUIRE(err >= 0);
  pid_t parent = ::getpid();
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {  // only async-signal-safe calls until execve
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  auto deadline = std::chrono::steady_clock::now() + milliseconds(15000);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("tripline exited at start-up (status " << status
                                                  << "): " << sh("tail -5 " + stderr_path));
    }
    OutboundRequest r;
    r.url = url + "/healthz";
    r.timeout = milliseconds(1000);
    if (http_request(r).status == 200) return;
    std::this_thread::sleep_for(milliseconds(20));
  }
  FAIL("tripline did not answer /healthz within 15 s: " << sh("tail -5 " + stderr_path));
}

void ServerProcess::kill9() {
  REQUIRE(pid_ > 0);
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  CHECK(WIFSIGNALED(status));
}

std::optional<int> ServerProcess::wait_exit(std::chrono::milliseconds limit) {
  REQUIRE(pid_ > 0);
  auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void ServerProcess::terminate(bool expect_exit_0) {
  REQUIRE(pid_ > 0);
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  CHECK(WIFEXITED(status));
  if (expect_exit_0) CHECK(WEXITSTATUS(status) == 0);
}

}  // namespace tripline::test
