#include "config.h"

#include <curl/curl.h>

#include "field_reader.h"
#include "kubeconfig.h"
#include "registry_push.h"

namespace tripline::redeploy {

namespace {

using scale_service::valid_dns1123_label;
using scale_service::valid_dns1123_subdomain;

constexpr int64_t kMaxParallelism = 1000;
constexpr int64_t kMaxDelaySeconds = 3600;
constexpr size_t kMaxPatternBytes = 256;

bool valid_service_name(const std::string& s) {
  static const re2::RE2 re("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re2::RE2::Latin1);
  return re2::RE2::FullMatch(s, re);
}

// A label selector "key=value,key2" (Docker's label filter; keys and values without commas).
bool parse_labels(const std::string& s, std::vector<std::string>* out) {
  static const re2::RE2 re("[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(=[A-Za-z0-9._/:@+-]{0,256})?",
                           re2::RE2::Latin1);
  out->clear();
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string part =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    while (!part.empty() && part.back() == ' ') part.pop_back();
    if (!re2::RE2::FullMatch(part, re) || out->size() >= 20) return false;
    out->push_back(part);
    if (comma == std::string::npos) return true;
    start = comma + 1;
  }
}

// Kubernetes names (docs/kubernetes.md): a namespace and a container name are DNS-1123 labels, a
// Deployment's name a DNS-1123 subdomain; checked by kubeconfig.h's valid_dns1123_*, and these
// patterns say the same in the config's JSON Schema.
constexpr const char* kLabel = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";
constexpr const char* kSubdomain =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";

// A label key: an optional DNS-subdomain prefix and "/", then a name of at most 63 characters
// (alphanumeric at both ends; -, _ and . inside). A value: empty, or like the name.
bool valid_label_key(const std::string& k) {
  static const re2::RE2 name("[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", re2::RE2::Latin1);
  size_t slash = k.find('/');
  if (slash == std::string::npos) return re2::RE2::FullMatch(k, name);
  return valid_dns1123_subdomain(k.substr(0, slash)) &&
         re2::RE2::FullMatch(k.substr(slash + 1), name);
}
bool valid_label_value(const std::string& v) {
  static const re2::RE2 value("([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?", re2::RE2::Latin1);
  return re2::RE2::FullMatch(v, value);
}

std::string trimmed(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(0, 1);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// The registry's host part: "host.tld", "host:port", "localhost", "[::1]:5000".
bool valid_host(const std::string& h) {
  static const re2::RE2 re(
      "([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|"
      "\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?",
      re2::RE2::Latin1);
  return h.size() <= 255 && re2::RE2::FullMatch(h, re);
}

bool valid_registry_url(const std::string& u) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), &curl_url_cleanup);
  if (!url || u.size() > 512 || curl_url_set(url.get(), CURLUPART_URL, u.c_str(), 0) != CURLUE_OK)
    return false;
  char* scheme = nullptr;
  if (curl_url_get(url.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) return false;
  std::string s = scheme;
  curl_free(scheme);
  return (s == "http" || s == "https") && u.back() != '/' &&
         u.find_first_of("?#\r\n ") == std::string::npos;
}

}  // namespace

bool parse_kubernetes_selector(const std::string& text, std::vector<std::string>* out) {
  out->clear();
  if (text.size() > 1024) return false;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string part =
        trimmed(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (part.empty() || out->size() >= 20) return false;
    std::string req;
    if (part.front() == '!') {  // existence, negated: "!legacy"
      std::string key = trimmed(part.substr(1));
      if (!valid_label_key(key)) return false;
      req = "!" + key;
    } else if (size_t eq = part.find('='); eq != std::string::npos) {
      // "k=v", "k==v" (the same) or "k!=v"
      bool negated = eq > 0 && part[eq - 1] == '!';
      std::string key = trimmed(part.substr(0, negated ? eq - 1 : eq));
      size_t value_at = eq + 1 + (!negated && eq + 1 < part.size() && part[eq + 1] == '=');
      std::string value = trimmed(part.substr(value_at));
      if (!valid_label_key(key) || !valid_label_value(value)) return false;
      req = key + (negated ? "!=" : "=") + value;
    } else {  // existence: "canary"; set-based "k in (a,b)" fails here (spaces, parentheses)
      if (!valid_label_key(part)) return false;
      req = part;
    }
    out->push_back(req);
    if (comma == std::string::npos) return true;
    start = comma + 1;
  }
}

