#include "http_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "net.h"

namespace tripline {

namespace {
struct BodySink {
  std::string* body;
  size_t max;
  bool keep_prefix = false;  // OutboundRequest::truncate_answer
  bool overflowed = false;
};
size_t append_body(char* data, size_t size, size_t n, void* out) {
  auto* sink = static_cast<BodySink*>(out);
  // A peer cannot make us buffer without bound: returning short makes curl fail the transfer.
  // The status line came before the body, so curl still knows it (truncate_answer reads it).
  if (sink->body->size() + size * n > sink->max) {
    if (sink->keep_prefix) sink->body->append(data, sink->max - sink->body->size());
    sink->overflowed = true;
    return 0;
  }
  sink->body->append(data, size * n);
  return size * n;
}
size_t collect_header(char* data, size_t size, size_t n, void* out) {
  auto* headers = static_cast<std::vector<std::pair<std::string, std::string>>*>(out);
  std::string_view line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string_view::npos && headers->size() < 100) {
    std::string name(line.substr(0, colon));
    for (auto& c : name) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
      value.remove_suffix(1);
    headers->emplace_back(std::move(name), std::string(value));
  } else if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a 100 Continue or a redirect): keep only its headers
  }
  return size * n;
}

const std::vector<Cidr>& local_ranges() {
  static const std::vector<Cidr> ranges = [] {
    std::vector<Cidr> out;
    for (const char* c :
         {"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32",
          "100.100.100.200/32",  // Alibaba Cloud's metadata service
          "100.64.0.0/10",       // carrier-grade NAT: some clouds' metadata and internal services
          "168.63.129.16/32",    // Azure's WireServer
          "::/128", "::1/128", "fe80::/10", "ff00::/8",
          "fd00:ec2::254/128",                               // AWS's IPv6 metadata service
          "64:ff9b::a9fe:a9fe/128", "64:ff9b::7f00:1/128"})  // NAT64 of them
      out.push_back(*Cidr::parse(c));
    return out;
  }();
  return ranges;
}

struct SocketGuard {
  bool refused = false;
  int tried = 0;  // addresses curl asked to connect to
  int refused_count = 0;
  std::string last;
};

curl_socket_t open_checked_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) {
  auto* guard = static_cast<SocketGuard*>(clientp);
  char text[INET6_ADDRSTRLEN] = "";
  if (address->family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr, text,
              sizeof text);
  else if (address->family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr, text,
              sizeof text);
  // Only IP sockets for the transfer itself; anything else (a Unix socket) is not allowed here.
  ++guard->tried;
  if (purpose != CURLSOCKTYPE_IPCXN || text[0] == '\0' || is_local_address(text)) {
    guard->refused = true;
    ++guard->refused_count;
    guard->last = text;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype, address->protocol);
}
}  // namespace

bool is_local_address(std::string_view ip) {
  auto canonical = canonical_ip(ip);  // an IPv4-mapped IPv6 address is checked as IPv4
  if (!canonical) return true;
  for (const auto& c : local_ranges())
    if (c.contains(*canonical)) return true;
  // 6to4 (2002::/16) carries an IPv4 address in bytes 2-5: a relay would forward to it.
  in6_addr a6;
  if (inet_pton(AF_INET6, canonical->c_str(), &a6) == 1 && a6.s6_addr[0] == 0x20 &&
      a6.s6_addr[1] == 0x02) {
    char v4[INET_ADDRSTRLEN] = "";
    if (!inet_ntop(AF_INET, &a6.s6_addr[2], v4, sizeof v4)) return true;
    return is_local_address(v4);
  }
  return false;
}

namespace {
using EasyHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

// A request to a Unix socket (Docker's API socket) takes this thread's handle for such requests,
// and so its open connection: an executor worker asks the same daemon once per lane batch, and
// opening and closing a connection each time took a tenth of a flooded worker's time
// (bench/RESULTS.md "What a durable accept can reach here"). curl_easy_reset() clears every
// option but keeps the connection cache, which matches a connection by socket path and host: one
// daemon's connection is never used for another's request. TCP and TLS peers (webhooks, a
// Kubernetes API server) keep a handle of their own per request, with the address checks of
// refuse_local_addresses made on every connection.
struct KeptHandle {
  EasyHandle handle{nullptr, &curl_easy_cleanup};
  // The socket files its connections were opened to: each path as named, and the file found
  // there then (a few: one per Docker host this thread asks).
  struct Socket {
    std::string path;
    dev_t dev = 0;
    ino_t ino = 0;
  };
  std::vector<Socket> sockets;
};

CURL* easy_handle_for(const OutboundRequest& req, EasyHandle& owned) {
  if (req.unix_socket.empty()) {
    owned.reset(curl_easy_init());
    return owned.get();
  }
  thread_local KeptHandle kept;
  // A path that names another socket file now (the daemon restarted, a symlink points
  // elsewhere) or none: its kept connection is to a daemon the path no longer names, and the
  // handle is dropped with its connections.
  struct stat found {};
  bool exists = ::stat(req.unix_socket.c_str(), &found) == 0;
  auto known = std::find_if(kept.sockets.begin(), kept.sockets.end(),
                            [&](const KeptHandle::Socket& s) { return s.path == req.unix_socket; });
  bool moved = known != kept.sockets.end() &&
               (!exists || known->dev != found.st_dev || known->ino != found.st_ino);
  if (!kept.handle || moved || kept.sockets.size() >= 8) {
    kept.handle.reset(curl_easy_init());
    kept.sockets.clear();
    known = kept.sockets.end();
  } else {
    curl_easy_reset(kept.handle.get());
  }
  if (exists && known == kept.sockets.end())
    kept.sockets.push_back({req.unix_socket, found.st_dev, found.st_ino});
  return kept.handle.get();
}
}  // namespace

