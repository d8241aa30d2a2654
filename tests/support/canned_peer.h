// A hostile or broken peer for tests: a loopback HTTP server (127.0.0.1:0, one thread, plain
// blocking sockets, Connection: close) that answers each request with whatever raw body it was
// given for the request's path, however deep or large, or that accepts connections and never
// answers at all (a hung Docker). Stands in for the Docker Engine API and ExternalDNS webhook
// providers where the real ones would never misbehave on cue.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tripline::test {

class CannedPeer {
 public:
  CannedPeer();
  ~CannedPeer();
  CannedPeer(const CannedPeer&) = delete;
  CannedPeer& operator=(const CannedPeer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Requests whose path (query removed) is `path` get this answer; with `no_length` the body is
  // sent without Content-Length, ended by the close (so only the client's running count can
  // stop an oversized one).
  void answer(const std::string& path, int status, std::string content_type, std::string body,
              bool no_length = false);
  // From now on, connections are accepted and held open without an answer.
  void hang(bool on);
  // The paths requested so far, in order.
  std::vector<std::string> paths() const;

 private:
  struct Answer {
    int status = 404;
    std::string content_type;
    std::string body;
    bool no_length = false;
  };
  void serve();
  void handle(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> hang_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, Answer> answers_;
  std::vector<std::string> paths_;
  std::vector<int> held_;  // connections held open while hanging
};

}  // namespace tripline::test
