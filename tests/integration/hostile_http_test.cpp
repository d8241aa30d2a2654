// Hostile bytes on a real socket: each gets the right 4xx (or a close) quickly, and the server
// keeps answering /healthz.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using SteadyClock = std::chrono::steady_clock;

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

// A blocking send() gives up after `seconds` (EAGAIN) instead of waiting for ever on a peer
// that stopped reading.
void send_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0);
}

struct Exchange {
  std::string response;
  bool closed = false;  // the server closed its side: EOF, or a reset after it
  bool reset = false;   // ECONNRESET/EPIPE on a send or receive
  size_t sent = 0;      // bytes of the request written
  double seconds = 0;
};

// Sends `bytes` while reading, on a non-blocking socket, until the server has closed and the whole
// request is sent (or sending failed), or `wait_ms` passes (counted from the connect). Reading
// while writing matters: a server that answers early (413) and stops reading would otherwise
// leave a blocking send() stuck on a full socket buffer with the answer unread. After the
// server's FIN the rest is still sent, as an uploading client does.
Exchange exchange(int port, const std::string& bytes, int wait_ms = 2000) {
  int fd = connect_to(port);
  REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
  auto start = SteadyClock::now();
  Exchange e;
  char buf[65536];
  bool sending = !bytes.empty(), reading = true;
  while (sending || reading) {
    int left = wait_ms -
               int(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start)
                       .count());
    if (left <= 0) break;
    pollfd p{fd, short((reading ? POLLIN : 0) | (sending ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, left) <= 0) break;
    if (reading && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        e.response.append(buf, size_t(n));
      } else if (n == 0) {
        e.closed = true, reading = false;
      } else if (errno != EAGAIN && errno != EINTR) {
        e.closed = true, reading = false, sending = false;
        e.reset = errno == ECONNRESET || errno == EPIPE;
      }
    }
    if (sending && (p.revents & (POLLOUT | POLLHUP | POLLERR))) {
      ssize_t n = ::send(fd, bytes.data() + e.sent,
                         std::min<size_t>(bytes.size() - e.sent, 1 << 16), MSG_NOSIGNAL);
      if (n > 0)
        e.sent += size_t(n);
      else if (errno != EAGAIN && errno != EINTR)
        e.reset = true, sending = false;  // refused mid-send
      if (e.sent == bytes.size()) sending = false;
    }
  }
  e.seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  ::close(fd);
  return e;
}

int status(const Exchange& e) {
  return e.response.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(e.response.substr(9, 3)) : 0;
}

