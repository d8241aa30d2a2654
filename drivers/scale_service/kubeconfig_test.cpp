// The kubernetes backend without a peer: its config, kubeconfig files, the in-cluster service
// account, and reading the API's answers.
#include "kubeconfig.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>

#include "config.h"
#include "kubernetes.h"

using namespace tripline;
using namespace tripline::scale_service;
using nlohmann::json;

namespace {

std::string temp_dir() {
  char tmpl[] = "/tmp/tl-kubeconfig-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}
void write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}
bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}

// base64 of "CA PEM\n", "CERT\n", "KEY\n".
constexpr const char* kTwoContexts = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443/
    certificate-authority-data: Q0EgUEVNCg==
- name: prod-cluster
  cluster:
    server: https://10.0.0.1:443
    certificate-authority: certs/ca.crt
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
    namespace: prod
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
)";

}  // namespace

TEST_CASE("kubeconfig: the current-context with a token and CA data") {
  auto c = parse_kubeconfig(kTwoContexts, "/etc/tripline", "");
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->server == "https://dev.example:6443");
  CHECK(c->ca_pem == "CA PEM\n");
  CHECK(c->ca_file.empty());
  CHECK(c->token == "dev-token");
  CHECK(c->default_namespace == "default");
  CHECK(c->client_cert_pem.empty());
}

TEST_CASE("kubeconfig: a named context, client certificate data and a CA file") {
  auto c = parse_kubeconfig(kTwoContexts, "/etc/tripline", "prod");
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->server == "https://10.0.0.1:443");
  CHECK(c->ca_file == "/etc/tripline/certs/ca.crt");  // relative to the kubeconfig's folder
  CHECK(c->ca_pem.empty());
  CHECK(c->client_cert_pem == "CERT\n");
  CHECK(c->client_key_pem == "KEY\n");
  CHECK(c->token.empty());
  CHECK(c->default_namespace == "prod");
}

TEST_CASE("kubeconfig: client certificate files and a tokenFile") {
  auto c = parse_kubeconfig(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority: /abs/ca.pem}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate: u.crt, client-key: /abs/u.key, tokenFile: tok}}]
)",
                            "/home/ops/.kube", "");
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->ca_file == "/abs/ca.pem");
  CHECK(c->client_cert_file == "/home/ops/.kube/u.crt");
  CHECK(c->client_key_file == "/abs/u.key");
  CHECK(c->token_file == "/home/ops/.kube/tok");
}

TEST_CASE("kubeconfig: insecure-skip-tls-verify is refused, never honoured") {
  auto c = parse_kubeconfig(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", insecure-skip-tls-verify: true}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: t}}]
)",
                            "", "");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("insecure-skip-tls-verify") != std::string::npos);
  CHECK(c.status().message().find("always verifies") != std::string::npos);
}

TEST_CASE("kubeconfig: what tripline cannot use is refused with the reason") {
  auto refused = [](const std::string& yaml, const std::string& context, const std::string& says) {
    auto c = parse_kubeconfig(yaml, "", context);
    INFO(yaml);
    REQUIRE_FALSE(c.ok());
    INFO(c.status().message());
    CHECK(c.status().message().find(says) != std::string::npos);
  };
  refused(kTwoContexts, "staging", "no context named \"staging\"");
  refused("clusters: []\n", "", "no current-context");
  refused("- just\n- a list\n", "", "not a kubeconfig");
  refused("a: [unclosed\n", "", "not YAML");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "http://k:8080", certificate-authority-data: Q0E=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: t}}]
)",
          "", "is not an https:// URL");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: t}}]
)",
          "", "names no CA");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority-data: Q0E=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {exec: {command: aws}}}]
)",
          "", "exec or auth-provider");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority-data: Q0E=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {client-certificate-data: Q0E=}}]
)",
          "", "without its key");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority-data: "not base64!"}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: t}}]
)",
          "", "is not base64");
  refused(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority-data: Q0E=}}]
contexts: [{name: c, context: {cluster: gone, user: u}}]
users: [{name: u, user: {token: t}}]
)",
          "", "no cluster named \"gone\"");
}