std::optional<ImageName> parse_image_name(const std::string& text) {
  if (text.empty() || text.size() > 512) return std::nullopt;
  ImageName n;
  n.text = text;
  size_t slash = text.find('/');
  std::string first = text.substr(0, slash);
  // Docker's rule: the first component is a registry when it has a "." or a ":" or is
  // "localhost"; else the image is on Docker Hub.
  bool has_host = slash != std::string::npos &&
                  (first.find_first_of(".:[") != std::string::npos || first == "localhost");
  if (has_host) {
    n.registry = first;
    n.repository = text.substr(slash + 1);
    if (!valid_host(n.registry)) return std::nullopt;
  } else {
    n.registry = "docker.io";
    n.repository = slash == std::string::npos ? "library/" + text : text;
  }
  if (n.registry == "docker.io" || n.registry == "index.docker.io") {
    n.registry = "docker.io";
    if (n.repository.find('/') == std::string::npos) n.repository = "library/" + n.repository;
  }
  if (!valid_repository_path(n.repository)) return std::nullopt;
  return n;
}

std::string image_repository(const std::string& image) {
  std::string s = image.substr(0, image.find('@'));
  size_t colon = s.rfind(':');
  size_t slash = s.rfind('/');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    s = s.substr(0, colon);
  return s;
}

std::string pinned(const Config& c, const std::string& tag, const std::string& digest) {
  return c.image.text + ":" + tag + "@" + digest;
}

