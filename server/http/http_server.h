// The HTTP server: Pistache underneath, tripline's HttpRequest/HttpResponse above. Nothing else
// in tripline includes Pistache headers.
//
// Plain HTTP only. Pistache 0.0.5 can serve TLS, but it runs each handshake to the end on its one
// accept thread, so a single client that connects and stays silent stops every new connection;
// TLS terminates in a reverse proxy instead (deploy/nginx, tested by
// tests/integration/nginx_tls_test.cpp).
//
// Requests refused before parsing (server/http/http_framing.h: 400, 411, 413, 431, 505) are
// answered at once, even while the client is still sending, and then closed with a linger: the
// server stops writing (FIN) but reads and drops what still comes, for at most 2 s and 16 MiB, so
// the client reads the answer instead of a reset; past those bounds the connection is reset.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "http.h"
#include "status.h"

namespace tripline {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  int threads = 2;
  size_t max_request_bytes = 1 << 20;
};

class HttpServer {
 public:
  HttpServer(HttpHandler handler, HttpServerOptions options);
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