TEST_CASE("kubeconfig: a file is read and named in errors, a list of files is refused") {
  std::string dir = temp_dir();
  write(dir + "/config", kTwoContexts);
  auto c = load_kubeconfig(dir + "/config", "prod");
  REQUIRE(c.ok());
  CHECK(c->ca_file == dir + "/certs/ca.crt");
  CHECK(c->source.find(dir + "/config") != std::string::npos);
  auto missing = load_kubeconfig(dir + "/nope", "");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("cannot be read") != std::string::npos);
  auto bad = load_kubeconfig(dir + "/config", "nope");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("kubeconfig " + dir + "/config (context nope)") == 0);
  CHECK_FALSE(load_kubeconfig(dir + "/config:" + dir + "/other", "").ok());
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE(
    "kubernetes in-cluster: the API from the environment, token, CA and namespace from files") {
  std::string dir = temp_dir();
  write(dir + "/token", "sa-token\n");
  write(dir + "/ca.crt", "PEM");
  write(dir + "/namespace", "tripline\n");
  auto c = in_cluster("10.96.0.1", "443", dir);
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->server == "https://10.96.0.1:443");
  CHECK(c->token_file == dir + "/token");  // read again on every call, not kept
  CHECK(c->token.empty());
  CHECK(c->ca_file == dir + "/ca.crt");
  CHECK(c->default_namespace == "tripline");
  CHECK(in_cluster("fd00::1", "6443", dir)->server == "https://[fd00::1]:6443");
  CHECK(in_cluster("", "", dir).status().code() == Status::Code::kNotFound);
  std::system(("rm " + dir + "/token").c_str());
  auto no_token = in_cluster("10.96.0.1", "443", dir);
  REQUIRE_FALSE(no_token.ok());
  CHECK(no_token.status().message().find("token") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("kubernetes: a default namespace that is not a DNS-1123 label is refused") {
  // It goes into URL paths unescaped (docs/kubernetes.md): "../x" or "a/b" must never get there.
  for (std::string bad : std::vector<std::string>{"../kube-system", "a/b", "Prod", "-x", "x y",
                                                  std::string(64, 'a')}) {
    INFO(bad);
    auto c = parse_kubeconfig(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k:6443", certificate-authority: /ca.pem}}]
contexts: [{name: c, context: {cluster: k, user: u, namespace: ")" +
                                  bad + R"("}}]
users: [{name: u, user: {token: t}}]
)",
                              "", "");
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().message().find("not a DNS-1123 label") != std::string::npos);
  }
  std::string dir = temp_dir();
  write(dir + "/token", "sa-token\n");
  write(dir + "/ca.crt", "PEM");
  write(dir + "/namespace", "../kube-system\n");
  auto c = in_cluster("10.96.0.1", "443", dir);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("DNS-1123 label") != std::string::npos);
  write(dir + "/namespace", std::string(63, 'a') + "\n");  // the longest label is fine
  CHECK(in_cluster("10.96.0.1", "443", dir)->default_namespace == std::string(63, 'a'));
  std::system(("rm -rf " + dir).c_str());

  CHECK(valid_dns1123_subdomain("web.v2-a"));
  CHECK(valid_dns1123_subdomain(std::string(253, 'a')));
  CHECK_FALSE(valid_dns1123_subdomain(std::string(254, 'a')));
  for (const char* bad : {"", "a..b", ".a", "a.", "a/b", "..", "A", "a_b", "a%2Fb"})
    CHECK_FALSE(valid_dns1123_subdomain(bad));
}

TEST_CASE("kubeconfig: base64 as kubectl writes it") {
  std::string out;
  CHECK(base64_decode("aGVsbG8=", &out));
  CHECK(out == "hello");
  CHECK(base64_decode("aGVs\nbG8", &out));
  CHECK(out == "hello");
  CHECK_FALSE(base64_decode("aGVsbG8=x", &out));
  CHECK_FALSE(base64_decode("a", &out));
  CHECK_FALSE(base64_decode("a-b_", &out));
}

