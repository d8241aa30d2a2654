#include "config.h"

#include <re2/re2.h>

#include <algorithm>

#include "field_reader.h"
#include "kubeconfig.h"

namespace tripline::scale_service {

const char* to_string(Action a) {
  switch (a) {
    case Action::kUp:
      return "up";
    case Action::kDown:
      return "down";
    case Action::kSet:
      return "set";
  }
  return "?";
}

namespace {
constexpr int64_t kMaxReplicas = 10000;

bool valid_service_name(const std::string& s) {
  static const re2::RE2 re("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re2::RE2::Latin1);
  return re2::RE2::FullMatch(s, re);
}

// Kubernetes names (docs/kubernetes.md): a namespace is a DNS-1123 label, a Deployment's or
// StatefulSet's name a DNS-1123 subdomain; checked by kubeconfig.h's valid_dns1123_*, and these
// patterns say the same in the config's JSON Schema.
constexpr const char* kLabel = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";
constexpr const char* kSubdomain =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
}  // namespace

Result<Config> parse_config(const nlohmann::json& j) {
  using Need = FieldReader::Need;
  Config c;
  if (!j.is_object())
    return Status::Invalid("config must be a JSON object", {{"config", "must be an object"}});
  FieldReader r(j, "config.");
  r.reject_unknown(
      {"backend", "service", "kind", "namespace", "name", "action", "by", "replicas", "min", "max"},
      "is not a field of scale-service");

  if (auto backend = r.one_of("backend", Need::kOptional, {"swarm", "kubernetes"},
                              "must be \"swarm\" (Docker Swarm) or \"kubernetes\""))
    c.backend = *backend;
  if (c.backend == "swarm") {
    for (const char* k : {"kind", "namespace", "name"})
      if (r.has(k)) r.error(k, "is for the kubernetes backend; swarm takes service");
    if (auto service = r.string("service", Need::kRequired, "must be a Docker service name or ID",
                                valid_service_name))
      c.service = *service;
  } else {
    if (r.has("service"))
      r.error("service", "is for the swarm backend; kubernetes takes kind, namespace and name");
    if (auto kind = r.one_of("kind", Need::kOptional, {"deployment", "statefulset"},
                             "must be deployment or statefulset"))
      c.kind = *kind;
    if (auto ns = r.string(
            "namespace", Need::kOptional,
            "must be a Kubernetes namespace name (lower-case letters, digits and -, at most 63)",
            valid_dns1123_label))
      c.namespace_ = *ns;
    if (auto name =
            r.string("name", Need::kRequired,
                     "must be a Kubernetes object name (lower-case letters, digits, - and .)",
                     valid_dns1123_subdomain))
      c.name = *name;
  }
  auto action = r.one_of("action", Need::kRequired, {"up", "down", "set"},
                         "must be up, down or set", "is required (up, down or set)");
  if (action)
    c.action = *action == "up" ? Action::kUp : *action == "down" ? Action::kDown : Action::kSet;

  auto min = r.integer("min", Need::kOptional, 0, kMaxReplicas);
  auto max = r.integer("max", Need::kRequired, 0, kMaxReplicas);
  if (min) c.min = *min;
  if (max) c.max = *max;
  if (min && max && c.min > c.max)
    r.error("min", "must not be greater than max (" + std::to_string(c.min) + " > " +
                       std::to_string(c.max) + ")");
  if (action && c.action == Action::kSet) {
    if (r.has("by")) r.error("by", "is for up and down; set takes replicas");
    auto replicas = r.integer("replicas", Need::kRequired, 0, kMaxReplicas);
    if (replicas) c.replicas = *replicas;
    if (replicas && max && (c.replicas < c.min || c.replicas > c.max))
      r.error("replicas", "must lie between min and max");
  } else if (action) {
    if (r.has("replicas")) r.error("replicas", "is for set; up and down take by");
    auto by = r.integer("by", Need::kOptional, 0, kMaxReplicas);
    if (by) c.by = *by;
    if (by && c.by < 1) r.error("by", "must be at least 1");
  }
  if (!r.ok()) return r.status();
  return c;
}

Desired desired_replicas(const Config& c, int64_t current) {
  int64_t want = c.action == Action::kUp     ? current + c.by
                 : c.action == Action::kDown ? current - c.by
                                             : c.replicas;
  int64_t clamped = std::clamp(want, c.min, c.max);
  return {clamped, clamped != want};
}

nlohmann::json target_fields(const Config& c) {
  if (c.backend == "swarm") return {{"service", c.service}};
  return {{"namespace", c.namespace_}, {"kind", c.kind}, {"name", c.name}};
}

nlohmann::json config_schema() {
  return {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "Scale a service"},
      {"description",
       "Scale a Docker Swarm service, or a Kubernetes Deployment or StatefulSet, up or down by N, "
       "or to N, within bounds."},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"action", "max"}},
      // The form's order (ui/schema-form.js): each backend's fields right after the backend.
      {"x-order",
       {"backend", "service", "kind", "namespace", "name", "action", "by", "replicas", "min",
        "max"}},
      // swarm needs service, kubernetes needs name (the form shows each only for its backend).
      {"if", {{"properties", {{"backend", {{"const", "kubernetes"}}}}}, {"required", {"backend"}}}},
      {"then", {{"required", {"name"}}}},
      {"else", {{"required", {"service"}}}},
      {"properties",
       {{"backend",
         {{"type", "string"},
          {"enum", {"swarm", "kubernetes"}},
          {"default", "swarm"},
          {"title", "Orchestrator"}}},
        {"service",
         {{"type", "string"},
          {"title", "Service"},
          {"description", "swarm only: name or ID of a replicated Swarm service"},
          {"pattern", "^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"}}},
        {"kind",
         {{"type", "string"},
          {"enum", {"deployment", "statefulset"}},
          {"default", "deployment"},
          {"title", "Kind (kubernetes)"}}},
        {"namespace",
         {{"type", "string"},
          {"title", "Namespace (kubernetes)"},
          {"description",
           "Default: the kubeconfig context's namespace, or the namespace tripline runs in"},
          {"maxLength", 63},
          {"pattern", std::string("^") + kLabel + "$"}}},
        {"name",
         {{"type", "string"},
          {"title", "Name (kubernetes)"},
          {"description", "The Deployment's or StatefulSet's name"},
          {"maxLength", 253},
          {"pattern", std::string("^") + kSubdomain + "$"}}},
        {"action",
         {{"type", "string"},
          {"enum", {"up", "down", "set"}},
          {"title", "Action"},
          {"default", "up"}}},
        {"by",
         {{"type", "integer"},
          {"minimum", 1},
          {"maximum", kMaxReplicas},
          {"default", 1},
          {"title", "By how many (up/down)"},
          {"x-tripline-per-request", true}}},
        {"replicas",
         {{"type", "integer"},
          {"minimum", 0},
          {"maximum", kMaxReplicas},
          {"title", "Replicas (set)"},
          {"x-tripline-per-request", true}}},
        {"min",
         {{"type", "integer"},
          {"minimum", 0},
          {"maximum", kMaxReplicas},
          {"default", 0},
          {"title", "Never below"}}},
        {"max",
         {{"type", "integer"},
          {"minimum", 0},
          {"maximum", kMaxReplicas},
          {"title", "Never above"}}}}}};
}

}  // namespace tripline::scale_service
