#include "externaldns_fake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace tripline::test {

using nlohmann::json;

namespace {

constexpr const char* kMediaType = "application/external.dns.webhook+json;version=1";
constexpr size_t kMaxHeaderBytes = 64 << 10;
constexpr size_t kMaxBodyBytes = 1 << 20;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Go's encoding/json: an exact key first, then one that differs only in case. Written apart from
// the driver's own helper on purpose, so the contract tests do not grade the driver by itself.
const json* field(const json& obj, const std::string& key) {
  if (!obj.is_object()) return nullptr;
  if (auto it = obj.find(key); it != obj.end()) return &*it;
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (lower(it.key()) == lower(key)) return &it.value();
  return nullptr;
}

std::string norm(std::string name) {
  name = lower(std::move(name));
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

// An endpoint in today's spelling, or null when it is not one.
json parse_endpoint(const json& e) {
  const json* name = field(e, "dnsName");
  const json* type = field(e, "recordType");
  const json* targets = field(e, "targets");
  if (!name || !name->is_string() || !type || !type->is_string()) return nullptr;
  json out = {{"dnsName", *name}, {"recordType", *type}, {"targets", json::array()}};
  if (targets) {
    if (!targets->is_array()) return nullptr;
    for (const json& t : *targets) {
      if (!t.is_string()) return nullptr;
      out["targets"].push_back(t);
    }
  }
  for (const char* k : {"setIdentifier", "recordTTL", "labels", "providerSpecific"})
    if (const json* v = field(e, k)) out[k] = *v;
  return out;
}

bool same_record(const json& a, const json& b) {
  return norm(a["dnsName"]) == norm(b["dnsName"]) && a["recordType"] == b["recordType"] &&
         a.value("setIdentifier", "") == b.value("setIdentifier", "");
}

json capitalised(const json& e) {
  json out = json::object();
  for (auto it = e.begin(); it != e.end(); ++it) {
    std::string k = it.key();
    if (k == "dnsName")
      k = "DNSName";
    else
      k[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(k[0])));
    out[k] = it.value();
  }
  return out;
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

void send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

}  // namespace

FakeExternalDns::FakeExternalDns(json domain_filter)
    : filter_(std::move(domain_filter)), negotiate_type_(kMediaType) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) throw std::runtime_error("fake externaldns: socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("fake externaldns: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeExternalDns::~FakeExternalDns() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

void FakeExternalDns::set_records(json endpoints) {
  std::lock_guard<std::mutex> l(mu_);
  records_ = std::move(endpoints);
}

json FakeExternalDns::records() const {
  std::lock_guard<std::mutex> l(mu_);
  return records_;
}

std::vector<json> FakeExternalDns::changes() const {
  std::lock_guard<std::mutex> l(mu_);
  return changes_;
}

std::vector<FakeExternalDns::Request> FakeExternalDns::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return requests_;
}

void FakeExternalDns::fail_next(int status, int times, std::string method) {
  std::lock_guard<std::mutex> l(mu_);
  fail_status_ = status;
  fail_times_ = times;
  fail_method_ = std::move(method);
}

void FakeExternalDns::set_capitalised(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  capitalised_ = on;
}

void FakeExternalDns::set_negotiate_content_type(std::string type) {
  std::lock_guard<std::mutex> l(mu_);
  negotiate_type_ = std::move(type);
}

void FakeExternalDns::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    handle(fd);
    ::close(fd);
  }
}

void FakeExternalDns::handle(int fd) {
  std::string in;
  char buf[8192];
  size_t header_end;
  while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
    if (in.size() > kMaxHeaderBytes) return;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
  }
  std::string head = in.substr(0, header_end);
  std::string body = in.substr(header_end + 4);

  size_t eol = head.find("\r\n");
  std::string request_line = head.substr(0, eol);
  std::string method = request_line.substr(0, request_line.find(' '));
  size_t p1 = request_line.find(' ');
  size_t p2 = request_line.find(' ', p1 + 1);
  std::string path = p1 == std::string::npos ? "" : request_line.substr(p1 + 1, p2 - p1 - 1);
  std::string accept, content_type;
  size_t content_length = 0;
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lower(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (name == "accept")
      accept = value;
    else if (name == "content-type")
      content_type = value;
    else if (name == "content-length")
      content_length = std::strtoul(value.c_str(), nullptr, 10);
  }

  Response r;
  if (content_length > kMaxBodyBytes) {
    r = {413, "text/plain", "request body too large\n"};
  } else {
    while (body.size() < content_length) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return;
      body.append(buf, static_cast<size_t>(n));
    }
    body.resize(content_length);
    r = route(method, path, accept, content_type, body);
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    requests_.push_back({method, path, accept, content_type, r.status});
  }
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  if (r.status != 204) out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Connection: close\r\n\r\n";
  if (r.status != 204) out += r.body;
  send_all(fd, out);
}

