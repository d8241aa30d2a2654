// redeploy configuration, parsed and validated once into a typed struct (docs/redeploy.md).
#pragma once

#include <re2/re2.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../driver.h"
#include "registry_client.h"

namespace tripline::redeploy {

// "127.0.0.1:5000/team/web" -> registry "127.0.0.1:5000", repository "team/web";
// "nginx" -> "docker.io", "library/nginx" (Docker's normalisation).
struct ImageName {
  std::string text;        // as configured
  std::string registry;    // host[:port]
  std::string repository;  // path on the registry
};
std::optional<ImageName> parse_image_name(const std::string& text);

struct Config : DriverConfig {
  std::string backend = "swarm";  // or "kubernetes"
  ImageName image;
  std::string registry_url;  // the API's base, "https://host" unless configured
  std::string tag_pattern;
  std::shared_ptr<const re2::RE2> tag_re;  // the whole tag must match
  std::string tag;                         // the tag to deploy: from the request, else configured
  // Swarm services: by name, or every service carrying all of these labels.
  std::vector<std::string> services;
  // The label selector's requirements, canonical: swarm "key=value" or "key"; kubernetes also
  // "key!=value" and "!key" (docs/redeploy.md, "Kubernetes").
  std::vector<std::string> labels;
  // Kubernetes Deployments: by name, or by the label selector, in one namespace. namespace_ is
  // empty when the config names none; the driver fills in the credentials' default namespace
  // when it validates. container: the one container whose image is set; empty: every container
  // running an image of `image`.
  std::string namespace_;
  std::vector<std::string> deployments;
  std::string container;
  // Swarm rollout (Spec.UpdateConfig); Kubernetes uses each Deployment's own spec.strategy.
  int64_t parallelism = 1;
  int64_t delay_seconds = 0;
  int64_t monitor_seconds = 5;
  std::string order = "stop-first";         // or "start-first"
  std::string failure_action = "rollback";  // or "pause", "continue"
  RegistryCredentials credentials;
};

// Parses and checks shape and ranges (no peer access). Field names start with "config.".
Result<Config> parse_config(const nlohmann::json& config);
nlohmann::json config_schema();

// The reference a node pulls: "127.0.0.1:5000/team/web:1.2@sha256:...".
std::string pinned(const Config& c, const std::string& tag, const std::string& digest);
// The repository part of a service's image ("127.0.0.1:5000/team/web:1.0@sha256:..." ->
// "127.0.0.1:5000/team/web"), to check that a service runs the configured image at all.
std::string image_repository(const std::string& image);

// A Kubernetes label selector "app=web,tier!=db,canary,!legacy" (equality-based and existence
// requirements) into its canonical requirements; false when it is not one (set-based "in (...)"
// is not accepted). No I/O.
bool parse_kubernetes_selector(const std::string& text, std::vector<std::string>* out);

// The most services (Deployments) one execution updates (names or a label selector).
inline constexpr size_t kMaxServices = 50;

}  // namespace tripline::redeploy
