// Where the Kubernetes API is and how tripline proves who it is (docs/kubernetes.md,
// "Credentials"): from a kubeconfig file, or from the pod's service account when tripline runs in a
// cluster. Reading them does file I/O only; nothing here talks to the API server.
#pragma once

#include <string>
#include <string_view>

#include "status.h"

namespace tripline::scale_service {

struct KubeCredentials {
  std::string server;  // "https://host:port", no trailing slash
  // The CA the server's certificate is verified against: a PEM file or PEM text. One is always
  // set; there is no way to turn verification off.
  std::string ca_file, ca_pem;
  // Bearer token: given inline, or a file read again for every request (service-account tokens
  // rotate).
  std::string token, token_file;
  // Client certificate and key, each a PEM file or PEM text.
  std::string client_cert_file, client_cert_pem, client_key_file, client_key_pem;
  std::string default_namespace = "default";  // for configs that name none
  std::string source;  // for messages: "kubeconfig /x (context c)", "in-cluster"
};

// Reads a kubeconfig file: the context `context`, or the file's current-context when empty.
// Relative file paths in it are relative to the file's folder, as kubectl reads them. Refused
// (Invalid, with the reason): a missing context, cluster or user, a server that is not https, no
// CA, insecure-skip-tls-verify: true, auth-provider / exec users (not supported).
Result<KubeCredentials> load_kubeconfig(const std::string& path, const std::string& context);
// The same from the file's text; `dir` resolves relative paths. No I/O.
Result<KubeCredentials> parse_kubeconfig(std::string_view yaml, const std::string& dir,
                                         const std::string& context);

// The pod's service account: the API at https://HOST:PORT (KUBERNETES_SERVICE_HOST/_PORT), the
// token, CA and namespace files in `account_dir` (normally
// /var/run/secrets/kubernetes.io/serviceaccount). NotFound when host is empty (not in a cluster).
Result<KubeCredentials> in_cluster(const std::string& host, const std::string& port,
                                   const std::string& account_dir);

// Reads a small file (a token, a namespace; 1 MiB at most) whole. False when it cannot.
bool read_small_file(const std::string& path, std::string* out);

// Kubernetes names (docs/kubernetes.md): a namespace is a DNS-1123 label (at most 63 of a-z, 0-9
// and "-", alphanumeric at both ends), an object's name a DNS-1123 subdomain (such labels, any
// length, joined by ".", at most 253 characters). Both go into URL paths unescaped: whatever
// did not pass these never reaches a path.
bool valid_dns1123_label(std::string_view s);
bool valid_dns1123_subdomain(std::string_view s);

// Standard base64 (with or without padding, whitespace ignored), as kubeconfig's *-data fields.
bool base64_decode(std::string_view text, std::string* out);

}  // namespace tripline::scale_service
