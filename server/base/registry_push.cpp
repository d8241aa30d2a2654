#include "registry_push.h"

#include <cctype>

#include "crypto.h"

namespace tripline {

using json = nlohmann::json;

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(dashes || sep == "." || sep == "_" || sep == "__")) return false;
    i = j;
  }
  return true;
}

const std::string* str(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}
const json* obj(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}
const json* arr(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}
// A scalar as key material ("" when absent or a structure).
std::string scalar(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_structured() || it->is_null()) return {};
  return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "https://ghcr.io/owner" or "quay.io/ns/name" -> "ghcr.io", "quay.io".
std::string host_of(std::string url) {
  if (auto p = url.find("://"); p != std::string::npos) url = url.substr(p + 3);
  return url.substr(0, url.find('/'));
}

void add(PushNotification* n, std::string registry, std::string repository, std::string tag) {
  if (n->pushes.size() >= kMaxPushes) return;
  if (!valid_repository_path(repository) || !valid_image_tag(tag) || registry.size() > 255) return;
  n->pushes.push_back({std::move(registry), std::move(repository), std::move(tag)});
}

// The manifest media types a tag push carries (PROTOCOLS §10; docs/redeploy.md). Blob uploads
// come as application/octet-stream and never name a tag.
bool manifest_type(const std::string& t) {
  static const char* kTypes[] = {"application/vnd.docker.distribution.manifest.v2+json",
                                 "application/vnd.docker.distribution.manifest.list.v2+json",
                                 "application/vnd.oci.image.manifest.v1+json",
                                 "application/vnd.oci.image.index.v1+json"};
  for (const char* k : kTypes)
    if (t == k) return true;
  return false;
}

// distribution/distribution 2.8: {"events": [{"id","action","target":{...},"request":{...}}]}.
void read_distribution(const json& body, PushNotification* n) {
  std::string ids;
  for (const auto& e : body["events"]) {
    if (!e.is_object()) continue;
    ids += scalar(e, "id") + "\n";
    const json* target = obj(e, "target");
    const std::string* action = str(e, "action");
    if (!target || !action || *action != "push") continue;
    const std::string* type = str(*target, "mediaType");
    const std::string* repo = str(*target, "repository");
    const std::string* tag = str(*target, "tag");
    if (!type || !manifest_type(*type) || !repo || !tag) continue;
    const json* request = obj(e, "request");
    const std::string* host = request ? str(*request, "host") : nullptr;
    add(n, host ? *host : "", *repo, *tag);
  }
  n->key = ids;
}

// Docker Hub: {"push_data":{"pushed_at","pusher","tag"},"repository":{"repo_name",...}}.
void read_dockerhub(const json& body, PushNotification* n) {
  const json& push = body["push_data"];
  const json& repo = body["repository"];
  const std::string* name = str(repo, "repo_name");
  const std::string* tag = str(push, "tag");
  if (!name || !tag) return;
  // Official images are "library/NAME" on the wire; a repo_name without a namespace is one.
  std::string repository = name->find('/') == std::string::npos ? "library/" + *name : *name;
  add(n, "docker.io", repository, *tag);
  n->key = repository + "\n" + *tag + "\n" + scalar(push, "pushed_at");
}

// GitHub "registry_package" event, action "published" (or "updated"): the container's tag is
// registry_package.package_version.container_metadata.tag.name, the image
// ghcr.io/<namespace>/<name>, lower-cased as GHCR names are.
void read_github(const json& body, PushNotification* n) {
  const json& pkg = body["registry_package"];
  const std::string* action = str(body, "action");
  if (!action || (*action != "published" && *action != "updated")) return;
  const std::string* type = str(pkg, "package_type");
  const std::string* ecosystem = str(pkg, "ecosystem");
  bool container = (type && lower(*type) == "container") ||
                   (ecosystem && lower(*ecosystem) == "container") ||
                   (type && lower(*type) == "docker");
  if (!container) return;
  const std::string* ns = str(pkg, "namespace");
  const std::string* name = str(pkg, "name");
  const json* version = obj(pkg, "package_version");
  if (!ns || !name || !version) return;
  const json* meta = obj(*version, "container_metadata");
  const json* tag = meta ? obj(*meta, "tag") : nullptr;
  const std::string* tag_name = tag ? str(*tag, "name") : nullptr;
  std::string registry = "ghcr.io";
  if (const json* reg = obj(pkg, "registry"))
    if (const std::string* url = str(*reg, "url")) registry = lower(host_of(*url));
  if (tag_name && !tag_name->empty()) add(n, registry, lower(*ns + "/" + *name), *tag_name);
  n->key = scalar(*version, "id") + "\n" + (tag_name ? *tag_name : "") + "\n" +
           (tag ? scalar(*tag, "digest") : "");
}

