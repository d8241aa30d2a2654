// redeploy's config, bind() over each push source's documented payload, and the push reader
// (server/base/registry_push.h) the rules' preset shares. Payload shapes: docs/redeploy.md.
#include "config.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "drivers/registry.h"
#include "drivers/scale_service/scale_service.h"
#include "redeploy.h"
#include "registry_push.h"

using namespace tripline;
using namespace tripline::redeploy;
using nlohmann::json;

namespace {
json base() {
  return json::parse(R"({"image":"127.0.0.1:5000/team/web","registry_url":"http://127.0.0.1:5000",
    "tag_pattern":"v[0-9]+\\.[0-9]+\\.[0-9]+","services":["web"]})");
}
bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}
Result<json> bind_request(const json& config, const std::string& body) {
  RedeployDriver d("unix:///nonexistent");
  return d.bind(config, TriggerRequest{"127.0.0.1", LazyBody(body)});
}
json distribution(const std::string& repo, const std::string& tag,
                  const std::string& type = "application/vnd.docker.distribution.manifest.v2+json",
                  const std::string& action = "push") {
  return {{"events",
           {{{"id", "e-" + tag},
             {"action", action},
             {"target",
              {{"mediaType", type},
               {"repository", repo},
               {"tag", tag},
               {"digest", "sha256:" + std::string(64, 'a')}}},
             {"request", {{"host", "127.0.0.1:5000"}}}}}}};
}
}  // namespace

TEST_CASE("redeploy config: the documented example parses") {
  auto c = parse_config(base());
  REQUIRE(c.ok());
  CHECK(c->image.registry == "127.0.0.1:5000");
  CHECK(c->image.repository == "team/web");
  CHECK(c->registry_url == "http://127.0.0.1:5000");
  CHECK(c->services == std::vector<std::string>{"web"});
  CHECK(c->order == "stop-first");
  CHECK(c->failure_action == "rollback");
  CHECK(c->parallelism == 1);
  CHECK(pinned(*c, "v1.0.0", "sha256:" + std::string(64, 'b')) ==
        "127.0.0.1:5000/team/web:v1.0.0@sha256:" + std::string(64, 'b'));
}

TEST_CASE("redeploy config: image names normalise as Docker's do") {
  CHECK(parse_image_name("nginx")->repository == "library/nginx");
  CHECK(parse_image_name("nginx")->registry == "docker.io");
  CHECK(parse_image_name("team/app")->registry == "docker.io");
  CHECK(parse_image_name("ghcr.io/org/app")->registry == "ghcr.io");
  CHECK(parse_image_name("localhost/app")->registry == "localhost");
  CHECK_FALSE(parse_image_name("Team/App").has_value());         // upper case is not a repository
  CHECK_FALSE(parse_image_name("host:5000/web:1").has_value());  // a tag is not part of it
  CHECK_FALSE(parse_image_name("host:5000/web@sha256:aa").has_value());
  auto c = base();
  c["image"] = "docker.io/nginx";
  c.erase("registry_url");
  REQUIRE(parse_config(c).ok());
  CHECK(parse_config(c)->registry_url == "https://registry-1.docker.io");
  c["image"] = "ghcr.io/org/app";
  CHECK(parse_config(c)->registry_url == "https://ghcr.io");
  CHECK(image_repository("127.0.0.1:5000/team/web:1.0@sha256:abc") == "127.0.0.1:5000/team/web");
  CHECK(image_repository("127.0.0.1:5000/team/web") == "127.0.0.1:5000/team/web");
}

