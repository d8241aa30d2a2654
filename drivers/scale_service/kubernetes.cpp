#include "kubernetes.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "json_limits.h"
#include "log.h"

namespace tripline::scale_service {

KubernetesApi::KubernetesApi(Result<KubeCredentials> credentials) {
  if (credentials.ok())
    credentials_ = std::move(credentials).value();
  else
    why_not_ = credentials.status().message();
}

std::string KubernetesApi::where() const {
  if (!credentials_) return why_not_.empty() ? "not configured" : why_not_;
  return credentials_->server + " (" + credentials_->source + ")";
}

const std::string& KubernetesApi::default_namespace() const {
  static const std::string kDefault = "default";
  return credentials_ ? credentials_->default_namespace : kDefault;
}

std::string KubernetesApi::scale_path(const std::string& kind, const std::string& ns,
                                      const std::string& name) {
  // ns and name are DNS-1123 names (the drivers' parse_config checks a configured name and
  // namespace, load_kubeconfig / in_cluster a default namespace): nothing to escape.
  return "/apis/apps/v1/namespaces/" + ns + "/" +
         (kind == "statefulset" ? "statefulsets" : "deployments") + "/" + name + "/scale";
}

OutboundResponse KubernetesApi::call(const std::string& method, const std::string& path,
                                     const std::string& body, std::chrono::milliseconds timeout,
                                     const char* patch_type) const {
  const KubeCredentials& c = *credentials_;
  OutboundRequest req;
  req.method = method;
  req.url = c.server + path;
  req.timeout = timeout;
  req.ca_file = c.ca_file;
  req.ca_pem = c.ca_pem;
  req.client_cert_file = c.client_cert_file;
  req.client_cert_pem = c.client_cert_pem;
  req.client_key_file = c.client_key_file;
  req.client_key_pem = c.client_key_pem;
  req.body = body;
  std::string token = c.token;
  // Read again on every call: the kubelet rotates projected service-account tokens.
  if (!c.token_file.empty()) {
    std::string t;
    if (read_small_file(c.token_file, &t)) {
      while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
      token = t;
    }
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", "Bearer " + token);
  req.headers.emplace_back("Accept", "application/json");
  if (method == "PATCH") req.headers.emplace_back("Content-Type", patch_type);
  req.headers.emplace_back("User-Agent", "tripline");
  OutboundResponse r = http_request(req);
  // Say which answer was too large: the error alone reads as if the API server were broken.
  if (r.too_large) r.error = "the answer to " + method + " " + path + ": " + r.error;
  return r;
}

KubernetesApi::Answer KubernetesApi::classify(const OutboundResponse& r) {
  if (r.too_large) return {Error::kBadAnswer, r.error};
  if (r.tls_failed) return {Error::kTls, r.error};
  if (r.transport_failed()) return {Error::kUnreachable, r.error};
  if (r.status >= 200 && r.status < 300) return {};
  // Errors come as a meta/v1 Status: {"kind":"Status","status":"Failure","message":...,
  // "reason":"NotFound",...,"code":404}.
  std::string message = "HTTP " + std::to_string(r.status);
  auto j = parse_json_bounded(r.body).value;
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    message = j["message"].get<std::string>();
    // Cut at a character boundary: the message becomes the execution's error, stored as JSON.
    bool cut = false;
    message = utf8_text(message, 500, &cut);
    if (cut) message += "...";
  }
  switch (r.status) {
    case 401:
      return {Error::kUnauthorized, message};
    case 403:
      return {Error::kForbidden, message};
    case 404:
      return {Error::kNotFound, message};
    case 409:
      return {Error::kConflict, message};
    case 422:
      return {Error::kInvalid, message};
    case 429:
      return {Error::kTooManyRequests, message};
    default:
      break;
  }
  if (r.status >= 500) return {Error::kServer, message};
  return {Error::kRejected, message};
}

namespace {
bool count(const nlohmann::json& j, int64_t* out) {
  if (j.is_number_unsigned()) {
    if (j.get<uint64_t>() > uint64_t(INT64_MAX)) return false;
  } else if (!j.is_number_integer()) {
    return false;
  }
  *out = j.get<int64_t>();
  return *out >= 0;
}
}  // namespace

KubernetesApi::Answer KubernetesApi::parse_scale(std::string_view body, Scale* out) {
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok())
    return {Error::kBadAnswer, "the Scale JSON from the Kubernetes API " + parsed.why()};
  const nlohmann::json& j = parsed.value;
  auto bad = [](const std::string& why) {
    return Answer{Error::kBadAnswer, "unexpected Scale JSON from the Kubernetes API: " + why};
  };
  if (!j.is_object()) return bad("not an object");
  if (j.value("kind", "") != "Scale") return bad("kind is not Scale");
  *out = Scale{};
  if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
    if (auto rv = m->find("resourceVersion"); rv != m->end() && rv->is_string())
      out->resource_version = rv->get<std::string>();
  }
  if (auto spec = j.find("spec"); spec != j.end()) {
    if (!spec->is_object()) return bad("spec is not an object");
    // Omitted when 0 (omitempty): missing means 0.
    if (auto r = spec->find("replicas"); r != spec->end() && !count(*r, &out->replicas))
      return bad("spec.replicas is not a count");
  }
  if (auto status = j.find("status"); status != j.end() && status->is_object()) {
    if (auto r = status->find("replicas"); r != status->end() && !count(*r, &out->status_replicas))
      return bad("status.replicas is not a count");
  }
  return {};
}

