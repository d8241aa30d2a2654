#include "canned_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace tripline::test {

CannedPeer::CannedPeer() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("CannedPeer: cannot listen on 127.0.0.1");
  port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

CannedPeer::~CannedPeer() {
  stop_ = true;
  thread_.join();
  ::close(listen_fd_);
  for (int fd : held_) ::close(fd);
}

void CannedPeer::answer(const std::string& path, int status, std::string content_type,
                        std::string body, bool no_length) {
  std::lock_guard lock(mu_);
  answers_[path] = {status, std::move(content_type), std::move(body), no_length};
}

void CannedPeer::hang(bool on) { hang_ = on; }

std::vector<std::string> CannedPeer::paths() const {
  std::lock_guard lock(mu_);
  return paths_;
}

void CannedPeer::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (hang_) {
      std::lock_guard lock(mu_);
      held_.push_back(fd);  // never answered, closed by the destructor
      continue;
    }
    handle(fd);
    ::close(fd);
  }
}

void CannedPeer::handle(int fd) {
  std::string in;
  char buf[8192];
  size_t header_end = std::string::npos;
  while (header_end == std::string::npos && in.size() < (1 << 20)) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, size_t(n));
    header_end = in.find("\r\n\r\n");
  }
  // "GET /path?query HTTP/1.1": the request body, if any, is not needed by any test.
  size_t sp1 = in.find(' '), sp2 = in.find(' ', sp1 + 1);
  std::string path = in.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  Answer a;
  {
    std::lock_guard lock(mu_);
    paths_.push_back(path);
    if (auto it = answers_.find(path); it != answers_.end()) a = it->second;
  }
  std::string out = "HTTP/1.1 " + std::to_string(a.status) + " Canned\r\n";
  if (!a.content_type.empty()) out += "Content-Type: " + a.content_type + "\r\n";
  if (!a.no_length) out += "Content-Length: " + std::to_string(a.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  out += a.body;
  for (size_t sent = 0; sent < out.size();) {
    ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += size_t(n);
  }
}

}  // namespace tripline::test
