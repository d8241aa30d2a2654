#include "registry_client.h"

#include <curl/curl.h>

#include <cctype>

#include "crypto.h"
#include "json_limits.h"

namespace tripline::redeploy {

namespace {

// What a registry may cost us: a HEAD answer has no body, an error or a token is small.
constexpr size_t kMaxAnswerBytes = 64 * 1024;

// The manifest types tripline deploys (docs/redeploy.md): without them in Accept a registry may
// answer a schema-1 manifest, whose digest is not the one a node pulls.
constexpr const char* kAccept =
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json";

std::string escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

OutboundRequest base_request(const std::string& method, const std::string& url) {
  OutboundRequest req;
  req.method = method;
  req.url = url;
  req.timeout = std::chrono::milliseconds(10000);
  req.max_response_bytes = kMaxAnswerBytes;
  req.headers = {{"User-Agent", "tripline-redeploy/1"}};
  return req;
}

std::string basic(const RegistryCredentials& c) {
  return "Basic " + crypto::base64_encode(c.username + ":" + c.password);
}

std::string cut(const std::string& s) {
  bool was_cut = false;
  std::string out = utf8_text(s, 300, &was_cut);
  return was_cut ? out + "..." : out;
}

// A Bearer token from the challenge's realm (the distribution token spec): GET
// realm?service=S&scope=repository:R:pull, with Basic credentials when there are any.
RegistryApi::Answer fetch_token(const RegistryApi::Challenge& ch, const std::string& base_url,
                                const std::string& repository, const RegistryCredentials& creds,
                                std::string* token) {
  std::string realm_scheme = lower(ch.realm.substr(0, ch.realm.find("://")));
  bool plain_registry = base_url.rfind("http://", 0) == 0;
  // Credentials go only where TLS protects them, unless the registry itself is plain http.
  if (realm_scheme != "https" && !(realm_scheme == "http" && plain_registry))
    return {RegistryApi::Error::kBadAnswer,
            "the registry names a token realm that is not https: " + cut(ch.realm)};
  std::string scope = ch.scope.empty() ? "repository:" + repository + ":pull" : ch.scope;
  std::string url =
      ch.realm + (ch.realm.find('?') == std::string::npos ? "?" : "&") + "scope=" + escape(scope);
  if (!ch.service.empty()) url += "&service=" + escape(ch.service);
  OutboundRequest req = base_request("GET", url);
  if (!creds.empty()) req.headers.emplace_back("Authorization", basic(creds));
  OutboundResponse r = http_request(req);
  if (r.status < 200 || r.status >= 300 || r.too_large || r.transport_failed()) {
    RegistryApi::Answer a = RegistryApi::classify(r);
    if (a.error == RegistryApi::Error::kNotFound || a.error == RegistryApi::Error::kRejected)
      a.error = RegistryApi::Error::kUnauthorized;
    a.message = "the token service " + cut(ch.realm) + ": " + a.message;
    return a;
  }
  auto parsed = parse_json_bounded(r.body);
  const nlohmann::json& j = parsed.value;
  for (const char* k : {"token", "access_token"}) {
    if (parsed.ok() && j.is_object() && j.contains(k) && j[k].is_string() &&
        !j[k].get<std::string>().empty()) {
      *token = j[k].get<std::string>();
      if (token->size() > 16384 || token->find_first_of("\r\n") != std::string::npos)
        return {RegistryApi::Error::kBadAnswer, "the token service answered an unusable token"};
      return {};
    }
  }
  return {RegistryApi::Error::kBadAnswer, "the token service answered no token"};
}

}  // namespace

bool RegistryApi::valid_digest(const std::string& d) {
  if (d.size() != 7 + 64 || d.rfind("sha256:", 0) != 0) return false;
  for (size_t i = 7; i < d.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(d[i])) && (d[i] < 'a' || d[i] > 'f')) return false;
  return true;
}

RegistryApi::Challenge RegistryApi::parse_challenge(const std::string& header) {
  Challenge c;
  size_t sp = header.find(' ');
  std::string scheme = lower(header.substr(0, sp));
  if (scheme != "bearer" && scheme != "basic") return c;
  c.scheme = scheme;
  if (sp == std::string::npos) return c;
  // key="value" pairs, comma-separated; values may hold commas (a scope of several actions).
  size_t i = sp + 1;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = lower(header.substr(i, eq - i));
    std::string value;
    size_t j = eq + 1;
    if (j < header.size() && header[j] == '"') {
      size_t end = header.find('"', j + 1);
      if (end == std::string::npos) break;
      value = header.substr(j + 1, end - j - 1);
      i = end + 1;
    } else {
      size_t end = header.find(',', j);
      value = header.substr(j, end == std::string::npos ? std::string::npos : end - j);
      i = end == std::string::npos ? header.size() : end;
    }
    if (key == "realm") c.realm = value;
    if (key == "service") c.service = value;
    if (key == "scope") c.scope = value;
  }
  return c;
}

