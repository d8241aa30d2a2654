// Request framing checks, applied to the raw bytes of each connection BEFORE the HTTP library
// parses them, because Debian's Pistache 0.0.5 reserves a body buffer from Content-Length before
// any size check, lets the first of two Content-Length headers win (request smuggling behind a
// proxy), keeps parsing the rest of an oversized body as new requests, ignores
// `Expect: 100-continue`, and closes HTTP/1.1 connections that do not say keep-alive.
//
// Per request: the request line must be `METHOD SP target SP HTTP/1.x` with CRLF line ends (a
// bare LF is refused); at most `max_header_bytes` of header section and `max_headers` fields;
// Content-Length, when present, is exactly one run of digits, given once, at most `max_body`;
// Transfer-Encoding is refused (411: send Content-Length). A refused request gets its JSON error
// response and the connection is closed: nothing after it on that connection is parsed (the
// server adapter closes with a bounded linger, so a client still sending reads the answer).
//
// `Expect: 100-continue` is answered "100 Continue" at once; an HTTP/1.1 request without a
// Connection header is passed on with `Connection: keep-alive` (the HTTP/1.1 default).
//
// Pipelining: Pistache answers only the first of several requests that arrive in one read and
// then leaves the connection hanging. When a read holds the start of another request after a
// complete one, that first request is passed on with `Connection: close` and the rest is
// dropped: the client sees the connection close after its first answer and, as RFC 9112 §9.3.2
// asks of pipelining clients, sends the rest again on a new connection.
//
// No I/O and no library types: the server adapter (http_server.cpp) feeds it bytes, writes
// `reply` and closes. One instance per connection; not thread-safe (a connection's bytes arrive
// on one thread).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tripline {

class RequestFraming {
 public:
  struct Limits {
    size_t max_header_bytes = 16 * 1024;
    size_t max_headers = 100;
    uint64_t max_body = 1 << 20;
  };
  struct Output {
    std::string forward;  // bytes for the HTTP parser
    std::string reply;    // bytes to write back now (100 Continue, or an error response)
    bool close = false;   // close the connection once `reply` is written
    // Each request whose header section was forwarded in this feed: where it starts in
    // `forward`, its header section's length there (blank line included), its body's length.
    // Bytes of `forward` before the first start belong to the body of an earlier request.
    struct Start {
      size_t at = 0;
      size_t head = 0;
      uint64_t body = 0;
    };
    std::vector<Start> starts;
  };

  explicit RequestFraming(Limits limits) : limits_(limits) {}

  // Feeds bytes received on the connection. After a refusal every further byte is dropped.
  void feed(std::string_view bytes, Output* out);
  bool refused() const { return phase_ == Phase::kRefused; }

 private:
  enum class Phase { kHeaders, kBody, kRefused };
  // Checks one complete header section (up to and including the blank line); appends what to
  // forward, or the refusal.
  void on_header_section(std::string_view head, Output* out);
  // Rewrites the header block forwarded last (at forwarded_at_ in out->forward) to close.
  void close_after_last(Output* out);
  void refuse(int status, const char* code, const char* message, Output* out);

  Limits limits_;
  Phase phase_ = Phase::kHeaders;
  std::string head_;  // header bytes of the current request, until complete
  uint64_t body_left_ = 0;
  size_t forwarded_at_ =
      std::string::npos;  // in this feed's output: where the last header block starts
  size_t forwarded_len_ = 0;
  bool completed_in_feed_ = false;  // a whole request (headers and body) ended in this feed
};

}  // namespace tripline
