// scale-service's kubernetes backend through a real tripline server. These are contract tests
// against a fake: no Kubernetes API server can run here, so tests/support/kube_apiserver_fake.h
// plays one on loopback, over TLS with a CA the test generates, following upstream's behaviour
// as docs/kubernetes.md writes it down.
#include <openssl/evp.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "../../tests/integration/harness.h"
#include "../../tests/support/kube_apiserver_fake.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

// A kubeconfig for the fake: the CA as a file next to it, and `user` as the user entry.
std::string kubeconfig(const std::string& dir, const FakeKubeApiServer& api,
                       const std::string& ca_pem, const std::string& user) {
  write(dir + "/ca.crt", ca_pem);
  std::string path = dir + "/kubeconfig";
  write(path,
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        "clusters:\n- name: fake\n  cluster:\n    server: " +
            api.url() +
            "\n    certificate-authority: ca.crt\n"
            "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: tripline\n"
            "users:\n- name: tripline\n  user:\n" +
            user);
  return path;
}

ServiceOptions options(const std::string& kubeconfig_path) {
  ServiceOptions o;
  o.drivers.set("kubeconfig", kubeconfig_path);
  o.drivers.set("docker-host", "unix:///nonexistent/docker.sock");  // no swarm needed here
  o.retry.base = std::chrono::milliseconds(50);
  o.retry.max = std::chrono::milliseconds(100);
  return o;
}

json receiver(const std::string& name, json config) {
  config["backend"] = "kubernetes";
  return {{"name", name}, {"driver", "scale-service"}, {"config", config}};
}

int64_t accepted_id(const OutboundResponse& r) {
  INFO(r.body);
  REQUIRE(r.status == 202);
  return json::parse(r.body)["execution_id"].get<int64_t>();
}

std::vector<FakeKubeApiServer::Request> scale_requests(const FakeKubeApiServer& api) {
  std::vector<FakeKubeApiServer::Request> out;
  for (auto& r : api.requests())
    if (r.path.find("/scale") != std::string::npos) out.push_back(r);
  return out;
}

}  // namespace