KubernetesApi::Answer KubernetesApi::get_scale(const std::string& kind, const std::string& ns,
                                               const std::string& name, Scale* out) const {
  if (!credentials_) return {Error::kNotConfigured, where()};
  auto r = call("GET", scale_path(kind, ns, name), {}, std::chrono::milliseconds(10000));
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  return parse_scale(r.body, out);
}

KubernetesApi::Answer KubernetesApi::patch_scale(const std::string& kind, const std::string& ns,
                                                 const std::string& name, int64_t replicas,
                                                 const std::string& resource_version,
                                                 Scale* out) const {
  if (!credentials_) return {Error::kNotConfigured, where()};
  nlohmann::json patch = {{"spec", {{"replicas", replicas}}}};
  // A precondition: the API answers 409 Conflict when the object has moved on since our read.
  if (!resource_version.empty()) patch["metadata"] = {{"resourceVersion", resource_version}};
  auto r =
      call("PATCH", scale_path(kind, ns, name), patch.dump(), std::chrono::milliseconds(10000));
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  return parse_scale(r.body, out);
}

// Bounded well below the default so a hung API server holds the /readyz prober only briefly.
KubernetesApi::Answer KubernetesApi::version() const {
  if (!credentials_) return {Error::kNotConfigured, where()};
  return classify(call("GET", "/version", {}, std::chrono::milliseconds(3000)));
}

