// A small ExternalDNS webhook provider for contract tests: no real provider runs here. It follows
// the upstream contract (kubernetes-sigs/external-dns provider/webhook/api/httpapi.go, and the
// media type rules of docs/tutorials/webhook-provider.md):
//   GET /         Accept must be the media type (else 406); answers the domain filter with
//                 Content-Type exactly application/external.dns.webhook+json;version=1
//   GET /records  Accept must be the media type (else 406); 200 with a bare array of endpoints
//   POST /records Content-Type must be the media type (else 415); bad JSON or shape is 400,
//                 over 1 MiB is 413; changes that do not fit the records (update or delete of a
//                 missing record, create of an existing one) are 500, as providers' ApplyChanges
//                 errors are; success is 204. Keys are read like Go's encoding/json does (exact,
//                 then case-insensitively), so {"Create": ...} of v0.14-0.16 works too.
// It records every request and every accepted change set, and can be told to fail.
//
// Plain HTTP on 127.0.0.1:0 (loopback_http.h), one connection at a time, Connection: close.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopback_http.h"

namespace tripline::test {

class FakeExternalDns {
 public:
  explicit FakeExternalDns(nlohmann::json domain_filter = {{"include", {"example.org"}}});
  ~FakeExternalDns();
  FakeExternalDns(const FakeExternalDns&) = delete;
  FakeExternalDns& operator=(const FakeExternalDns&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  void set_records(nlohmann::json endpoints);
  nlohmann::json records() const;
  // The bodies of the POST /records requests answered 204, as sent.
  std::vector<nlohmann::json> changes() const;

  struct Request {
    std::string method, path, accept, content_type;
    int status = 0;
  };
  std::vector<Request> requests() const;

  // The next `times` requests to /records with `method` (any when empty) answer `status` and
  // change nothing.
  void fail_next(int status, int times = 1, std::string method = "");
  // GET / and GET /records answer with capitalised keys ("Include", "DNSName", ...).
  void set_capitalised(bool on);
  // The Content-Type GET / answers with (to test negotiation).
  void set_negotiate_content_type(std::string type);

 private:
  struct Response {
    int status = 200;
    std::string content_type;
    std::string body;
  };
  HttpResponse answer(const HttpRequest& req);
  Response route(const std::string& method, const std::string& path, const std::string& accept,
                 const std::string& content_type, const std::string& body);
  Response apply(const nlohmann::json& changes);

  mutable std::mutex mu_;
  nlohmann::json filter_;
  nlohmann::json records_ = nlohmann::json::array();
  std::vector<nlohmann::json> changes_;
  int fail_status_ = 0, fail_times_ = 0;
  std::string fail_method_;
  bool capitalised_ = false;
  std::string negotiate_type_;
  LoopbackHttpServer server_;  // last: its thread reads the members above, so it stops first
};

}  // namespace tripline::test