void healthy(const TestServer& s) {
  auto start = SteadyClock::now();
  CHECK(s.request("GET", "/healthz", nullptr, false).status == 200);
  CHECK(SteadyClock::now() - start < std::chrono::seconds(1));
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
      {"huge Content-Length",
       "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4000000000\r\n\r\n", 413},
      {"oversized body",
       "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10485760\r\n\r\n" +
           std::string(10485760, 'x'),
       413},
      {"negative Content-Length",
       "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
      {"duplicate Content-Length",
       "POST /_webhooks/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
      {"Content-Length with Transfer-Encoding",
       "POST /_webhooks/x HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"chunked", "POST /_webhooks/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
      {"bare LF", "GET /healthz HTTP/1.1\nHost: a\n\n", 400},
      {"garbage",
       std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 tls hello?\r\n\r\n", 27), 400},
      {"header flood",
       [] {
         std::string r = "GET /healthz HTTP/1.1\r\n";
         for (int i = 0; i < 500; ++i) r += "X-Flood-" + std::to_string(i) + ": yes\r\n";
         return r + "\r\n";
       }(),
       431},
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

// trust 12: in a clean Debian 12 container under load, the "oversized body" case above waited
// 107 s with neither a 413 nor a close. Two defects. The test's client sent everything with a
// blocking send() before reading. The server, right after writing the 413, shut the connection
// down both ways and let Pistache close it while the client was still sending: that client
// either got a reset mid-send, or (often, once its window was full) stayed blocked in send() for
// about 106 s, neither accepted nor reset. Now the server answers, lingers (reads and drops the
// rest for a bounded time and byte count), and ends with a reset only past those bounds.
TEST_CASE(
    "trust 12: a client still sending an oversized body reads its 413 and a clean close, every "
    "time") {
  TestServer s;
  int port = std::stoi(s.url().substr(s.url().rfind(':') + 1));
  const std::string head = "POST /_webhooks/x HTTP/1.1\r\nHost: a\r\nContent-Length: ";

  // The whole body is sent while the answer is read; under the drain bound nothing is reset.
  std::string request = head + "10485760\r\n\r\n" + std::string(10485760, 'x');
  for (int round = 0; round < 20; ++round) {
    INFO("round " << round);
    auto e = exchange(port, request, 3000);
    CHECK(status(e) == 413);
    CHECK(e.response.find("{\"error\":") != std::string::npos);
    CHECK(e.closed);
    CHECK_FALSE(e.reset);
    CHECK(e.sent == request.size());
    CHECK(e.seconds < 1.5);
  }

  // Step by step: the answer and the server's FIN come while the client still has body to send;
  // what it sends next is taken and dropped (no reset) until the linger time ends.
  int fd = connect_to(port);
  send_timeout(fd, 2);
  std::string start = head + "5000000\r\n\r\n" + std::string(65536, 'x');
  REQUIRE(::send(fd, start.data(), start.size(), MSG_NOSIGNAL) == ssize_t(start.size()));
  std::string answer;
  char buf[4096];
  auto began = SteadyClock::now();
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 1000) == 1);
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n >= 0);
    if (n == 0) break;  // the FIN after the answer
    answer.append(buf, size_t(n));
  }
  CHECK(answer.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(SteadyClock::now() - began < std::chrono::seconds(1));
  std::string more(65536, 'y');
  for (int i = 0; i < 5; ++i) {  // half a second of more body: each send is accepted
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ssize_t n = ::send(fd, more.data(), more.size(), MSG_NOSIGNAL);
    INFO("send " << i << " after the answer: " << (n < 0 ? std::strerror(errno) : "ok"));
    CHECK(n == ssize_t(more.size()));
  }
  // ...and the linger is bounded: within a few seconds the server stops taking bytes (reset).
  bool refused = false;
  while (!refused && SteadyClock::now() - began < std::chrono::seconds(6)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    refused = ::send(fd, more.data(), more.size(), MSG_NOSIGNAL) < 0;
  }
  CHECK(refused);
  ::close(fd);

  // The byte bound: a client pouring bytes is cut off well before it has sent 256 MiB.
  fd = connect_to(port);
  send_timeout(fd, 2);
  std::string flood = head + "268435456\r\n\r\n";
  REQUIRE(::send(fd, flood.data(), flood.size(), MSG_NOSIGNAL) == ssize_t(flood.size()));
  std::string chunk(1 << 20, 'z');
  size_t poured = 0;
  int error = 0;
  began = SteadyClock::now();
  while (poured < (256u << 20) && SteadyClock::now() - began < std::chrono::seconds(5)) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0) {
      error = errno;
      break;
    }
    poured += size_t(n);
  }
  INFO("poured " << poured << " bytes, then: " << std::strerror(error));
  CHECK((error == ECONNRESET || error == EPIPE));  // cut off, not merely no longer read
  CHECK(poured < (64u << 20));
  CHECK(SteadyClock::now() - began < std::chrono::seconds(2));
  ::close(fd);
  healthy(s);
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
  std::string head =
      "POST /_webhooks/x.y.z HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: "
      "2\r\n\r\n";
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
  for (int i = 0; i < 200; ++i) idle.push_back(connect_to(port));  // half-open: never send
  for (int i = 0; i < 50; ++i) {                                   // slowloris: a few bytes
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