TEST_CASE("scale-service config: the kubernetes backend") {
  auto c = parse_config(json::parse(
      R"({"backend":"kubernetes","kind":"statefulset","namespace":"prod","name":"db","action":"up","by":2,"min":1,"max":10})"));
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->backend == "kubernetes");
  CHECK(c->kind == "statefulset");
  CHECK(c->namespace_ == "prod");
  CHECK(c->name == "db");
  CHECK(target_fields(*c) == json{{"namespace", "prod"}, {"kind", "statefulset"}, {"name", "db"}});
  auto d = parse_config(
      json::parse(R"({"backend":"kubernetes","name":"web.v2","action":"down","max":3})"));
  REQUIRE(d.ok());
  CHECK(d->kind == "deployment");
  CHECK(d->namespace_.empty());  // the driver fills in the default namespace

  auto bad = parse_config(json::parse(
      R"({"backend":"kubernetes","service":"web","kind":"daemonset","namespace":"Prod","action":"up","max":3})"));
  REQUIRE_FALSE(bad.ok());
  CHECK(has_field(bad.status(), "config.service"));
  CHECK(has_field(bad.status(), "config.kind"));
  CHECK(has_field(bad.status(), "config.namespace"));
  CHECK(has_field(bad.status(), "config.name"));
  auto swarm = parse_config(json::parse(R"({"service":"web","name":"web","action":"up","max":3})"));
  REQUIRE_FALSE(swarm.ok());
  CHECK(has_field(swarm.status(), "config.name"));
  CHECK_FALSE(
      parse_config(json::parse(R"({"backend":"nomad","service":"web","action":"up","max":3})"))
          .ok());
  CHECK_FALSE(parse_config(json::parse(R"({"backend":"kubernetes","name":")" +
                                       std::string(254, 'a') + R"(","action":"up","max":3})"))
                  .ok());
}

TEST_CASE("scale-service config: the schema offers both backends to the form") {
  json s = config_schema();
  CHECK(s["properties"]["backend"]["enum"] == json{"swarm", "kubernetes"});
  CHECK(s["properties"]["service"]["description"].get<std::string>().rfind("swarm only", 0) == 0);
  CHECK(s["properties"]["name"]["title"] == "Name (kubernetes)");
  CHECK(s["properties"]["kind"]["enum"] == json{"deployment", "statefulset"});
  CHECK(s["then"]["required"] == json{"name"});
  CHECK(s["else"]["required"] == json{"service"});
}

TEST_CASE("kubernetes API: a Scale is read, spec.replicas missing means 0") {
  KubernetesApi::Scale s;
  auto a = KubernetesApi::parse_scale(
      R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","resourceVersion":"42"},"spec":{"replicas":3},"status":{"replicas":2,"selector":"app=web"}})",
      &s);
  CHECK(a.error == KubernetesApi::Error::kNone);
  CHECK(s.replicas == 3);
  CHECK(s.status_replicas == 2);
  CHECK(s.resource_version == "42");
  a = KubernetesApi::parse_scale(
      R"({"kind":"Scale","metadata":{"resourceVersion":"7"},"spec":{},"status":{"replicas":0}})",
      &s);
  CHECK(a.error == KubernetesApi::Error::kNone);
  CHECK(s.replicas == 0);
  for (const char* bad :
       {R"({"kind":"Status"})", R"({"kind":"Scale","spec":{"replicas":-1}})",
        R"({"kind":"Scale","spec":{"replicas":1.5}})", R"({"kind":"Scale","spec":[]})", "[[[[",
        R"({"kind":"Scale","spec":{"replicas":99999999999999999999}})"}) {
    INFO(bad);
    CHECK(KubernetesApi::parse_scale(bad, &s).error == KubernetesApi::Error::kBadAnswer);
  }
}

