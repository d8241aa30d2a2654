// redeploy's kubernetes backend. Contract tests: no Kubernetes API server can run here, so
// tests/support/kube_apiserver_fake.h plays one over TLS (Deployments, label selectors, strategic
// merge patches, 409 on a stale resourceVersion, Status objects), and a registry on loopback
// keeps the distribution spec's manifest contract (HEAD answers Docker-Content-Digest, a missing
// tag 404 MANIFEST_UNKNOWN), as registry_auth_contract_test.cpp's does. The real registry and
// swarm are exercised by redeploy_integration_test.cpp.
#include <catch2/catch.hpp>
#include <fstream>

#include "../../tests/integration/harness.h"
#include "../../tests/support/kube_apiserver_fake.h"
#include "../../tests/support/loopback_http.h"
#include "drivers/scale_service/kubeconfig.h"
#include "drivers/scale_service/kubernetes.h"
#include "redeploy.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const std::string kV2 = "sha256:" + std::string(64, 'b');

// A registry holding team/web:v1.0.0 and v2.0.0; every other tag is MANIFEST_UNKNOWN.
struct FakeRegistry {
  LoopbackHttpServer server{
      "fake registry", [](const test::HttpRequest& r) {
        test::HttpResponse out;
        const std::string prefix = "/v2/team/web/manifests/";
        std::string tag =
            r.path.rfind(prefix, 0) == 0 ? r.path.substr(prefix.size()) : std::string();
        if (tag == "v2.0.0" || tag == "v1.0.0") {
          out.content_type = "application/vnd.docker.distribution.manifest.v2+json";
          out.headers = {
              {"Docker-Content-Digest", tag == "v2.0.0" ? kV2 : "sha256:" + std::string(64, 'a')}};
          return out;
        }
        out.status = 404;
        out.content_type = "application/json";
        if (r.method == "GET")
          out.body = R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})";
        return out;
      }};
  std::string addr() const { return "127.0.0.1:" + std::to_string(server.port()); }
  std::string url() const { return "http://" + addr(); }
  std::string image() const { return addr() + "/team/web"; }
};

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

std::string kubeconfig(const std::string& dir, const FakeKubeApiServer& api) {
  write(dir + "/ca.crt", api.ca().cert_pem());
  std::string path = dir + "/kubeconfig";
  write(path,
        "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        "clusters:\n- name: fake\n  cluster:\n    server: " +
            api.url() +
            "\n    certificate-authority: ca.crt\n"
            "contexts:\n- name: test\n  context:\n    cluster: fake\n    user: tripline\n"
            "    namespace: prod\n"
            "users:\n- name: tripline\n  user:\n    token: t\n");
  return path;
}

ServiceOptions options(const std::string& kubeconfig_path) {
  ServiceOptions o;
  o.drivers.set("kubeconfig", kubeconfig_path);
  o.drivers.set("docker-host", "unix:///nonexistent/docker.sock");  // no swarm here
  o.retry.base = std::chrono::milliseconds(50);
  o.retry.max = std::chrono::milliseconds(100);
  o.retry.max_attempts = 2;
  return o;
}

json receiver(const std::string& name, const FakeRegistry& registry, json config) {
  config["backend"] = "kubernetes";
  config["image"] = registry.image();
  config["registry_url"] = registry.url();
  config["tag_pattern"] = "v[0-9]+\\.[0-9]+\\.[0-9]+";
  return {{"name", name}, {"driver", "redeploy"}, {"config", config}};
}

// What CI sends: {"tag": "..."}.
OutboundResponse trigger_tag(const std::string& url, const std::string& tag) {
  OutboundRequest req;
  req.method = "POST";
  req.url = url;
  req.body = json{{"tag", tag}}.dump();
  req.headers = {{"Content-Type", "application/json"}};
  return http_request(req);
}

json run(const TestServer& s, const json& r, const std::string& tag) {
  auto accepted = trigger_tag(r["trigger_url"], tag);
  INFO(accepted.body);
  REQUIRE(accepted.status == 202);
  return s.wait_finished(json::parse(accepted.body)["execution_id"].get<int64_t>());
}

