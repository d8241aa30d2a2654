#include "http_framing.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

#include "http.h"

namespace tripline {

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 505:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 9110 tchar, as a table: this runs for every byte of every method and header name.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool is_token_char(unsigned char c) { return kTokenChars[c]; }

}  // namespace

void RequestFraming::refuse(int status, const char* code, const char* message, Output* out) {
  std::string body = error_response(status, code, message).body;
  out->reply +=
      "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  out->close = true;
  phase_ = Phase::kRefused;
  head_.clear();
}

void RequestFraming::close_after_last(Output* out) {
  std::string block = out->forward.substr(forwarded_at_, forwarded_len_);
  std::string rebuilt;
  size_t pos = 0;
  while (pos < block.size()) {
    size_t eol = block.find("\r\n", pos);
    std::string_view line(block.data() + pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if (line.size() >= 11 && strncasecmp(line.data(), "Connection:", 11) == 0) continue;
    rebuilt.append(line).append("\r\n");
  }
  rebuilt += "Connection: close\r\n\r\n";
  out->forward.replace(forwarded_at_, forwarded_len_, rebuilt);
  if (!out->starts.empty() && out->starts.back().at == forwarded_at_)
    out->starts.back().head = rebuilt.size();
  forwarded_len_ = rebuilt.size();
}

void RequestFraming::feed(std::string_view bytes, Output* out) {
  forwarded_at_ = std::string::npos;
  completed_in_feed_ = false;
  while (!bytes.empty() && phase_ != Phase::kRefused) {
    if (phase_ == Phase::kBody) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(body_left_, bytes.size()));
      out->forward.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      body_left_ -= take;
      if (body_left_ == 0) phase_ = Phase::kHeaders, completed_in_feed_ = true;
      continue;
    }
    while (head_.empty() && bytes.substr(0, 2) == "\r\n") bytes.remove_prefix(2);
    if (bytes.empty()) break;
    if (completed_in_feed_ && forwarded_at_ != std::string::npos) {
      // Another request in the same read: pipelining (see the header).
      close_after_last(out);
      phase_ = Phase::kRefused;
      return;
    }
    // Header section: gather until the blank line. Search from just before the new bytes so a
    // CRLFCRLF split across reads is found.
    size_t searched_from = head_.size() >= 3 ? head_.size() - 3 : 0;
    size_t room = limits_.max_header_bytes + 4 - head_.size();
    head_.append(bytes.substr(0, std::min(bytes.size(), room)));
    size_t end = head_.find("\r\n\r\n", searched_from);
    if (end == std::string::npos) {
      // Leading CRLFs between requests are allowed (RFC 9112 §2.2); skip them.
      while (head_.size() >= 2 && head_[0] == '\r' && head_[1] == '\n') head_.erase(0, 2);
      if (head_.size() > limits_.max_header_bytes)
        return refuse(431, "headers_too_large", "the request's header section is too large", out);
      if (head_.find('\n') != std::string::npos && head_.find("\r\n") > head_.find('\n'))
        return refuse(400, "bad_request", "lines must end with CRLF", out);
      return;  // wait for more
    }
    size_t used_of_bytes = end + 4 - (head_.size() - std::min(bytes.size(), room));
    std::string section = head_.substr(0, end + 4);
    head_.clear();
    bytes.remove_prefix(used_of_bytes);
    on_header_section(section, out);
  }
}

void RequestFraming::on_header_section(std::string_view head, Output* out) {
  size_t skip = 0;
  while (head.substr(skip, 2) == "\r\n") skip += 2;
  head.remove_prefix(skip);
  if (head.empty()) return;  // only blank lines between requests
  if (head.size() > limits_.max_header_bytes)
    return refuse(431, "headers_too_large", "the request's header section is too large", out);
  // Every LF must follow a CR.
  for (size_t i = head.find('\n'); i != std::string_view::npos; i = head.find('\n', i + 1))
    if (i == 0 || head[i - 1] != '\r')
      return refuse(400, "bad_request", "lines must end with CRLF", out);
  if (head.find('\0') != std::string_view::npos)
    return refuse(400, "bad_request", "the request contains a NUL byte", out);

  // Request line: METHOD SP target SP HTTP/1.x
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 || sp1 == 0)
    return refuse(400, "bad_request", "malformed request line", out);
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (!std::all_of(method.begin(), method.end(),
                   [](unsigned char c) { return is_token_char(c); }) ||
      target.empty() || target.find(' ') != std::string_view::npos || target.size() > 8192 ||
      !std::all_of(target.begin(), target.end(),
                   [](unsigned char c) { return c > 0x20 && c < 0x7f; }))
    return refuse(400, "bad_request", "malformed request line", out);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.rfind("HTTP/", 0) == 0)
      return refuse(505, "http_version_not_supported", "use HTTP/1.1", out);
    return refuse(400, "bad_request", "malformed request line", out);
  }

  // Header fields.
  size_t count = 0;
  int content_lengths = 0;
  uint64_t content_length = 0;
  bool transfer_encoding = false, connection = false, expect_continue = false;
  size_t pos = line_end + 2;
  while (pos < head.size()) {
    size_t eol = head.find("\r\n", pos);
    std::string_view field = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (field.empty()) break;  // the blank line
    if (++count > limits_.max_headers)
      return refuse(431, "too_many_headers", "the request has too many header fields", out);
    size_t colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos)
      return refuse(400, "bad_request", "malformed header field", out);
    std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), [](unsigned char c) { return is_token_char(c); }))
      return refuse(400, "bad_request",
                    "malformed header field name (obsolete line folding is not accepted)", out);
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (iequals(name, "Content-Length")) {
      if (++content_lengths > 1)
        return refuse(400, "bad_request", "Content-Length is given more than once", out);
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), content_length);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size() ||
          !std::all_of(value.begin(), value.end(), [](unsigned char c) { return isdigit(c); }))
        return ec == std::errc::result_out_of_range
                   ? refuse(413, "payload_too_large", "the request body is too large", out)
                   : refuse(400, "bad_request",
                            "Content-Length must be a non-negative whole number", out);
    } else if (iequals(name, "Transfer-Encoding")) {
      transfer_encoding = true;
    } else if (iequals(name, "Connection")) {
      connection = true;
    } else if (iequals(name, "Expect")) {
      expect_continue = iequals(value, "100-continue");
    }
  }
  if (transfer_encoding && content_lengths)
    return refuse(400, "bad_request", "Content-Length and Transfer-Encoding together are ambiguous",
                  out);
  if (transfer_encoding)
    return refuse(411, "length_required",
                  "send the body with a Content-Length (chunked bodies are not accepted)", out);
  if (content_length > limits_.max_body)
    return refuse(
        413, "payload_too_large",
        ("the request body is larger than " + std::to_string(limits_.max_body) + " bytes").c_str(),
        out);

  if (expect_continue && content_length > 0) out->reply += "HTTP/1.1 100 Continue\r\n\r\n";
  forwarded_at_ = out->forward.size();
  if (!connection && version == "HTTP/1.1") {
    out->forward.append(head.substr(0, head.size() - 2));
    out->forward.append("Connection: keep-alive\r\n\r\n");
  } else {
    out->forward.append(head);
  }
  forwarded_len_ = out->forward.size() - forwarded_at_;
  out->starts.push_back({forwarded_at_, forwarded_len_, content_length});
  body_left_ = content_length;
  phase_ = body_left_ > 0 ? Phase::kBody : Phase::kHeaders;
  completed_in_feed_ = body_left_ == 0;
}

}  // namespace tripline
