// Driver "redeploy": roll Docker Swarm services, or Kubernetes Deployments, onto a pushed image
// (docs/redeploy.md).
//
// bind() takes the tag from the trigger request: a registry's push notification (the rules'
// "registry-push" preset reads the same payloads, server/base/registry_push.h), or a plain
// {"tag": "..."} body. A push of another repository, or of a tag tag_pattern does not allow, is
// ignored (bind answers NotFound), never refused: a registry re-sends a refused notification.
// plan() never trusts that tag: it resolves it to a digest on the registry (HEAD
// /v2/<repo>/manifests/<tag>) and records, per service, the image it runs and
// image:tag@sha256:... it is to run; a tag the registry does not have fails final. apply() sets
// that reference and the rollout settings (Spec.UpdateConfig) with the version it read, reading
// again on "update out of sequence"; a service already on the reference is left alone.
// Kubernetes (backend "kubernetes"): plan() reads the Deployments (by name, or by a label selector)
// and records, per Deployment, the containers whose image is set; apply() sets them with a
// strategic merge patch carrying the resourceVersion it read, reading again on 409 Conflict. The
// rollout is the Deployment's own (spec.strategy).
//
// Every execution resolves the registry anew: plan_after() is not answered, so executions are
// planned one by one (a later push of the same tag may carry a new digest).
#pragma once

#include <memory>
#include <string>

#include "../driver.h"
#include "config.h"

namespace tripline {

namespace scale_service {
class KubernetesApi;  // scale-service's client (kubernetes.h), linked by this driver
}

class RedeployDriver : public Driver {
 public:
  // The same option as scale-service's: one --docker-host for both (drivers/registry.cpp).
  static constexpr DriverOption kDockerHost{"docker-host", "TRIPLINE_DOCKER_HOST",
                                            "unix:///var/run/docker.sock", "Docker Engine API"};
  // kDockerHost and scale-service's Kubernetes options (kubernetes.h): one --kubeconfig for both.
  static std::vector<DriverOption> options();
  static std::unique_ptr<Driver> create(const DriverEnv& env);

  // The kubernetes backend off.
  explicit RedeployDriver(std::string docker_host);
  RedeployDriver(std::string docker_host, scale_service::KubernetesApi kubernetes);

  std::string_view name() const override { return "redeploy"; }
  nlohmann::json config_schema() const override { return redeploy::config_schema(); }
  Result<std::shared_ptr<const DriverConfig>> validate(const nlohmann::json& config,
                                                       bool check_peer) const override;
  std::string describe(const DriverConfig& config) const override;
  std::string target(const DriverConfig& config) const override;
  std::string action(const DriverConfig& config) const override;
  bool binds_request(const DriverConfig& /*config*/) const override { return true; }
  Result<nlohmann::json> bind(const nlohmann::json& stored_config,
                              const TriggerRequest& request) const override;
  Plan plan(const DriverConfig& config) const override;
  Outcome apply(const DriverConfig& config, const nlohmann::json& plan) const override;
  // Every service (Deployment container) the read found is already on the plan's reference.
  std::optional<Outcome> settled(const DriverConfig& config, const nlohmann::json& read,
                                 const nlohmann::json& plan) const override;
  Status probe() const override;

 private:
  Plan plan_kubernetes(const redeploy::Config& c, const std::string& digest) const;
  Outcome apply_kubernetes(const redeploy::Config& c, const nlohmann::json& plan) const;

  std::string docker_host_;
  std::shared_ptr<const scale_service::KubernetesApi> kubernetes_;  // never null
};

}  // namespace tripline