std::vector<FakeKubeApiServer::Request> sent(const FakeKubeApiServer& api,
                                             const std::string& method = "") {
  std::vector<FakeKubeApiServer::Request> out;
  for (auto& r : api.requests())
    if (r.path.find("/deployments") != std::string::npos && (method.empty() || r.method == method))
      out.push_back(r);
  return out;
}

using Containers = FakeKubeApiServer::Containers;

}  // namespace

TEST_CASE("contract: redeploy kubernetes patches only the right container with the pinned digest") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  const std::string v1 = registry.image() + ":v1.0.0";
  api.add_deployment("prod", "web", {{"app", v1}, {"proxy", "envoyproxy/envoy:v1.29.0"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));

  // No namespace configured: the kubeconfig context's ("prod").
  auto r = s.create_receiver(receiver("web", registry, {{"deployments", {"web"}}}));
  // Reads as scale-service's target for the same object (their lanes still differ: the
  // executor's lane key is driver and target).
  CHECK(r["target"] == "k8s:prod/deployment/web");
  CHECK_THAT(
      r["description"].get<std::string>(),
      Catch::StartsWith("Redeploy Deployment web in namespace prod onto " + registry.image()));
  api.clear_requests();

  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  REQUIRE(e["status"] == "succeeded");
  const std::string want = registry.image() + ":v2.0.0@" + kV2;
  CHECK(e["plan"]["backend"] == "kubernetes");
  CHECK(e["plan"]["digest"] == kV2);
  CHECK(e["plan"]["image_before"] == v1);
  REQUIRE(e["plan"]["deployments"].size() == 1);
  const json& p = e["plan"]["deployments"][0];
  CHECK(p["namespace"] == "prod");
  CHECK(p["name"] == "web");
  CHECK(p["containers"] == json::array({{{"container", "app"}, {"image_before", v1}}}));
  CHECK(p["image"] == want);
  const json& res = e["result"]["deployments"][0];
  CHECK(res["image_before"] == v1);
  CHECK(res["image_after"] == want);
  CHECK(res["containers"] == json::array({"app"}));
  CHECK(res["changed"] == true);
  CHECK(res["generation"] == 2);  // the rollout the patch started
  CHECK(e["result"]["changed"] == true);
  // The world: app runs the pinned reference, the proxy (another program) is untouched.
  CHECK(api.containers("prod", "web") ==
        Containers{{"app", want}, {"proxy", "envoyproxy/envoy:v1.29.0"}});

  // The wire: GET (plan), GET (apply), one strategic merge patch as `kubectl set image` sends
  // it, naming only the container it changes, with the resourceVersion just read.
  auto calls = sent(api);
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].method == "GET");
  CHECK(calls[0].path == "/apis/apps/v1/namespaces/prod/deployments/web");
  CHECK(calls[0].headers["authorization"] == "Bearer t");
  CHECK(calls[2].method == "PATCH");
  CHECK(calls[2].path == calls[0].path);
  CHECK(calls[2].headers["content-type"] == "application/strategic-merge-patch+json");
  json body = json::parse(calls[2].body);
  CHECK(body["spec"] ==
        json{{"template", {{"spec", {{"containers", {{{"name", "app"}, {"image", want}}}}}}}}});
  CHECK(body["metadata"]["resourceVersion"].is_string());
  CHECK(body.size() == 2);
  CHECK(calls[2].status == 200);

  // The same push again: the read finds every container on the reference; nothing is patched.
  api.clear_requests();
  auto again = run(s, r, "v2.0.0");
  INFO(again.dump());
  CHECK(again["status"] == "succeeded");
  CHECK(again["result"]["changed"] == false);
  CHECK(again["result"]["deployments"][0]["changed"] == false);
  CHECK(sent(api, "PATCH").empty());
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes re-applying a recorded plan changes nothing") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  api.add_deployment("prod", "web", {{"app", registry.image() + ":v1.0.0"}});
  api.add_deployment("prod", "worker", {{"worker", registry.image() + ":v1.0.0"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  RedeployDriver driver(
      "unix:///nonexistent",
      scale_service::KubernetesApi(scale_service::load_kubeconfig(kubeconfig(dir, api), "")));
  auto config = driver.validate(
      receiver(
          "x", registry,
          {{"deployments", {"web", "worker"}}, {"namespace", "prod"}, {"tag", "v2.0.0"}})["config"],
      true);
  INFO(config.status().message());
  REQUIRE(config.ok());
  CHECK(driver.target(**config) == "k8s:prod/deployment/web,worker");
  Plan plan = driver.plan(**config);
  INFO(plan.failure.reason);
  REQUIRE(plan.ok());
  REQUIRE(plan.desired["deployments"].size() == 2);
  Outcome first = driver.apply(**config, plan.desired);
  REQUIRE(first.ok());
  CHECK(first.result["changed"] == true);
  const auto rv_web = api.resource_version("deployment", "prod", "web");

  // After a crash the executor applies the recorded plan again: both already run it.
  api.clear_requests();
  Outcome second = driver.apply(**config, plan.desired);
  INFO(second.reason);
  REQUIRE(second.ok());
  CHECK(second.result["changed"] == false);
  CHECK(second.result["deployments"][0]["changed"] == false);
  CHECK(second.result["deployments"][1]["changed"] == false);
  CHECK(sent(api, "PATCH").empty());
  CHECK(sent(api, "GET").size() == 2);
  CHECK(api.resource_version("deployment", "prod", "web") == rv_web);

  // settled(): a fresh read of the same state is the recorded plan's state.
  Plan read = driver.plan(**config);
  REQUIRE(read.ok());
  auto settled = driver.settled(**config, read.desired, plan.desired);
  REQUIRE(settled.has_value());
  CHECK(settled->result["applied"] == false);
  CHECK(settled->result["deployments"].size() == 2);
  sh("rm -rf " + dir);
}

TEST_CASE(
    "contract: redeploy kubernetes 409 on a stale resourceVersion is retried after a re-read") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  api.add_deployment("prod", "web", {{"app", registry.image() + ":v1.0.0"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  auto r = s.create_receiver(receiver("race", registry, {{"deployments", {"web"}}}));
  api.clear_requests();
  // Another writer (a scale, say) changes the Deployment right after the plan's read and after
  // apply's first read: the first patch is 409, the re-read's patch goes through.
  api.interfere_after_get(2, 3);
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["attempts"] == 1);
  CHECK(e["result"]["deployments"][0]["conflicts"] == 1);
  auto calls = sent(api);
  REQUIRE(calls.size() == 5);
  CHECK(calls[2].method == "PATCH");
  CHECK(calls[2].status == 409);
  CHECK(calls[3].method == "GET");
  CHECK(calls[4].method == "PATCH");
  CHECK(calls[4].status == 200);
  CHECK(json::parse(calls[4].body)["metadata"]["resourceVersion"] !=
        json::parse(calls[2].body)["metadata"]["resourceVersion"]);
  CHECK(api.containers("prod", "web")[0].second == registry.image() + ":v2.0.0@" + kV2);
  CHECK(api.replicas("deployment", "prod", "web") == 3);  // the other writer's change stays

  // A writer that never stops: bounded re-reads, retryable, failed after --max-attempts.
  api.add_deployment("prod", "web", {{"app", registry.image() + ":v1.0.0"}});
  api.interfere_after_get(1000);
  auto busy = run(s, r, "v2.0.0");
  INFO(busy.dump());
  CHECK(busy["status"] == "failed");
  CHECK(busy["attempts"] == 2);
  CHECK_THAT(busy["error"].get<std::string>(), Catch::Contains("409 Conflict"));
  api.interfere_after_get(0);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes 403 is final and names the Role it needs") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  api.add_deployment("locked", "web", {{"app", registry.image() + ":v1.0.0"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  json config = {{"deployments", {"web"}}, {"namespace", "locked"}};
  auto r = s.create_receiver(receiver("locked", registry, config));
  api.forbid_namespace("locked");
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);  // final: RBAC is not fixed by waiting
  const std::string error = e["error"];
  CHECK_THAT(error, Catch::Contains("403 Forbidden"));
  CHECK_THAT(error, Catch::Contains("get, list and patch on deployments"));
  CHECK_THAT(error, Catch::Contains("tripline-redeploy"));
  CHECK_THAT(error, Catch::Contains("cannot get resource \"deployments\""));
  CHECK(sent(api, "PATCH").empty());

  // Saving such a receiver is refused with the same sentence, on the field that names them.
  auto refused = s.request("POST", "/api/v1/receivers", receiver("locked-2", registry, config));
  INFO(refused.body);
  CHECK(refused.status == 422);
  CHECK_THAT(refused.body, Catch::Contains("config.deployments"));
  CHECK_THAT(refused.body, Catch::Contains("tripline-redeploy"));
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE(
    "contract: redeploy kubernetes every container on the repository is patched, init containers "
    "are left and said, a paused Deployment is warned of") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  const std::string v1 = registry.image() + ":v1.0.0";
  const std::string by_digest = registry.image() + "@sha256:" + std::string(64, 'c');
  api.add_deployment("prod", "web",
                     {{"app", v1}, {"worker", by_digest}, {"proxy", "envoyproxy/envoy:v1.29.0"}});
  api.set_init_containers("prod", "web", {{"migrate", v1}, {"wait", "busybox:1.36"}});
  api.set_paused("prod", "web", true);
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  auto r = s.create_receiver(receiver("web", registry, {{"deployments", {"web"}}}));
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  REQUIRE(e["status"] == "succeeded");
  const std::string want = registry.image() + ":v2.0.0@" + kV2;
  // Both containers of the repository, the one by tag and the one by digest only.
  CHECK(api.containers("prod", "web") ==
        Containers{{"app", want}, {"worker", want}, {"proxy", "envoyproxy/envoy:v1.29.0"}});
  const json& p = e["plan"]["deployments"][0];
  CHECK(p["containers"] == json::array({{{"container", "app"}, {"image_before", v1}},
                                        {{"container", "worker"}, {"image_before", by_digest}}}));
  CHECK_FALSE(p.contains("image_before"));  // two images before
  CHECK_FALSE(e["plan"].contains("image_before"));
  // The init container on the repository keeps its image, and the plan and result say so.
  CHECK(p["init_containers_left"] == json::array({{{"container", "migrate"}, {"image", v1}}}));
  auto patches = sent(api, "PATCH");
  REQUIRE(patches.size() == 1);
  json body = json::parse(patches[0].body);
  CHECK(body["spec"]["template"]["spec"]["containers"] ==
        json::array({{{"name", "app"}, {"image", want}}, {{"name", "worker"}, {"image", want}}}));
  CHECK_FALSE(body["spec"]["template"]["spec"].contains("initContainers"));
  const json& res = e["result"]["deployments"][0];
  CHECK(res["init_containers_left"] == p["init_containers_left"]);
  CHECK(res["paused"] == true);
  REQUIRE(e["plan"]["warnings"].size() == 2);
  CHECK_THAT(e["plan"]["warnings"][0].get<std::string>(),
             Catch::Contains("init container \"migrate\" of deployment prod/web runs " + v1 +
                             " and is left as it was"));
  CHECK_THAT(e["plan"]["warnings"][1].get<std::string>(),
             Catch::Contains("deployment prod/web is paused (spec.paused)"));
  CHECK(e["result"]["warnings"] == e["plan"]["warnings"]);
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes 403 on the patch only is final and names the verb") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  const std::string v1 = registry.image() + ":v1.0.0";
  api.add_deployment("prod", "web", {{"app", v1}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  auto r = s.create_receiver(receiver("web", registry, {{"deployments", {"web"}}}));
  api.forbid_namespace("prod", "patch");  // get and list still allowed: a Role missing "patch"
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);
  const std::string error = e["error"];
  CHECK_THAT(error, Catch::Contains("403 Forbidden"));
  CHECK_THAT(error, Catch::Contains("cannot patch resource \"deployments\""));
  CHECK_THAT(error, Catch::Contains("tripline-redeploy"));
  auto patches = sent(api, "PATCH");
  REQUIRE(patches.size() == 1);
  CHECK(patches[0].status == 403);
  CHECK(api.containers("prod", "web") == Containers{{"app", v1}});
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes never replaces another repository's image") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  api.add_deployment("prod", "web", {{"app", registry.image() + ":v1.0.0"}});
  api.add_deployment("prod", "db", {{"postgres", "postgres:16"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));

  // Refused when saved: no container of db runs the image, and a named container must run it.
  auto none =
      s.request("POST", "/api/v1/receivers", receiver("db", registry, {{"deployments", {"db"}}}));
  INFO(none.body);
  CHECK(none.status == 422);
  CHECK_THAT(none.body, Catch::Contains("config.image"));
  CHECK_THAT(none.body, Catch::Contains("postgres runs postgres:16"));
  auto named =
      s.request("POST", "/api/v1/receivers",
                receiver("db2", registry, {{"deployments", {"db"}}, {"container", "postgres"}}));
  CHECK(named.status == 422);
  CHECK_THAT(named.body, Catch::Contains("config.container"));
  CHECK_THAT(named.body, Catch::Contains("refusing to replace it"));
  auto missing =
      s.request("POST", "/api/v1/receivers",
                receiver("web2", registry, {{"deployments", {"web"}}, {"container", "sidecar"}}));
  CHECK(missing.status == 422);
  CHECK_THAT(missing.body, Catch::Contains("has no container named \\\"sidecar\\\""));

  // Saved while web ran the image; by the push someone has put another program there.
  auto r = s.create_receiver(receiver("web", registry, {{"deployments", {"web"}}}));
  api.add_deployment("prod", "web", {{"app", "ghcr.io/other/app:1"}});
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);
  CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("refusing to replace"));
  CHECK(sent(api, "PATCH").empty());
  CHECK(api.containers("prod", "web") == Containers{{"app", "ghcr.io/other/app:1"}});
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes label selector: encoded, bounded, and nothing selected") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  const std::string v1 = registry.image() + ":v1.0.0";
  api.add_deployment("prod", "web", {{"app", v1}}, {{"app", "web"}, {"tier", "front"}});
  api.add_deployment("prod", "web-canary", {{"app", v1}}, {{"app", "web"}, {"canary", "yes"}});
  api.add_deployment("prod", "db", {{"postgres", "postgres:16"}}, {{"app", "web"}, {"tier", "db"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));

  auto r = s.create_receiver(receiver(
      "web", registry, {{"label_selector", "app = web, tier!=db"}, {"namespace", "prod"}}));
  CHECK(r["target"] == "k8s:prod/label:app=web,tier!=db");  // canonical
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  REQUIRE(e["status"] == "succeeded");
  CHECK(e["result"]["deployments"].size() == 2);
  const std::string want = registry.image() + ":v2.0.0@" + kV2;
  CHECK(api.containers("prod", "web")[0].second == want);
  CHECK(api.containers("prod", "web-canary")[0].second == want);
  CHECK(api.containers("prod", "db")[0].second == "postgres:16");
  auto lists = sent(api, "GET");
  REQUIRE(!lists.empty());
  CHECK(
      lists[0].path ==
      "/apis/apps/v1/namespaces/prod/deployments?labelSelector=app%3Dweb%2Ctier%21%3Ddb&limit=10");

  // Selecting nothing: final, nothing patched.
  auto lone = s.create_receiver(
      receiver("canary", registry, {{"label_selector", "canary"}, {"namespace", "prod"}}));
  api.add_deployment("prod", "web-canary", {{"app", v1}}, {{"app", "web"}});  // label removed
  api.clear_requests();
  auto nothing = run(s, lone, "v2.0.0");
  INFO(nothing.dump());
  CHECK(nothing["status"] == "failed");
  CHECK(nothing["attempts"] == 1);
  CHECK_THAT(
      nothing["error"].get<std::string>(),
      Catch::Contains("no Deployment in namespace \"prod\" matches the label selector canary"));
  CHECK(sent(api, "PATCH").empty());
  auto refused = s.request("POST", "/api/v1/receivers",
                           receiver("none", registry, {{"label_selector", "app=nothing"}}));
  CHECK(refused.status == 422);
  CHECK_THAT(refused.body, Catch::Contains("config.label_selector"));

  // More Deployments than one execution redeploys: refused, never cut to the first 50.
  for (int i = 0; i < 51; ++i)
    api.add_deployment("prod", "many-" + std::to_string(i), {{"app", v1}}, {{"fleet", "big"}});
  auto many = s.request("POST", "/api/v1/receivers",
                        receiver("many", registry, {{"label_selector", "fleet=big"}}));
  INFO(many.body);
  CHECK(many.status == 422);
  CHECK_THAT(many.body, Catch::Contains("more than 50"));
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE(
    "contract: redeploy kubernetes follows continue tokens: exactly 50 selected is redeployed, 51 "
    "refused") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  const std::string v1 = registry.image() + ":v1.0.0";
  auto name = [](int i) { return "m-" + std::string(i < 10 ? "0" : "") + std::to_string(i); };
  for (int i = 0; i < 50; ++i) api.add_deployment("prod", name(i), {{"app", v1}}, {{"fleet", "m"}});
  // After the 50 in key order, selected by nothing: the etcd3 storage still sets a continue
  // token on the page holding the last of the 50, because a further key exists.
  api.add_deployment("prod", "z-other", {{"app", v1}}, {{"fleet", "other"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  auto r = s.create_receiver(receiver("fleet", registry, {{"label_selector", "fleet=m"}}));
  api.clear_requests();
  auto e = run(s, r, "v2.0.0");
  INFO(e.dump());
  REQUIRE(e["status"] == "succeeded");
  CHECK(e["plan"]["deployments"].size() == 50);
  CHECK(e["result"]["deployments"].size() == 50);
  const std::string want = registry.image() + ":v2.0.0@" + kV2;
  for (int i = 0; i < 50; ++i) CHECK(api.containers("prod", name(i))[0].second == want);
  CHECK(api.containers("prod", "z-other")[0].second == v1);
  // The wire: pages of 10, the token sent back escaped, and the last page has no token.
  std::vector<std::string> lists;
  for (const auto& q : sent(api, "GET"))
    if (q.path.find("?labelSelector=") != std::string::npos) lists.push_back(q.path);
  REQUIRE(lists.size() == 6);  // 5 full pages, then the one that finds only z-other
  CHECK(lists[0] == "/apis/apps/v1/namespaces/prod/deployments?labelSelector=fleet%3Dm&limit=10");
  CHECK(lists[1] == lists[0] + "&continue=v1%2Fdeployments%2Fprod%2Fm-09%3D%3D");

  // The real server may answer fewer than limit= items with a token (here: 3 keys per page).
  api.cap_list_scan(3);
  api.clear_requests();
  auto again = run(s, r, "v1.0.0");
  INFO(again.dump());
  REQUIRE(again["status"] == "succeeded");
  CHECK(again["result"]["deployments"].size() == 50);
  CHECK(api.containers("prod", name(49))[0].second ==
        registry.image() + ":v1.0.0@sha256:" + std::string(64, 'a'));
  api.cap_list_scan(0);

  // One more selected: refused when saved, and an execution fails final and patches nothing.
  api.add_deployment("prod", name(50), {{"app", v1}}, {{"fleet", "m"}});
  auto many = s.request("POST", "/api/v1/receivers",
                        receiver("fleet-2", registry, {{"label_selector", "fleet=m"}}));
  INFO(many.body);
  CHECK(many.status == 422);
  CHECK_THAT(many.body, Catch::Contains("more than 50"));
  api.clear_requests();
  auto refused = run(s, r, "v2.0.0");
  INFO(refused.dump());
  CHECK(refused["status"] == "failed");
  CHECK(refused["attempts"] == 1);
  CHECK_THAT(refused["error"].get<std::string>(), Catch::Contains("more than 50"));
  CHECK(sent(api, "PATCH").empty());
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE(
    "contract: redeploy kubernetes a tag the registry lacks fails final and patches nothing") {
  FakeKubeApiServer api("t");
  FakeRegistry registry;
  api.add_deployment("prod", "web", {{"app", registry.image() + ":v1.0.0"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  TestServer s("", options(kubeconfig(dir, api)));
  auto r = s.create_receiver(receiver("web", registry, {{"deployments", {"web"}}}));
  api.clear_requests();
  auto e = run(s, r, "v9.9.9");
  INFO(e.dump());
  CHECK(e["status"] == "failed");
  CHECK(e["attempts"] == 1);
  CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("MANIFEST_UNKNOWN"));
  CHECK_THAT(e["error"].get<std::string>(), Catch::Contains("v9.9.9"));
  CHECK(sent(api).empty());  // the registry said no before any Deployment was read
  CHECK(api.containers("prod", "web")[0].second == registry.image() + ":v1.0.0");
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes fake answers 415 for a patch type it does not take") {
  // The fake's side of the contract tripline relies on: the content type selects the patch
  // semantics, and an unknown one is refused (upstream: 415 UnsupportedMediaType).
  FakeKubeApiServer api("t");
  api.add_deployment("prod", "web", {{"app", "x/web:1"}});
  std::string dir = make_temp_dir("tl-k8s-rd");
  auto creds = scale_service::load_kubeconfig(kubeconfig(dir, api), "");
  REQUIRE(creds.ok());
  OutboundRequest req;
  req.method = "PATCH";
  req.url = api.url() + "/apis/apps/v1/namespaces/prod/deployments/web";
  req.ca_file = creds->ca_file;
  req.ca_pem = creds->ca_pem;
  req.headers = {{"Authorization", "Bearer t"}, {"Content-Type", "application/json"}};
  req.body = R"({"spec":{"template":{"spec":{"containers":[{"name":"app","image":"x/web:2"}]}}}})";
  auto r = http_request(req);
  CHECK(r.status == 415);
  auto status = json::parse(r.body);
  CHECK(status["kind"] == "Status");
  CHECK(status["reason"] == "UnsupportedMediaType");
  CHECK(api.containers("prod", "web")[0].second == "x/web:1");
  // The client's classify(): a 415 is a final rejection.
  auto a = scale_service::KubernetesApi::classify(r);
  CHECK(a.error == scale_service::KubernetesApi::Error::kRejected);
  CHECK(scale_service::to_outcome(a, "deployment prod/web", "fake").kind == Outcome::Kind::kFinal);
  sh("rm -rf " + dir);
}

TEST_CASE("contract: redeploy kubernetes an answer over 1 MiB fails final and says which one") {
  // A Deployment list page past tripline's limit for a peer's answer (1 MiB): the error names
  // the request whose answer it was, so it does not read as a broken API server.
  LoopbackHttpServer big("big list", [](const test::HttpRequest&) {
    test::HttpResponse out;
    out.content_type = "application/json";
    out.body = R"({"kind":"DeploymentList","items":[],"pad":")" +
               std::string(size_t{2} << 20, 'x') + "\"}";
    return out;
  });
  scale_service::KubeCredentials c;
  c.server = "http://127.0.0.1:" + std::to_string(big.port());
  c.ca_pem = "unused over http";
  c.source = "test";
  scale_service::KubernetesApi api(std::move(c));
  std::vector<scale_service::KubernetesApi::Deployment> out;
  bool more = false;
  auto a = api.list_deployments("prod", "app=web", 50, &out, &more);
  CHECK(a.error == scale_service::KubernetesApi::Error::kBadAnswer);
  CHECK_THAT(a.message, Catch::Contains("the answer to GET /apis/apps/v1/namespaces/prod/"
                                        "deployments?labelSelector=app%3Dweb&limit=10"));
  CHECK_THAT(a.message, Catch::Contains("larger than 1048576 bytes"));
  Outcome o = scale_service::to_outcome(a, "the Deployments labelled app=web", api.where());
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK_THAT(o.reason, Catch::Contains("the answer to GET"));
}
