// The HTTP server: Pistache underneath, tripline's HttpRequest/HttpResponse above. Nothing else
// in tripline includes Pistache headers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "app.h"
#include "status.h"

namespace tripline {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  int threads = 2;
  size_t max_request_bytes = 1 << 20;
  std::string tls_cert;  // both set: serve HTTPS
  std::string tls_key;
};

class HttpServer {
 public:
  HttpServer(App& app, HttpServerOptions options);
  ~HttpServer();
  Status bind();   // settles the port (port 0: reserves a free one); no request is served yet
  Status serve();  // listens and handles requests on background threads
  uint16_t port() const;
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tripline
