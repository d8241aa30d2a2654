// The Registry HTTP API v2 (distribution spec), just what resolving a tag to a digest needs:
// HEAD /v2/<repository>/manifests/<tag> with the manifest types in Accept answers the digest in
// Docker-Content-Digest; a 401 names the scheme to authenticate with (Basic, or a Bearer token
// from the realm it names). The wire facts are written down in docs/redeploy.md ("Resolving a
// tag").
//
// Registry answers are untrusted: bounded (64 KiB), the digest checked for its exact shape, a
// token realm followed only over https (or http when the registry itself is plain http).
#pragma once

#include <string>

#include "../driver.h"
#include "http_client.h"

namespace tripline::redeploy {

struct RegistryCredentials {
  std::string username;
  std::string password;  // or a token; sent only to the registry and its token realm
  bool empty() const { return username.empty() && password.empty(); }
};

class RegistryApi {
 public:
  enum class Error {
    kNone,
    kUnreachable,
    kTls,
    kUnauthorized,  // 401 after authenticating, or 403
    kNotFound,      // the tag (MANIFEST_UNKNOWN) or the repository (NAME_UNKNOWN)
    kThrottled,     // 429
    kServer,        // 5xx
    kRejected,      // any other status
    kBadAnswer      // over the limits, no digest, a digest of the wrong shape
  };
  struct Answer {
    Error error = Error::kNone;
    std::string message;
  };

  // base_url: "https://registry.example.com" or "http://127.0.0.1:5000" (no trailing slash).
  static Answer resolve(const std::string& base_url, const std::string& repository,
                        const std::string& tag, const RegistryCredentials& credentials,
                        std::string* digest);

  // Maps an answer that is not a 2xx (exposed for tests). `body` may carry the registry's
  // {"errors":[{"code","message"}]}.
  static Answer classify(const OutboundResponse& r);
  // "sha256:" and 64 lower-case hex digits.
  static bool valid_digest(const std::string& digest);
  // The parameters of a WWW-Authenticate challenge: scheme ("bearer", "basic"), realm, service,
  // scope (exposed for tests). Empty scheme when it cannot be read.
  struct Challenge {
    std::string scheme, realm, service, scope;
  };
  static Challenge parse_challenge(const std::string& header);
};

// The one mapping of a registry answer to an Outcome: the network, 429 and 5xx may pass
// (retryable); a missing tag, refused credentials, TLS and a bad answer will not (final).
// `what` names the image ("127.0.0.1:5000/team/web:1.2").
Outcome to_outcome(const RegistryApi::Answer& a, const std::string& what);

}  // namespace tripline::redeploy