namespace {

// metadata.resourceVersion, metadata.generation; spec.template.spec.containers[].name/image;
// status.observedGeneration. Everything else of the Deployment is left unread.
KubernetesApi::Answer read_deployment(const nlohmann::json& j, KubernetesApi::Deployment* out) {
  using Answer = KubernetesApi::Answer;
  auto bad = [](const std::string& why) {
    return Answer{KubernetesApi::Error::kBadAnswer,
                  "unexpected Deployment JSON from the Kubernetes API: " + why};
  };
  if (!j.is_object()) return bad("not an object");
  *out = KubernetesApi::Deployment{};
  auto m = j.find("metadata");
  if (m == j.end() || !m->is_object()) return bad("no metadata");
  auto text = [](const nlohmann::json& o, const char* key, size_t max, std::string* v) {
    auto it = o.find(key);
    if (it == o.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max)
      return false;
    *v = it->get<std::string>();
    return true;
  };
  // The name goes into the paths of the GET and PATCH that follow: a DNS-1123 subdomain, as the
  // API server itself requires of a Deployment's name, or the answer is refused.
  if (!text(*m, "name", 253, &out->name) || !valid_dns1123_subdomain(out->name))
    return bad("metadata.name is not a DNS-1123 subdomain");
  if (!text(*m, "namespace", 63, &out->namespace_) || !valid_dns1123_label(out->namespace_))
    out->namespace_.clear();
  if (!text(*m, "resourceVersion", 256, &out->resource_version))
    return bad("metadata.resourceVersion is missing");
  if (auto g = m->find("generation"); g != m->end() && !count(*g, &out->generation))
    return bad("metadata.generation is not a count");
  const nlohmann::json* containers = nullptr;
  try {
    containers = &j.at("spec").at("template").at("spec").at("containers");
  } catch (const nlohmann::json::exception&) {
    return bad("no spec.template.spec.containers");
  }
  auto read_list = [&](const nlohmann::json& list, const std::string& what,
                       std::vector<KubernetesApi::Container>* into) -> std::optional<Answer> {
    if (!list.is_array()) return bad(what + " is not an array");
    if (list.size() > KubernetesApi::kMaxContainers)
      return bad("more than " + std::to_string(KubernetesApi::kMaxContainers) + " " + what);
    for (const auto& c : list) {
      KubernetesApi::Container one;
      if (!c.is_object() || !text(c, "name", 63, &one.name))
        return bad("a " + what + " without a name");
      // An image is optional in the API (a higher-level config may fill it in); absent reads as "".
      if (c.contains("image") && !text(c, "image", 1024, &one.image))
        return bad("container \"" + one.name + "\" has an image that is not a string");
      into->push_back(std::move(one));
    }
    return std::nullopt;
  };
  if (!containers->is_array()) return bad("spec.template.spec.containers is not an array");
  if (auto a = read_list(*containers, "containers", &out->containers)) return *a;
  const nlohmann::json& spec = j.at("spec");
  const nlohmann::json& pod = spec.at("template").at("spec");
  if (auto init = pod.find("initContainers"); init != pod.end() && !init->is_null()) {
    if (auto a = read_list(*init, "initContainers", &out->init_containers)) return *a;
  }
  if (auto p = spec.find("paused"); p != spec.end() && p->is_boolean())
    out->paused = p->get<bool>();
  if (auto r = spec.find("replicas");
      r != spec.end() && !r->is_null() && !count(*r, &out->replicas))
    return bad("spec.replicas is not a count");
  if (auto st = j.find("status"); st != j.end() && st->is_object()) {
    if (auto g = st->find("observedGeneration");
        g != st->end() && !count(*g, &out->observed_generation))
      return bad("status.observedGeneration is not a count");
  }
  return {};
}

// The label selector as a query value: a selector holds "=", "!" and "," (docs/kubernetes.md).
std::string query_escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string deployments_path(const std::string& ns) {
  // ns is a DNS-1123 label (the drivers' parse_config checks a configured one, load_kubeconfig /
  // in_cluster the default), and a name is one configured (parse_config) or read from a list
  // answer (read_deployment): nothing to escape.
  return "/apis/apps/v1/namespaces/" + ns + "/deployments";
}

}  // namespace

KubernetesApi::Answer KubernetesApi::parse_deployment(std::string_view body, Deployment* out) {
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok())
    return {Error::kBadAnswer, "the Deployment JSON from the Kubernetes API " + parsed.why()};
  if (!parsed.value.is_object() || parsed.value.value("kind", "") != "Deployment")
    return {Error::kBadAnswer,
            "unexpected Deployment JSON from the Kubernetes API: kind is not "
            "Deployment"};
  return read_deployment(parsed.value, out);
}

