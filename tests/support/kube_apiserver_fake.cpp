#include "kube_apiserver_fake.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <stdexcept>
#include <thread>

namespace tripline::test {

using nlohmann::json;

namespace {

EVP_PKEY* new_key() {
  EVP_PKEY* k = EVP_EC_gen("P-256");
  if (!k) throw std::runtime_error("TestCa: EC key generation failed");
  return k;
}

std::string pem_of(X509* cert) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(b);
  return out;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) throw std::runtime_error("TestCa: bad extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* new_cert(const std::string& cn, EVP_PKEY* key, X509* issuer) {
  static std::atomic<long> serial{1};
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
  X509_gmtime_adj(X509_getm_notBefore(c), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c), 24 * 3600);
  X509_set_pubkey(c, key);
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
  return c;
}

const char* status_reason(int code) {
  switch (code) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 503:
      return "ServiceUnavailable";
    default:
      return "InternalError";
  }
}

// A meta/v1 Status, as the API server writes it.
std::string status_body(int code, const std::string& message, json details = nullptr) {
  json s = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", status_reason(code)},
            {"code", code}};
  if (!details.is_null()) s["details"] = details;
  return s.dump();
}

}  // namespace

TestCa::TestCa(const std::string& cn) {
  EVP_PKEY* key = new_key();
  X509* cert = new_cert(cn, key, nullptr);
  add_ext(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert, cert, NID_subject_key_identifier, "hash");
  X509_sign(cert, key, EVP_sha256());
  key_ = key;
  cert_ = cert;
  cert_pem_ = pem_of(cert);
}

TestCa::~TestCa() {
  X509_free(static_cast<X509*>(cert_));
  EVP_PKEY_free(static_cast<EVP_PKEY*>(key_));
}

