// Container registry push notifications, read into one shape: which repository got which tag.
// Shared by the rules' "registry-push" preset (server/trigger) and the redeploy driver's bind()
// (drivers/redeploy), so both read a payload the same way. The payloads tripline reads, and what
// it relies on from each, are in docs/redeploy.md ("Push notifications").
//
// Everything here is untrusted input: a notification only says which tag to look at. The digest
// to deploy is always resolved on the registry (drivers/redeploy), never taken from a payload.
//
// No I/O, no shared state: thread-safe. Never throws.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tripline {

struct ImagePush {
  std::string registry;    // host[:port] the payload names ("127.0.0.1:5000", "ghcr.io"), or ""
  std::string repository;  // "team/web" (Docker Hub: "library/nginx" for official images)
  std::string tag;         // "1.2.0"
};

struct PushNotification {
  // "distribution", "dockerhub", "github", "harbor" or "quay".
  std::string source;
  // The tag pushes it carries, in the payload's order, at most kMaxPushes. Pulls, deletes, blob
  // uploads, pushes by digest alone and names that are not valid references are left out.
  std::vector<ImagePush> pushes;
  // A key naming this delivery, the same when the sender re-sends it (distribution's event ids,
  // Harbor's occur_at and digests, Docker Hub's pushed_at, GitHub's package version id); empty
  // when the payload has nothing that tells two pushes of the same tag apart (Quay), so that a
  // second push of a tag is never mistaken for a re-sent first one.
  std::string key;
};

inline constexpr size_t kMaxPushes = 100;

// The notification `body` is, or nullopt when it has none of the five shapes. A recognised
// notification without a tag push (a pull, a blob upload) answers an empty `pushes`.
std::optional<PushNotification> read_push_notification(const nlohmann::json& body);

// Docker's reference grammar (distribution/reference): a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
// a repository is lower-case path components [a-z0-9]+ joined by ".", "_", "__" or "-"+, split
// by "/", at most 255 characters.
bool valid_image_tag(std::string_view tag);
bool valid_repository_path(std::string_view repository);

}  // namespace tripline