// Harbor, default format {"type":"PUSH_ARTIFACT","occur_at",...,"event_data":{"resources":
// [{"digest","tag","resource_url"}],"repository":{"repo_full_name",...}}}, or CloudEvents
// {"specversion","type":"harbor.artifact.pushed","id",...,"data":{same as event_data}}.
void read_harbor(const json& data, bool push, std::string key, PushNotification* n) {
  const json* repo = obj(data, "repository");
  const std::string* full = repo ? str(*repo, "repo_full_name") : nullptr;
  const json* resources = arr(data, "resources");
  if (resources)
    for (const auto& r : *resources) {
      key += "\n" + scalar(r, "digest") + "@" + scalar(r, "tag");
      const std::string* tag = str(r, "tag");
      const std::string* url = str(r, "resource_url");
      if (push && full && tag && !tag->empty()) add(n, url ? host_of(*url) : "", *full, *tag);
    }
  n->key = key;
}

// Quay "repo_push": {"repository":"ns/name","docker_url":"quay.io/ns/name","updated_tags":
// ["latest"]} (an object {"tag": "image id"} in older Quay releases). No id or time: no key.
void read_quay(const json& body, PushNotification* n) {
  const std::string* repo = str(body, "repository");
  const std::string* url = str(body, "docker_url");
  auto tags = body.find("updated_tags");
  if (!repo || !url || tags == body.end()) return;
  std::string registry = host_of(*url);
  if (tags->is_array()) {
    for (const auto& t : *tags)
      if (t.is_string()) add(n, registry, *repo, t.get<std::string>());
  } else if (tags->is_object()) {
    for (const auto& t : tags->items()) add(n, registry, *repo, t.key());
  }
}

}  // namespace

bool valid_image_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    char c = tag[i];
    bool word = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (!word && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

bool valid_repository_path(std::string_view repository) {
  if (repository.empty() || repository.size() > 255) return false;
  size_t start = 0;
  while (true) {
    size_t slash = repository.find('/', start);
    if (!valid_component(repository.substr(start, slash - start))) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

std::optional<PushNotification> read_push_notification(const json& body) {
  if (!body.is_object()) return std::nullopt;
  PushNotification n;
  try {
    if (arr(body, "events")) {
      n.source = "distribution";
      read_distribution(body, &n);
    } else if (obj(body, "push_data") && obj(body, "repository")) {
      n.source = "dockerhub";
      read_dockerhub(body, &n);
    } else if (obj(body, "registry_package")) {
      n.source = "github";
      read_github(body, &n);
    } else if (const std::string* type = str(body, "type");
               type && obj(body, "event_data") &&
               type->find('_') != std::string::npos) {  // PUSH_ARTIFACT, PULL_ARTIFACT, ...
      n.source = "harbor";
      read_harbor(body["event_data"], *type == "PUSH_ARTIFACT",
                  *type + "\n" + scalar(body, "occur_at"), &n);
    } else if (type && obj(body, "data") && type->rfind("harbor.", 0) == 0) {
      n.source = "harbor";
      read_harbor(body["data"], *type == "harbor.artifact.pushed",
                  *type + "\n" + scalar(body, "id"), &n);
    } else if (str(body, "repository") && str(body, "docker_url")) {
      n.source = "quay";
      read_quay(body, &n);
    } else {
      return std::nullopt;
    }
  } catch (const json::exception&) {
    return std::nullopt;  // every access is type-checked first; this is the last guard
  }
  if (!n.key.empty())
    n.key = "push:" + n.source + ":" +
            crypto::hex(crypto::view(crypto::sha256(n.source + "\n" + n.key))).substr(0, 40);
  return n;
}

}  // namespace tripline