KubernetesApi::Answer KubernetesApi::parse_deployment_list(std::string_view body, size_t room,
                                                           std::vector<Deployment>* out,
                                                           bool* overflow,
                                                           std::string* continue_token) {
  *overflow = false;
  continue_token->clear();
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok())
    return {Error::kBadAnswer, "the DeploymentList JSON from the Kubernetes API " + parsed.why()};
  const nlohmann::json& j = parsed.value;
  auto bad = [](const std::string& why) {
    return Answer{Error::kBadAnswer,
                  "unexpected DeploymentList JSON from the Kubernetes API: " + why};
  };
  if (!j.is_object() || j.value("kind", "") != "DeploymentList")
    return bad("kind is not DeploymentList");
  if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
    auto c = m->find("continue");
    if (c != m->end() && !c->is_null()) {
      if (!c->is_string() || c->get_ref<const std::string&>().size() > 4096)
        return bad("metadata.continue is not a token");
      *continue_token = c->get<std::string>();
    }
  }
  auto items = j.find("items");
  // "items" is always present, possibly empty; a null reads as empty, as Go clients read it.
  if (items == j.end() || items->is_null()) return {};
  if (!items->is_array()) return bad("items is not an array");
  size_t taken = 0;
  for (const auto& item : *items) {
    if (taken >= room) {  // the server ignored limit=: never read past our bound
      *overflow = true;
      break;
    }
    Deployment d;
    if (Answer a = read_deployment(item, &d); a.error != Error::kNone) return a;
    out->push_back(std::move(d));
    ++taken;
  }
  return {};
}

KubernetesApi::Answer KubernetesApi::get_deployment(const std::string& ns, const std::string& name,
                                                    Deployment* out) const {
  if (!credentials_) return {Error::kNotConfigured, where()};
  auto r = call("GET", deployments_path(ns) + "/" + name, {}, std::chrono::milliseconds(10000));
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  return parse_deployment(r.body, out);
}

KubernetesApi::Answer KubernetesApi::list_deployments(
    const std::string& ns, const std::string& label_selector, size_t max,
    std::vector<Deployment>* out, bool* more,
    std::chrono::steady_clock::time_point deadline) const {
  out->clear();
  *more = false;
  if (!credentials_) return {Error::kNotConfigured, where()};
  // The etcd3 storage sets a continue token once a page is full and any further key exists in
  // the namespace, selected or not, and may answer fewer than limit= items with one: a token
  // never says that more are selected. Pages are followed to the end (docs/kubernetes.md,
  // "Deployments"); only more than `max` selected Deployments set *more.
  std::string token;
  for (size_t page = 0; page < kMaxListPages; ++page) {
    std::string path = deployments_path(ns) + "?labelSelector=" + query_escape(label_selector) +
                       "&limit=" + std::to_string(kListPageSize);
    if (!token.empty()) path += "&continue=" + query_escape(token);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return {Error::kUnreachable, "the list of Deployments in namespace " + ns +
                                       " did not end in the time it was given (" +
                                       std::to_string(page) + " pages read)"};
    auto r = call("GET", path, {}, std::min(left, std::chrono::milliseconds(10000)));
    Answer a = classify(r);
    if (a.error != Error::kNone) return a;
    // Room for one more than `max`: that one says there are too many.
    bool overflow = false;
    a = parse_deployment_list(r.body, max + 1 - out->size(), out, &overflow, &token);
    if (a.error != Error::kNone) return a;
    if (overflow || out->size() > max) {
      out->resize(std::min(out->size(), max));
      *more = true;
      return {};
    }
    if (token.empty()) return {};
  }
  return {Error::kBadAnswer, "the list of Deployments in namespace " + ns + " did not end within " +
                                 std::to_string(kMaxListPages) + " pages of " +
                                 std::to_string(kListPageSize)};
}