OutboundResponse http_request(const OutboundRequest& req) {
  OutboundResponse out;
  EasyHandle owned(nullptr, &curl_easy_cleanup);
  CURL* c = easy_handle_for(req, owned);
  if (!c) {
    out.error = "curl_easy_init failed";
    return out;
  }
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  if (!req.unix_socket.empty())
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, req.unix_socket.c_str());
  auto blob = [](const std::string& pem) {
    return curl_blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  };
  if (!req.ca_file.empty() || !req.ca_pem.empty()) {
    // Only the given CAs: the system's directory of CAs would otherwise be consulted too.
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    if (!req.ca_file.empty()) {
      curl_easy_setopt(c, CURLOPT_CAINFO, req.ca_file.c_str());
    } else {
      curl_easy_setopt(c, CURLOPT_CAINFO, nullptr);
      curl_blob b = blob(req.ca_pem);
      curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
    }
  }
  if (!req.client_cert_file.empty())
    curl_easy_setopt(c, CURLOPT_SSLCERT, req.client_cert_file.c_str());
  if (!req.client_cert_pem.empty()) {
    curl_blob b = blob(req.client_cert_pem);
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &b);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!req.client_key_file.empty())
    curl_easy_setopt(c, CURLOPT_SSLKEY, req.client_key_file.c_str());
  if (!req.client_key_pem.empty()) {
    curl_blob b = blob(req.client_key_pem);
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &b);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  // A HEAD answer's Content-Length describes a body that never comes: without NOBODY curl would
  // wait for it until the timeout.
  if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (req.method != "GET" && req.method != "HEAD") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers)
    headers = curl_slist_append(headers, (k + ": " + v).c_str());
  headers = curl_slist_append(headers, "Expect:");
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_guard(headers,
                                                                           &curl_slist_free_all);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(req.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  BodySink sink{&out.body, req.max_response_bytes, req.truncate_answer};
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  // Refuses at once an answer whose Content-Length is over the limit (unless its first bytes
  // are wanted: then the sink stops reading at the limit).
  if (!req.truncate_answer)
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(req.max_response_bytes));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_slist* resolve = nullptr;
  for (const auto& r : req.resolve) resolve = curl_slist_append(resolve, r.c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve_guard(resolve,
                                                                            &curl_slist_free_all);
  if (resolve) curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
  SocketGuard guard;
  if (req.refuse_local_addresses) {
    if (!req.unix_socket.empty()) {
      out.error = "a Unix socket is not an allowed address";
      out.address_refused = true;
      return out;
    }
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &guard);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
  }
  CURLcode rc = curl_easy_perform(c);
  // Refused (final) only when every address tried was: a public address that timed out after a
  // refused one is a transport failure, worth another try.
  if (rc != CURLE_OK && guard.refused && guard.refused_count == guard.tried) {
    out.address_refused = true;
    out.error = "the address " + guard.last +
                " is loopback, link-local, metadata or otherwise local, which outbound webhooks "
                "may not reach (see --allow-local-webhook-targets)";
    out.body.clear();
    return out;
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK && sink.overflowed && req.truncate_answer && code != 0) {
    // The peer answered (a 2xx is an accepted delivery); only the rest of its body is left
    // unread, and the connection closed.
    out.status = static_cast<int>(code);
    out.truncated = true;
    return out;
  }
  if (rc != CURLE_OK) {
    out.too_large = sink.overflowed || rc == CURLE_FILESIZE_EXCEEDED;
    out.tls_failed = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                     rc == CURLE_SSL_CERTPROBLEM;
    out.error = out.too_large
                    ? "the answer is larger than " + std::to_string(req.max_response_bytes) +
                          " bytes, tripline's limit for a peer's answer"
                    : std::string(curl_easy_strerror(rc));
    out.body.clear();
    return out;
  }
  out.status = static_cast<int>(code);
  return out;
}

}  // namespace tripline