TEST_CASE("redeploy config: each bad field is named") {
  auto check = [](json j, const std::string& field) {
    auto c = parse_config(j);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK(has_field(c.status(), field));
  };
  auto j = base();
  j["tag_pattern"] = "(";
  check(j, "config.tag_pattern");
  j = base();
  j["label_selector"] = "app=web";
  check(j, "config.label_selector");  // both
  j = base();
  j.erase("services");
  check(j, "config.services");  // neither
  j["label_selector"] = "app=web,,x";
  check(j, "config.label_selector");
  j = base();
  j["services"] = json::array();
  check(j, "config.services");
  j["services"] = {"web", "-bad"};
  check(j, "config.services[1]");
  j = base();
  j["update_order"] = "random";
  check(j, "config.update_order");
  j = base();
  j["failure_action"] = "explode";
  check(j, "config.failure_action");
  j = base();
  j["update_parallelism"] = -1;
  check(j, "config.update_parallelism");
  j = base();
  j["registry_url"] = "ftp://x";
  check(j, "config.registry_url");
  j = base();
  j["tag"] = "latest";  // not allowed by the pattern
  check(j, "config.tag");
  j = base();
  j["backend"] = "nomad";
  check(j, "config.backend");
  j = base();
  j["registry_password"] = "a\nb";
  check(j, "config.registry_password");
  j = base();
  j["replicas"] = 3;
  check(j, "config.replicas");
}

namespace {
json k8s() {
  return json::parse(R"({"backend":"kubernetes","image":"127.0.0.1:5000/team/web",
    "tag_pattern":"v[0-9.]+","deployments":["web","worker"]})");
}
}  // namespace

TEST_CASE("redeploy config: kubernetes takes deployments or a label selector, in a namespace") {
  auto c = parse_config(k8s());
  REQUIRE(c.ok());
  CHECK(c->backend == "kubernetes");
  CHECK(c->deployments == std::vector<std::string>{"web", "worker"});
  CHECK(c->namespace_.empty());  // filled in by validate() with the credentials' default
  CHECK(c->container.empty());
  auto j = k8s();
  j.erase("deployments");
  j["label_selector"] = " app = web, tier!=db ,canary,!legacy,app.kubernetes.io/part-of==shop,e=";
  j["namespace"] = "prod";
  j["container"] = "app";
  c = parse_config(j);
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->labels == std::vector<std::string>{"app=web", "tier!=db", "canary", "!legacy",
                                              "app.kubernetes.io/part-of=shop", "e="});
  CHECK(c->namespace_ == "prod");
  CHECK(c->container == "app");
}

TEST_CASE("redeploy config: kubernetes label selectors are checked strictly") {
  std::vector<std::string> out;
  for (const char* ok :
       {"app=web", "app", "!app", "a!=b", "a==b", "example.com/app=web-1.2_x", "A-1=Z.9"})
    CHECK(parse_kubernetes_selector(ok, &out));
  for (const char* bad : {"", "app=web,", ",app", "app in (web,api)", "app notin (web)", "app=we b",
                          "app=-web", "app=web-", "-app=web", "app===web", "!app=web", "app=(web)",
                          "Example.com/app=x", "a/b/c=x", "app=web;rm", "app=Ã©"})
    CHECK_FALSE(parse_kubernetes_selector(bad, &out));
  CHECK_FALSE(parse_kubernetes_selector(std::string(64, 'a'), &out));  // a name is at most 63
  CHECK(parse_kubernetes_selector(std::string(63, 'a'), &out));
  CHECK_FALSE(parse_kubernetes_selector("app=" + std::string(64, 'v'), &out));
  std::string many = "a";
  for (int i = 0; i < 20; ++i) many += ",a";
  CHECK_FALSE(parse_kubernetes_selector(many, &out));  // at most 20 requirements
}

