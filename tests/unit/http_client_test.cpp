// The outbound client's Unix-socket requests (Docker's API socket): one thread's requests to a
// daemon share one connection, never another daemon's, and a connection that went bad is never
// used again (server/base/http_client.cpp).
#include "http_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace tripline;

namespace {

// How the server below answers.
enum class Mode {
  kKeepAlive,      // keeps every connection open
  kCloseEach,      // "Connection: close", and closes
  kCloseSilently,  // says nothing, and closes after each answer (a daemon that restarted)
  kSlowFirst,      // answers its first request only after 400 ms
  kLargeFirst,     // answers its first request with 64 KiB
};

// An HTTP/1.1 server on a Unix socket: answers every request with `name` and the number of the
// connection it came on, and counts the connections it accepted.
class UnixHttpServer {
 public:
  explicit UnixHttpServer(std::string name, Mode mode = Mode::kKeepAlive)
      : name_(std::move(name)), mode_(mode) {
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
    {
      // A client may keep its connection open for good (a thread's kept handle): end it here.
      std::lock_guard lock(mu_);
      for (int c : open_) ::shutdown(c, SHUT_RDWR);
    }
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
      {
        std::lock_guard lock(mu_);
        open_.push_back(c);
      }
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
        if (got <= 0) return;  // the descriptor is closed by the destructor's shutdown
        in.append(buf, static_cast<size_t>(got));
      }
      in.erase(0, end + 4);  // GET requests: no body
      bool first = requests_++ == 0;
      std::string body = name_ + " " + std::to_string(n);
      if (first && mode_ == Mode::kSlowFirst)
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
      if (first && mode_ == Mode::kLargeFirst) body.assign(64 * 1024, 'x');
      std::string out = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                        (mode_ == Mode::kCloseEach ? "\r\nConnection: close" : "") + "\r\n\r\n" +
                        body;
      if (::send(c, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()) ||
          mode_ == Mode::kCloseEach || mode_ == Mode::kCloseSilently) {
        ::shutdown(c, SHUT_RDWR);
        return;
      }
    }
  }
  std::string name_;
  Mode mode_;
  std::string dir_, path_;
  int fd_ = -1;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's alone until it has ended
  std::mutex mu_;
  std::vector<int> open_;  // every accepted descriptor (closed when the server ends)
};

OutboundResponse get(const std::string& socket,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  OutboundRequest r;
  r.url = "http://docker/v1.41/services/web";
  r.unix_socket = socket;
  r.timeout = timeout;
  r.max_response_bytes = 1024;
  return http_request(r);
}

// Runs `f` on a thread of its own, with a kept handle of its own.
template <typename F>
void on_a_new_thread(F f) {
  std::thread(f).join();
}

}  // namespace

TEST_CASE(
    "http client: a thread's requests to one Unix socket share a connection, never another "
    "socket's") {
  UnixHttpServer a("a"), b("b");
  OutboundResponse first, second, other, again;
  on_a_new_thread([&] {
    first = get(a.path());
    second = get(a.path());
    other = get(b.path());  // another daemon: its own connection and its own answer
    again = get(a.path());
  });
  CHECK(first.status == 200);
  CHECK(first.body == "a 1");
  CHECK(second.body == "a 1");  // the same connection
  CHECK(other.body == "b 1");
  CHECK(again.body == "a 1");
  CHECK(a.accepted() == 1);
  CHECK(b.accepted() == 1);

  // Another thread: a connection of its own.
  OutboundResponse elsewhere;
  on_a_new_thread([&] { elsewhere = get(a.path()); });
  CHECK(elsewhere.body == "a 2");
  CHECK(a.accepted() == 2);
}

TEST_CASE("http client: a path that names another Unix socket now is not answered by the old one") {
  // A symlink repointed (a daemon restarted, rootless and rootful Docker swapped) while the
  // kept connection to the first daemon is still open.
  UnixHttpServer a("a"), b("b");
  std::string link = a.path() + ".link";
  REQUIRE(::symlink(a.path().c_str(), link.c_str()) == 0);
  OutboundResponse before, after, gone;
  on_a_new_thread([&] {
    before = get(link);
    ::unlink(link.c_str());
    REQUIRE(::symlink(b.path().c_str(), link.c_str()) == 0);
    after = get(link);
    ::unlink(link.c_str());
    gone = get(link);  // no socket by that name: not answered over a kept connection either
  });
  CHECK(before.body == "a 1");
  CHECK(after.body == "b 1");
  CHECK(gone.transport_failed());
}

TEST_CASE(
    "http client: a Unix-socket peer that closes each connection is asked again on a new one") {
  UnixHttpServer closing("c", Mode::kCloseEach), silent("s", Mode::kCloseSilently);
  std::vector<std::string> bodies;
  on_a_new_thread([&] {
    for (int i = 0; i < 3; ++i) bodies.push_back(get(closing.path()).body);
    for (int i = 0; i < 3; ++i) bodies.push_back(get(silent.path()).body);
  });
  CHECK(bodies == std::vector<std::string>{"c 1", "c 2", "c 3", "s 1", "s 2", "s 3"});
  CHECK(closing.accepted() == 3);
  CHECK(silent.accepted() == 3);
}

TEST_CASE(
    "http client: after a timed-out or too large answer, the next request gets its own answer on "
    "a new connection") {
  UnixHttpServer slow("slow", Mode::kSlowFirst), large("large", Mode::kLargeFirst);
  OutboundResponse timed_out, next_slow, too_large, next_large;
  on_a_new_thread([&] {
    timed_out = get(slow.path(), std::chrono::milliseconds(100));
    next_slow = get(slow.path());  // the late answer to the first must not be read as this one's
    too_large = get(large.path());
    next_large = get(large.path());
  });
  CHECK(timed_out.transport_failed());
  CHECK(next_slow.body == "slow 2");
  CHECK(too_large.too_large);
  CHECK(next_large.body == "large 2");
}
