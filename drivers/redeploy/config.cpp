#include "config.h"

#include <curl/curl.h>

#include "field_reader.h"
#include "registry_push.h"

namespace tripline::redeploy {

namespace {

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
  r.reject_unknown(
      {"backend", "image", "registry_url", "tag_pattern", "tag", "services", "label_selector",
       "update_parallelism", "update_delay_seconds", "update_monitor_seconds", "update_order",
       "failure_action", "registry_username", "registry_password"},
      "is not a field of redeploy");
  r.one_of("backend", Need::kOptional, {"swarm"},
           "must be \"swarm\" (Docker Swarm; Kubernetes is not offered yet)");
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
  if (auto selector =
          r.string("label_selector", Need::kOptional,
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
       "Resolve a pushed tag to its digest on the registry and roll Docker Swarm services onto "
       "image:tag@digest."},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"image", "tag_pattern"}},
      {"x-order",
       {"backend", "image", "registry_url", "tag_pattern", "tag", "services", "label_selector",
        "update_parallelism", "update_delay_seconds", "update_monitor_seconds", "update_order",
        "failure_action", "registry_username", "registry_password"}},
      {"properties",
       {{"backend",
         {{"type", "string"},
          {"enum", {"swarm"}},
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
           "Swarm service names, e.g. [\"web\", \"worker\"]; or use a label selector."},
          {"minItems", 1},
          {"maxItems", kMaxServices},
          {"items", {{"type", "string"}, {"pattern", "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}}}}},
        {"label_selector",
         {{"type", "string"},
          {"title", "Label selector"},
          {"description", "Instead of services: every service with these labels, e.g. app=web"},
          {"maxLength", 1024}}},
        {"update_parallelism",
         {{"type", "integer"},
          {"title", "Tasks updated at once"},
          {"description", "0: all at once"},
          {"minimum", 0},
          {"maximum", kMaxParallelism},
          {"default", 1}}},
        {"update_delay_seconds",
         {{"type", "integer"},
          {"title", "Delay between batches (s)"},
          {"minimum", 0},
          {"maximum", kMaxDelaySeconds},
          {"default", 0}}},
        {"update_monitor_seconds",
         {{"type", "integer"},
          {"title", "Watch each task for failure (s)"},
          {"minimum", 0},
          {"maximum", kMaxDelaySeconds},
          {"default", 5}}},
        {"update_order",
         {{"type", "string"},
          {"title", "Order"},
          {"enum", {"stop-first", "start-first"}},
          {"default", "stop-first"}}},
        {"failure_action",
         {{"type", "string"},
          {"title", "When an update fails"},
          {"enum", {"rollback", "pause", "continue"}},
          {"default", "rollback"}}},
        {"registry_username",
         {{"type", "string"}, {"title", "Registry username"}, {"maxLength", 4096}}},
        {"registry_password",
         {{"type", "string"},
          {"title", "Registry password or token"},
          {"description", "Sealed at rest; sent only to the registry and its token service"},
          {"writeOnly", true}}}}}};
}

}  // namespace tripline::redeploy
