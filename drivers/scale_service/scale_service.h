// Driver "scale-service": scale a Docker Swarm service, or a Kubernetes Deployment or
// StatefulSet (docs/kubernetes.md), up or down by N, or to N, within [min, max]. Plan reads the
// current replica count and records the absolute target; apply sets exactly that count (a no-op
// when it already holds), re-reading when another writer got in between (Swarm's "update out of
// sequence", Kubernetes' 409 Conflict on a stale resourceVersion).
#pragma once

#include "../driver.h"
#include "config.h"
#include "kubernetes.h"
#include "swarm.h"

namespace tripline {

class ScaleServiceDriver : public Driver {
 public:
  // Where the Docker Engine API is (unix:// socket or http://host:port).
  static constexpr DriverOption kDockerHost{"docker-host", "TRIPLINE_DOCKER_HOST",
                                            "unix:///var/run/docker.sock", "Docker Engine API"};
  // Where the Kubernetes API is (docs/kubernetes.md, "Credentials"); shared with redeploy.
  static constexpr DriverOption kKubeconfig = scale_service::kKubeconfigOption;
  static constexpr DriverOption kKubeContext = scale_service::kKubeContextOption;
  static constexpr DriverOption kKubeAccountDir = scale_service::kKubeAccountDirOption;
  static std::vector<DriverOption> options() {
    return {kDockerHost, kKubeconfig, kKubeContext, kKubeAccountDir};
  }
  static std::unique_ptr<Driver> create(const DriverEnv& env);

  ScaleServiceDriver(const std::string& docker_host, scale_service::KubernetesApi kubernetes)
      : swarm_(docker_host), kubernetes_(std::move(kubernetes)) {}
  explicit ScaleServiceDriver(const std::string& docker_host) : swarm_(docker_host) {}

  std::string_view name() const override { return "scale-service"; }
  nlohmann::json config_schema() const override { return scale_service::config_schema(); }
  Result<std::shared_ptr<const DriverConfig>> validate(const nlohmann::json& config,
                                                       bool check_peer) const override;
  std::string describe(const DriverConfig& config) const override;
  std::string target(const DriverConfig& config) const override;
  std::string action(const DriverConfig& config) const override;
  Result<nlohmann::json> inverse(const nlohmann::json& config) const override;
  Plan plan(const DriverConfig& config) const override;
  std::optional<nlohmann::json> plan_after(const DriverConfig& config,
                                           const nlohmann::json& previous) const override;
  Outcome apply(const DriverConfig& config, const nlohmann::json& plan) const override;
  // The read found the service at the plan's count: nothing to apply.
  std::optional<Outcome> settled(const DriverConfig& config, const nlohmann::json& read,
                                 const nlohmann::json& plan) const override;
  Status probe() const override;
  std::vector<PeerCheck> probe_peers() const override;
  // "swarm": every service; "kubernetes": the Deployments of the default namespace.
  Result<TargetList> list_targets(std::string_view backend, size_t max,
                                  std::chrono::steady_clock::time_point deadline) const override;

 private:
  Plan plan_kubernetes(const scale_service::Config& c) const;
  Outcome apply_kubernetes(const scale_service::Config& c, const nlohmann::json& plan) const;
  std::string what(const scale_service::Config& c) const;  // "web", "deployment prod/web"

  scale_service::SwarmApi swarm_;
  scale_service::KubernetesApi kubernetes_;
};

}  // namespace tripline
