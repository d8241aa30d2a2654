// The Kubernetes API, apps/v1: the scale subresource (scale-service) and reading Deployments and
// setting their containers' images (redeploy, which links this client). The wire facts this
// relies on are written down in docs/kubernetes.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../driver.h"
#include "http_client.h"
#include "kubeconfig.h"

namespace tripline::scale_service {

// Where the Kubernetes API is (docs/kubernetes.md, "Credentials"): a kubeconfig file, else the
// pod's service account when KUBERNETES_SERVICE_HOST is set, else the backend is off. Declared
// once here and offered by both scale-service and redeploy: drivers/registry.cpp lists an option
// two drivers declare once, so one --kubeconfig serves both.
inline constexpr DriverOption kKubeconfigOption{
    "kubeconfig", "KUBECONFIG", "",
    "Kubernetes API: a kubeconfig file (default: the pod's service account when in a cluster)"};
inline constexpr DriverOption kKubeContextOption{
    "kube-context", "TRIPLINE_KUBE_CONTEXT", "",
    "kubeconfig context (default: its current-context)"};
inline constexpr DriverOption kKubeAccountDirOption{"kube-serviceaccount-dir",
                                                    "TRIPLINE_KUBE_SERVICEACCOUNT_DIR",
                                                    "/var/run/secrets/kubernetes.io/serviceaccount",
                                                    "in-cluster token, ca.crt and namespace files"};

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

  // What redeploy reads of an apps/v1 Deployment.
  struct Container {
    std::string name, image;
  };
  struct Deployment {
    std::string namespace_, name, resource_version;
    std::vector<Container> containers;  // spec.template.spec.containers, in order
    // spec.template.spec.initContainers: never patched, read so a plan can say which of them run
    // the image and are left as they were.
    std::vector<Container> init_containers;
    bool paused = false;              // spec.paused: a patch is accepted, but nothing rolls out
    int64_t replicas = 1;             // spec.replicas (the API server's default is 1)
    int64_t generation = 0;           // metadata.generation
    int64_t observed_generation = 0;  // status.observedGeneration
  };
  // The most containers tripline reads of one pod template (a bound on untrusted answers).
  static constexpr size_t kMaxContainers = 64;

  Answer get_deployment(const std::string& ns, const std::string& name, Deployment* out) const;
  // The Deployments a list asks for per page (limit=): a real Deployment carries managedFields
  // and a last-applied annotation (10-30 KB), so ten of them stay far below the 1 MiB tripline
  // reads of a peer's answer (docs/kubernetes.md, "Deployments").
  static constexpr size_t kListPageSize = 10;
  // The pages one list follows before it gives up (a bound on the reads of one execution).
  static constexpr size_t kMaxListPages = 100;
  // The Deployments of `ns` that `label_selector` (canonical Kubernetes syntax, checked by the
  // caller) selects, read page by page following continue tokens: a token says only that further
  // keys exist, selected or not. At most `max` of them: *more is set, and the rest left unread,
  // as soon as more than `max` are selected. Each page's call ends at 10 s, and all of them by
  // `deadline` (kUnreachable past it): the target picker gives a whole listing 5 s.
  Answer list_deployments(const std::string& ns, const std::string& label_selector, size_t max,
                          std::vector<Deployment>* out, bool* more,
                          std::chrono::steady_clock::time_point deadline =
                              std::chrono::steady_clock::time_point::max()) const;
  // A strategic merge patch setting the image of each named container, what `kubectl set image`
  // sends: {"metadata":{"resourceVersion":RV},"spec":{"template":{"spec":{"containers":
  // [{"name":C,"image":I},...]}}}}. Containers merge by name, so the others are left as they
  // are. kConflict when the Deployment changed since `resource_version` was read.
  Answer patch_container_images(const std::string& ns, const std::string& name,
                                const std::vector<Container>& images,
                                const std::string& resource_version, Deployment* out) const;

  // Reads an autoscaling/v1 Scale (exposed for tests). Never throws.
  static Answer parse_scale(std::string_view body, Scale* out);
  // Reads an apps/v1 Deployment, or a DeploymentList (exposed for tests). Never throw.
  static Answer parse_deployment(std::string_view body, Deployment* out);
  // One page of a list: appends its items to *out, at most `room` of them (*overflow is set when
  // it holds more: a server that ignored limit=), and sets *continue_token ("" on the last page).
  static Answer parse_deployment_list(std::string_view body, size_t room,
                                      std::vector<Deployment>* out, bool* overflow,
                                      std::string* continue_token);
  // Maps an HTTP answer that is not a 2xx (or a transport failure) to an error, reading the
  // API's Status object when there is one.
  static Answer classify(const OutboundResponse& r);

 private:
  OutboundResponse call(const std::string& method, const std::string& path, const std::string& body,
                        std::chrono::milliseconds timeout,
                        const char* patch_type = "application/merge-patch+json") const;
  static std::string scale_path(const std::string& kind, const std::string& ns,
                                const std::string& name);

  std::optional<KubeCredentials> credentials_;
  std::string why_not_;
};

// The one mapping of a Kubernetes API answer to the driver's Outcome (docs/kubernetes.md,
// "Errors"): a conflict, throttling (429), the API server's 5xx and the network are retryable;
// credentials (401), RBAC (403), a missing object (404), a refused value (422), TLS, a bad answer
// and any other status are final. `what` names the object, `where` the API server.
// A 403 says tripline may not `verb` `what` and which permissions its account `needs`
// (scale-service's by default; redeploy names its own Role).
Outcome to_outcome(const KubernetesApi::Answer& a, const std::string& what,
                   const std::string& where, const std::string& verb = "scale",
                   const std::string& needs =
                       "get and patch on deployments/scale and statefulsets/scale in that "
                       "namespace, see deploy/kubernetes");

// The Kubernetes API the options in `env` point at; logs at start which one, or why none, for
// `driver` ("scale-service").
KubernetesApi kubernetes_from(const DriverEnv& env, const std::string& driver);

}  // namespace tripline::scale_service
