// Hostile bytes on a real socket: each gets the right 4xx (or a close) quickly, and the server
// keeps answering /healthz.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using Clock = std::chrono::steady_clock;

namespace {
int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

struct Exchange {
  std::string response;
  bool closed = false;
  double seconds = 0;
};

// Sends `bytes` (ignoring a reset mid-send) and reads until the server closes or `wait_ms` passes.
Exchange exchange(int port, const std::string& bytes, int wait_ms = 2000) {
  int fd = connect_to(port);
  auto start = Clock::now();
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += size_t(n);
  }
  Exchange e;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int left = wait_ms - int(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
    if (left <= 0 || ::poll(&p, 1, left) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      e.closed = true;
      break;
    }
    e.response.append(buf, size_t(n));
  }
  e.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(fd);
  return e;
}

int status(const Exchange& e) {
  return e.response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(e.response.substr(9, 3)) : 0;
}

void healthy(const TestServer& s) {
  auto start = Clock::now();
  CHECK(s.request("GET", "/healthz", nullptr, false).status == 200);
  CHECK(Clock::now() - start < std::chrono::seconds(1));
}
}  // namespace

TEST_CASE("hostile http: malformed framing gets the right 4xx, a JSON body and a close") {
  TestServer s;
  int port = std::stoi(s.url().substr(s.url().rfind(':') + 1));
  struct Case {
    const char* name;
    std::string bytes;
    int status;
  };
  std::vector<Case> cases = {
      {"huge Content-Length", "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4000000000\r\n\r\n", 413},
      {"oversized body", "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10485760\r\n\r\n" + std::string(10485760, 'x'), 413},
      {"negative Content-Length", "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"duplicate Content-Length", "POST /_webhooks/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"Content-Length with Transfer-Encoding", "POST /_webhooks/x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"chunked", "POST /_webhooks/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
      {"bare LF", "GET /healthz HTTP/1.1\nHost: a\n\n", 400},
      {"garbage", std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 tls hello?\r\n\r\n", 27), 400},
      {"header flood", [] {
         std::string r = "GET /healthz HTTP/1.1\r\n";
         for (int i = 0; i < 500; ++i) r += "X-Flood-" + std::to_string(i) + ": yes\r\n";
         return r + "\r\n";
       }(), 431},
      {"endless header", "GET /healthz HTTP/1.1\r\nX: " + std::string(100000, 'a'), 431},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto e = exchange(port, c.bytes);
    CHECK(status(e) == c.status);
    CHECK(e.closed);
    CHECK(e.seconds < 1.5);
    CHECK(e.response.find("{\"error\":") != std::string::npos);
    CHECK(e.response.find("Connection: close") != std::string::npos);
    healthy(s);
  }
  CHECK(s.execution_count() == 0);
}

TEST_CASE("hostile http: keep-alive is the HTTP/1.1 default and Expect: 100-continue is answered") {
  TestServer s;
  int port = std::stoi(s.url().substr(s.url().rfind(':') + 1));
  int fd = connect_to(port);
  std::string req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
  char buf[4096];
  for (int i = 0; i < 2; ++i) {  // the same connection answers twice
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    std::string resp(buf, size_t(n));
    CHECK(resp.rfind("HTTP/1.1 200", 0) == 0);
  }
  ::close(fd);

  fd = connect_to(port);
  std::string head = "POST /_webhooks/x.y.z HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  ::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
  pollfd p{fd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 500) == 1);  // curl waits a second when no 100 comes
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  CHECK(std::string(buf, size_t(std::max<ssize_t>(n, 0))).rfind("HTTP/1.1 100 Continue", 0) == 0);
  ::close(fd);
}

TEST_CASE("hostile http: idle, half-open and slow connections do not stop the server") {
  TestServer s;
  int port = std::stoi(s.url().substr(s.url().rfind(':') + 1));
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(connect_to(port));           // half-open: never send
  for (int i = 0; i < 50; ++i) {                                            // slowloris: a few bytes
    int fd = connect_to(port);
    ::send(fd, "POST /_webhooks/x HTTP/1.1\r\nX-a: ", 33, MSG_NOSIGNAL);
    idle.push_back(fd);
  }
  for (int i = 0; i < 5; ++i) healthy(s);
  for (int fd : idle) ::close(fd);
  healthy(s);
}

TEST_CASE("hostile http: bad JSON to the API is refused, and the server keeps serving") {
  TestServer s;
  auto post = [&](const std::string& body) {
    OutboundRequest r;
    r.method = "POST";
    r.url = s.url() + "/api/v1/receivers";
    r.body = body;
    r.headers = {{"Authorization", "Bearer " + kAdminToken}, {"Content-Type", "application/json"}};
    return http_request(r);
  };
  CHECK(post(std::string(100000, '[') + std::string(100000, ']')).status == 400);
  CHECK(post("{\"name\":\"\xc3\x28\"}").status == 400);
  CHECK(post("\xef\xbb\xbf{}").status != 500);
  CHECK(post(std::string(900000, ' ')).status == 400);
  CHECK(post("{\"name\": 1e999999}").status != 500);
  healthy(s);
}
