#include "scale_service.h"

namespace tripline {

using scale_service::Action;
using scale_service::Config;
using scale_service::SwarmApi;

namespace {

const Config& typed(const DriverConfig& c) { return static_cast<const Config&>(c); }

// Connection problems and Docker's 5xx may pass; a missing service or a rejected spec will not.
Outcome failure(const SwarmApi::Answer& a, const std::string& service, const std::string& host) {
  switch (a.error) {
    case SwarmApi::Error::kUnreachable:
      return Outcome::retryable("cannot reach Docker at " + host + ": " + a.message);
    case SwarmApi::Error::kNotFound:
      return Outcome::final("service \"" + service + "\" does not exist: " + a.message);
    case SwarmApi::Error::kServer:
    case SwarmApi::Error::kOutOfSequence:
      return Outcome::retryable("Docker answered: " + a.message);
    case SwarmApi::Error::kBadAnswer:
      // Final: a peer answering past the limits (or not Docker's JSON at all) answers the same
      // way next time; retrying would only hammer it.
      return Outcome::final("refused the answer of Docker at " + host + " (not retried): " + a.message);
    default:
      return Outcome::final("Docker rejected the update: " + a.message);
  }
}

}  // namespace

Result<std::shared_ptr<const DriverConfig>> ScaleServiceDriver::validate(const nlohmann::json& j,
                                                                         bool check_peer) const {
  auto parsed = scale_service::parse_config(j);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<Config>(std::move(parsed).value());
  if (check_peer) {
    SwarmApi::Service s;
    auto a = swarm_.inspect(config->service, &s);
    std::string why;
    if (a.error == SwarmApi::Error::kNotFound)
      why = "no service named \"" + config->service + "\" exists in the swarm";
    else if (a.error != SwarmApi::Error::kNone)
      why = "could not be checked: " + failure(a, config->service, swarm_.host()).reason;
    else if (!s.replicated)
      why = "\"" + config->service + "\" is a global service; only replicated services scale";
    if (!why.empty()) return Status::Invalid("config.service " + why, {{"config.service", why}});
  }
  return std::shared_ptr<const DriverConfig>(std::move(config));
}

std::string ScaleServiceDriver::describe(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  std::string bounds = ", between " + std::to_string(c.min) + " and " + std::to_string(c.max);
  switch (c.action) {
    case Action::kUp: return "Scale up " + c.service + " by " + std::to_string(c.by) + bounds;
    case Action::kDown: return "Scale down " + c.service + " by " + std::to_string(c.by) + bounds;
    case Action::kSet:
      return "Scale " + c.service + " to " + std::to_string(c.replicas) + " replicas" + bounds;
  }
  return {};
}

std::string ScaleServiceDriver::target(const DriverConfig& c) const {
  return typed(c).backend + ":" + typed(c).service;
}

std::string ScaleServiceDriver::action(const DriverConfig& c) const {
  return scale_service::to_string(typed(c).action);
}

Result<nlohmann::json> ScaleServiceDriver::inverse(const nlohmann::json& config) const {
  nlohmann::json out = config;
  auto it = config.find("action");
  std::string action = it != config.end() && it->is_string() ? it->get<std::string>() : "";
  if (action == "up") out["action"] = "down";
  else if (action == "down") out["action"] = "up";
  else return Status::Invalid("\"set\" has no inverse; use up or down to scale back on resolve");
  return out;
}

Plan ScaleServiceDriver::plan(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  SwarmApi::Service s;
  auto a = swarm_.inspect(c.service, &s);
  if (a.error != SwarmApi::Error::kNone) return Plan::failed(failure(a, c.service, swarm_.host()));
  if (!s.replicated)
    return Plan::failed(Outcome::final("\"" + c.service + "\" is a global service; it cannot be scaled"));
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
  return nlohmann::json{{"service", c.service},
                        {"replicas_before", *replicas},
                        {"replicas", d.replicas},
                        {"clamped", d.clamped}};
}

Outcome ScaleServiceDriver::apply(const DriverConfig& dc, const nlohmann::json& plan) const {
  const Config& c = typed(dc);
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
    if (last.error != SwarmApi::Error::kNone) return failure(last, c.service, swarm_.host());
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
    if (last.error != SwarmApi::Error::kOutOfSequence) return failure(last, c.service, swarm_.host());
  }
  return failure(last, c.service, swarm_.host());
}

Status ScaleServiceDriver::probe() const {
  auto a = swarm_.ping();
  if (a.error != SwarmApi::Error::kNone)
    return Status::Unavailable("docker at " + swarm_.host() + ": " + a.message);
  return Status::Ok();
}

}  // namespace tripline
