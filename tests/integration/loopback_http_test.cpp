// The loopback HTTP server under the contract fakes (tests/support/loopback_http.h), driven by
// tripline's own outbound client: what the fakes' handlers see and what the server records.
#include "../support/loopback_http.h"

#include <catch2/catch.hpp>
#include <string>

#include "../support/kube_apiserver_fake.h"
#include "http_client.h"

using namespace tripline;
using namespace tripline::test;

namespace {

HttpResponse echo(const HttpRequest& r) {
  if (r.too_large) return {413, "text/plain", "too large\n"};
  if (r.method == "DELETE") return {204, "", "never sent"};
  return {200, "text/plain", r.method + " " + r.path + " " + r.header("x-test") + " " + r.body};
}

}  // namespace

TEST_CASE("loopback HTTP server: plain, each request handled and recorded with its status") {
  LoopbackHttpServer server("test server", echo, std::nullopt, 16);
  std::string base = "http://127.0.0.1:" + std::to_string(server.port());

  OutboundRequest get;
  get.url = base + "/a?b=1";
  get.headers = {{"X-Test", "one"}, {"x-test", "two"}};
  auto got = http_request(get);
  CHECK(got.status == 200);
  CHECK(got.body == "GET /a?b=1 two ");  // names lower-cased, the last value wins

  OutboundRequest post;
  post.method = "POST";
  post.url = base + "/p";
  post.body = "sixteen bytes!!!";
  CHECK(http_request(post).body == "POST /p  sixteen bytes!!!");
  post.body += "!";  // one over the server's max_body: not read, the handler is told
  CHECK(http_request(post).status == 413);

  OutboundRequest del;
  del.method = "DELETE";
  del.url = base + "/d";
  auto deleted = http_request(del);
  CHECK(deleted.status == 204);
  CHECK(deleted.body.empty());

  auto ex = server.exchanges();
  REQUIRE(ex.size() == 4);
  CHECK(ex[0].request.path == "/a?b=1");
  CHECK(ex[0].status == 200);
  CHECK(ex[1].request.body == "sixteen bytes!!!");
  CHECK(ex[2].request.too_large);
  CHECK(ex[2].request.body.empty());
  CHECK(ex[2].status == 413);
  CHECK(ex[3].status == 204);
  server.clear();
  CHECK(server.exchanges().empty());
}

TEST_CASE("loopback HTTP server: TLS, with the client certificate's name when it is verified") {
  TestCa ca;
  auto leaf = ca.issue("test server", true);
  LoopbackHttpServer server("test server", echo,
                            LoopbackHttpServer::Tls{leaf.cert_pem, leaf.key_pem, ca.cert_pem()});
  OutboundRequest req;
  req.url = "https://127.0.0.1:" + std::to_string(server.port()) + "/t";
  req.ca_pem = ca.cert_pem();
  auto client = ca.issue("alice", false);
  req.client_cert_pem = client.cert_pem;
  req.client_key_pem = client.key_pem;
  CHECK(http_request(req).body == "GET /t  ");

  TestCa other;
  OutboundRequest untrusting = req;
  untrusting.ca_pem = other.cert_pem();  // the client does not trust the server: no request
  CHECK(http_request(untrusting).tls_failed);

  auto ex = server.exchanges();
  REQUIRE(ex.size() == 1);
  CHECK(ex[0].request.client_cn == "alice");
}
