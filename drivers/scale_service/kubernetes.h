// The Kubernetes API, apps/v1 scale subresource: just what scaling a Deployment or StatefulSet
// needs. The wire facts this relies on are written down in docs/kubernetes.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "../driver.h"
#include "http_client.h"
#include "kubeconfig.h"

namespace tripline::scale_service {

class KubernetesApi {
 public:
  // Not configured (no kubeconfig, not in a cluster): every call answers kNotConfigured with
  // `why`.
  KubernetesApi() = default;
  explicit KubernetesApi(Result<KubeCredentials> credentials);

  bool configured() const { return credentials_.has_value(); }
  // Where the API is ("https://10.0.0.1:443 (in-cluster ...)"), or why there is none.
  std::string where() const;
  const std::string& default_namespace() const;

  struct Scale {
    int64_t replicas = 0;  // spec.replicas; the API omits it when 0
    int64_t status_replicas = 0;
    std::string resource_version;
  };
  // kBadAnswer: the answer broke tripline's limits for peer JSON or is not a Scale.
  enum class Error {
    kNone,
    kNotConfigured,
    kUnreachable,
    kTls,
    kUnauthorized,
    kForbidden,
    kNotFound,
    kConflict,
    kInvalid,
    kTooManyRequests,
    kServer,
    kRejected,
    kBadAnswer
  };
  struct Answer {
    Error error = Error::kNone;
    std::string message;  // the API's Status message, or the transport error
  };

  // kind: "deployment" or "statefulset".
  Answer get_scale(const std::string& kind, const std::string& ns, const std::string& name,
                   Scale* out) const;
  // A merge patch {"metadata":{"resourceVersion":RV},"spec":{"replicas":N}}: kConflict when the
  // object changed since `resource_version` was read.
  Answer patch_scale(const std::string& kind, const std::string& ns, const std::string& name,
                     int64_t replicas, const std::string& resource_version, Scale* out) const;
  Answer version() const;  // GET /version, for the readiness probe

  // Reads an autoscaling/v1 Scale (exposed for tests). Never throws.
  static Answer parse_scale(std::string_view body, Scale* out);
  // Maps an HTTP answer that is not a 2xx (or a transport failure) to an error, reading the
  // API's Status object when there is one.
  static Answer classify(const OutboundResponse& r);

 private:
  OutboundResponse call(const std::string& method, const std::string& path, const std::string& body,
                        std::chrono::milliseconds timeout) const;
  static std::string scale_path(const std::string& kind, const std::string& ns,
                                const std::string& name);

  std::optional<KubeCredentials> credentials_;
  std::string why_not_;
};

// The one mapping of a Kubernetes API answer to the driver's Outcome (docs/kubernetes.md,
// "Errors"): a conflict, throttling (429), the API server's 5xx and the network are retryable;
// credentials (401), RBAC (403), a missing object (404), a refused value (422), TLS, a bad answer
// and any other status are final. `what` names the object, `where` the API server.
Outcome to_outcome(const KubernetesApi::Answer& a, const std::string& what,
                   const std::string& where);

}  // namespace tripline::scale_service