FakeExternalDns::Response FakeExternalDns::route(const std::string& method, const std::string& path,
                                                 const std::string& accept,
                                                 const std::string& content_type,
                                                 const std::string& body) {
  std::lock_guard<std::mutex> l(mu_);
  if (path == "/") {
    if (method != "GET") return {405, "text/plain", "method not allowed\n"};
    if (accept != kMediaType) return {406, "text/plain", "client must provide an accept header\n"};
    json f = filter_;
    if (capitalised_) {
      json c = json::object();
      for (auto it = f.begin(); it != f.end(); ++it) {
        std::string k = it.key();
        k[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(k[0])));
        c[k] = it.value();
      }
      f = c;
    }
    return {200, negotiate_type_, f.dump() + "\n"};
  }
  if (path != "/records") return {404, "text/plain", "404 page not found\n"};
  if (method == "GET" && accept != kMediaType)
    return {406, "text/plain", "client must provide an accept header\n"};
  if (method == "POST" && content_type != kMediaType)
    return {415, "text/plain", "client must provide a content type\n"};
  if (method != "GET" && method != "POST") return {405, "text/plain", "method not allowed\n"};
  if (fail_times_ > 0 && (fail_method_.empty() || fail_method_ == method)) {
    --fail_times_;
    return {fail_status_, "text/plain", "told to fail\n"};
  }
  if (method == "GET") {
    json out = json::array();
    for (const json& e : records_) out.push_back(capitalised_ ? capitalised(e) : e);
    return {200, kMediaType, out.dump() + "\n"};
  }
  json changes = json::parse(body, nullptr, false);
  if (!changes.is_object()) return {400, "text/plain", "bad changes JSON\n"};
  return apply(changes);
}

// Called with mu_ held. All or nothing, like a provider's ApplyChanges should be.
FakeExternalDns::Response FakeExternalDns::apply(const json& changes) {
  auto list = [&](const char* key, std::vector<json>* out) {
    const json* l = field(changes, key);
    if (!l || l->is_null()) return true;
    if (!l->is_array()) return false;
    for (const json& e : *l) {
      json ep = parse_endpoint(e);
      if (ep.is_null()) return false;
      out->push_back(std::move(ep));
    }
    return true;
  };
  std::vector<json> create, update_old, update_new, del;
  if (!list("create", &create) || !list("updateOld", &update_old) ||
      !list("updateNew", &update_new) || !list("delete", &del))
    return {400, "text/plain", "bad endpoint in changes\n"};
  if (update_old.size() != update_new.size())
    return {400, "text/plain", "updateOld and updateNew differ in length\n"};

  json next = records_;
  auto find = [&](const json& e) {
    for (size_t i = 0; i < next.size(); ++i)
      if (same_record(next[i], e)) return static_cast<int>(i);
    return -1;
  };
  for (const json& e : del) {
    int i = find(e);
    if (i < 0) return {500, "text/plain", "delete: no such record\n"};
    next.erase(next.begin() + i);
  }
  for (size_t k = 0; k < update_old.size(); ++k) {
    int i = find(update_old[k]);
    if (i < 0) return {500, "text/plain", "update: no such record\n"};
    next[i] = update_new[k];
  }
  for (const json& e : create) {
    if (find(e) >= 0) return {500, "text/plain", "create: record exists\n"};
    next.push_back(e);
  }
  records_ = std::move(next);
  changes_.push_back(changes);
  return {204, "", ""};
}

}  // namespace tripline::test