RegistryApi::Answer RegistryApi::classify(const OutboundResponse& r) {
  if (r.too_large) return {Error::kBadAnswer, r.error};
  if (r.tls_failed) return {Error::kTls, r.error};
  if (r.transport_failed()) return {Error::kUnreachable, r.error};
  if (r.status >= 200 && r.status < 300) return {};
  // {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":...}]}
  std::string message = "HTTP " + std::to_string(r.status);
  auto j = parse_json_bounded(r.body).value;
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object()) {
    const auto& e = j["errors"][0];
    std::string code =
        e.contains("code") && e["code"].is_string() ? e["code"].get<std::string>() : std::string();
    std::string text = e.contains("message") && e["message"].is_string()
                           ? e["message"].get<std::string>()
                           : std::string();
    message = cut(code + (code.empty() || text.empty() ? "" : ": ") + text) + " (HTTP " +
              std::to_string(r.status) + ")";
  }
  if (r.status == 404) return {Error::kNotFound, message};
  if (r.status == 401 || r.status == 403) return {Error::kUnauthorized, message};
  if (r.status == 429) return {Error::kThrottled, message};
  if (r.status >= 500) return {Error::kServer, message};
  return {Error::kRejected, message};
}

RegistryApi::Answer RegistryApi::resolve(const std::string& base_url, const std::string& repository,
                                         const std::string& tag, const RegistryCredentials& creds,
                                         std::string* digest) {
  // repository and tag were checked against Docker's grammar (registry_push.h): no escaping.
  const std::string url = base_url + "/v2/" + repository + "/manifests/" + tag;
  std::string authorization;
  OutboundResponse r;
  // At most: the request, one challenge answered, the request again.
  for (int attempt = 0; attempt < 2; ++attempt) {
    OutboundRequest req = base_request("HEAD", url);
    req.headers.emplace_back("Accept", kAccept);
    if (!authorization.empty()) req.headers.emplace_back("Authorization", authorization);
    r = http_request(req);
    if (r.status != 401 || attempt == 1) break;
    const std::string* header = r.header("www-authenticate");
    Challenge ch = parse_challenge(header ? *header : "");
    if (ch.scheme == "basic") {
      if (creds.empty())
        return {Error::kUnauthorized,
                "the registry asks for credentials (Basic) and none are configured"};
      authorization = basic(creds);
    } else if (ch.scheme == "bearer" && !ch.realm.empty()) {
      std::string token;
      Answer t = fetch_token(ch, base_url, repository, creds, &token);
      if (t.error != Error::kNone) return t;
      authorization = "Bearer " + token;
    } else {
      return {Error::kUnauthorized, "the registry answered 401 without a usable challenge"};
    }
  }
  if (r.status == 404) {
    // A HEAD answer has no body: ask again with GET for the registry's error code
    // (MANIFEST_UNKNOWN, NAME_UNKNOWN) so the reason says which it is.
    OutboundRequest req = base_request("GET", url);
    req.headers.emplace_back("Accept", kAccept);
    if (!authorization.empty()) req.headers.emplace_back("Authorization", authorization);
    OutboundResponse g = http_request(req);
    if (g.status == 404) r = std::move(g);
  }
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  const std::string* d = r.header("docker-content-digest");
  if (!d) return {Error::kBadAnswer, "the registry answered no Docker-Content-Digest"};
  std::string value = *d;
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
  if (!valid_digest(value))
    return {Error::kBadAnswer,
            "the registry answered a digest that is not sha256:<64 hex>: " + cut(value)};
  *digest = value;
  return {};
}

Outcome to_outcome(const RegistryApi::Answer& a, const std::string& what) {
  using E = RegistryApi::Error;
  switch (a.error) {
    case E::kUnreachable:
      return Outcome::retryable("cannot reach the registry of " + what + ": " + a.message);
    case E::kThrottled:
      return Outcome::retryable("the registry is throttling tripline (429): " + a.message);
    case E::kServer:
      return Outcome::retryable("the registry answered: " + a.message);
    case E::kNotFound:
      return Outcome::final("the registry does not have " + what + " (" + a.message +
                            "); nothing was deployed");
    case E::kUnauthorized:
      return Outcome::final("the registry refused to show " + what +
                            " (check registry_username / registry_password): " + a.message);
    case E::kTls:
      return Outcome::final("refused the registry's TLS certificate for " + what + ": " +
                            a.message);
    case E::kBadAnswer:
      return Outcome::final("refused the registry's answer for " + what +
                            " (not retried): " + a.message);
    default:
      return Outcome::final("the registry rejected the request for " + what + ": " + a.message);
  }
}

}  // namespace tripline::redeploy