Result<Config> parse_config(const nlohmann::json& j) {
  using Need = FieldReader::Need;
  Config c;
  if (!j.is_object())
    return Status::Invalid("config must be a JSON object", {{"config", "must be an object"}});
  FieldReader r(j, "config.");
  r.reject_unknown({"backend", "image", "registry_url", "tag_pattern", "tag", "services",
                    "namespace", "deployments", "label_selector", "container", "update_parallelism",
                    "update_delay_seconds", "update_monitor_seconds", "update_order",
                    "failure_action", "registry_username", "registry_password"},
                   "is not a field of redeploy");
  if (auto backend = r.one_of("backend", Need::kOptional, {"swarm", "kubernetes"},
                              "must be \"swarm\" (Docker Swarm) or \"kubernetes\""))
    c.backend = *backend;
  if (auto image = r.string(
          "image", Need::kRequired,
          "must be an image name without tag or digest, e.g. registry.example.com:5000/team/web",
          [](const std::string& s) { return parse_image_name(s).has_value(); }))
    c.image = *parse_image_name(*image);
  if (auto url = r.string("registry_url", Need::kOptional,
                          "must be the registry's http:// or https:// base URL, without a path "
                          "ending in / (e.g. http://127.0.0.1:5000)",
                          valid_registry_url))
    c.registry_url = *url;
  else if (!c.image.registry.empty())
    c.registry_url = c.image.registry == "docker.io" ? "https://registry-1.docker.io"
                                                     : "https://" + c.image.registry;

  if (auto pattern = r.string("tag_pattern", Need::kRequired,
                              "must be a regular expression (RE2) of at most 256 bytes",
                              [](const std::string& s) { return s.size() <= kMaxPatternBytes; })) {
    re2::RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(1 << 20);
    auto re = std::make_shared<re2::RE2>(*pattern, o);
    if (!re->ok())
      r.error("tag_pattern", "is not a valid regular expression: " + re->error());
    else
      c.tag_pattern = *pattern, c.tag_re = std::move(re);
  }
  if (auto tag = r.string("tag", Need::kOptional,
                          "must be an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})",
                          [](const std::string& s) { return valid_image_tag(s); })) {
    c.tag = *tag;
    if (c.tag_re && !re2::RE2::FullMatch(c.tag, *c.tag_re))
      r.error("tag", "\"" + c.tag + "\" does not match tag_pattern");
  }

  if (c.backend == "kubernetes") {
    // Each backend's fields, refused on the other (as scale-service does): a swarm rollout
    // setting on a Deployment would be silently meaningless.
    if (r.has("services"))
      r.error("services", "is for the swarm backend; kubernetes takes deployments");
    for (const char* k : {"update_parallelism", "update_delay_seconds", "update_monitor_seconds",
                          "update_order", "failure_action"})
      if (r.has(k))
        r.error(k,
                "is for the swarm backend; a Deployment rolls out by its own spec.strategy "
                "(maxSurge, maxUnavailable, progressDeadlineSeconds)");
    bool by_name = r.has("deployments"), by_label = r.has("label_selector");
    if (by_name == by_label)
      r.error(by_name ? "label_selector" : "deployments",
              by_name ? "cannot be combined with deployments: choose one"
                      : "is required (or label_selector): the Deployments to redeploy");
    if (auto ns = r.string(
            "namespace", Need::kOptional,
            "must be a Kubernetes namespace name (lower-case letters, digits and -, at most 63)",
            valid_dns1123_label))
      c.namespace_ = *ns;
    if (auto names =
            r.strings("deployments", Need::kOptional, "must be an array of Deployment names",
                      "must be a Kubernetes object name (lower-case letters, digits, - and .)",
                      valid_dns1123_subdomain)) {
      if (names->empty() || names->size() > kMaxServices)
        r.error("deployments", "must name 1 to " + std::to_string(kMaxServices) + " Deployments");
      c.deployments = *names;
    }
    if (auto selector =
            r.string("label_selector", Need::kOptional,
                     "must be a Kubernetes label selector of at most 20 requirements key=value, "
                     "key!=value, key or !key, separated by commas, e.g. \"app=web,tier!=db\" "
                     "(set-based \"in (...)\" is not accepted)",
                     [&](const std::string& s) { return parse_kubernetes_selector(s, &c.labels); }))
      (void)selector;
    if (auto container =
            r.string("container", Need::kOptional,
                     "must be a container name (lower-case letters, digits and -, at most 63)",
                     valid_dns1123_label))
      c.container = *container;
  } else {
    for (const char* k : {"namespace", "deployments", "container"})
      if (r.has(k)) r.error(k, "is for the kubernetes backend; swarm takes services");
    bool by_name = r.has("services"), by_label = r.has("label_selector");
    if (by_name == by_label)
      r.error(by_name ? "label_selector" : "services",
              by_name ? "cannot be combined with services: choose one"
                      : "is required (or label_selector): the services to redeploy");
    if (auto names = r.strings("services", Need::kOptional, "must be an array of service names",
                               "must be a Docker service name or ID", valid_service_name)) {
      if (names->empty() || names->size() > kMaxServices)
        r.error("services", "must name 1 to " + std::to_string(kMaxServices) + " services");
      c.services = *names;
    }
    if (auto selector = r.string(
            "label_selector", Need::kOptional,
            "must be labels the services carry, e.g. \"app=web\" or \"app=web,tier=front\"",
            [&](const std::string& s) { return parse_labels(s, &c.labels); }))
      (void)selector;

    if (auto n = r.integer("update_parallelism", Need::kOptional, 0, kMaxParallelism))
      c.parallelism = *n;
    if (auto n = r.integer("update_delay_seconds", Need::kOptional, 0, kMaxDelaySeconds))
      c.delay_seconds = *n;
    if (auto n = r.integer("update_monitor_seconds", Need::kOptional, 0, kMaxDelaySeconds))
      c.monitor_seconds = *n;
    if (auto o = r.one_of("update_order", Need::kOptional, {"stop-first", "start-first"},
                          "must be stop-first or start-first"))
      c.order = *o;
    if (auto f = r.one_of("failure_action", Need::kOptional, {"rollback", "pause", "continue"},
                          "must be rollback, pause or continue"))
      c.failure_action = *f;
  }

  auto one_line = [](const std::string& s) {
    return s.size() <= 4096 && s.find_first_of("\r\n") == std::string::npos;
  };
  if (auto u = r.string("registry_username", Need::kOptional,
                        "must be a string of at most 4096 characters, one line", one_line))
    c.credentials.username = *u;
  if (auto p = r.string("registry_password", Need::kOptional,
                        "must be a string of at most 4096 characters, one line", one_line))
    c.credentials.password = *p;
  if (!r.ok()) return r.status();
  return c;
}