TestCa::Issued TestCa::issue(const std::string& cn, bool server) const {
  auto* ca_cert = static_cast<X509*>(cert_);
  EVP_PKEY* key = new_key();
  X509* cert = new_cert(cn, key, ca_cert);
  add_ext(cert, ca_cert, NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, ca_cert, NID_authority_key_identifier, "keyid");
  if (server) {
    add_ext(cert, ca_cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    add_ext(cert, ca_cert, NID_ext_key_usage, "serverAuth");
  } else {
    add_ext(cert, ca_cert, NID_ext_key_usage, "clientAuth");
  }
  X509_sign(cert, static_cast<EVP_PKEY*>(key_), EVP_sha256());
  Issued out{pem_of(cert), pem_of(key)};
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

LoopbackHttpServer::Tls FakeKubeApiServer::tls_of(const TestCa& ca) {
  auto leaf = ca.issue("kube-apiserver", true);
  // Client certificates are optional (a bearer token works too) but, when sent, verified.
  return {leaf.cert_pem, leaf.key_pem, ca.cert_pem()};
}

FakeKubeApiServer::FakeKubeApiServer(std::string token)
    : token_(std::move(token)),
      server_(
          "fake kube-apiserver",
          [this](const HttpRequest& req) {
            Response r = route(req);
            return HttpResponse{r.status, "application/json", r.body};
          },
          tls_of(ca_)) {}

FakeKubeApiServer::~FakeKubeApiServer() = default;

namespace {

std::string key_of(const std::string& resource, const std::string& ns, const std::string& name) {
  return resource + "/" + ns + "/" + name;
}
std::string resource_of(const std::string& kind) {
  return kind == "statefulset" ? "statefulsets" : "deployments";
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_params(const std::string& query) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    std::string kv =
        query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = kv.find('=');
    out[percent_decode(kv.substr(0, eq))] =
        eq == std::string::npos ? "" : percent_decode(kv.substr(eq + 1));
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

// A label selector's requirements, as the API server reads the equality-based and existence
// forms (labels.Parse): "k=v", "k==v", "k!=v", "k", "!k". nullopt when it does not parse.
struct Requirement {
  std::string key, op, value;  // op: "=", "!=", "exists", "!"
};
std::optional<std::vector<Requirement>> parse_selector(const std::string& s) {
  std::vector<Requirement> out;
  if (s.empty()) return out;
  auto trim = [](std::string t) {
    while (!t.empty() && t.front() == ' ') t.erase(0, 1);
    while (!t.empty() && t.back() == ' ') t.pop_back();
    return t;
  };
  auto key_ok = [](const std::string& k) {
    return !k.empty() && k.find_first_of(" ()=!,") == std::string::npos;
  };
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string part =
        trim(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    Requirement r;
    if (!part.empty() && part[0] == '!') {
      r = {trim(part.substr(1)), "!", ""};
    } else if (size_t eq = part.find('='); eq != std::string::npos) {
      bool neg = eq > 0 && part[eq - 1] == '!';
      size_t v = eq + 1 + (!neg && eq + 1 < part.size() && part[eq + 1] == '=');
      r = {trim(part.substr(0, neg ? eq - 1 : eq)), neg ? "!=" : "=", trim(part.substr(v))};
      if (r.value.find_first_of(" ()=!,") != std::string::npos) return std::nullopt;
    } else {
      r = {part, "exists", ""};
    }
    if (!key_ok(r.key)) return std::nullopt;
    out.push_back(r);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

bool selects(const std::vector<Requirement>& reqs,
             const std::map<std::string, std::string>& labels) {
  for (const auto& r : reqs) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    if (r.op == "exists" && !has) return false;
    if (r.op == "!" && has) return false;
    if (r.op == "=" && (!has || it->second != r.value)) return false;
    if (r.op == "!=" && has && it->second == r.value) return false;
  }
  return true;
}
}  // namespace

void FakeKubeApiServer::add_deployment(const std::string& ns, const std::string& name,
                                       Containers containers,
                                       std::map<std::string, std::string> labels) {
  std::lock_guard<std::mutex> l(mu_);
  Object o;
  o.replicas = 1;
  o.resource_version = next_rv_++;
  o.containers = std::move(containers);
  o.labels = std::move(labels);
  objects_[key_of("deployments", ns, name)] = std::move(o);
}

FakeKubeApiServer::Containers FakeKubeApiServer::containers(const std::string& ns,
                                                            const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(key_of("deployments", ns, name));
  return it == objects_.end() ? Containers{} : it->second.containers;
}

int64_t FakeKubeApiServer::resource_version(const std::string& kind, const std::string& ns,
                                            const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(key_of(resource_of(kind), ns, name));
  return it == objects_.end() ? -1 : it->second.resource_version;
}

void FakeKubeApiServer::add(const std::string& kind, const std::string& ns, const std::string& name,
                            int64_t replicas) {
  std::lock_guard<std::mutex> l(mu_);
  objects_[key_of(resource_of(kind), ns, name)] = {replicas, next_rv_++};
}

int64_t FakeKubeApiServer::replicas(const std::string& kind, const std::string& ns,
                                    const std::string& name) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = objects_.find(key_of(resource_of(kind), ns, name));
  return it == objects_.end() ? -1 : it->second.replicas;
}

void FakeKubeApiServer::set_token(std::string token) {
  std::lock_guard<std::mutex> l(mu_);
  token_ = std::move(token);
}

void FakeKubeApiServer::forbid_namespace(const std::string& ns, const std::string& verb) {
  std::lock_guard<std::mutex> l(mu_);
  forbidden_.push_back({ns, verb});
}

void FakeKubeApiServer::set_init_containers(const std::string& ns, const std::string& name,
                                            Containers init) {
  std::lock_guard<std::mutex> l(mu_);
  objects_.at(key_of("deployments", ns, name)).init_containers = std::move(init);
}

void FakeKubeApiServer::set_paused(const std::string& ns, const std::string& name, bool paused) {
  std::lock_guard<std::mutex> l(mu_);
  objects_.at(key_of("deployments", ns, name)).paused = paused;
}

bool FakeKubeApiServer::forbidden(const std::string& ns, const std::string& verb) const {
  // mu_ is held by route().
  for (const auto& [n, v] : forbidden_)
    if (n == ns && (v.empty() || v == verb)) return true;
  return false;
}

void FakeKubeApiServer::cap_list_scan(size_t keys) {
  std::lock_guard<std::mutex> l(mu_);
  scan_cap_ = keys;
}

void FakeKubeApiServer::slow_lists(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> l(mu_);
  list_delay_ = delay;
}

int FakeKubeApiServer::list_pages() const {
  std::lock_guard<std::mutex> l(mu_);
  return list_pages_;
}

std::vector<FakeKubeApiServer::Request> FakeKubeApiServer::requests() const {
  std::vector<Request> out;
  for (const auto& e : server_.exchanges())
    out.push_back({e.request.method, e.request.path, e.request.body, e.request.headers,
                   e.request.client_cn, e.status});
  return out;
}

void FakeKubeApiServer::clear_requests() { server_.clear(); }

void FakeKubeApiServer::fail_next(int status, int times) {
  std::lock_guard<std::mutex> l(mu_);
  fail_status_ = status;
  fail_times_ = times;
}

void FakeKubeApiServer::interfere_after_get(int times, int64_t replicas) {
  std::lock_guard<std::mutex> l(mu_);
  interfere_times_ = times;
  interfere_replicas_ = replicas;
}

FakeKubeApiServer::Response FakeKubeApiServer::route(const HttpRequest& req) {
  std::lock_guard<std::mutex> l(mu_);
  auto auth = req.headers.find("authorization");
  bool token_ok = auth != req.headers.end() && auth->second == "Bearer " + token_;
  std::string user = token_ok ? "system:serviceaccount:tripline:tripline" : req.client_cn;
  if (user.empty()) return {401, status_body(401, "Unauthorized")};

  std::string path = req.path.substr(0, req.path.find('?'));
  if (path == "/version") {
    if (req.method != "GET")
      return {405,
              status_body(405, "the server does not allow this method on the requested resource")};
    return {200, json{{"major", "1"}, {"minor", "29"}, {"gitVersion", "v1.29.0-fake"}}.dump()};
  }
  // /apis/apps/v1/namespaces/{ns}/{resource}/{name}/scale
  std::vector<std::string> seg;
  for (size_t i = 1; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    seg.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  if ((seg.size() == 6 || seg.size() == 7) && seg[0] == "apis" && seg[1] == "apps" &&
      seg[2] == "v1" && seg[3] == "namespaces" && seg[5] == "deployments")
    return route_deployments(
        req, seg,
        req.path.find('?') == std::string::npos ? "" : req.path.substr(req.path.find('?') + 1),
        user);
  if (seg.size() != 8 || seg[0] != "apis" || seg[1] != "apps" || seg[2] != "v1" ||
      seg[3] != "namespaces" || (seg[5] != "deployments" && seg[5] != "statefulsets") ||
      seg[7] != "scale")
    return {404, status_body(404, "the server could not find the requested resource")};
  const std::string &ns = seg[4], &resource = seg[5], &name = seg[6];
  json details = {{"name", name}, {"group", "apps"}, {"kind", resource}};
  const char* verb = req.method == "GET" ? "get" : req.method == "PATCH" ? "patch" : "";
  if (!*verb)
    return {405, status_body(405, "the server does not allow this method on the requested resource",
                             details)};
  if (forbidden(ns, verb))
    return {403, status_body(403,
                             resource + ".apps \"" + name + "\" is forbidden: User \"" + user +
                                 "\" cannot " + verb + " resource \"" + resource +
                                 "/scale\" in API group \"apps\" in the namespace \"" + ns + "\"",
                             details)};
  if (fail_times_ > 0) {
    --fail_times_;
    return {fail_status_, status_body(fail_status_, "told to fail")};
  }
  auto it = objects_.find(key_of(resource, ns, name));
  if (it == objects_.end())
    return {404, status_body(404, resource + ".apps \"" + name + "\" not found", details)};
  Object& o = it->second;
  auto scale = [&] {
    json spec = json::object();
    if (o.replicas != 0) spec["replicas"] = o.replicas;  // omitempty
    return json{
        {"kind", "Scale"},
        {"apiVersion", "autoscaling/v1"},
        {"metadata",
         {{"name", name},
          {"namespace", ns},
          {"uid", "00000000-0000-4000-8000-" + std::to_string(100000000000 + o.resource_version)},
          {"resourceVersion", std::to_string(o.resource_version)},
          {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
        {"spec", spec},
        {"status", {{"replicas", o.replicas}, {"selector", "app=" + name}}}}
        .dump();
  };
  if (req.method == "GET") {
    std::string body = scale();
    if (interfere_times_ > 0) {  // another writer, right after our answer
      --interfere_times_;
      o.resource_version = next_rv_++;
      if (interfere_replicas_ >= 0) o.replicas = interfere_replicas_;
    }
    return {200, body};
  }
  auto ct = req.headers.find("content-type");
  std::string type = ct == req.headers.end() ? "" : ct->second.substr(0, ct->second.find(';'));
  if (type != "application/merge-patch+json" && type != "application/json-patch+json" &&
      type != "application/strategic-merge-patch+json" && type != "application/apply-patch+yaml")
    return {415,
            status_body(415,
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml")};
  if (type != "application/merge-patch+json")
    return {415, status_body(415, "the fake only speaks application/merge-patch+json")};
  json patch = json::parse(req.body, nullptr, false);
  if (!patch.is_object()) return {400, status_body(400, "error decoding patch: invalid character")};
  if (auto m = patch.find("metadata"); m != patch.end() && m->is_object()) {
    if (auto rv = m->find("resourceVersion"); rv != m->end()) {
      if (!rv->is_string() || *rv != std::to_string(o.resource_version))
        return {409,
                status_body(409,
                            "Operation cannot be fulfilled on " + resource + ".apps \"" + name +
                                "\": the object has been modified; please apply your changes "
                                "to the latest version and try again",
                            details)};
    }
  }
  if (auto s = patch.find("spec"); s != patch.end() && s->is_object()) {
    if (auto r = s->find("replicas"); r != s->end()) {
      if (!r->is_number_integer())
        return {400, status_body(400,
                                 "json: cannot unmarshal into Go struct field "
                                 "ScaleSpec.spec.replicas of type int32")};
      int64_t n = r->get<int64_t>();
      if (n < 0)
        return {422, status_body(422,
                                 "Scale.autoscaling \"" + name +
                                     "\" is invalid: spec.replicas: Invalid value: " +
                                     std::to_string(n) + ": must be greater than or equal to 0",
                                 details)};
      if (n != o.replicas) {
        o.replicas = n;
        o.resource_version = next_rv_++;
      }
    }
  }
  return {200, scale()};
}

FakeKubeApiServer::Response FakeKubeApiServer::route_deployments(
    const HttpRequest& req, const std::vector<std::string>& seg, const std::string& query,
    const std::string& user) {
  // mu_ is held by route().
  const std::string& ns = seg[4];
  const bool collection = seg.size() == 6;
  const std::string name = collection ? "" : seg[6];
  json details = {{"name", name}, {"group", "apps"}, {"kind", "deployments"}};
  const char* verb = req.method == "PATCH" && !collection ? "patch"
                     : req.method == "GET"                ? (collection ? "list" : "get")
                                                          : "";
  if (!*verb)
    return {405, status_body(405, "the server does not allow this method on the requested resource",
                             details)};
  if (forbidden(ns, verb))
    return {403, status_body(403,
                             "deployments.apps" + (collection ? "" : " \"" + name + "\"") +
                                 " is forbidden: User \"" + user + "\" cannot " + verb +
                                 " resource \"deployments\" in API group \"apps\" in the "
                                 "namespace \"" +
                                 ns + "\"",
                             details)};
  if (fail_times_ > 0) {
    --fail_times_;
    return {fail_status_, status_body(fail_status_, "told to fail")};
  }
  auto deployment = [&](const std::string& n, const Object& o, bool with_kind) {
    json containers = json::array();
    for (const auto& [cname, image] : o.containers)
      containers.push_back({{"name", cname},
                            {"image", image},
                            {"imagePullPolicy", "IfNotPresent"},
                            {"resources", json::object()},
                            {"terminationMessagePath", "/dev/termination-log"}});
    json labels = json::object();
    for (const auto& [k, v] : o.labels) labels[k] = v;
    json pod = {{"containers", containers}, {"restartPolicy", "Always"}};
    for (const auto& [cname, image] : o.init_containers)
      pod["initContainers"].push_back({{"name", cname}, {"image", image}});
    json d = {
        {"metadata",
         {{"name", n},
          {"namespace", ns},
          {"uid", "00000000-0000-4000-8000-" + std::to_string(100000000000 + o.resource_version)},
          {"resourceVersion", std::to_string(o.resource_version)},
          {"generation", o.generation},
          {"creationTimestamp", "2026-01-01T00:00:00Z"},
          {"labels", labels}}},
        {"spec",
         {{"replicas", o.replicas},
          {"selector", {{"matchLabels", {{"app", n}}}}},
          {"template", {{"metadata", {{"labels", {{"app", n}}}}}, {"spec", pod}}},
          {"strategy",
           {{"type", "RollingUpdate"},
            {"rollingUpdate", {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}}}}},
        {"status",
         {{"observedGeneration", o.generation - 1},  // the controller has not caught up yet
          {"replicas", o.replicas},
          {"updatedReplicas", 0}}}};
    if (o.paused) d["spec"]["paused"] = true;
    if (with_kind) {
      d["kind"] = "Deployment";
      d["apiVersion"] = "apps/v1";
    }
    return d;
  };

  if (collection) {
    auto params = query_params(query);
    auto reqs = parse_selector(params["labelSelector"]);
    if (!reqs)
      return {400, status_body(400, "unable to parse requirement: invalid label selector \"" +
                                        params["labelSelector"] + "\"")};
    size_t limit = 0;
    if (!params["limit"].empty()) limit = std::stoul(params["limit"]);
    // As the etcd3 storage pages (docs/kubernetes.md, "Deployments"): keys are read in order from
    // where the continue token left off; the page ends when it holds `limit` selected items (or,
    // when told, after scan_cap_ keys, selected or not), and it carries a continue token whenever
    // any further key exists in the namespace, whether or not the selector will select it.
    const std::string prefix = "deployments/" + ns + "/";
    auto from = objects_.lower_bound(prefix);
    if (const std::string& token = params["continue"]; !token.empty()) {
      const std::string kTokenHead = "v1/", kTokenTail = "==";
      std::string after;
      if (token.size() > kTokenHead.size() + kTokenTail.size() && token.rfind(kTokenHead, 0) == 0 &&
          token.compare(token.size() - kTokenTail.size(), kTokenTail.size(), kTokenTail) == 0)
        after =
            token.substr(kTokenHead.size(), token.size() - kTokenHead.size() - kTokenTail.size());
      if (after.rfind(prefix, 0) != 0)
        return {400, status_body(400, "continue key is not valid: " + token)};
      from = objects_.upper_bound(after);
    }
    json items = json::array();
    std::string last;
    size_t scanned = 0;
    for (auto it = from; it != objects_.end() && it->first.rfind(prefix, 0) == 0; ++it) {
      if (limit > 0 && items.size() >= limit) break;
      if (scan_cap_ > 0 && scanned >= scan_cap_) break;
      ++scanned;
      last = it->first;
      if (selects(*reqs, it->second.labels))
        items.push_back(deployment(it->first.substr(prefix.size()), it->second, false));
    }
    ++list_pages_;
    // Under mu_: the fake serves one connection at a time anyway.
    if (list_delay_.count() > 0) std::this_thread::sleep_for(list_delay_);
    json meta = {{"resourceVersion", std::to_string(next_rv_)}};
    if (limit > 0 && !last.empty()) {
      auto next = objects_.upper_bound(last);
      if (next != objects_.end() && next->first.rfind(prefix, 0) == 0) {
        meta["continue"] = "v1/" + last + "==";  // opaque to clients; needs escaping in a query
        // Only an unfiltered list says how many remain: with a selector the server cannot know.
        if (params["labelSelector"].empty()) {
          size_t remaining = 0;
          for (; next != objects_.end() && next->first.rfind(prefix, 0) == 0; ++next) ++remaining;
          meta["remainingItemCount"] = remaining;
        }
      }
    }
    return {200, json{{"kind", "DeploymentList"},
                      {"apiVersion", "apps/v1"},
                      {"metadata", meta},
                      {"items", items}}
                     .dump()};
  }

  auto it = objects_.find(key_of("deployments", ns, name));
  if (it == objects_.end())
    return {404, status_body(404, "deployments.apps \"" + name + "\" not found", details)};
  Object& o = it->second;
  if (req.method == "GET") {
    std::string body = deployment(name, o, true).dump();
    if (interfere_times_ > 0) {  // another writer, right after our answer
      --interfere_times_;
      o.resource_version = next_rv_++;
      if (interfere_replicas_ >= 0) o.replicas = interfere_replicas_;
    }
    return {200, body};
  }
  auto ct = req.headers.find("content-type");
  std::string type = ct == req.headers.end() ? "" : ct->second.substr(0, ct->second.find(';'));
  if (type != "application/merge-patch+json" && type != "application/json-patch+json" &&
      type != "application/strategic-merge-patch+json" && type != "application/apply-patch+yaml")
    return {415, status_body(415,
                             "the body of the request was in an unknown format - accepted media "
                             "types include: application/json-patch+json, "
                             "application/merge-patch+json, application/apply-patch+yaml, "
                             "application/strategic-merge-patch+json")};
  if (type != "application/strategic-merge-patch+json")
    return {415, status_body(415,
                             "the fake models only application/strategic-merge-patch+json "
                             "for deployments")};
  json patch = json::parse(req.body, nullptr, false);
  if (!patch.is_object()) return {400, status_body(400, "error decoding patch: invalid character")};
  if (auto m = patch.find("metadata"); m != patch.end() && m->is_object()) {
    if (auto rv = m->find("resourceVersion"); rv != m->end()) {
      if (!rv->is_string() || *rv != std::to_string(o.resource_version))
        return {409, status_body(409,
                                 "Operation cannot be fulfilled on deployments.apps \"" + name +
                                     "\": the object has been modified; please apply your "
                                     "changes to the latest version and try again",
                                 details)};
    }
  }
  const json* containers = nullptr;
  try {
    containers = &patch.at("spec").at("template").at("spec").at("containers");
  } catch (const json::exception&) {
  }
  if (containers) {
    if (!containers->is_array())
      return {400, status_body(400,
                               "json: cannot unmarshal into Go struct field "
                               "PodSpec.spec.template.spec.containers of type []v1.Container")};
    Containers merged = o.containers;
    for (const auto& c : *containers) {
      // Strategic merge: the patch merge key of containers is "name".
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string())
        return {422,
                status_body(422, "map: map[] does not contain declared merge key: name", details)};
      const std::string cname = c["name"];
      auto m = std::find_if(merged.begin(), merged.end(),
                            [&](const auto& e) { return e.first == cname; });
      if (m == merged.end()) {
        merged.push_back({cname, c.value("image", "")});
        m = merged.end() - 1;
      }
      if (auto img = c.find("image"); img != c.end()) {
        if (!img->is_string())
          return {400, status_body(400,
                                   "json: cannot unmarshal into Go struct field "
                                   "Container.spec.template.spec.containers.image of type "
                                   "string")};
        m->second = img->get<std::string>();
      }
      if (m->second.empty())
        return {422, status_body(422,
                                 "Deployment.apps \"" + name +
                                     "\" is invalid: "
                                     "spec.template.spec.containers[0].image: Required value",
                                 details)};
    }
    if (merged != o.containers) {
      o.containers = std::move(merged);
      o.resource_version = next_rv_++;
      ++o.generation;  // a pod template change: a new rollout
    }
  }
  return {200, deployment(name, o, true).dump()};
}

}  // namespace tripline::test