KubernetesApi::Answer KubernetesApi::patch_container_images(const std::string& ns,
                                                            const std::string& name,
                                                            const std::vector<Container>& images,
                                                            const std::string& resource_version,
                                                            Deployment* out) const {
  if (!credentials_) return {Error::kNotConfigured, where()};
  nlohmann::json containers = nlohmann::json::array();
  for (const auto& c : images) containers.push_back({{"name", c.name}, {"image", c.image}});
  nlohmann::json patch = {{"spec", {{"template", {{"spec", {{"containers", containers}}}}}}}};
  // A precondition, as for the scale: 409 Conflict when the Deployment moved on since our read.
  if (!resource_version.empty()) patch["metadata"] = {{"resourceVersion", resource_version}};
  auto r = call("PATCH", deployments_path(ns) + "/" + name, patch.dump(),
                std::chrono::milliseconds(10000), "application/strategic-merge-patch+json");
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  return parse_deployment(r.body, out);
}

KubernetesApi kubernetes_from(const DriverEnv& env, const std::string& driver) {
  std::string kubeconfig = env.get(kKubeconfigOption);
  Result<KubeCredentials> credentials = Status::NotFound(
      "give tripline a kubeconfig (--kubeconfig or KUBECONFIG), or run it in a cluster");
  if (!kubeconfig.empty()) {
    credentials = load_kubeconfig(kubeconfig, env.get(kKubeContextOption));
  } else if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) {
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    credentials = in_cluster(host, port ? port : "", env.get(kKubeAccountDirOption));
  }
  if (credentials.ok())
    log::info(driver + ": kubernetes backend",
              {{"api", credentials->server}, {"from", credentials->source}});
  else if (credentials.status().code() != Status::Code::kNotFound)
    log::error(driver + ": the kubernetes backend is off",
               {{"why", credentials.status().message()}});
  return KubernetesApi(std::move(credentials));
}

// Kubernetes (docs/kubernetes.md, "Errors"): what a retry can fix (a conflict with another
// writer, throttling, the API server's own trouble, the network) is retryable; what only an
// operator can fix (credentials, RBAC, a missing object, a refused value) is final.
Outcome to_outcome(const KubernetesApi::Answer& a, const std::string& what,
                   const std::string& where, const std::string& verb, const std::string& needs) {
  using E = KubernetesApi::Error;
  switch (a.error) {
    case E::kNotConfigured:
      return Outcome::final("the kubernetes backend is not configured: " + a.message);
    case E::kUnreachable:
      return Outcome::retryable("cannot reach the Kubernetes API at " + where + ": " + a.message);
    case E::kTls:
      return Outcome::final("refused the Kubernetes API's TLS certificate at " + where +
                            " (not retried; check the CA tripline was given): " + a.message);
    case E::kUnauthorized:
      return Outcome::final(
          "the Kubernetes API did not accept tripline's credentials (401 Unauthorized; "
          "check the token or client certificate of " +
          where + "): " + a.message);
    case E::kForbidden:
      return Outcome::final("the Kubernetes API forbids tripline to " + verb + " " + what +
                            " (403 Forbidden; its account needs " + needs + "): " + a.message);
    case E::kNotFound:
      return Outcome::final(what + " does not exist (404 Not Found): " + a.message);
    case E::kInvalid:
      return Outcome::final("the Kubernetes API refused the change to " + what +
                            " (422 Invalid): " + a.message);
    case E::kConflict:
      return Outcome::retryable("another writer kept changing " + what +
                                " (409 Conflict): " + a.message);
    case E::kTooManyRequests:
      return Outcome::retryable("the Kubernetes API is throttling tripline (429): " + a.message);
    case E::kServer:
      return Outcome::retryable("the Kubernetes API answered: " + a.message);
    case E::kBadAnswer:
      return Outcome::final("refused the answer of the Kubernetes API at " + where +
                            " (not retried): " + a.message);
    default:
      return Outcome::final("the Kubernetes API rejected the request: " + a.message);
  }
}

}  // namespace tripline::scale_service