TEST_CASE("redeploy config: each backend refuses the other's fields") {
  auto check = [](json j, const std::string& field, const std::string& says) {
    auto c = parse_config(j);
    REQUIRE_FALSE(c.ok());
    CHECK(has_field(c.status(), field));
    CHECK_THAT(c.status().message(), Catch::Contains(says));
  };
  // Swarm's rollout settings mean nothing to a Deployment: refused, not ignored.
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, json>>{{"update_parallelism", 2},
                                                 {"update_delay_seconds", 5},
                                                 {"update_monitor_seconds", 5},
                                                 {"update_order", "start-first"},
                                                 {"failure_action", "pause"}}) {
    auto j = k8s();
    j[k] = v;
    check(j, "config." + k, "spec.strategy");
  }
  auto j = k8s();
  j["services"] = {"web"};
  check(j, "config.services", "swarm backend");
  j = k8s();
  j["label_selector"] = "app=web";
  check(j, "config.label_selector", "choose one");
  j = k8s();
  j.erase("deployments");
  check(j, "config.deployments", "is required");
  j = k8s();
  j["deployments"] = {"Web"};
  check(j, "config.deployments[0]", "Kubernetes object name");
  j = k8s();
  j["namespace"] = "Prod";
  check(j, "config.namespace", "namespace");
  j = k8s();
  j["container"] = "app_1";
  check(j, "config.container", "container name");
  j = k8s();
  j.erase("deployments");
  j["label_selector"] = "app in (web)";
  check(j, "config.label_selector", "set-based");
  for (const char* k : {"namespace", "deployments", "container"}) {
    j = base();
    j[k] = k == std::string("deployments") ? json::array({"web"}) : json("x");
    check(j, std::string("config.") + k, "kubernetes backend");
  }
}

TEST_CASE("redeploy schema: the fields of each backend are marked as scale-service marks them") {
  json s = config_schema();
  CHECK(s["properties"]["backend"]["enum"] == json({"swarm", "kubernetes"}));
  // ui/schema-form.js shows "(kubernetes)" titles and "swarm only" descriptions for that backend.
  for (const char* k : {"namespace", "deployments", "container"}) {
    INFO(k);
    CHECK_THAT(s["properties"][k]["title"].get<std::string>(), Catch::EndsWith("(kubernetes)"));
    CHECK(s["else"]["properties"][k] == false);
  }
  for (const char* k : {"services", "update_parallelism", "update_delay_seconds",
                        "update_monitor_seconds", "update_order", "failure_action"}) {
    INFO(k);
    CHECK_THAT(s["properties"][k]["description"].get<std::string>(),
               Catch::StartsWith("swarm only"));
    CHECK(s["then"]["properties"][k] == false);
  }
  CHECK(s["if"]["properties"]["backend"]["const"] == "kubernetes");
  // Every property is placed in the form's order.
  for (const auto& [k, v] : s["properties"].items()) {
    INFO(k);
    CHECK(std::find(s["x-order"].begin(), s["x-order"].end(), k) != s["x-order"].end());
  }
}

TEST_CASE("redeploy options: one --kubeconfig (and --docker-host) for scale-service and redeploy") {
  auto options = RedeployDriver::options();
  auto named = [&](const char* n) {
    return std::count_if(options.begin(), options.end(),
                         [&](const DriverOption& o) { return std::string(o.name) == n; });
  };
  for (const char* n : {"docker-host", "kubeconfig", "kube-context", "kube-serviceaccount-dir"})
    CHECK(named(n) == 1);
  auto all = driver_options();
  for (const char* n : {"docker-host", "kubeconfig", "kube-context", "kube-serviceaccount-dir"}) {
    INFO(n);
    CHECK(std::count_if(all.begin(), all.end(),
                        [&](const DriverOption& o) { return std::string(o.name) == n; }) == 1);
  }
  // The same declaration: one default, one variable, whichever driver is listed first.
  for (const auto& o : ScaleServiceDriver::options())
    for (const auto& p : options)
      if (std::string(o.name) == p.name) {
        CHECK(std::string(o.env) == p.env);
        CHECK(std::string(o.default_value) == p.default_value);
      }
}

TEST_CASE("redeploy schema: the password is a writeOnly secret, nothing is per request") {
  json s = config_schema();
  CHECK(s["properties"]["registry_password"]["writeOnly"] == true);
  for (const auto& [k, v] : s["properties"].items())
    CHECK_FALSE(v.contains("x-tripline-per-request"));
  CHECK(s["required"] == json({"image", "tag_pattern"}));
}

