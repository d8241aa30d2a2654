#include "externaldns_fake.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace tripline::test {

using nlohmann::json;

namespace {

constexpr const char* kMediaType = "application/external.dns.webhook+json;version=1";
constexpr size_t kMaxBodyBytes = 1 << 20;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
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

}  // namespace

FakeExternalDns::FakeExternalDns(json domain_filter)
    : filter_(std::move(domain_filter)),
      negotiate_type_(kMediaType),
      server_(
          "fake externaldns", [this](const HttpRequest& req) { return answer(req); }, std::nullopt,
          kMaxBodyBytes) {}

FakeExternalDns::~FakeExternalDns() = default;

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
  std::vector<Request> out;
  for (const auto& e : server_.exchanges())
    out.push_back({e.request.method, e.request.path, e.request.header("accept"),
                   e.request.header("content-type"), e.status});
  return out;
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

HttpResponse FakeExternalDns::answer(const HttpRequest& req) {
  // httpapi.go reads the body through http.MaxBytesReader (1 MiB).
  if (req.too_large) return {413, "text/plain", "request body too large\n"};
  Response r =
      route(req.method, req.path, req.header("accept"), req.header("content-type"), req.body);
  return {r.status, r.content_type, r.body};
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
