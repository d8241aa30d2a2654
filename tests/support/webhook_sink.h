// A real HTTP receiver of webhooks for tests: a loopback server (127.0.0.1:0, one thread, plain
// blocking sockets, Connection: close) that records every request it gets (method, path, headers,
// body) and answers from a script: each request takes the next scripted answer, and 200 once
// the script is used up. Can be stopped and started again on the same port (a receiver that was
// down for a while).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tripline::test {

class WebhookSink {
 public:
  struct Request {
    std::string method, path, body;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::chrono::steady_clock::time_point received_at;
    std::string header(const std::string& lower_name) const {
      for (const auto& [k, v] : headers)
        if (k == lower_name) return v;
      return {};
    }
  };
  struct Answer {
    int status = 200;
    std::string body = "ok";
    std::vector<std::pair<std::string, std::string>> headers;
  };

  WebhookSink();
  ~WebhookSink();
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int port() const { return port_; }

  void script(std::vector<Answer> answers);
  std::vector<Request> requests() const;
  // Waits until `n` requests came (true) or `timeout` passed (false).
  bool wait_for(size_t n, std::chrono::milliseconds timeout) const;
  // Closes the listening socket (connections are refused) / opens it again on the same port.
  void stop();
  void start();

 private:
  void listen_on(int port);
  void serve();
  void handle(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::deque<Answer> script_;
  std::vector<Request> requests_;
};

// Whether the reference Standard Webhooks implementation (the npm `standardwebhooks` package,
// tests/interop/verify.mjs) accepts `request` under `secret`. When node or npm is missing, *ran
// is false and the calling test is skipped (failed under CI=true).
bool reference_verifies(const WebhookSink::Request& request, const std::string& secret, bool* ran);

}  // namespace tripline::test