TEST_CASE("redeploy bind: a distribution push of an allowed tag sets the tag") {
  auto out = bind_request(base(), distribution("team/web", "v1.2.3").dump());
  REQUIRE(out.ok());
  CHECK((*out)["tag"] == "v1.2.3");
}

TEST_CASE("redeploy bind: several events, the last allowed push of the repository wins") {
  json body = distribution("team/web", "v1.0.0");
  body["events"].push_back(distribution("team/web", "latest")["events"][0]);
  body["events"].push_back(distribution("team/web", "v1.0.1")["events"][0]);
  body["events"].push_back(distribution("team/other", "v9.9.9")["events"][0]);
  auto out = bind_request(base(), body.dump());
  REQUIRE(out.ok());
  CHECK((*out)["tag"] == "v1.0.1");
}

TEST_CASE("redeploy bind: other repositories and disallowed tags are ignored, not refused") {
  auto other = bind_request(base(), distribution("team/api", "v1.0.0").dump());
  REQUIRE_FALSE(other.ok());
  CHECK(other.status().code() == Status::Code::kNotFound);
  CHECK_THAT(other.status().message(), Catch::Contains("team/api:v1.0.0"));
  auto disallowed = bind_request(base(), distribution("team/web", "latest").dump());
  REQUIRE_FALSE(disallowed.ok());
  CHECK(disallowed.status().code() == Status::Code::kNotFound);
  CHECK_THAT(disallowed.status().message(), Catch::Contains("latest"));
  // A tag that is not a tag at all (an injection attempt) is no push.
  auto hostile = bind_request(base(), distribution("team/web", "v1.0.0@sha256:evil").dump());
  REQUIRE_FALSE(hostile.ok());
  CHECK(hostile.status().code() == Status::Code::kNotFound);
}

TEST_CASE("redeploy bind: a plain {\"tag\"} body is checked and refused (422) when not allowed") {
  auto ok = bind_request(base(), R"({"tag":"v2.0.0"})");
  REQUIRE(ok.ok());
  CHECK((*ok)["tag"] == "v2.0.0");
  auto bad = bind_request(base(), R"({"tag":"latest"})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == Status::Code::kInvalid);
  auto junk = bind_request(base(), R"({"tag":"../../x"})");
  REQUIRE_FALSE(junk.ok());
  CHECK(junk.status().code() == Status::Code::kInvalid);
  // No tag anywhere: refused; a configured tag: used.
  auto none = bind_request(base(), "");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == Status::Code::kInvalid);
  json with_tag = base();
  with_tag["tag"] = "v1.0.0";
  auto fixed = bind_request(with_tag, "");
  REQUIRE(fixed.ok());
  CHECK((*fixed)["tag"] == "v1.0.0");
}

TEST_CASE("push notifications: distribution keeps only tag pushes of manifests") {
  json body = distribution("team/web", "v1.0.0");
  body["events"].push_back(
      distribution("team/web", "", "application/octet-stream")["events"][0]);  // a blob
  body["events"].push_back(distribution("team/web", "v2.0.0",
                                        "application/vnd.docker.distribution.manifest.v2+json",
                                        "pull")["events"][0]);
  body["events"].push_back(
      distribution("team/web", "v3.0.0", "application/vnd.oci.image.index.v1+json")["events"][0]);
  auto n = read_push_notification(body);
  REQUIRE(n);
  CHECK(n->source == "distribution");
  REQUIRE(n->pushes.size() == 2);
  CHECK(n->pushes[0].tag == "v1.0.0");
  CHECK(n->pushes[0].registry == "127.0.0.1:5000");
  CHECK(n->pushes[1].tag == "v3.0.0");
  CHECK(n->key.rfind("push:distribution:", 0) == 0);
  // The same delivery re-sent has the same key; another delivery another.
  CHECK(read_push_notification(body)->key == n->key);
  CHECK(read_push_notification(distribution("team/web", "v1.0.1"))->key != n->key);
  // Only pulls: recognised, no pushes.
  auto pulls = read_push_notification(distribution(
      "team/web", "v1", "application/vnd.docker.distribution.manifest.v2+json", "pull"));
  REQUIRE(pulls);
  CHECK(pulls->pushes.empty());
}

