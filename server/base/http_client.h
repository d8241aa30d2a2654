// Outbound HTTP for drivers, over libcurl: one blocking request per call, on the caller's thread.
// Supports plain TCP URLs and a Unix socket (Docker's API socket).
// Thread safety: call curl_global_init once at start-up (main does); requests may then run on any
// number of threads concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tripline {

struct OutboundRequest {
  std::string method = "GET";
  std::string url;          // e.g. "http://docker/v1.41/services/web"
  std::string unix_socket;  // when set, connect here instead of the URL's host
  // The CAs an https peer is verified against: a PEM file or PEM text. When either is set, only
  // these are trusted (the system's store is not consulted); default: the system's store.
  std::string ca_file;
  std::string ca_pem;
  // A client certificate and its key (PEM), each as a file or as text, for peers that
  // authenticate clients by certificate (a Kubernetes API server).
  std::string client_cert_file, client_cert_pem;
  std::string client_key_file, client_key_pem;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};
  // A longer answer is not buffered: the call fails with too_large set (default: the request
  // body limit, json_limits.h).
  size_t max_response_bytes = size_t{1} << 20;
  // Past max_response_bytes, keep the first bytes and the status instead of failing: for peers
  // whose status is the answer and whose body is only shown (outbound webhooks). Reading stops
  // at the limit; the response then has `truncated` set and no too_large.
  bool truncate_answer = false;
  // Outbound webhooks (docs/webhooks.md): refuse to connect to loopback, link-local (the cloud
  // metadata address 169.254.169.254 among them), unspecified, multicast and other metadata
  // addresses. Checked on the address curl is about to connect to, after DNS resolution, so a
  // name that resolves (or re-resolves) there is refused too. Such requests also ignore proxy
  // variables, whose proxy would be the address checked. Redirects are never followed.
  bool refuse_local_addresses = false;
  // curl's CURLOPT_RESOLVE entries ("host:port:addr[,addr]..."): for tests of names that resolve
  // to several addresses. The guard above checks these too.
  std::vector<std::string> resolve;
};

// Whether an address (text) is one refuse_local_addresses refuses.
bool is_local_address(std::string_view ip);

struct OutboundResponse {
  int status = 0;  // 0 when no HTTP answer came (see error)
  std::string body;
  std::string error;  // transport error (refused, timeout, ...), empty on an HTTP answer
  bool too_large =
      false;  // the answer was longer than max_response_bytes (status 0, error says so)
  // TLS could not be set up with the given certificates: the peer's certificate failed
  // verification, or the CA / client certificate could not be used (status 0, error says so).
  bool tls_failed = false;
  // truncate_answer: the body holds only the first max_response_bytes of a longer answer.
  bool truncated = false;
  // refuse_local_addresses refused every address the name resolved to (status 0, error says so).
  bool address_refused = false;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  // The first value of a header (name in lower case), or nullptr.
  const std::string* header(std::string_view name) const {
    for (const auto& [k, v] : headers)
      if (k == name) return &v;
    return nullptr;
  }
  bool transport_failed() const { return status == 0; }
};

OutboundResponse http_request(const OutboundRequest& request);

}  // namespace tripline