TEST_CASE("kubernetes API: Status answers map to what can be retried") {
  using E = KubernetesApi::Error;
  auto classify = [](int code, const std::string& body = "") {
    OutboundResponse r;
    r.status = code;
    r.body = body;
    return KubernetesApi::classify(r);
  };
  auto nf = classify(
      404,
      R"({"kind":"Status","status":"Failure","message":"deployments.apps \"web\" not found","reason":"NotFound","code":404})");
  CHECK(nf.error == E::kNotFound);
  CHECK(nf.message == "deployments.apps \"web\" not found");
  CHECK(classify(401).error == E::kUnauthorized);
  CHECK(classify(403).error == E::kForbidden);
  CHECK(classify(409).error == E::kConflict);
  CHECK(classify(422).error == E::kInvalid);
  CHECK(classify(429).error == E::kTooManyRequests);
  CHECK(classify(503).error == E::kServer);
  CHECK(classify(400).error == E::kRejected);
  CHECK(classify(200).error == E::kNone);
  // A long message is cut before a character that would cross the limit, never inside it.
  auto long_message = classify(
      500, json{{"kind", "Status"}, {"message", std::string(499, 'm') + "\u00e9!"}}.dump());
  CHECK(long_message.message == std::string(499, 'm') + "...");
  CHECK_NOTHROW(json(long_message.message).dump());
  OutboundResponse tls;
  tls.tls_failed = true;
  tls.error = "SSL peer certificate or SSH remote key was not OK";
  CHECK(KubernetesApi::classify(tls).error == E::kTls);
  OutboundResponse refused;
  refused.error = "Couldn't connect to server";
  CHECK(KubernetesApi::classify(refused).error == E::kUnreachable);
}

TEST_CASE("kubernetes API: not configured answers why, without any I/O") {
  KubernetesApi k(Status::NotFound("give tripline a kubeconfig"));
  CHECK_FALSE(k.configured());
  KubernetesApi::Scale s;
  auto a = k.get_scale("deployment", "default", "web", &s);
  CHECK(a.error == KubernetesApi::Error::kNotConfigured);
  CHECK(a.message.find("kubeconfig") != std::string::npos);
  CHECK(k.default_namespace() == "default");
}

namespace {
json deployment_json(const std::string& name, json containers) {
  return {{"kind", "Deployment"},
          {"apiVersion", "apps/v1"},
          {"metadata", {{"name", name}, {"namespace", "prod"}, {"resourceVersion", "7"}}},
          {"spec", {{"template", {{"spec", {{"containers", containers}}}}}}}};
}
json one_container() { return json::array({{{"name", "app"}, {"image", "team/web:1"}}}); }
}  // namespace

TEST_CASE("kubernetes API: a Deployment is read within bounds, or refused saying why") {
  using E = KubernetesApi::Error;
  KubernetesApi::Deployment d;
  auto refused = [&](const json& j, const std::string& says) {
    INFO(j.dump().substr(0, 300));
    auto a = KubernetesApi::parse_deployment(j.dump(), &d);
    CHECK(a.error == E::kBadAnswer);
    INFO(a.message);
    CHECK(a.message.find(says) != std::string::npos);
  };
  auto ok = KubernetesApi::parse_deployment(deployment_json("web", one_container()).dump(), &d);
  REQUIRE(ok.error == E::kNone);
  CHECK(d.name == "web");
  CHECK(d.namespace_ == "prod");
  CHECK(d.resource_version == "7");
  REQUIRE(d.containers.size() == 1);
  CHECK(d.containers[0].image == "team/web:1");

  json list = deployment_json("web", one_container());
  list["kind"] = "DeploymentList";
  refused(list, "kind is not Deployment");
  json no_rv = deployment_json("web", one_container());
  no_rv["metadata"].erase("resourceVersion");
  refused(no_rv, "resourceVersion is missing");
  refused(deployment_json("web", json::array({{{"name", "app"}, {"image", 42}}})),
          "has an image that is not a string");
  json many = json::array();
  for (int i = 0; i < 65; ++i) many.push_back({{"name", "c" + std::to_string(i)}, {"image", "x"}});
  refused(deployment_json("web", many), "more than 64 containers");
  many.erase(many.size() - 1);
  CHECK(KubernetesApi::parse_deployment(deployment_json("web", many).dump(), &d).error == E::kNone);
  CHECK(d.containers.size() == 64);
  // A name from the answer goes into the next request's path: only a DNS-1123 subdomain.
  for (const char* bad : {"../secrets", "web/scale", "web?x=1", "Web", ""})
    refused(deployment_json(bad, one_container()), "metadata.name is not a DNS-1123 subdomain");
  // initContainers and spec.paused are read (never patched: the plan says so).
  json init = deployment_json("web", one_container());
  init["spec"]["paused"] = true;
  init["spec"]["template"]["spec"]["initContainers"] =
      json::array({{{"name", "migrate"}, {"image", "team/web:1"}}});
  REQUIRE(KubernetesApi::parse_deployment(init.dump(), &d).error == E::kNone);
  CHECK(d.paused);
  REQUIRE(d.init_containers.size() == 1);
  CHECK(d.init_containers[0].name == "migrate");
  CHECK(d.containers.size() == 1);
  init["spec"]["template"]["spec"]["initContainers"] = json::object();
  refused(init, "initContainers is not an array");
  // A namespace that is not a label is not kept (the configured one is used).
  json odd_ns = deployment_json("web", one_container());
  odd_ns["metadata"]["namespace"] = "../x";
  REQUIRE(KubernetesApi::parse_deployment(odd_ns.dump(), &d).error == E::kNone);
  CHECK(d.namespace_.empty());
}