TEST_CASE("contract: kubernetes scale up and down within bounds through a tripline server") {
  FakeKubeApiServer api("sa-token-1");
  api.add("deployment", "prod", "web", 1);
  api.add("statefulset", "prod", "db", 2);
  std::string dir = make_temp_dir("tl-k8s");
  TestServer s("", options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: sa-token-1\n")));

  auto up = s.create_receiver(receiver("web-up", {{"kind", "deployment"},
                                                  {"namespace", "prod"},
                                                  {"name", "web"},
                                                  {"action", "up"},
                                                  {"by", 2},
                                                  {"min", 1},
                                                  {"max", 5}}));
  CHECK(up["description"] == "Scale up deployment prod/web by 2, between 1 and 5");
  CHECK(up["target"] == "k8s:prod/deployment/web");
  api.clear_requests();

  auto e = s.wait_finished(accepted_id(s.trigger(up["trigger_url"])));
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["plan"]["replicas_before"] == 1);
  CHECK(e["plan"]["replicas"] == 3);
  CHECK(e["result"]["replicas_after"] == 3);
  CHECK(e["result"]["changed"] == true);
  CHECK(e["result"]["namespace"] == "prod");
  CHECK(api.replicas("deployment", "prod", "web") == 3);
  // What went over the wire: GET (plan), GET (apply), PATCH as kubectl sends it.
  auto sent = scale_requests(api);
  REQUIRE(sent.size() == 3);
  CHECK(sent[0].method == "GET");
  CHECK(sent[0].path == "/apis/apps/v1/namespaces/prod/deployments/web/scale");
  CHECK(sent[0].headers["authorization"] == "Bearer sa-token-1");
  CHECK(sent[2].method == "PATCH");
  CHECK(sent[2].path == sent[0].path);
  CHECK(sent[2].headers["content-type"] == "application/merge-patch+json");
  json body = json::parse(sent[2].body);
  CHECK(body["spec"] == json{{"replicas", 3}});
  CHECK(body["metadata"]["resourceVersion"].is_string());  // the precondition
  CHECK(sent[2].status == 200);

  // At max: clamped, and nothing is patched.
  s.wait_finished(accepted_id(s.trigger(up["trigger_url"])));
  api.clear_requests();
  auto at_max = s.wait_finished(accepted_id(s.trigger(up["trigger_url"])));
  CHECK(at_max["result"]["clamped"] == true);
  CHECK(at_max["result"]["changed"] == false);
  CHECK(api.replicas("deployment", "prod", "web") == 5);
  for (auto& r : scale_requests(api)) CHECK(r.method == "GET");

  auto down = s.create_receiver(receiver("web-down", {{"namespace", "prod"},
                                                      {"name", "web"},
                                                      {"action", "down"},
                                                      {"by", 10},
                                                      {"min", 1},
                                                      {"max", 5}}));
  auto d = s.wait_finished(accepted_id(s.trigger(down["trigger_url"])));
  CHECK(d["result"]["replicas_after"] == 1);
  CHECK(d["result"]["clamped"] == true);
  CHECK(api.replicas("deployment", "prod", "web") == 1);

  // A StatefulSet to 0 (the API then omits spec.replicas), and up again from there.
  auto zero = s.create_receiver(receiver("db-zero", {{"kind", "statefulset"},
                                                     {"namespace", "prod"},
                                                     {"name", "db"},
                                                     {"action", "set"},
                                                     {"replicas", 0},
                                                     {"max", 3}}));
  CHECK(zero["target"] == "k8s:prod/statefulset/db");
  CHECK(s.wait_finished(accepted_id(s.trigger(zero["trigger_url"])))["status"] == "succeeded");
  CHECK(api.replicas("statefulset", "prod", "db") == 0);
  auto db_up = s.create_receiver(receiver("db-up", {{"kind", "statefulset"},
                                                    {"namespace", "prod"},
                                                    {"name", "db"},
                                                    {"action", "up"},
                                                    {"max", 3}}));
  auto e2 = s.wait_finished(accepted_id(s.trigger(db_up["trigger_url"])));
  CHECK(e2["result"]["replicas_before"] == 0);
  CHECK(e2["result"]["replicas_after"] == 1);
  CHECK(api.replicas("statefulset", "prod", "db") == 1);

  // Saving a receiver checks the object exists.
  auto ghost = s.request(
      "POST", "/api/v1/receivers",
      receiver("ghost", {{"namespace", "prod"}, {"name", "ghost"}, {"action", "up"}, {"max", 3}}));
  INFO(ghost.body);
  CHECK(ghost.status == 422);
  CHECK(json::parse(ghost.body)["fields"][0]["field"] == "config.name");
  CHECK(ghost.body.find("no deployment named") != std::string::npos);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes 409 on a stale resourceVersion is retried after a re-read") {
  FakeKubeApiServer api("t");
  api.add("deployment", "prod", "web", 2);
  std::string dir = make_temp_dir("tl-k8s");
  auto o = options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: t\n"));
  o.retry.max_attempts = 2;
  TestServer s("", o);
  auto r = s.create_receiver(receiver(
      "race", {{"namespace", "prod"}, {"name", "web"}, {"action", "up"}, {"by", 2}, {"max", 10}}));
  api.clear_requests();
  // Another writer changes the object right after the plan's read and after apply's read.
  api.interfere_after_get(2);
  auto e = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["attempts"] == 1);
  CHECK(e["result"]["replicas_after"] == 4);
  CHECK(e["result"]["conflicts"] == 1);
  CHECK(api.replicas("deployment", "prod", "web") == 4);
  auto sent = scale_requests(api);
  REQUIRE(sent.size() == 5);
  CHECK(sent[2].method == "PATCH");
  CHECK(sent[2].status == 409);
  CHECK(sent[3].method == "GET");  // re-read
  CHECK(sent[4].method == "PATCH");
  CHECK(sent[4].status == 200);
  CHECK(json::parse(sent[4].body)["metadata"]["resourceVersion"] !=
        json::parse(sent[2].body)["metadata"]["resourceVersion"]);

  // A writer that never stops: bounded, then retryable, then failed after --max-attempts.
  api.interfere_after_get(1000);
  auto busy = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  INFO(busy.dump());
  CHECK(busy["status"] == "failed");
  CHECK(busy["attempts"] == 2);
  CHECK(busy["error"].get<std::string>().find("409 Conflict") != std::string::npos);
  api.interfere_after_get(0);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes 403 fails at once with a clear message and no retry") {
  FakeKubeApiServer api("t");
  api.add("deployment", "locked", "web", 1);
  std::string dir = make_temp_dir("tl-k8s");
  TestServer s("", options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: t\n")));
  auto r = s.create_receiver(
      receiver("locked", {{"namespace", "locked"}, {"name", "web"}, {"action", "up"}, {"max", 3}}));
  api.forbid_namespace("locked");  // RBAC taken away after the receiver was saved
  api.clear_requests();
  auto e = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);
  std::string error = e["error"];
  CHECK(error.find("forbids tripline to scale deployment locked/web") != std::string::npos);
  CHECK(error.find("get and patch on deployments/scale") != std::string::npos);
  CHECK(error.find("cannot get resource \"deployments/scale\"") !=
        std::string::npos);  // the API's words
  CHECK(scale_requests(api).size() == 1);
  CHECK(api.replicas("deployment", "locked", "web") == 1);

  // The same when the receiver is saved: refused, with the reason.
  auto again =
      s.request("POST", "/api/v1/receivers",
                receiver("locked2",
                         {{"namespace", "locked"}, {"name", "web"}, {"action", "up"}, {"max", 3}}));
  CHECK(again.status == 422);
  CHECK(again.body.find("403 Forbidden") != std::string::npos);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes 401, 404 and 5xx: which are retried") {
  FakeKubeApiServer api("right");
  api.add("deployment", "default", "web", 1);
  std::string dir = make_temp_dir("tl-k8s");
  TestServer s("", options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: right\n")));
  auto r = s.create_receiver(receiver("web", {{"name", "web"}, {"action", "up"}, {"max", 9}}));
  CHECK(r["target"] == "k8s:default/deployment/web");  // the context names no namespace

  api.fail_next(503, 1);
  auto e = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  CHECK(e["status"] == "succeeded");
  CHECK(e["attempts"] == 2);
  CHECK(api.replicas("deployment", "default", "web") == 2);

  api.set_token("rotated-away");
  auto unauthorized = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  CHECK(unauthorized["status"] == "failed");
  CHECK(unauthorized["attempts"] == 1);
  CHECK(unauthorized["error"].get<std::string>().find("401 Unauthorized") != std::string::npos);
  api.set_token("right");

  api.fail_next(404, 1);
  auto gone = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  CHECK(gone["status"] == "failed");
  CHECK(gone["attempts"] == 1);
  CHECK(gone["error"].get<std::string>().find("deployment default/web does not exist") !=
        std::string::npos);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes TLS with a wrong CA fails, never silently insecure") {
  FakeKubeApiServer api("t");
  api.add("deployment", "prod", "web", 1);
  TestCa other("some-other-ca");
  std::string dir = make_temp_dir("tl-k8s");
  TestServer s("", options(kubeconfig(dir, api, other.cert_pem(), "    token: t\n")));
  auto r = s.request(
      "POST", "/api/v1/receivers",
      receiver("web", {{"namespace", "prod"}, {"name", "web"}, {"action", "up"}, {"max", 3}}));
  INFO(r.body);
  CHECK(r.status == 422);
  CHECK(r.body.find("TLS certificate") != std::string::npos);
  CHECK(api.requests().empty());  // no request got through the handshake
  s.stop();

  // A kubeconfig that asks to skip verification turns the backend off, and says why.
  write(dir + "/insecure", "current-context: c\nclusters: [{name: k, cluster: {server: \"" +
                               api.url() +
                               "\", insecure-skip-tls-verify: true}}]\n"
                               "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                               "users: [{name: u, user: {token: t}}]\n");
  TestServer insecure("", options(dir + "/insecure"));
  auto refused = insecure.request(
      "POST", "/api/v1/receivers",
      receiver("web", {{"namespace", "prod"}, {"name", "web"}, {"action", "up"}, {"max", 3}}));
  INFO(refused.body);
  CHECK(refused.status == 422);
  CHECK(refused.body.find("insecure-skip-tls-verify") != std::string::npos);
  CHECK(api.requests().empty());
  insecure.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes client certificate from kubeconfig data") {
  FakeKubeApiServer api("not-used");
  api.add("deployment", "prod", "web", 1);
  auto client = api.ca().issue("tripline-client", false);
  std::string dir = make_temp_dir("tl-k8s");
  std::string user = "    client-certificate-data: " + base64(client.cert_pem) +
                     "\n    client-key-data: " + base64(client.key_pem) + "\n";
  TestServer s("", options(kubeconfig(dir, api, api.ca().cert_pem(), user)));
  auto r = s.create_receiver(
      receiver("web", {{"namespace", "prod"}, {"name", "web"}, {"action", "up"}, {"max", 3}}));
  auto e = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  CHECK(e["status"] == "succeeded");
  CHECK(api.replicas("deployment", "prod", "web") == 2);
  auto sent = scale_requests(api);
  REQUIRE_FALSE(sent.empty());
  CHECK(sent.back().client_cn == "tripline-client");
  CHECK(sent.back().headers.count("authorization") == 0);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: kubernetes in-cluster, and the token file is read again for every request") {
  FakeKubeApiServer api("first-token");
  api.add("deployment", "apps", "web", 1);
  std::string account = make_temp_dir("tl-sa");
  write(account + "/token", "first-token\n");
  write(account + "/ca.crt", api.ca().cert_pem());
  write(account + "/namespace", "apps");
  // The variables the kubelet sets in every pod; read when the server starts.
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", std::to_string(api.port()).c_str(), 1);
  ServiceOptions o;
  o.drivers.set("kube-serviceaccount-dir", account);
  o.drivers.set("docker-host", "unix:///nonexistent/docker.sock");
  TestServer s("", o);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");

  auto r = s.create_receiver(receiver("web", {{"name", "web"}, {"action", "up"}, {"max", 9}}));
  CHECK(r["target"] == "k8s:apps/deployment/web");  // the pod's namespace by default
  auto e = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  CHECK(e["status"] == "succeeded");
  CHECK(scale_requests(api).back().headers["authorization"] == "Bearer first-token");

  // The kubelet rotates the token: the next execution sends the new one.
  write(account + "/token", "second-token");
  api.set_token("second-token");
  api.clear_requests();
  auto e2 = s.wait_finished(accepted_id(s.trigger(r["trigger_url"])));
  INFO(e2.dump());
  CHECK(e2["status"] == "succeeded");
  CHECK(api.replicas("deployment", "apps", "web") == 3);
  for (auto& q : scale_requests(api)) CHECK(q.headers["authorization"] == "Bearer second-token");
  s.stop();
  sh("rm -rf " + account);
}

TEST_CASE("contract: kubernetes, the target picker lists the default namespace's Deployments") {
  FakeKubeApiServer api("sa-token-1");
  api.add("deployment", "default", "web", 3);
  api.add("deployment", "default", "api", 0);
  api.add_deployment("default", "worker", {{"worker", "registry.example/worker:1"}});
  api.add("deployment", "prod", "elsewhere", 2);  // another namespace: not listed
  api.add("statefulset", "default", "db", 2);     // not a Deployment: typed by hand
  std::string dir = make_temp_dir("tl-k8s");
  TestServer s("", options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: sa-token-1\n")));
  const std::string path = "/api/v1/drivers/scale-service/targets?backend=kubernetes";

  auto r = s.request("GET", path);
  INFO(r.body);
  REQUIRE(r.status == 200);
  json list = json::parse(r.body);
  CHECK(list["truncated"] == false);
  CHECK(list["items"] == json::parse(R"([
    {"name":"api","config":{"backend":"kubernetes","kind":"deployment","namespace":"default","name":"api"},"replicas":0},
    {"name":"web","config":{"backend":"kubernetes","kind":"deployment","namespace":"default","name":"web"},"replicas":3},
    {"name":"worker","config":{"backend":"kubernetes","kind":"deployment","namespace":"default","name":"worker"},"replicas":1}])"));

  auto two = json::parse(s.request("GET", path + "&limit=2").body);
  CHECK(two["items"].size() == 2);
  CHECK(two["truncated"] == true);

  // RBAC without list: the one error shape, saying what is missing (another limit: a listing's
  // answer is shared for a few seconds).
  api.forbid_namespace("default", "list");
  auto denied = s.request("GET", path + "&limit=3");
  INFO(denied.body);
  CHECK(denied.status == 502);
  json err = json::parse(denied.body);
  CHECK(err["error"] == "peer_unavailable");
  CHECK(err.size() == 2);
  CHECK(err["message"].get<std::string>().find("list on deployments") != std::string::npos);
}

TEST_CASE("contract: kubernetes, a picker listing of many pages ends within its deadline") {
  FakeKubeApiServer api("sa-token-1");
  for (int i = 0; i < 45; ++i)
    api.add("deployment", "default", "app-" + std::to_string(100 + i), 1);
  api.slow_lists(std::chrono::milliseconds(300));  // pages of 10: five pages, 1.5 s
  std::string dir = make_temp_dir("tl-k8s");
  ServiceOptions o = options(kubeconfig(dir, api, api.ca().cert_pem(), "    token: sa-token-1\n"));
  o.targets_deadline = std::chrono::milliseconds(800);
  TestServer s("", o);
  const std::string path = "/api/v1/drivers/scale-service/targets?backend=kubernetes";
  auto start = std::chrono::steady_clock::now();
  auto r = s.request("GET", path);
  auto took = std::chrono::steady_clock::now() - start;
  INFO(r.body);
  CHECK(r.status == 502);
  json err = json::parse(r.body);
  CHECK(err["error"] == "peer_unavailable");
  CHECK(err.size() == 2);
  CHECK(took < std::chrono::milliseconds(1300));  // not the 1.5 s the five pages take
  CHECK(api.list_pages() < 5);
  // Given the time, the same listing succeeds.
  api.slow_lists(std::chrono::milliseconds(0));
  auto all = json::parse(s.request("GET", path + "&limit=100").body);
  CHECK(all["items"].size() == 45);
  CHECK(all["truncated"] == false);
}
