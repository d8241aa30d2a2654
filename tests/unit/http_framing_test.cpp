#include "http_framing.h"

#include <catch2/catch.hpp>

using namespace tripline;

namespace {
RequestFraming::Limits limits() {
  RequestFraming::Limits l;
  l.max_body = 1000;
  l.max_header_bytes = 2048;
  l.max_headers = 20;
  return l;
}
RequestFraming::Output feed(const std::string& bytes) {
  RequestFraming f(limits());
  RequestFraming::Output out;
  f.feed(bytes, &out);
  return out;
}
int status_of(const RequestFraming::Output& out) {
  if (out.reply.rfind("HTTP/1.1 ", 0) != 0) return 0;
  return std::stoi(out.reply.substr(9, 3));
}
}  // namespace

TEST_CASE("framing: a well-formed request passes through, with keep-alive made explicit") {
  auto out = feed("POST /_webhooks/t HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  CHECK(out.reply.empty());
  CHECK_FALSE(out.close);
  CHECK(out.forward ==
        "POST /_webhooks/t HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: "
        "keep-alive\r\n\r\nhello");
  auto explicit_close = feed("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  CHECK(explicit_close.forward == "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  auto http10 = feed("GET / HTTP/1.0\r\n\r\n");
  CHECK(http10.forward == "GET / HTTP/1.0\r\n\r\n");
}

TEST_CASE("framing: pipelined requests in one read: the first is answered and closes") {
  auto out = feed(
      "GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c "
      "HTTP/1.1\r\n\r\n");
  CHECK(out.forward == "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(out.reply.empty());
  auto with_body = feed("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /b HTTP/1.1\r\n\r\n");
  CHECK(with_body.forward ==
        "POST /a HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
}

TEST_CASE("framing: bytes split anywhere across reads give the same result") {
  std::string req = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  std::string whole = feed(req).forward;
  for (size_t cut = 1; cut < req.size(); ++cut) {
    RequestFraming f(limits());
    RequestFraming::Output out;
    f.feed(req.substr(0, cut), &out);
    f.feed(req.substr(cut), &out);
    INFO(cut);
    CHECK(out.forward == whole);
    CHECK(out.reply.empty());
  }
  // One byte at a time.
  RequestFraming f(limits());
  RequestFraming::Output out;
  for (char c : req) f.feed(std::string_view(&c, 1), &out);
  CHECK(out.forward == whole);
}

TEST_CASE("framing: Content-Length tricks are refused before any body is buffered") {
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n")) == 413);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n")) ==
        413);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n")) == 413);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n")) == 400);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\n")) == 400);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n")) == 400);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n")) == 400);
  CHECK(status_of(feed("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")) ==
        400);
  CHECK(status_of(feed(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")) == 400);
  CHECK(status_of(
            feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")) ==
        411);
  auto out = feed("POST / HTTP/1.1\r\nContent-Length: 4000000000\r\n\r\n");
  CHECK(out.close);
  CHECK(out.forward.empty());
  CHECK(out.reply.find("{\"error\":\"payload_too_large\"") != std::string::npos);
}

TEST_CASE("framing: after a refusal nothing more on the connection is parsed") {
  RequestFraming f(limits());
  RequestFraming::Output out;
  f.feed("POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'x') +
             "GET / HTTP/1.1\r\n\r\n",
         &out);
  CHECK(f.refused());
  CHECK(out.forward.empty());
  CHECK(status_of(out) == 413);
  RequestFraming::Output later;
  f.feed("GET /healthz HTTP/1.1\r\n\r\n", &later);
  CHECK(later.forward.empty());
  CHECK(later.reply.empty());
}

TEST_CASE("framing: malformed request lines, bare LF, NUL bytes and header floods") {
  CHECK(status_of(feed("GET /healthz HTTP/1.1\nHost: a\n\n")) == 400);
  CHECK(status_of(feed("GET /healthz HTTP/1.1\r\nHost: a\n\r\n\r\n")) == 400);
  using namespace std::string_literals;
  CHECK(status_of(feed("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"s)) == 400);
  CHECK(status_of(feed("\x16\x03\x01\x02\x00 garbage\r\n\r\n"s)) == 400);
  CHECK(status_of(feed("GET\r\n\r\n")) == 400);
  CHECK(status_of(feed("GET /a b HTTP/1.1\r\n\r\n")) == 400);
  CHECK(status_of(feed("G(T / HTTP/1.1\r\n\r\n")) == 400);
  CHECK(status_of(feed("GET / HTTP/2.0\r\n\r\n")) == 505);
  CHECK(status_of(feed("GET / HTTP/1.1\r\n folded: x\r\n\r\n")) == 400);
  CHECK(status_of(feed("GET / HTTP/1.1\r\nno-colon\r\n\r\n")) == 400);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 21; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(status_of(feed(many + "\r\n")) == 431);
  CHECK(status_of(feed("GET / HTTP/1.1\r\nX: " + std::string(3000, 'a'))) == 431);  // never ends
  CHECK(status_of(feed("GET / HTTP/1.1\r\nX: " + std::string(3000, 'a') + "\r\n\r\n")) == 431);
}

TEST_CASE("framing: Expect: 100-continue is answered at once") {
  auto out = feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  CHECK(out.reply == "HTTP/1.1 100 Continue\r\n\r\n");
  CHECK_FALSE(out.close);
  CHECK(feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
            .reply.find("413") != std::string::npos);
}

TEST_CASE("framing: keep-alive requests in separate reads, blank lines between them tolerated") {
  RequestFraming f(limits());
  RequestFraming::Output out;
  f.feed("GET / HTTP/1.1\r\n\r\n", &out);
  f.feed("\r\n\r\nGET /b HTTP/1.1\r\n\r\n", &out);
  CHECK(out.reply.empty());
  CHECK(out.forward ==
        "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\nConnection: "
        "keep-alive\r\n\r\n");
}

TEST_CASE(
    "framing: each forwarded request is delimited (start, header section, body), across reads") {
  RequestFraming f(limits());
  RequestFraming::Output out;
  f.feed("POST /_webhooks/t HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe", &out);
  REQUIRE(out.starts.size() == 1);
  CHECK(out.starts[0].at == 0);
  CHECK(out.forward.substr(0, out.starts[0].head) ==
        "POST /_webhooks/t HTTP/1.1\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n");
  CHECK(out.starts[0].body == 5);
  RequestFraming::Output next;
  // The end of the first body, then a second request, in one read: not pipelining (the first
  // was not complete in an earlier read), so both pass.
  f.feed("lloGET /b HTTP/1.1\r\n\r\n", &next);
  REQUIRE(next.starts.size() == 1);
  CHECK(next.starts[0].at == 3);
  CHECK(next.forward.substr(3, next.starts[0].head) ==
        "GET /b HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
  CHECK(next.starts[0].body == 0);

  // Pipelined: the rewritten header section (Connection: close) keeps its start exact.
  auto piped = feed("POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /b HTTP/1.1\r\n\r\n");
  REQUIRE(piped.starts.size() == 1);
  CHECK(piped.forward.substr(0, piped.starts[0].head) ==
        "POST /a HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n");
  CHECK(piped.forward.substr(piped.starts[0].head) == "ok");
}
