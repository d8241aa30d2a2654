#include "redeploy.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "crypto.h"
#include "kubernetes.h"
#include "registry_push.h"
#include "swarm.h"

namespace tripline {

using json = nlohmann::json;
using redeploy::Config;
using redeploy::RegistryApi;
using scale_service::KubernetesApi;
using scale_service::SwarmApi;

namespace {

const Config& typed(const DriverConfig& c) { return static_cast<const Config&>(c); }

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

// What `docker service update --with-registry-auth` sends (X-Registry-Auth): base64url, padded,
// of {"username","password","serveraddress"}; the nodes pull with it (docs/redeploy.md).
std::string registry_auth(const Config& c) {
  if (c.credentials.empty()) return {};
  std::string b64 = crypto::base64_encode(json{
      {"username", c.credentials.username},
      {"password", c.credentials.password},
      {"serveraddress", c.image.registry}}.dump());
  for (auto& ch : b64) ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
  return b64;
}

// The service's image: Spec.TaskTemplate.ContainerSpec.Image.
const std::string* current_image(const SwarmApi::Service& s) {
  try {
    const json& image = s.spec.at("TaskTemplate").at("ContainerSpec").at("Image");
    return image.is_string() ? &image.get_ref<const std::string&>() : nullptr;
  } catch (const json::exception&) {
    return nullptr;
  }
}

std::string service_name(const SwarmApi::Service& s) {
  auto it = s.spec.find("Name");
  return it != s.spec.end() && it->is_string() ? it->get<std::string>() : s.id;
}

// The services the config names, read now: by name, or every one carrying the labels.
Outcome read_services(const Config& c, const SwarmApi& swarm, std::vector<SwarmApi::Service>* out) {
  out->clear();
  if (!c.labels.empty()) {
    auto a = swarm.list(c.labels, redeploy::kMaxServices, out);
    if (a.error != SwarmApi::Error::kNone)
      return scale_service::to_outcome(a, "label " + join(c.labels, ","), swarm.host());
    if (out->empty())
      return Outcome::final("no service carries the label(s) " + join(c.labels, ",") +
                            ": nothing to redeploy");
    return Outcome::succeeded(nullptr);
  }
  for (const auto& name : c.services) {
    SwarmApi::Service s;
    auto a = swarm.inspect(name, &s);
    if (a.error != SwarmApi::Error::kNone) return scale_service::to_outcome(a, name, swarm.host());
    out->push_back(std::move(s));
  }
  return Outcome::succeeded(nullptr);
}

// Whether `image` (a service's) is an image of the configured repository, so a label selector
// that caught the wrong service never puts another program's name on it.
bool same_repository(const Config& c, const std::string& image) {
  auto name = redeploy::parse_image_name(redeploy::image_repository(image));
  return name && name->registry == c.image.registry && name->repository == c.image.repository;
}

// --- kubernetes (docs/redeploy.md, "Kubernetes") ---

// What a 403 says the service account lacks: the second Role of deploy/kubernetes/rbac.yaml.
constexpr const char* kRbacNeeds =
    "get, list and patch on deployments (apps) in that namespace: bind the Role tripline-redeploy "
    "of deploy/kubernetes/rbac.yaml there";

std::string k8s_what(const std::string& ns, const std::string& name) {
  return "deployment " + ns + "/" + name;
}

// The Deployments the config names, read now: by name, or every one the label selector selects
// (at most kMaxServices; more is refused, never cut silently).
Outcome read_deployments(const Config& c, const KubernetesApi& k8s,
                         std::vector<KubernetesApi::Deployment>* out) {
  out->clear();
  if (!c.labels.empty()) {
    const std::string selector = join(c.labels, ",");
    bool more = false;
    auto a = k8s.list_deployments(c.namespace_, selector, redeploy::kMaxServices, out, &more);
    if (a.error != KubernetesApi::Error::kNone)
      return scale_service::to_outcome(
          a, "the Deployments labelled " + selector + " in namespace " + c.namespace_, k8s.where(),
          "list", kRbacNeeds);
    if (more)
      return Outcome::final("the label selector " + selector + " selects more than " +
                            std::to_string(redeploy::kMaxServices) +
                            " Deployments in namespace \"" + c.namespace_ +
                            "\": narrow it (one execution redeploys at most " +
                            std::to_string(redeploy::kMaxServices) + ")");
    if (out->empty())
      return Outcome::final("no Deployment in namespace \"" + c.namespace_ +
                            "\" matches the label selector " + selector + ": nothing to redeploy");
    return Outcome::succeeded(nullptr);
  }
  for (const auto& name : c.deployments) {
    KubernetesApi::Deployment d;
    auto a = k8s.get_deployment(c.namespace_, name, &d);
    if (a.error != KubernetesApi::Error::kNone)
      return scale_service::to_outcome(a, k8s_what(c.namespace_, name), k8s.where(), "redeploy",
                                       kRbacNeeds);
    out->push_back(std::move(d));
  }
  return Outcome::succeeded(nullptr);
}

// The containers of `d` whose image is set: the configured one, else each running an image of
// the configured repository. Never another program's: the same rule as for Swarm services.
Outcome choose_containers(const Config& c, const KubernetesApi::Deployment& d,
                          std::vector<KubernetesApi::Container>* out) {
  out->clear();
  const std::string what = k8s_what(c.namespace_, d.name);
  std::string seen;
  for (const auto& k : d.containers) {
    if (!c.container.empty() && k.name != c.container) {
      seen += (seen.empty() ? "" : ", ") + k.name;
      continue;
    }
    if (!same_repository(c, k.image)) {
      if (!c.container.empty())
        return Outcome::final("container \"" + k.name + "\" of " + what + " runs " + k.image +
                              ", not an image of " + c.image.text + ": refusing to replace it");
      seen +=
          (seen.empty() ? "" : ", ") + k.name + " runs " + (k.image.empty() ? "no image" : k.image);
      continue;
    }
    out->push_back(k);
  }
  if (!out->empty()) return Outcome::succeeded(nullptr);
  if (!c.container.empty())
    return Outcome::final(what + " has no container named \"" + c.container + "\" (it has " +
                          (seen.empty() ? "none" : seen) + ")");
  return Outcome::final("no container of " + what + " runs an image of " + c.image.text + " (" +
                        seen + "): refusing to replace another program's image");
}

}  // namespace

std::vector<DriverOption> RedeployDriver::options() {
  return {kDockerHost, scale_service::kKubeconfigOption, scale_service::kKubeContextOption,
          scale_service::kKubeAccountDirOption};
}

RedeployDriver::RedeployDriver(std::string docker_host)
    : docker_host_(std::move(docker_host)), kubernetes_(std::make_shared<KubernetesApi>()) {}

RedeployDriver::RedeployDriver(std::string docker_host, KubernetesApi kubernetes)
    : docker_host_(std::move(docker_host)),
      kubernetes_(std::make_shared<KubernetesApi>(std::move(kubernetes))) {}

std::unique_ptr<Driver> RedeployDriver::create(const DriverEnv& env) {
  return std::make_unique<RedeployDriver>(env.get(kDockerHost),
                                          scale_service::kubernetes_from(env, "redeploy"));
}

Result<std::shared_ptr<const DriverConfig>> RedeployDriver::validate(const json& j,
                                                                     bool check_peer) const {
  auto parsed = redeploy::parse_config(j);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<Config>(std::move(parsed).value());
  if (config->backend == "kubernetes") {
    if (config->namespace_.empty()) config->namespace_ = kubernetes_->default_namespace();
    if (check_peer) {
      std::vector<KubernetesApi::Deployment> found;
      std::string field = config->labels.empty() ? "config.deployments" : "config.label_selector";
      Outcome o = read_deployments(*config, *kubernetes_, &found);
      for (size_t i = 0; o.ok() && i < found.size(); ++i) {
        std::vector<KubernetesApi::Container> chosen;
        o = choose_containers(*config, found[i], &chosen);
        if (!o.ok()) field = config->container.empty() ? "config.image" : "config.container";
      }
      if (!o.ok()) return Status::Invalid(field + " " + o.reason, {{field, o.reason}});
    }
    return std::shared_ptr<const DriverConfig>(std::move(config));
  }
  if (check_peer) {
    SwarmApi swarm(docker_host_);
    std::vector<SwarmApi::Service> found;
    Outcome o = read_services(*config, swarm, &found);
    if (!o.ok()) {
      std::string field = config->labels.empty() ? "config.services" : "config.label_selector";
      std::string why = o.reason;
      return Status::Invalid(field + " " + why, {{field, why}});
    }
  }
  return std::shared_ptr<const DriverConfig>(std::move(config));
}

std::string RedeployDriver::describe(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  if (c.backend == "kubernetes") {
    std::string which = c.labels.empty()
                            ? "Deployment" + std::string(c.deployments.size() > 1 ? "s " : " ") +
                                  join(c.deployments, ", ")
                            : "the Deployments labelled " + join(c.labels, ",");
    return "Redeploy " + which + " in namespace " + c.namespace_ +
           (c.container.empty() ? "" : " (container " + c.container + ")") + " onto " +
           c.image.text + " (tags matching " + c.tag_pattern +
           "), rolled out by each Deployment's own strategy";
  }
  std::string which =
      c.labels.empty() ? join(c.services, ", ") : "the services labelled " + join(c.labels, ",");
  return "Redeploy " + which + " onto " + c.image.text + " (tags matching " + c.tag_pattern +
         "), " + c.order + ", " + c.failure_action + " on failure";
}

std::string RedeployDriver::target(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  // One Deployment's target reads as scale-service's for it ("k8s:prod/deployment/web"). The
  // executor's lane is driver and target (server/service/service.cpp), so a redeploy and a scale
  // of one Deployment may run at once: each patch carries the resourceVersion it read, and the
  // loser of a race gets 409 and reads again, so neither change is lost.
  if (c.backend == "kubernetes")
    return c.labels.empty() ? "k8s:" + c.namespace_ + "/deployment/" + join(c.deployments, ",")
                            : "k8s:" + c.namespace_ + "/label:" + join(c.labels, ",");
  return c.labels.empty() ? "swarm:" + join(c.services, ",") : "swarm:label:" + join(c.labels, ",");
}

std::string RedeployDriver::action(const DriverConfig&) const { return "redeploy"; }

Result<json> RedeployDriver::bind(const json& stored, const TriggerRequest& request) const {
  // Runs on the trigger path: no I/O. A stored config that does not parse is answered as it is:
  // validate() says what is wrong with it.
  auto parsed = redeploy::parse_config(stored);
  if (!parsed.ok()) return stored;
  const Config& c = *parsed;
  json out = stored;
  // The default namespace (kubeconfig context, the pod's own) is written into the config recorded
  // with the execution: a recovered or retried execution acts where it was accepted, even after a
  // restart with another --kube-context (docs/redeploy.md, "Kubernetes").
  if (c.backend == "kubernetes" && c.namespace_.empty())
    out["namespace"] = kubernetes_->default_namespace();
  const BoundedJson& body = request.body.parsed();
  if (body.ok()) {
    if (auto push = read_push_notification(body.value)) {
      std::vector<std::string> elsewhere, refused;
      std::string chosen;
      for (const auto& p : push->pushes) {
        if (p.repository != c.image.repository) {
          if (elsewhere.size() < 5) elsewhere.push_back(p.repository + ":" + p.tag);
        } else if (!re2::RE2::FullMatch(p.tag, *c.tag_re)) {
          if (refused.size() < 5) refused.push_back(p.tag);
        } else {
          chosen = p.tag;  // the last allowed push of the repository wins: the newest
        }
      }
      if (chosen.empty() && !refused.empty())
        return Status::NotFound("the " + push->source + " notification pushes " +
                                c.image.repository + " with tag(s) " + join(refused, ", ") +
                                ", which tag_pattern " + c.tag_pattern + " does not allow");
      if (chosen.empty())
        return Status::NotFound(
            "the " + push->source + " notification holds no push of " + c.image.repository +
            (elsewhere.empty() ? "" : " (it pushes " + join(elsewhere, ", ") + ")"));
      out["tag"] = chosen;
      return out;
    }
    // A plain trigger, e.g. from CI: {"tag": "1.2.0"}. Named by the caller, so refused (422)
    // rather than ignored when it is not allowed.
    if (body.value.is_object() && body.value.contains("tag")) {
      const json& tag = body.value["tag"];
      if (!tag.is_string() || !valid_image_tag(tag.get<std::string>()))
        return Status::Invalid("the request's tag is not an image tag",
                               {{"request.body.tag", "must be an image tag"}});
      if (!re2::RE2::FullMatch(tag.get<std::string>(), *c.tag_re))
        return Status::Invalid(
            "tag \"" + tag.get<std::string>() + "\" does not match tag_pattern " + c.tag_pattern,
            {{"request.body.tag", "does not match tag_pattern"}});
      out["tag"] = tag;
      return out;
    }
  }
  if (!c.tag.empty()) return out;
  return Status::Invalid(
      "the request names no tag (send a registry push notification or {\"tag\": \"...\"}) and "
      "the receiver configures none",
      {{"request.body.tag", "is required"}});
}

Plan RedeployDriver::plan(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  if (c.tag.empty())
    return Plan::failed(Outcome::final("no tag to deploy: the request named none"));
  // Never the payload's word: the registry says what the tag is now (docs/redeploy.md).
  std::string digest;
  const std::string what = c.image.text + ":" + c.tag;
  // The distribution registry notifies a manifest push before it links the tag to it: the tag
  // answers 404 for some milliseconds after its own notification arrived (seen here with 2.8,
  // docs/redeploy.md). A missing tag is asked again within a short, fixed grace before it fails
  // final; a tag that is really missing costs this grace once, and is never retried after it.
  RegistryApi::Answer a;
  for (int ms : {0, 100, 250, 500, 1000}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    a = RegistryApi::resolve(c.registry_url, c.image.repository, c.tag, c.credentials, &digest);
    if (a.error != RegistryApi::Error::kNotFound) break;
  }
  if (a.error != RegistryApi::Error::kNone) return Plan::failed(redeploy::to_outcome(a, what));
  if (c.backend == "kubernetes") return plan_kubernetes(c, digest);

  SwarmApi swarm(docker_host_);
  std::vector<SwarmApi::Service> services;
  Outcome read = read_services(c, swarm, &services);
  if (!read.ok()) return Plan::failed(read);
  const std::string want = redeploy::pinned(c, c.tag, digest);
  json list = json::array();
  std::string common;
  bool all_same = true;
  for (const auto& s : services) {
    const std::string* image = current_image(s);
    std::string name = service_name(s);
    if (!image)
      return Plan::failed(Outcome::final("service \"" + name +
                                         "\" has no TaskTemplate.ContainerSpec.Image: not a "
                                         "container service tripline can redeploy"));
    if (!same_repository(c, *image))
      return Plan::failed(Outcome::final("service \"" + name + "\" runs " + *image +
                                         ", not an image of " + c.image.text +
                                         ": refusing to replace it"));
    if (list.empty()) common = *image;
    all_same = all_same && *image == common;
    list.push_back({{"service", name}, {"id", s.id}, {"image_before", *image}, {"image", want}});
  }
  json plan = {{"image", want}, {"tag", c.tag}, {"digest", digest}, {"services", list}};
  if (all_same) plan["image_before"] = common;  // the UI's "image X -> Y" line (driver.h)
  return Plan::of(std::move(plan));
}

std::optional<Outcome> RedeployDriver::settled(const DriverConfig&, const json& read,
                                               const json& plan) const {
  const bool k8s = read.contains("deployments");
  auto items = read.find(k8s ? "deployments" : "services");
  if (items == read.end() || !items->is_array() || !plan.contains("image") ||
      read.value("image", json()) != plan["image"])
    return std::nullopt;
  json out = json::array();
  for (const auto& s : *items) {
    if (!s.is_object()) return std::nullopt;
    if (k8s) {
      // Every chosen container of every Deployment already runs the reference.
      auto containers = s.find("containers");
      if (containers == s.end() || !containers->is_array() || containers->empty())
        return std::nullopt;
      json names = json::array();
      for (const auto& k : *containers) {
        if (!k.is_object() || k.value("image_before", json()) != plan["image"]) return std::nullopt;
        names.push_back(k.value("container", json()));
      }
      out.push_back({{"namespace", s.value("namespace", json())},
                     {"name", s.value("name", json())},
                     {"containers", names},
                     {"image_before", plan["image"]},
                     {"image_after", plan["image"]},
                     {"changed", false}});
      continue;
    }
    if (s.value("image_before", json()) != plan["image"]) return std::nullopt;
    out.push_back({{"service", s.value("service", json())},
                   {"image_before", s["image_before"]},
                   {"image_after", plan["image"]},
                   {"changed", false}});
  }
  json result = {{"image_before", plan["image"]},
                 {"image_after", plan["image"]},
                 {"tag", plan.value("tag", json())},
                 {"digest", plan.value("digest", json())},
                 {k8s ? "deployments" : "services", out},
                 {"changed", false},
                 {"applied", false}};
  if (plan.contains("warnings")) result["warnings"] = plan["warnings"];
  return Outcome::succeeded(std::move(result));
}

Outcome RedeployDriver::apply(const DriverConfig& dc, const json& plan) const {
  const Config& c = typed(dc);
  if (c.backend == "kubernetes") return apply_kubernetes(c, plan);
  if (!plan.is_object() || !plan.value("image", json()).is_string() ||
      !plan.value("services", json()).is_array())
    return Outcome::final("the recorded plan has no image and services");
  const std::string want = plan["image"].get<std::string>();
  SwarmApi swarm(docker_host_);
  const std::string auth = registry_auth(c);
  json results = json::array();
  bool any = false;
  for (const auto& entry : plan["services"]) {
    const std::string id = entry.value("id", std::string());
    const std::string name = entry.value("service", id);
    if (id.empty()) return Outcome::final("the recorded plan names a service without an id");
    // Another writer (a scale, a rollback) may bump the version between our read and our
    // update; Docker then answers "update out of sequence" and we read again.
    constexpr int kMaxRaces = 5;
    SwarmApi::Answer last;
    bool done = false;
    for (int i = 0; i < kMaxRaces && !done; ++i) {
      SwarmApi::Service s;
      last = swarm.inspect(id, &s);
      if (last.error != SwarmApi::Error::kNone)
        return scale_service::to_outcome(last, name, swarm.host());
      const std::string* image = current_image(s);
      if (image && *image == want) {  // already there: a re-applied plan does nothing twice
        results.push_back({{"service", name},
                           {"image_before", entry.value("image_before", json())},
                           {"image_after", want},
                           {"changed", false}});
        done = true;
        break;
      }
      if (image && !same_repository(c, *image))
        return Outcome::final("service \"" + name + "\" now runs " + *image + ", not an image of " +
                              c.image.text + ": refusing to replace it");
      s.spec["TaskTemplate"]["ContainerSpec"]["Image"] = want;
      json& update = s.spec["UpdateConfig"];
      if (!update.is_object()) update = json::object();
      update["Parallelism"] = c.parallelism;
      update["Delay"] = c.delay_seconds * 1000000000LL;  // nanoseconds
      update["Monitor"] = c.monitor_seconds * 1000000000LL;
      update["Order"] = c.order;
      update["FailureAction"] = c.failure_action;
      last = swarm.update(s, auth);
      if (last.error == SwarmApi::Error::kNone) {
        results.push_back({{"service", name},
                           {"image_before", entry.value("image_before", json())},
                           {"image_after", want},
                           {"changed", true}});
        any = done = true;
        if (i > 0) results.back()["conflicts"] = i;
        break;
      }
      if (last.error != SwarmApi::Error::kOutOfSequence)
        return scale_service::to_outcome(last, name, swarm.host());
    }
    if (!done) return scale_service::to_outcome(last, name, swarm.host());
  }
  json out = {{"image_after", want},
              {"tag", plan.value("tag", json())},
              {"digest", plan.value("digest", json())},
              {"services", results},
              {"changed", any}};
  if (plan.contains("image_before")) out["image_before"] = plan["image_before"];
  return Outcome::succeeded(std::move(out));
}

Plan RedeployDriver::plan_kubernetes(const Config& c, const std::string& digest) const {
  std::vector<KubernetesApi::Deployment> found;
  Outcome read = read_deployments(c, *kubernetes_, &found);
  if (!read.ok()) return Plan::failed(read);
  const std::string want = redeploy::pinned(c, c.tag, digest);
  json list = json::array();
  json warnings = json::array();
  std::string common;
  bool all_same = true;
  for (const auto& d : found) {
    std::vector<KubernetesApi::Container> chosen;
    if (Outcome o = choose_containers(c, d, &chosen); !o.ok()) return Plan::failed(o);
    json containers = json::array();
    bool one_image = true;
    for (const auto& k : chosen) {
      containers.push_back({{"container", k.name}, {"image_before", k.image}});
      one_image = one_image && k.image == chosen.front().image;
      if (list.empty() && containers.size() == 1) common = k.image;
      all_same = all_same && k.image == common;
    }
    json entry = {
        {"namespace", c.namespace_}, {"name", d.name}, {"containers", containers}, {"image", want}};
    if (one_image) entry["image_before"] = chosen.front().image;
    // Said, not silently skipped: an init container running the image (a migration, say) keeps
    // the old one, and a paused Deployment takes the patch but rolls nothing out
    // (docs/redeploy.md, "Kubernetes").
    const std::string what = k8s_what(c.namespace_, d.name);
    json init_left = json::array();
    for (const auto& k : d.init_containers) {
      if (!same_repository(c, k.image)) continue;
      init_left.push_back({{"container", k.name}, {"image", k.image}});
      warnings.push_back("init container \"" + k.name + "\" of " + what + " runs " + k.image +
                         " and is left as it was: tripline sets only the pod's containers");
    }
    if (!init_left.empty()) entry["init_containers_left"] = std::move(init_left);
    if (d.paused) {
      entry["paused"] = true;
      warnings.push_back(what +
                         " is paused (spec.paused): the patch is accepted, but nothing rolls out "
                         "until it is resumed (kubectl rollout resume)");
    }
    list.push_back(std::move(entry));
  }
  json plan = {{"backend", "kubernetes"},
               {"image", want},
               {"tag", c.tag},
               {"digest", digest},
               {"deployments", list}};
  if (all_same) plan["image_before"] = common;  // the UI's "image X -> Y" line (driver.h)
  if (!warnings.empty()) plan["warnings"] = std::move(warnings);
  return Plan::of(std::move(plan));
}

Outcome RedeployDriver::apply_kubernetes(const Config& c, const json& plan) const {
  if (!plan.is_object() || !plan.value("image", json()).is_string() ||
      !plan.value("deployments", json()).is_array())
    return Outcome::final("the recorded plan has no image and deployments");
  const std::string want = plan["image"].get<std::string>();
  const KubernetesApi& k8s = *kubernetes_;
  json results = json::array();
  bool any = false;
  for (const auto& entry : plan["deployments"]) {
    const std::string ns = entry.value("namespace", c.namespace_);
    const std::string name = entry.value("name", std::string());
    std::vector<std::string> names;
    for (const auto& k : entry.value("containers", json::array()))
      if (k.is_object() && k.value("container", json()).is_string())
        names.push_back(k["container"].get<std::string>());
    if (name.empty() || names.empty())
      return Outcome::final("the recorded plan names a Deployment without a name or containers");
    const std::string what = k8s_what(ns, name);
    json result = {{"namespace", ns},
                   {"name", name},
                   {"containers", names},
                   {"image_before", entry.value("image_before", json())},
                   {"image_after", want}};
    if (entry.contains("init_containers_left"))
      result["init_containers_left"] = entry["init_containers_left"];
    // The patch carries the resourceVersion just read: another writer in between (a scale, a
    // kubectl edit) makes it 409 Conflict, and we read again, a bounded number of times
    // (docs/kubernetes.md, "Optimistic concurrency").
    constexpr int kMaxRaces = 5;
    KubernetesApi::Answer last;
    bool done = false;
    for (int i = 0; i < kMaxRaces && !done; ++i) {
      KubernetesApi::Deployment d;
      last = k8s.get_deployment(ns, name, &d);
      if (last.error != KubernetesApi::Error::kNone)
        return scale_service::to_outcome(last, what, k8s.where(), "redeploy", kRbacNeeds);
      if (d.paused)
        result["paused"] = true;  // as read now: the patch rolls nothing out until resumed
      else
        result.erase("paused");
      std::vector<KubernetesApi::Container> set;
      for (const auto& n : names) {
        auto it = std::find_if(d.containers.begin(), d.containers.end(),
                               [&](const KubernetesApi::Container& k) { return k.name == n; });
        if (it == d.containers.end())
          return Outcome::final(what + " no longer has the container \"" + n +
                                "\" the plan names: not redeployed");
        if (it->image == want) continue;  // already there: a re-applied plan does nothing twice
        if (!same_repository(c, it->image))
          return Outcome::final("container \"" + n + "\" of " + what + " now runs " + it->image +
                                ", not an image of " + c.image.text + ": refusing to replace it");
        set.push_back({n, want});
      }
      if (set.empty()) {
        result["changed"] = false;
        done = true;
        break;
      }
      KubernetesApi::Deployment after;
      last = k8s.patch_container_images(ns, name, set, d.resource_version, &after);
      if (last.error == KubernetesApi::Error::kNone) {
        result["changed"] = true;
        // The rollout the patch started: the Deployment controller has seen it once
        // status.observedGeneration reaches this generation.
        result["generation"] = after.generation;
        if (i > 0) result["conflicts"] = i;
        any = done = true;
        break;
      }
      if (last.error != KubernetesApi::Error::kConflict)
        return scale_service::to_outcome(last, what, k8s.where(), "redeploy", kRbacNeeds);
    }
    if (!done) return scale_service::to_outcome(last, what, k8s.where(), "redeploy", kRbacNeeds);
    results.push_back(std::move(result));
  }
  json out = {{"image_after", want},
              {"tag", plan.value("tag", json())},
              {"digest", plan.value("digest", json())},
              {"deployments", results},
              {"changed", any}};
  if (plan.contains("image_before")) out["image_before"] = plan["image_before"];
  if (plan.contains("warnings")) out["warnings"] = plan["warnings"];
  return Outcome::succeeded(std::move(out));
}

Status RedeployDriver::probe() const {
  std::vector<std::string> problems;
  SwarmApi swarm(docker_host_);
  if (auto a = swarm.ping(); a.error != SwarmApi::Error::kNone)
    problems.push_back("docker at " + swarm.host() + ": " + a.message);
  if (kubernetes_->configured()) {
    if (auto a = kubernetes_->version(); a.error != KubernetesApi::Error::kNone)
      problems.push_back("kubernetes at " + kubernetes_->where() + ": " + a.message);
  }
  if (problems.empty()) return Status::Ok();
  return Status::Unavailable(join(problems, "; "));
}

}  // namespace tripline
