#include "scale_service.h"

#include <algorithm>

namespace tripline {

using scale_service::Action;
using scale_service::Config;
using scale_service::KubernetesApi;
using scale_service::SwarmApi;

namespace {

const Config& typed(const DriverConfig& c) { return static_cast<const Config&>(c); }

}  // namespace

std::unique_ptr<Driver> ScaleServiceDriver::create(const DriverEnv& env) {
  return std::make_unique<ScaleServiceDriver>(env.get(kDockerHost),
                                              scale_service::kubernetes_from(env, "scale-service"));
}

std::string ScaleServiceDriver::what(const Config& c) const {
  if (c.backend == "swarm") return "service \"" + c.service + "\"";
  return c.kind + " " + c.namespace_ + "/" + c.name;
}

Result<std::shared_ptr<const DriverConfig>> ScaleServiceDriver::validate(const nlohmann::json& j,
                                                                         bool check_peer) const {
  auto parsed = scale_service::parse_config(j);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<Config>(std::move(parsed).value());
  if (config->backend == "kubernetes") {
    if (config->namespace_.empty()) config->namespace_ = kubernetes_.default_namespace();
    if (check_peer) {
      KubernetesApi::Scale scale;
      auto a = kubernetes_.get_scale(config->kind, config->namespace_, config->name, &scale);
      if (a.error != KubernetesApi::Error::kNone) {
        std::string why =
            a.error == KubernetesApi::Error::kNotFound
                ? "no " + config->kind + " named \"" + config->name + "\" exists in namespace \"" +
                      config->namespace_ + "\""
                : "could not be checked: " +
                      scale_service::to_outcome(a, what(*config), kubernetes_.where()).reason;
        return Status::Invalid("config.name " + why, {{"config.name", why}});
      }
    }
    return std::shared_ptr<const DriverConfig>(std::move(config));
  }
  if (check_peer) {
    SwarmApi::Service s;
    auto a = swarm_.inspect(config->service, &s);
    std::string why;
    if (a.error == SwarmApi::Error::kNotFound)
      why = "no service named \"" + config->service + "\" exists in the swarm";
    else if (a.error != SwarmApi::Error::kNone)
      why = "could not be checked: " +
            scale_service::to_outcome(a, config->service, swarm_.host()).reason;
    else if (!s.replicated)
      why = "\"" + config->service + "\" is a global service; only replicated services scale";
    if (!why.empty()) return Status::Invalid("config.service " + why, {{"config.service", why}});
  }
  return std::shared_ptr<const DriverConfig>(std::move(config));
}

std::string ScaleServiceDriver::describe(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  std::string bounds = ", between " + std::to_string(c.min) + " and " + std::to_string(c.max);
  std::string subject =
      c.backend == "swarm" ? c.service : c.kind + " " + c.namespace_ + "/" + c.name;
  switch (c.action) {
    case Action::kUp:
      return "Scale up " + subject + " by " + std::to_string(c.by) + bounds;
    case Action::kDown:
      return "Scale down " + subject + " by " + std::to_string(c.by) + bounds;
    case Action::kSet:
      return "Scale " + subject + " to " + std::to_string(c.replicas) + " replicas" + bounds;
  }
  return {};
}

std::string ScaleServiceDriver::target(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  if (c.backend == "kubernetes") return "k8s:" + c.namespace_ + "/" + c.kind + "/" + c.name;
  return c.backend + ":" + c.service;
}

std::string ScaleServiceDriver::action(const DriverConfig& c) const {
  return scale_service::to_string(typed(c).action);
}

Result<nlohmann::json> ScaleServiceDriver::inverse(const nlohmann::json& config) const {
  nlohmann::json out = config;
  auto it = config.find("action");
  std::string action = it != config.end() && it->is_string() ? it->get<std::string>() : "";
  if (action == "up")
    out["action"] = "down";
  else if (action == "down")
    out["action"] = "up";
  else
    return Status::Invalid("\"set\" has no inverse; use up or down to scale back on resolve");
  return out;
}

Plan ScaleServiceDriver::plan(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  if (c.backend == "kubernetes") return plan_kubernetes(c);
  SwarmApi::Service s;
  auto a = swarm_.inspect(c.service, &s);
  if (a.error != SwarmApi::Error::kNone)
    return Plan::failed(scale_service::to_outcome(a, c.service, swarm_.host()));
  if (!s.replicated)
    return Plan::failed(
        Outcome::final("\"" + c.service + "\" is a global service; it cannot be scaled"));
  auto d = scale_service::desired_replicas(c, s.replicas);
  return Plan::of({{"service", c.service},
                   {"replicas_before", s.replicas},
                   {"replicas", d.replicas},
                   {"clamped", d.clamped}});
}

std::optional<nlohmann::json> ScaleServiceDriver::plan_after(const DriverConfig& dc,
                                                             const nlohmann::json& previous) const {
  const Config& c = typed(dc);
  auto replicas = previous.find("replicas");
  if (replicas == previous.end() || !replicas->is_number_integer()) return std::nullopt;
  auto d = scale_service::desired_replicas(c, replicas->get<int64_t>());
  nlohmann::json out = scale_service::target_fields(c);
  out.update({{"replicas_before", *replicas}, {"replicas", d.replicas}, {"clamped", d.clamped}});
  return out;
}

std::optional<Outcome> ScaleServiceDriver::settled(const DriverConfig& dc,
                                                   const nlohmann::json& read,
                                                   const nlohmann::json& plan) const {
  auto before = read.find("replicas_before");
  auto want = plan.find("replicas");
  if (before == read.end() || want == plan.end() || *before != *want) return std::nullopt;
  const Config& c = typed(dc);
  nlohmann::json result = c.backend == "kubernetes" ? scale_service::target_fields(c)
                                                    : nlohmann::json{{"service", c.service}};
  // replicas_before is what the peer held when read (a chained plan's own replicas_before is the
  // plan before it); "applied": false says no write was made.
  result.update({{"replicas_before", *before},
                 {"replicas_after", *want},
                 {"clamped", plan.value("clamped", false)},
                 {"changed", false},
                 {"applied", false}});
  return Outcome::succeeded(std::move(result));
}

Outcome ScaleServiceDriver::apply(const DriverConfig& dc, const nlohmann::json& plan) const {
  const Config& c = typed(dc);
  if (c.backend == "kubernetes") return apply_kubernetes(c, plan);
  const int64_t want = plan.at("replicas").get<int64_t>();
  nlohmann::json result = {{"service", c.service},
                           {"replicas_before", plan.at("replicas_before")},
                           {"replicas_after", want},
                           {"clamped", plan.at("clamped")}};
  // Another writer may bump the service version between our read and our update; Docker then
  // answers "update out of sequence" and we read again (what `docker service scale` does).
  constexpr int kMaxRaces = 5;
  SwarmApi::Answer last;
  for (int i = 0; i < kMaxRaces; ++i) {
    SwarmApi::Service s;
    last = swarm_.inspect(c.service, &s);
    if (last.error != SwarmApi::Error::kNone)
      return scale_service::to_outcome(last, c.service, swarm_.host());
    if (!s.replicated)
      return Outcome::final("\"" + c.service + "\" is a global service; it cannot be scaled");
    if (s.replicas == want) {
      result["changed"] = false;  // already there: a re-applied plan does nothing twice
      return Outcome::succeeded(result);
    }
    s.spec["Mode"]["Replicated"]["Replicas"] = want;
    last = swarm_.update(s);
    if (last.error == SwarmApi::Error::kNone) {
      result["changed"] = true;
      return Outcome::succeeded(result);
    }
    if (last.error != SwarmApi::Error::kOutOfSequence)
      return scale_service::to_outcome(last, c.service, swarm_.host());
  }
  return scale_service::to_outcome(last, c.service, swarm_.host());
}

Plan ScaleServiceDriver::plan_kubernetes(const Config& c) const {
  KubernetesApi::Scale scale;
  auto a = kubernetes_.get_scale(c.kind, c.namespace_, c.name, &scale);
  if (a.error != KubernetesApi::Error::kNone)
    return Plan::failed(scale_service::to_outcome(a, what(c), kubernetes_.where()));
  auto d = scale_service::desired_replicas(c, scale.replicas);
  nlohmann::json out = scale_service::target_fields(c);
  out.update(
      {{"replicas_before", scale.replicas}, {"replicas", d.replicas}, {"clamped", d.clamped}});
  return Plan::of(std::move(out));
}

Outcome ScaleServiceDriver::apply_kubernetes(const Config& c, const nlohmann::json& plan) const {
  const int64_t want = plan.at("replicas").get<int64_t>();
  nlohmann::json result = scale_service::target_fields(c);
  result.update({{"replicas_before", plan.at("replicas_before")},
                 {"replicas_after", want},
                 {"clamped", plan.at("clamped")}});
  // The patch carries the resourceVersion we read: if another writer (kubectl, an autoscaler)
  // changed the object in between, the API answers 409 and we read again, a bounded number of
  // times (docs/kubernetes.md, "Optimistic concurrency").
  constexpr int kMaxRaces = 5;
  KubernetesApi::Answer last;
  for (int i = 0; i < kMaxRaces; ++i) {
    KubernetesApi::Scale scale;
    last = kubernetes_.get_scale(c.kind, c.namespace_, c.name, &scale);
    if (last.error != KubernetesApi::Error::kNone)
      return scale_service::to_outcome(last, what(c), kubernetes_.where());
    if (scale.replicas == want) {
      result["changed"] = false;  // already there: a re-applied plan does nothing twice
      return Outcome::succeeded(result);
    }
    KubernetesApi::Scale after;
    last =
        kubernetes_.patch_scale(c.kind, c.namespace_, c.name, want, scale.resource_version, &after);
    if (last.error == KubernetesApi::Error::kNone) {
      result["changed"] = true;
      if (i > 0) result["conflicts"] = i;
      return Outcome::succeeded(result);
    }
    if (last.error != KubernetesApi::Error::kConflict)
      return scale_service::to_outcome(last, what(c), kubernetes_.where());
  }
  return scale_service::to_outcome(last, what(c), kubernetes_.where());
}

std::vector<PeerCheck> ScaleServiceDriver::probe_peers() const {
  std::vector<PeerCheck> out;
  auto docker = swarm_.ping();
  out.push_back({"docker", swarm_.host(),
                 docker.error == SwarmApi::Error::kNone ? Status::Ok()
                                                        : Status::Unavailable(docker.message)});
  if (kubernetes_.configured()) {
    auto k = kubernetes_.version();
    out.push_back(
        {"kubernetes", kubernetes_.where(),
         k.error == KubernetesApi::Error::kNone ? Status::Ok() : Status::Unavailable(k.message)});
  }
  return out;
}

Status ScaleServiceDriver::probe() const {
  std::vector<std::string> problems;
  for (const PeerCheck& p : probe_peers())
    if (!p.status.ok()) problems.push_back(p.peer + " at " + p.address + ": " + p.status.message());
  if (problems.empty()) return Status::Ok();
  std::string msg = problems.front();
  for (size_t i = 1; i < problems.size(); ++i) msg += "; " + problems[i];
  return Status::Unavailable(msg);
}

Result<TargetList> ScaleServiceDriver::list_targets(
    std::string_view backend, size_t max, std::chrono::steady_clock::time_point deadline) const {
  TargetList list;
  if (backend.empty() || backend == "swarm") {
    std::vector<SwarmApi::Listed> services;
    auto a = swarm_.list_names(max, &services, &list.truncated, deadline);
    if (a.error != SwarmApi::Error::kNone)
      return Status::Unavailable(
          a.error == SwarmApi::Error::kBadAnswer
              ? "refused the answer of Docker at " + swarm_.host() + ": " + a.message
              : "cannot list the services of Docker at " + swarm_.host() + ": " + a.message);
    for (auto& s : services)
      list.items.push_back({s.name, {{"backend", "swarm"}, {"service", s.name}}, s.replicas});
    return list;
  }
  if (backend == "kubernetes") {
    if (!kubernetes_.configured())
      return Status::NotFound("the kubernetes backend is not configured: " + kubernetes_.where());
    const std::string& ns = kubernetes_.default_namespace();
    std::vector<KubernetesApi::Deployment> deployments;
    auto a = kubernetes_.list_deployments(ns, "", max, &deployments, &list.truncated, deadline);
    if (a.error != KubernetesApi::Error::kNone)
      return Status::Unavailable(
          "cannot list the Deployments of namespace " + ns + ": " +
          scale_service::to_outcome(a, "deployments", kubernetes_.where(), "list",
                                    "list on deployments in that namespace (only the form's target "
                                    "picker asks, docs/kubernetes.md)")
              .reason);
    for (auto& d : deployments)
      list.items.push_back({d.name,
                            {{"backend", "kubernetes"},
                             {"kind", "deployment"},
                             {"namespace", d.namespace_.empty() ? ns : d.namespace_},
                             {"name", d.name}},
                            d.replicas});
    std::sort(list.items.begin(), list.items.end(),
              [](const TargetInfo& x, const TargetInfo& y) { return x.name < y.name; });
    return list;
  }
  return Status::Invalid("backend must be swarm or kubernetes");
}

}  // namespace tripline
