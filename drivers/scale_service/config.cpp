#include "config.h"

#include <re2/re2.h>

#include <algorithm>

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
// StatefulSet's name a DNS-1123 subdomain.
constexpr const char* kLabel = "[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?";
constexpr const char* kSubdomain =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
bool valid_namespace(const std::string& s) {
  static const re2::RE2 re(kLabel, re2::RE2::Latin1);
  return s.size() <= 63 && re2::RE2::FullMatch(s, re);
}
bool valid_object_name(const std::string& s) {
  static const re2::RE2 re(kSubdomain, re2::RE2::Latin1);
  return s.size() <= 253 && re2::RE2::FullMatch(s, re);
}
}  // namespace

Result<Config> parse_config(const nlohmann::json& j) {
  std::vector<FieldError> errors;
  Config c;
  if (!j.is_object())
    return Status::Invalid("config must be a JSON object", {{"config", "must be an object"}});

  static const char* kKnown[] = {"backend", "service", "kind",     "namespace", "name",
                                 "action",  "by",      "replicas", "min",       "max"};
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return key == k; }))
      errors.push_back({"config." + key, "is not a field of scale-service"});
  }

  auto get_int = [&](const char* name, int64_t* out, bool required) {
    auto it = j.find(name);
    if (it == j.end()) {
      if (required) errors.push_back({std::string("config.") + name, "is required"});
      return false;
    }
    if (!it->is_number_integer()) {
      errors.push_back({std::string("config.") + name, "must be a whole number"});
      return false;
    }
    *out = it->get<int64_t>();
    if (*out < 0 || *out > kMaxReplicas) {
      errors.push_back(
          {std::string("config.") + name, "must be between 0 and " + std::to_string(kMaxReplicas)});
      return false;
    }
    return true;
  };

  if (auto it = j.find("backend"); it != j.end()) {
    if (it->is_string() && (*it == "swarm" || *it == "kubernetes"))
      c.backend = it->get<std::string>();
    else
      errors.push_back({"config.backend", "must be \"swarm\" (Docker Swarm) or \"kubernetes\""});
  }
  if (c.backend == "swarm") {
    for (const char* k : {"kind", "namespace", "name"})
      if (j.contains(k))
        errors.push_back(
            {std::string("config.") + k, "is for the kubernetes backend; swarm takes service"});
    if (auto it = j.find("service"); it == j.end()) {
      errors.push_back({"config.service", "is required"});
    } else if (!it->is_string() || !valid_service_name(it->get<std::string>())) {
      errors.push_back({"config.service", "must be a Docker service name or ID"});
    } else {
      c.service = it->get<std::string>();
    }
  } else {
    if (j.contains("service"))
      errors.push_back({"config.service",
                        "is for the swarm backend; kubernetes takes kind, namespace and name"});
    if (auto it = j.find("kind"); it != j.end()) {
      if (it->is_string() && (*it == "deployment" || *it == "statefulset"))
        c.kind = it->get<std::string>();
      else
        errors.push_back({"config.kind", "must be deployment or statefulset"});
    }
    if (auto it = j.find("namespace"); it != j.end()) {
      if (it->is_string() && valid_namespace(it->get<std::string>()))
        c.namespace_ = it->get<std::string>();
      else
        errors.push_back(
            {"config.namespace",
             "must be a Kubernetes namespace name (lower-case letters, digits and -, at most 63)"});
    }
    if (auto it = j.find("name"); it == j.end()) {
      errors.push_back({"config.name", "is required"});
    } else if (it->is_string() && valid_object_name(it->get<std::string>())) {
      c.name = it->get<std::string>();
    } else {
      errors.push_back({"config.name",
                        "must be a Kubernetes object name (lower-case letters, digits, - and .)"});
    }
  }
  bool have_action = false;
  if (auto it = j.find("action"); it == j.end()) {
    errors.push_back({"config.action", "is required (up, down or set)"});
  } else if (*it == "up") {
    c.action = Action::kUp, have_action = true;
  } else if (*it == "down") {
    c.action = Action::kDown, have_action = true;
  } else if (*it == "set") {
    c.action = Action::kSet, have_action = true;
  } else {
    errors.push_back({"config.action", "must be up, down or set"});
  }

  bool have_min = get_int("min", &c.min, false);
  bool have_max = get_int("max", &c.max, true);
  if (have_min && have_max && c.min > c.max)
    errors.push_back({"config.min", "must not be greater than max (" + std::to_string(c.min) +
                                        " > " + std::to_string(c.max) + ")"});
  if (have_action && c.action == Action::kSet) {
    if (j.contains("by")) errors.push_back({"config.by", "is for up and down; set takes replicas"});
    if (get_int("replicas", &c.replicas, true) && have_max &&
        (c.replicas < c.min || c.replicas > c.max))
      errors.push_back({"config.replicas", "must lie between min and max"});
  } else if (have_action) {
    if (j.contains("replicas"))
      errors.push_back({"config.replicas", "is for set; up and down take by"});
    if (get_int("by", &c.by, false) && c.by < 1)
      errors.push_back({"config.by", "must be at least 1"});
  }
  if (!errors.empty()) {
    std::string msg = errors.front().field + " " + errors.front().message;
    if (errors.size() > 1) msg += " (and " + std::to_string(errors.size() - 1) + " more)";
    return Status::Invalid(msg, std::move(errors));
  }
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
