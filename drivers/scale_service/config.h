// scale-service configuration, parsed and validated once into a typed struct.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "../driver.h"

namespace tripline::scale_service {

enum class Action { kUp, kDown, kSet };

struct Config : DriverConfig {
  std::string backend = "swarm";  // "swarm" or "kubernetes"
  std::string service;            // swarm: service name or ID
  // kubernetes: what to scale. namespace_ is empty when the config names none; the driver then
  // fills in the default namespace (kubeconfig context or the pod's own) when it validates.
  std::string kind = "deployment";  // "deployment" or "statefulset"
  std::string namespace_;
  std::string name;
  Action action = Action::kUp;
  int64_t by = 1;        // for up/down
  int64_t replicas = 0;  // for set
  int64_t min = 0;
  int64_t max = 0;
};

// Parses and checks shape and ranges (no peer access). Field names start with "config.".
Result<Config> parse_config(const nlohmann::json& config);
nlohmann::json config_schema();
const char* to_string(Action a);

// The absolute replica count an action asks for, clamped into [min, max].
struct Desired {
  int64_t replicas;
  bool clamped;
};
// The plan and result key naming what is scaled: "service": "web" (swarm), or
// "namespace"/"kind"/"name" (kubernetes).
nlohmann::json target_fields(const Config& c);

Desired desired_replicas(const Config& c, int64_t current);

}  // namespace tripline::scale_service
