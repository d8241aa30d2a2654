#include "redeploy.h"

#include <chrono>
#include <thread>

#include "crypto.h"
#include "registry_push.h"
#include "swarm.h"

namespace tripline {

using json = nlohmann::json;
using redeploy::Config;
using redeploy::RegistryApi;
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

}  // namespace

std::unique_ptr<Driver> RedeployDriver::create(const DriverEnv& env) {
  return std::make_unique<RedeployDriver>(env.get(kDockerHost));
}

Result<std::shared_ptr<const DriverConfig>> RedeployDriver::validate(const json& j,
                                                                     bool check_peer) const {
  auto parsed = redeploy::parse_config(j);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<Config>(std::move(parsed).value());
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
  std::string which =
      c.labels.empty() ? join(c.services, ", ") : "the services labelled " + join(c.labels, ",");
  return "Redeploy " + which + " onto " + c.image.text + " (tags matching " + c.tag_pattern +
         "), " + c.order + ", " + c.failure_action + " on failure";
}

std::string RedeployDriver::target(const DriverConfig& dc) const {
  const Config& c = typed(dc);
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
  auto services = read.find("services");
  if (services == read.end() || !services->is_array() || !plan.contains("image") ||
      read.value("image", json()) != plan["image"])
    return std::nullopt;
  json out = json::array();
  for (const auto& s : *services) {
    if (!s.is_object() || s.value("image_before", json()) != plan["image"]) return std::nullopt;
    out.push_back({{"service", s.value("service", json())},
                   {"image_before", s["image_before"]},
                   {"image_after", plan["image"]},
                   {"changed", false}});
  }
  return Outcome::succeeded({{"image_before", plan["image"]},
                             {"image_after", plan["image"]},
                             {"tag", plan.value("tag", json())},
                             {"digest", plan.value("digest", json())},
                             {"services", out},
                             {"changed", false},
                             {"applied", false}});
}

Outcome RedeployDriver::apply(const DriverConfig& dc, const json& plan) const {
  const Config& c = typed(dc);
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

Status RedeployDriver::probe() const {
  SwarmApi swarm(docker_host_);
  if (auto a = swarm.ping(); a.error != SwarmApi::Error::kNone)
    return Status::Unavailable("docker at " + swarm.host() + ": " + a.message);
  return Status::Ok();
}

}  // namespace tripline
