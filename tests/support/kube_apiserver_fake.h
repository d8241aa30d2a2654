// A small Kubernetes API server for contract tests: no real API server can run here. It follows
// the upstream behaviour tripline relies on (written down in docs/kubernetes.md):
//   GET   /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets}/{name}/scale
//   PATCH the same, Content-Type application/merge-patch+json (else 415), body
//         {"spec":{"replicas":N}}, optionally with "metadata":{"resourceVersion":RV} as a
//         precondition: a stale RV is 409 Conflict. Negative replicas are 422 Invalid.
//   GET   /version
//   GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}            an apps/v1 Deployment
//   GET   /apis/apps/v1/namespaces/{ns}/deployments?labelSelector=S&limit=N
//         a DeploymentList (items without kind/apiVersion, as upstream lists them); S is
//         equality-based or existence requirements (else 400). Paged as the etcd3 storage
//         pages: keys in order from where `continue` left off until N items are selected;
//         metadata.continue is set whenever any further key exists in the namespace, selected
//         or not, and remainingItemCount only without a selector
//   PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}, Content-Type
//         application/strategic-merge-patch+json: spec.template.spec.containers merge by name
//         (an unknown name is added), metadata.resourceVersion is a precondition (409), a
//         change of the pod template bumps metadata.generation. Other known patch types answer
//         415 saying the fake does not model them, unknown ones 415 as upstream does.
// Answers are autoscaling/v1 Scale objects whose spec.replicas is omitted when 0 (omitempty), and
// errors are meta/v1 Status objects with upstream's messages, reasons and codes: 401 without the
// bearer token (or a client certificate signed by its CA), 403 in a forbidden namespace, 404 for
// a missing object or path.
// TLS only, with a CA and a server certificate for 127.0.0.1 generated at start (TestCa). It
// records every request (method, path, headers, body) and can be told to fail or to let another
// writer change an object right after a read.
//
// HTTPS on 127.0.0.1:0 (loopback_http.h), one connection at a time, Connection: close.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "loopback_http.h"

namespace tripline::test {

// A throw-away certificate authority (EC P-256) for tests.
class TestCa {
 public:
  explicit TestCa(const std::string& common_name = "tripline-test-ca");
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return cert_pem_; }
  struct Issued {
    std::string cert_pem, key_pem;
  };
  // A leaf certificate: for a server (SAN IP 127.0.0.1 and DNS localhost) or a client (CN = user).
  Issued issue(const std::string& common_name, bool server) const;

 private:
  void* key_ = nullptr;   // EVP_PKEY*
  void* cert_ = nullptr;  // X509*
  std::string cert_pem_;
};

class FakeKubeApiServer {
 public:
  explicit FakeKubeApiServer(std::string token = "test-bearer-token");
  ~FakeKubeApiServer();
  FakeKubeApiServer(const FakeKubeApiServer&) = delete;
  FakeKubeApiServer& operator=(const FakeKubeApiServer&) = delete;

  std::string url() const { return "https://127.0.0.1:" + std::to_string(server_.port()); }
  int port() const { return server_.port(); }
  const TestCa& ca() const { return ca_; }

  // kind: "deployment" or "statefulset".
  void add(const std::string& kind, const std::string& ns, const std::string& name,
           int64_t replicas);
  int64_t replicas(const std::string& kind, const std::string& ns, const std::string& name) const;
  // A Deployment with these containers ({name, image}) and labels, 1 replica.
  using Containers = std::vector<std::pair<std::string, std::string>>;
  void add_deployment(const std::string& ns, const std::string& name, Containers containers,
                      std::map<std::string, std::string> labels = {});
  // Its pod template's initContainers, and spec.paused (an existing Deployment's).
  void set_init_containers(const std::string& ns, const std::string& name, Containers init);
  void set_paused(const std::string& ns, const std::string& name, bool paused);
  // Its containers now (empty when there is no such Deployment), and its resourceVersion.
  Containers containers(const std::string& ns, const std::string& name) const;
  int64_t resource_version(const std::string& kind, const std::string& ns,
                           const std::string& name) const;
  void set_token(std::string token);
  // 403 for every request in `ns`, or only for one verb ("get", "list", "patch").
  void forbid_namespace(const std::string& ns, const std::string& verb = "");
  // Each list page reads at most `keys` keys of the namespace, selected or not (0: until the
  // page holds `limit` items): the real server may answer fewer than `limit` items with a token.
  void cap_list_scan(size_t keys);
  int list_pages() const;  // list pages answered so far
  // Each list page is answered this much later (a slow API server, or a large namespace).
  void slow_lists(std::chrono::milliseconds delay);

  struct Request {
    std::string method, path, body;
    std::map<std::string, std::string> headers;  // names lower-cased
    std::string client_cn;                       // the verified client certificate's CN, if any
    int status = 0;
  };
  std::vector<Request> requests() const;
  void clear_requests();

  // The next `times` requests for a scale answer `status` as a Status object and change nothing.
  void fail_next(int status, int times = 1);
  // After each of the next `times` GETs of a scale or a Deployment, another writer changes that
  // object (bumps its resourceVersion, and sets its replicas to `replicas` when that is >= 0), so a
  // PATCH carrying the resourceVersion just read gets 409.
  void interfere_after_get(int times, int64_t replicas = -1);

 private:
  struct Object {
    int64_t replicas = 0;
    int64_t resource_version = 1;
    int64_t generation = 1;
    Containers containers;  // Deployments added with add_deployment
    Containers init_containers;
    bool paused = false;
    std::map<std::string, std::string> labels;
  };
  struct Response {
    int status = 200;
    std::string body;
  };
  static LoopbackHttpServer::Tls tls_of(const TestCa& ca);
  Response route(const HttpRequest& req);
  Response route_deployments(const HttpRequest& req, const std::vector<std::string>& seg,
                             const std::string& query, const std::string& user);

  TestCa ca_;

  mutable std::mutex mu_;
  std::string token_;
  std::map<std::string, Object> objects_;  // "deployments/ns/name"
  bool forbidden(const std::string& ns, const std::string& verb) const;
  std::vector<std::pair<std::string, std::string>> forbidden_;  // {namespace, verb or ""}
  size_t scan_cap_ = 0;
  int list_pages_ = 0;
  std::chrono::milliseconds list_delay_{0};
  int64_t next_rv_ = 1000;
  int fail_status_ = 0, fail_times_ = 0;
  int interfere_times_ = 0;
  int64_t interfere_replicas_ = -1;
  LoopbackHttpServer server_;  // last: its thread reads the members above, so it stops first
};

}  // namespace tripline::test