TEST_CASE("push notifications: Docker Hub, GitHub Packages, Harbor and Quay payloads") {
  // Docker Hub (docs.docker.com/docker-hub/webhooks).
  auto hub = read_push_notification(
      json::parse(R"({"callback_url":"https://registry.hub.docker.com/u/a/b/hook/x/",
    "push_data":{"pushed_at":1417566161,"pusher":"trustedbuilder","tag":"latest"},
    "repository":{"repo_name":"svendowideit/testhook","namespace":"svendowideit","name":"testhook"}})"));
  REQUIRE(hub);
  CHECK(hub->source == "dockerhub");
  REQUIRE(hub->pushes.size() == 1);
  CHECK(hub->pushes[0].registry == "docker.io");
  CHECK(hub->pushes[0].repository == "svendowideit/testhook");
  CHECK(hub->pushes[0].tag == "latest");
  CHECK_FALSE(hub->key.empty());

  // GitHub registry_package (published), GHCR names lower-cased.
  auto gh = read_push_notification(json::parse(R"({"action":"published",
    "registry_package":{"id":1,"name":"App","namespace":"Org","ecosystem":"CONTAINER",
      "package_type":"CONTAINER","registry":{"url":"https://ghcr.io/org","type":"docker"},
      "package_version":{"id":77,"container_metadata":{"tag":{"name":"v1.0.0",
        "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}}}},
    "repository":{},"sender":{}})"));
  REQUIRE(gh);
  CHECK(gh->source == "github");
  REQUIRE(gh->pushes.size() == 1);
  CHECK(gh->pushes[0].registry == "ghcr.io");
  CHECK(gh->pushes[0].repository == "org/app");
  CHECK(gh->pushes[0].tag == "v1.0.0");
  // An npm package, or an untagged container version: recognised, no push.
  auto npm = read_push_notification(json::parse(
      R"({"action":"published","registry_package":{"name":"x","namespace":"o","package_type":"npm","package_version":{"id":1}}})"));
  REQUIRE(npm);
  CHECK(npm->pushes.empty());

  // Harbor, default format and CloudEvents.
  auto harbor = read_push_notification(json::parse(R"({"type":"PUSH_ARTIFACT","occur_at":1680000000,
    "operator":"admin","event_data":{"resources":[{"digest":"sha256:1","tag":"v2.0.0",
    "resource_url":"harbor.example.com/library/nginx:v2.0.0"}],"repository":{"date_created":1,
    "name":"nginx","namespace":"library","repo_full_name":"library/nginx","repo_type":"private"}}})"));
  REQUIRE(harbor);
  CHECK(harbor->source == "harbor");
  REQUIRE(harbor->pushes.size() == 1);
  CHECK(harbor->pushes[0].registry == "harbor.example.com");
  CHECK(harbor->pushes[0].repository == "library/nginx");
  CHECK(harbor->pushes[0].tag == "v2.0.0");
  auto pull = read_push_notification(json::parse(R"({"type":"PULL_ARTIFACT","occur_at":1,
    "event_data":{"resources":[{"tag":"v2.0.0"}],"repository":{"repo_full_name":"library/nginx"}}})"));
  REQUIRE(pull);
  CHECK(pull->pushes.empty());
  auto cloud = read_push_notification(json::parse(R"({"specversion":"1.0","id":"abc",
    "type":"harbor.artifact.pushed","data":{"resources":[{"tag":"v3.0.0",
    "resource_url":"h.example/p/app:v3.0.0"}],"repository":{"repo_full_name":"p/app"}}})"));
  REQUIRE(cloud);
  REQUIRE(cloud->pushes.size() == 1);
  CHECK(cloud->pushes[0].tag == "v3.0.0");

  // Quay repo_push: updated_tags as a list (current) or an object (older releases); no key.
  auto quay = read_push_notification(json::parse(R"({"name":"test","repository":"ns/test",
    "namespace":"ns","docker_url":"quay.io/ns/test","homepage":"https://quay.io/repository/ns/test",
    "updated_tags":["latest","v1.0.0"]})"));
  REQUIRE(quay);
  CHECK(quay->source == "quay");
  REQUIRE(quay->pushes.size() == 2);
  CHECK(quay->pushes[1].registry == "quay.io");
  CHECK(quay->key.empty());
  auto old_quay = read_push_notification(json::parse(R"({"repository":"ns/test",
    "docker_url":"quay.io/ns/test","updated_tags":{"latest":"b750fe79"}})"));
  REQUIRE(old_quay);
  REQUIRE(old_quay->pushes.size() == 1);
  CHECK(old_quay->pushes[0].tag == "latest");
}

TEST_CASE("push notifications: other bodies are none, hostile ones are bounded") {
  CHECK_FALSE(read_push_notification(json::parse(R"({"version":"4","status":"firing"})")));
  CHECK_FALSE(read_push_notification(json::parse("[1,2]")));
  CHECK_FALSE(read_push_notification(json("text")));
  // Wrong types everywhere: recognised by its envelope, nothing read, no throw.
  auto odd = read_push_notification(json::parse(
      R"({"events":[1,"x",{"action":["push"],"target":"t"},{"action":"push","target":{"tag":7}}]})"));
  REQUIRE(odd);
  CHECK(odd->pushes.empty());
  // More events than kMaxPushes: at most kMaxPushes kept.
  json many = {{"events", json::array()}};
  for (int i = 0; i < 500; ++i)
    many["events"].push_back(distribution("team/web", "v" + std::to_string(i))["events"][0]);
  CHECK(read_push_notification(many)->pushes.size() == kMaxPushes);
  CHECK(valid_image_tag("v1.2.3-rc_1"));
  CHECK_FALSE(valid_image_tag(".hidden"));
  CHECK_FALSE(valid_image_tag(std::string(129, 'a')));
  CHECK(valid_repository_path("a/b-c/d__e.f"));
  CHECK_FALSE(valid_repository_path("a//b"));
  CHECK_FALSE(valid_repository_path("a/_b"));
  CHECK_FALSE(valid_repository_path("a/b._c"));
}

TEST_CASE("redeploy bind: kubernetes records the resolved default namespace with the execution") {
  // A restart with another --kube-context must not move an accepted execution to another
  // namespace: the recorded config names the one it was accepted for.
  scale_service::KubeCredentials creds;
  creds.server = "https://127.0.0.1:1";
  creds.ca_pem = "unused";
  creds.default_namespace = "prod";
  RedeployDriver d("unix:///nonexistent", scale_service::KubernetesApi(std::move(creds)));
  json stored = k8s();
  auto bound = d.bind(stored, TriggerRequest{"127.0.0.1", LazyBody(R"({"tag":"v1.2.0"})")});
  REQUIRE(bound.ok());
  CHECK((*bound)["namespace"] == "prod");
  CHECK((*bound)["tag"] == "v1.2.0");
  // The bound config validates to the same target as the receiver's.
  auto receiver = d.validate(stored, false);
  auto execution = d.validate(*bound, false);
  REQUIRE(receiver.ok());
  REQUIRE(execution.ok());
  CHECK(d.target(**execution) == d.target(**receiver));
  CHECK(d.target(**execution) == "k8s:prod/deployment/web,worker");
  // A namespace the receiver names is kept; swarm configs get none.
  stored["namespace"] = "staging";
  CHECK(d.bind(stored, TriggerRequest{"127.0.0.1", LazyBody(R"({"tag":"v1.2.0"})")})
            ->at("namespace") == "staging");
  CHECK_FALSE(d.bind(base(), TriggerRequest{"127.0.0.1", LazyBody(R"({"tag":"v1.2.0"})")})
                  ->contains("namespace"));
}
