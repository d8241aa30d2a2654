// Driver "dns-update": set (upsert) or delete one DNS record set, through an RFC 2136 dynamic
// update signed with TSIG (rfc2136) or through an ExternalDNS webhook provider
// (externaldns-webhook). The value is fixed, or taken from the trigger request: the caller's
// address or a string in its JSON body (bind()).
//
// plan() reads the record set and records {"name","type","ttl","before","ttl_before","after"};
// apply() reads again, and changes the record only when it differs from "after", so a re-applied
// plan leaves the same end state. rfc2136 replaces the set in one signed UPDATE (delete the RRset,
// add the new one) and reads it back; externaldns-webhook sends create, updateOld/updateNew or
// delete. Config and wire details: README.md in this folder.
#pragma once

#include <chrono>

#include "../driver.h"
#include "config.h"

namespace tripline {

class DnsUpdateDriver : public Driver {
 public:
  static std::vector<DriverOption> options() { return {}; }  // peers are named per receiver
  static std::unique_ptr<Driver> create(const DriverEnv&) {
    return std::make_unique<DnsUpdateDriver>();
  }

  // dns_timeout bounds each DNS exchange (connect, send and answer over TCP).
  explicit DnsUpdateDriver(std::chrono::milliseconds dns_timeout = std::chrono::milliseconds(3000))
      : dns_timeout_(dns_timeout) {}

  std::string_view name() const override { return "dns-update"; }
  nlohmann::json config_schema() const override { return dns_update::config_schema(); }
  Result<std::shared_ptr<const DriverConfig>> validate(const nlohmann::json& config,
                                                       bool check_peer) const override;
  std::string describe(const DriverConfig& config) const override;
  std::string target(const DriverConfig& config) const override;
  std::string action(const DriverConfig& config) const override;
  bool binds_request(const DriverConfig& config) const override;
  Result<nlohmann::json> bind(const nlohmann::json& stored_config,
                              const TriggerRequest& request) const override;
  // upsert -> delete of the same record set (e.g. remove the record when the alert resolves);
  // delete has none: there is no value to put back.
  Result<nlohmann::json> inverse(const nlohmann::json& config) const override;
  Plan plan(const DriverConfig& config) const override;
  std::optional<nlohmann::json> plan_after(const DriverConfig& config,
                                           const nlohmann::json& previous) const override;
  Outcome apply(const DriverConfig& config, const nlohmann::json& plan) const override;

 private:
  std::chrono::milliseconds dns_timeout_;
};

}  // namespace tripline
