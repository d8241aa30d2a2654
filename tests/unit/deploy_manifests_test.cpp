// deploy/kubernetes/: the manifests parse, and the Roles grant tripline exactly what scaling needs
// (get and patch on deployments/scale and statefulsets/scale) and, bound only by the opt-in
// deploy/kubernetes/redeploy/, what redeploying needs (get, list, patch on deployments), nothing
// more.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

const std::string kDir = std::string(TRIPLINE_SOURCE_DIR) + "/deploy/kubernetes";

// The manifests of one folder (not its subfolders: `kubectl apply -f DIR` does not recurse).
std::vector<YAML::Node> all_documents(const std::string& dir = kDir) {
  std::vector<YAML::Node> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path());
    std::vector<YAML::Node> docs;
    REQUIRE_NOTHROW(docs = YAML::LoadAllFromFile(entry.path().string()));
    for (auto& d : docs)
      if (d && !d.IsNull()) out.push_back(d);
  }
  return out;
}

std::vector<YAML::Node> of_kind(const std::vector<YAML::Node>& docs, const std::string& kind) {
  std::vector<YAML::Node> out;
  for (const auto& d : docs)
    if (d["kind"].as<std::string>() == kind) out.push_back(d);
  return out;
}

std::multiset<std::string> strings(const YAML::Node& list) {
  std::multiset<std::string> out;
  for (const auto& s : list) out.insert(s.as<std::string>());
  return out;
}

}  // namespace

TEST_CASE("deploy/kubernetes: every manifest parses and names its object") {
  auto docs = all_documents();
  REQUIRE(docs.size() >= 8);
  for (const auto& d : docs) {
    REQUIRE(d.IsMap());
    CHECK(d["apiVersion"].IsScalar());
    CHECK(d["kind"].IsScalar());
    CHECK(d["metadata"]["name"].IsScalar());
  }
  for (const char* kind : {"Namespace", "ServiceAccount", "RoleBinding", "Secret",
                           "PersistentVolumeClaim", "Deployment", "Service"}) {
    INFO(kind);
    CHECK(of_kind(docs, kind).size() == 1);
  }
  CHECK(of_kind(docs, "Role").size() == 2);  // scaling's, and redeploy's (bound apart)
}

static YAML::Node named(const std::vector<YAML::Node>& docs, const std::string& kind,
                        const std::string& name) {
  for (const auto& d : of_kind(docs, kind))
    if (d["metadata"]["name"].as<std::string>() == name) return d;
  FAIL("no " << kind << " named " << name);
  return {};
}

TEST_CASE("deploy/kubernetes: the Role grants exactly get and patch on the scale subresources") {
  auto docs = all_documents();
  CHECK(of_kind(docs, "ClusterRole").empty());
  CHECK(of_kind(docs, "ClusterRoleBinding").empty());
  auto roles = of_kind(docs, "Role");
  REQUIRE(roles.size() == 2);  // tripline-scale, and tripline-redeploy (below)
  const YAML::Node role = named(docs, "Role", "tripline-scale");
  REQUIRE(role["rules"].size() == 1);
  const YAML::Node rule = role["rules"][0];
  CHECK(strings(rule["apiGroups"]) == std::multiset<std::string>{"apps"});
  CHECK(strings(rule["resources"]) ==
        std::multiset<std::string>{"deployments/scale", "statefulsets/scale"});
  CHECK(strings(rule["verbs"]) == std::multiset<std::string>{"get", "patch"});
  CHECK_FALSE(rule["resourceNames"]);
  CHECK_FALSE(rule["nonResourceURLs"]);

  auto bindings = of_kind(docs, "RoleBinding");
  REQUIRE(bindings.size() == 1);
  const YAML::Node& b = bindings[0];
  CHECK(b["metadata"]["namespace"].as<std::string>() ==
        role["metadata"]["namespace"].as<std::string>());
  CHECK(b["roleRef"]["kind"].as<std::string>() == "Role");
  CHECK(b["roleRef"]["name"].as<std::string>() == role["metadata"]["name"].as<std::string>());
  REQUIRE(b["subjects"].size() == 1);
  auto account = of_kind(docs, "ServiceAccount")[0];
  CHECK(b["subjects"][0]["kind"].as<std::string>() == "ServiceAccount");
  CHECK(b["subjects"][0]["name"].as<std::string>() ==
        account["metadata"]["name"].as<std::string>());
  CHECK(b["subjects"][0]["namespace"].as<std::string>() ==
        account["metadata"]["namespace"].as<std::string>());
}

