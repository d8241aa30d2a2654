// A loopback HTTP/1.1 server for the contract fakes (kube_apiserver_fake, externaldns_fake): it
// accepts on 127.0.0.1:0, reads one request per connection, hands it to the fake's handler,
// records it with the status answered, writes the answer and closes (Connection: close). The
// fakes keep their upstream contracts in their handlers; the socket and TLS plumbing is here.
//
// Plain, or TLS with a server certificate and, optionally, a CA against which client
// certificates are verified when sent (kube-apiserver's x509 authentication).
//
// One thread, one connection at a time, plain blocking sockets with 2 s timeouts. A head over
// 64 KiB or a connection that hangs up mid-request gets no answer and is not recorded.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tripline::test {

struct HttpRequest {
  std::string method, path, body;
  std::map<std::string, std::string> headers;  // names lower-cased; the last of a name wins
  std::string client_cn;  // TLS: the CN of the client certificate, when sent and verified
  // Content-Length was above the server's max_body: the body was not read (body is empty).
  bool too_large = false;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // no Content-Type header when empty
  std::string body;          // not sent (nor Content-Length) for a 204
  std::vector<std::pair<std::string, std::string>> headers;  // more, e.g. WWW-Authenticate
};

class LoopbackHttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Tls {
    std::string cert_pem, key_pem;
    std::string client_ca_pem;  // empty: client certificates are not asked for
  };
  struct Exchange {
    HttpRequest request;
    int status = 0;
  };

  // `name` is for error messages ("fake kube-apiserver"). The handler runs on the server's
  // thread, one request at a time; whatever it reads must outlive the server.
  LoopbackHttpServer(std::string name, Handler handler, std::optional<Tls> tls = std::nullopt,
                     size_t max_body = 1 << 20);
  ~LoopbackHttpServer();
  LoopbackHttpServer(const LoopbackHttpServer&) = delete;
  LoopbackHttpServer& operator=(const LoopbackHttpServer&) = delete;

  int port() const { return port_; }
  // Every request answered, in order, recorded before its answer is written.
  std::vector<Exchange> exchanges() const;
  void clear();

 private:
  void serve();
  void handle(int fd);

  std::string name_;
  Handler handler_;
  size_t max_body_;
  void* ctx_ = nullptr;  // SSL_CTX*, null when plain
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Exchange> exchanges_;
  std::thread thread_;  // last: started once everything above is set
};

}  // namespace tripline::test
