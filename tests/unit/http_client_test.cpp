// The outbound client's Unix-socket requests (Docker's API socket): one thread's requests to a
// daemon share one connection, and never another daemon's (server/base/http_client.cpp).
#include "http_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace tripline;

namespace {

// A keep-alive HTTP/1.1 server on a Unix socket: answers every request with `name` and the number
// of the connection it came on, and counts the connections it accepted. With close_each, it
// closes every connection after one answer (a daemon that does not keep connections alive).
class UnixHttpServer {
 public:
  UnixHttpServer(std::string name, bool close_each = false)
      : name_(std::move(name)), close_each_(close_each) {
    char dir[] = "/tmp/tl-unix-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    dir_ = dir;
    path_ = dir_ + "/peer.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~UnixHttpServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    acceptor_.join();
    for (auto& t : connections_) t.join();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  const std::string& path() const { return path_; }
  int accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      int n = ++accepted_;
      connections_.emplace_back([this, c, n] { serve(c, n); });
    }
  }
  void serve(int c, int n) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t got = ::read(c, buf, sizeof buf);
        if (got <= 0) {
          ::close(c);
          return;
        }
        in.append(buf, static_cast<size_t>(got));
      }
      in.erase(0, end + 4);  // GET requests: no body
      std::string body = name_ + " " + std::to_string(n);
      std::string out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                        (close_each_ ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
      if (::write(c, out.data(), out.size()) != static_cast<ssize_t>(out.size()) || close_each_) {
        ::close(c);
        return;
      }
    }
  }
  std::string name_;
  bool close_each_;
  std::string dir_, path_;
  int fd_ = -1;
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's alone until it has ended
};

OutboundResponse get(const UnixHttpServer& s) {
  OutboundRequest r;
  r.url = "http://docker/v1.41/services/web";
  r.unix_socket = s.path();
  return http_request(r);
}

}  // namespace

TEST_CASE(
    "http client: a thread's requests to one Unix socket share a connection, never another "
    "socket's") {
  UnixHttpServer a("a"), b("b");
  OutboundResponse first;
  OutboundResponse second;
  OutboundResponse other;
  OutboundResponse again;
  std::thread([&] {
    first = get(a);
    second = get(a);
    other = get(b);  // another daemon: its own connection and its own answer
    again = get(a);
  }).join();
  CHECK(first.status == 200);
  CHECK(first.body == "a 1");
  CHECK(second.body == "a 1");  // the same connection
  CHECK(other.body == "b 1");
  CHECK(again.body == "a 1");
  CHECK(a.accepted() == 1);
  CHECK(b.accepted() == 1);

  // Another thread: a connection of its own.
  OutboundResponse elsewhere;
  std::thread([&] { elsewhere = get(a); }).join();
  CHECK(elsewhere.body == "a 2");
  CHECK(a.accepted() == 2);
}

TEST_CASE(
    "http client: a Unix-socket peer that closes each connection is asked again on a new one") {
  UnixHttpServer closing("c", /*close_each=*/true);
  std::vector<std::string> bodies;
  std::thread([&] {
    for (int i = 0; i < 3; ++i) bodies.push_back(get(closing).body);
  }).join();
  CHECK(bodies == std::vector<std::string>{"c 1", "c 2", "c 3"});
  CHECK(closing.accepted() == 3);
}