nlohmann::json config_schema() {
  return {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "Redeploy services onto a pushed image"},
      {"description",
       "Resolve a pushed tag to its digest on the registry and roll Docker Swarm services, or "
       "Kubernetes Deployments, onto image:tag@digest."},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"image", "tag_pattern"}},
      // The form's order (ui/schema-form.js): each backend's fields right after the backend.
      {"x-order",
       {"backend", "image", "registry_url", "tag_pattern", "tag", "services", "namespace",
        "deployments", "label_selector", "container", "update_parallelism", "update_delay_seconds",
        "update_monitor_seconds", "update_order", "failure_action", "registry_username",
        "registry_password"}},
      // Which fields belong to which backend, as scale-service says it: the form shows a field
      // titled "(kubernetes)" or described "swarm only" for that backend alone, and the schema
      // refuses the other backend's fields (parse_config says so per field).
      {"if", {{"properties", {{"backend", {{"const", "kubernetes"}}}}}, {"required", {"backend"}}}},
      {"then",
       {{"properties",
         {{"services", false},
          {"update_parallelism", false},
          {"update_delay_seconds", false},
          {"update_monitor_seconds", false},
          {"update_order", false},
          {"failure_action", false}}}}},
      {"else",
       {{"properties", {{"namespace", false}, {"deployments", false}, {"container", false}}}}},
      {"properties",
       {{"backend",
         {{"type", "string"},
          {"enum", {"swarm", "kubernetes"}},
          {"default", "swarm"},
          {"title", "Orchestrator"}}},
        {"image",
         {{"type", "string"},
          {"title", "Image"},
          {"description",
           "Registry and repository, without tag or digest: 127.0.0.1:5000/team/web, "
           "ghcr.io/org/app, nginx (Docker Hub)"},
          {"maxLength", 512}}},
        {"registry_url",
         {{"type", "string"},
          {"title", "Registry API URL"},
          {"description",
           "Default: https://<registry of the image> (Docker Hub: https://registry-1.docker.io); "
           "http://... for a registry without TLS"},
          {"maxLength", 512}}},
        {"tag_pattern",
         {{"type", "string"},
          {"title", "Allowed tags"},
          {"description",
           "RE2 regular expression the whole pushed tag must match, e.g. "
           "^v[0-9]+\\.[0-9]+\\.[0-9]+$"},
          {"maxLength", kMaxPatternBytes}}},
        {"tag",
         {{"type", "string"},
          {"title", "Tag when the request names none"},
          {"description", "A push notification's tag replaces it"},
          {"pattern", "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"}}},
        {"services",
         {{"type", "array"},
          {"title", "Services"},
          {"description",
           "swarm only: Swarm service names, e.g. [\"web\", \"worker\"]; or use a label "
           "selector."},
          {"minItems", 1},
          {"maxItems", kMaxServices},
          {"items", {{"type", "string"}, {"pattern", "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}}}}},
        {"namespace",
         {{"type", "string"},
          {"title", "Namespace (kubernetes)"},
          {"description",
           "Default: the kubeconfig context's namespace, or the namespace tripline runs in"},
          {"maxLength", 63},
          {"pattern", std::string("^") + kLabel + "$"}}},
        {"deployments",
         {{"type", "array"},
          {"title", "Deployments (kubernetes)"},
          {"description", "Deployment names, e.g. [\"web\", \"worker\"]; or use a label selector."},
          {"minItems", 1},
          {"maxItems", kMaxServices},
          {"items",
           {{"type", "string"},
            {"maxLength", 253},
            {"pattern", std::string("^") + kSubdomain + "$"}}}}},
        {"label_selector",
         {{"type", "string"},
          {"title", "Label selector"},
          {"description",
           "Instead of names: every service (swarm: app=web,tier=front or a bare key) or "
           "Deployment (kubernetes: also key!=value and !key) these labels select"},
          {"maxLength", 1024}}},
        {"container",
         {{"type", "string"},
          {"title", "Container (kubernetes)"},
          {"description",
           "The container whose image is set; default: every container running an image of "
           "Image"},
          {"maxLength", 63},
          {"pattern", std::string("^") + kLabel + "$"}}},
        {"update_parallelism",
         {{"type", "integer"},
          {"title", "Tasks updated at once"},
          {"description", "swarm only: 0 = all at once"},
          {"minimum", 0},
          {"maximum", kMaxParallelism},
          {"default", 1}}},
        {"update_delay_seconds",
         {{"type", "integer"},
          {"title", "Delay between batches (s)"},
          {"description", "swarm only"},
          {"minimum", 0},
          {"maximum", kMaxDelaySeconds},
          {"default", 0}}},
        {"update_monitor_seconds",
         {{"type", "integer"},
          {"title", "Watch each task for failure (s)"},
          {"description", "swarm only"},
          {"minimum", 0},
          {"maximum", kMaxDelaySeconds},
          {"default", 5}}},
        {"update_order",
         {{"type", "string"},
          {"title", "Order"},
          {"description", "swarm only: a Deployment uses its own spec.strategy"},
          {"enum", {"stop-first", "start-first"}},
          {"default", "stop-first"}}},
        {"failure_action",
         {{"type", "string"},
          {"title", "When an update fails"},
          {"description", "swarm only"},
          {"enum", {"rollback", "pause", "continue"}},
          {"default", "rollback"}}},
        {"registry_username",
         {{"type", "string"}, {"title", "Registry username"}, {"maxLength", 4096}}},
        {"registry_password",
         {{"type", "string"},
          {"title", "Registry password or token"},
          {"description",
           "Sealed at rest; sent only to the registry and its token service (and, on swarm, to "
           "the nodes that pull)"},
          {"writeOnly", true}}}}}};
}

}  // namespace tripline::redeploy
