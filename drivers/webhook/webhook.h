// Driver "webhook": POST a JSON body to a URL, signed (Standard Webhooks by default, or the
// seed-002 scheme), so a trigger can be chained into another system. Documented in README.md
// in this folder and docs/webhooks.md.
//
// The body is what the receiver defines: a template over the trigger request (values
// {"from_request": FIELD} with the rules' field syntax, "body:/pointer", "body:dotted.path",
// "source"), the request's body passed through, or a fixed body. bind() renders it on the
// trigger path into the execution's config; plan() records {"url","webhook_id","body"} with a
// new message id, and apply() sends exactly that body with that id. A retry, or a restart
// re-applying the recorded plan, sends the same webhook-id, so the receiver can de-duplicate.
//
// Every execution must be sent: plan_after() is not answered (the default), so executions are
// never planned together and none is skipped.
#pragma once

#include <chrono>

#include "../driver.h"

namespace tripline {

namespace webhook {
nlohmann::json config_schema();
}

class WebhookDriver : public Driver {
 public:
  // Off by default: URLs that resolve to loopback, link-local or metadata addresses are refused
  // (docs/webhooks.md). The engine's notification dispatcher reads the same option.
  static constexpr DriverOption kAllowLocal{
      "allow-local-webhook-targets", "TRIPLINE_ALLOW_LOCAL_WEBHOOK_TARGETS", "false",
      "let webhooks and notifications reach loopback, link-local and metadata addresses "
      "(true/false)"};
  static std::vector<DriverOption> options() { return {kAllowLocal}; }
  static std::unique_ptr<Driver> create(const DriverEnv& env);

  explicit WebhookDriver(bool allow_local) : allow_local_(allow_local) {}

  std::string_view name() const override { return "webhook"; }
  nlohmann::json config_schema() const override { return webhook::config_schema(); }
  Result<std::shared_ptr<const DriverConfig>> validate(const nlohmann::json& config,
                                                       bool check_peer) const override;
  std::string describe(const DriverConfig& config) const override;
  std::string target(const DriverConfig& config) const override;
  std::string action(const DriverConfig& config) const override;
  bool binds_request(const DriverConfig& config) const override;
  Result<nlohmann::json> bind(const nlohmann::json& stored_config,
                              const TriggerRequest& request) const override;
  Plan plan(const DriverConfig& config) const override;
  Outcome apply(const DriverConfig& config, const nlohmann::json& plan) const override;

 private:
  bool allow_local_;
};

}  // namespace tripline