TEST_CASE(
    "deploy/kubernetes: redeploy's Role is get, list, patch on deployments, bound by opt-in") {
  auto docs = all_documents();
  const YAML::Node role = named(docs, "Role", "tripline-redeploy");
  REQUIRE(role["rules"].size() == 1);
  const YAML::Node rule = role["rules"][0];
  CHECK(strings(rule["apiGroups"]) == std::multiset<std::string>{"apps"});
  CHECK(strings(rule["resources"]) == std::multiset<std::string>{"deployments"});
  CHECK(strings(rule["verbs"]) == std::multiset<std::string>{"get", "list", "patch"});
  CHECK_FALSE(rule["resourceNames"]);
  // Not bound by `kubectl apply -f deploy/kubernetes/`: its binding is in the subfolder.
  for (const auto& b : of_kind(docs, "RoleBinding"))
    CHECK(b["roleRef"]["name"].as<std::string>() != "tripline-redeploy");
  auto extra = all_documents(kDir + "/redeploy");
  REQUIRE(extra.size() == 1);
  const YAML::Node& b = extra[0];
  CHECK(b["kind"].as<std::string>() == "RoleBinding");
  CHECK(b["metadata"]["namespace"].as<std::string>() ==
        role["metadata"]["namespace"].as<std::string>());
  CHECK(b["roleRef"]["kind"].as<std::string>() == "Role");
  CHECK(b["roleRef"]["name"].as<std::string>() == "tripline-redeploy");
  REQUIRE(b["subjects"].size() == 1);
  auto account = of_kind(docs, "ServiceAccount")[0];
  CHECK(b["subjects"][0]["name"].as<std::string>() ==
        account["metadata"]["name"].as<std::string>());
  CHECK(b["subjects"][0]["namespace"].as<std::string>() ==
        account["metadata"]["namespace"].as<std::string>());
}

TEST_CASE(
    "deploy/kubernetes: one replica on the PVC, as the service account, secrets from the Secret") {
  auto docs = all_documents();
  auto d = of_kind(docs, "Deployment").at(0);
  CHECK(d["spec"]["replicas"].as<int>() == 1);
  CHECK(d["spec"]["strategy"]["type"].as<std::string>() == "Recreate");
  const YAML::Node pod = d["spec"]["template"]["spec"];
  CHECK(pod["serviceAccountName"].as<std::string>() ==
        of_kind(docs, "ServiceAccount")[0]["metadata"]["name"].as<std::string>());
  std::string claim;
  for (const auto& v : pod["volumes"])
    if (v["persistentVolumeClaim"])
      claim = v["persistentVolumeClaim"]["claimName"].as<std::string>();
  CHECK(claim == of_kind(docs, "PersistentVolumeClaim")[0]["metadata"]["name"].as<std::string>());

  auto secret = of_kind(docs, "Secret")[0];
  bool admin_token_from_secret = false;
  for (const auto& e : pod["containers"][0]["env"]) {
    if (e["name"].as<std::string>() != "TRIPLINE_ADMIN_TOKEN") continue;
    CHECK_FALSE(e["value"]);  // never inline
    const YAML::Node ref = e["valueFrom"]["secretKeyRef"];
    admin_token_from_secret =
        ref && ref["name"].as<std::string>() == secret["metadata"]["name"].as<std::string>() &&
        secret["stringData"][ref["key"].as<std::string>()];
  }
  CHECK(admin_token_from_secret);
  // The Service reaches the pod's port.
  auto service = of_kind(docs, "Service")[0];
  CHECK(service["spec"]["selector"]["app.kubernetes.io/name"].as<std::string>() ==
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as<std::string>());
}