TEST_CASE("kubernetes API: a DeploymentList page is read within its room, with its token") {
  using E = KubernetesApi::Error;
  auto page = [](size_t n, json token) {
    json items = json::array();
    for (size_t i = 0; i < n; ++i) {
      json d = deployment_json("d" + std::to_string(i), one_container());
      d.erase("kind");  // list items carry no kind, as upstream lists them
      d.erase("apiVersion");
      items.push_back(d);
    }
    json meta = {{"resourceVersion", "9"}};
    if (!token.is_null()) meta["continue"] = token;
    return json{{"kind", "DeploymentList"}, {"metadata", meta}, {"items", items}}.dump();
  };
  std::vector<KubernetesApi::Deployment> out;
  bool overflow = true;
  std::string token = "stale";
  CHECK(
      KubernetesApi::parse_deployment_list(page(3, "abc/=="), 10, &out, &overflow, &token).error ==
      E::kNone);
  CHECK(out.size() == 3);
  CHECK_FALSE(overflow);
  CHECK(token == "abc/==");
  // Appends: the next page adds to what the earlier ones read.
  CHECK(KubernetesApi::parse_deployment_list(page(2, nullptr), 10, &out, &overflow, &token).error ==
        E::kNone);
  CHECK(out.size() == 5);
  CHECK(token.empty());
  // A server that ignored limit=: never read past the room, and say so.
  out.clear();
  CHECK(
      KubernetesApi::parse_deployment_list(page(12, nullptr), 10, &out, &overflow, &token).error ==
      E::kNone);
  CHECK(out.size() == 10);
  CHECK(overflow);
  // "items": null reads as none, as Go clients read it.
  out.clear();
  CHECK(KubernetesApi::parse_deployment_list(
            R"({"kind":"DeploymentList","metadata":{},"items":null})", 10, &out, &overflow, &token)
            .error == E::kNone);
  CHECK(out.empty());
  CHECK_FALSE(overflow);
  auto bad = [&](const std::string& body, const std::string& says) {
    INFO(body.substr(0, 200));
    auto a = KubernetesApi::parse_deployment_list(body, 10, &out, &overflow, &token);
    CHECK(a.error == E::kBadAnswer);
    INFO(a.message);
    CHECK(a.message.find(says) != std::string::npos);
  };
  bad(R"({"kind":"Deployment","items":[]})", "kind is not DeploymentList");
  bad(R"({"kind":"DeploymentList","items":{}})", "items is not an array");
  bad(page(1, 5), "metadata.continue is not a token");
  bad(page(1, std::string(5000, 'a')), "metadata.continue is not a token");
  json wrong = json::parse(page(1, nullptr));
  wrong["items"][0]["metadata"]["name"] = "../x";
  bad(wrong.dump(), "metadata.name is not a DNS-1123 subdomain");
}
