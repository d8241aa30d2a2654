// Driver "scale-service": scale a Docker Swarm service up or down by N, or to N, within
// [min, max]. Plan reads the current replica count and records the absolute target; apply sets
// exactly that count (a no-op when it already holds), re-reading on "update out of sequence".
#pragma once

#include "../driver.h"
#include "config.h"
#include "swarm.h"

namespace tripline {

class ScaleServiceDriver : public Driver {
 public:
  // Where the Docker Engine API is (unix:// socket or http://host:port).
  static constexpr DriverOption kDockerHost{"docker-host", "TRIPLINE_DOCKER_HOST",
                                            "unix:///var/run/docker.sock", "Docker Engine API"};
  static std::vector<DriverOption> options() { return {kDockerHost}; }
  static std::unique_ptr<Driver> create(const DriverEnv& env) {
    return std::make_unique<ScaleServiceDriver>(env.get(kDockerHost));
  }

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
  Status probe() const override;

 private:
  scale_service::SwarmApi swarm_;
};

}  // namespace tripline
