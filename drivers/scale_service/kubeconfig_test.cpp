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

TEST_CASE("kubeconfig: a file is read and named in errors; a list of files is refused") {
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
