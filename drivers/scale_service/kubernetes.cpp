#include "kubernetes.h"

#include <cstdint>

#include "json_limits.h"

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
  // ns and name are DNS-1123 names (checked by parse_config): nothing to escape.
  return "/apis/apps/v1/namespaces/" + ns + "/" +
         (kind == "statefulset" ? "statefulsets" : "deployments") + "/" + name + "/scale";
}

OutboundResponse KubernetesApi::call(const std::string& method, const std::string& path,
                                     const std::string& body,
                                     std::chrono::milliseconds timeout) const {
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
  if (method == "PATCH") req.headers.emplace_back("Content-Type", "application/merge-patch+json");
  req.headers.emplace_back("User-Agent", "tripline");
  return http_request(req);
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

// Kubernetes (docs/kubernetes.md, "Errors"): what a retry can fix (a conflict with another
// writer, throttling, the API server's own trouble, the network) is retryable; what only an
// operator can fix (credentials, RBAC, a missing object, a refused value) is final.
Outcome to_outcome(const KubernetesApi::Answer& a, const std::string& what,
                   const std::string& where) {
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
      return Outcome::final(
          "the Kubernetes API forbids tripline to scale " + what +
          " (403 Forbidden; its account needs get and patch on deployments/scale and "
          "statefulsets/scale in that namespace, see deploy/kubernetes): " +
          a.message);
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
