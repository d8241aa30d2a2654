// Inbound authentication, per receiver, in addition to the trigger token. A receiver's "auth":
//   {"github_secret": "...",             X-Hub-Signature-256: sha256=<hex HMAC of the raw body>
//    "standard_webhooks_secret": "whsec_...",  webhook-id / webhook-timestamp / webhook-signature
//    "link_secret": "...",               X-Link-Webhook-Timestamp + X-Link-Webhook-Signature
//                                        (hex HMAC-SHA256 of "<timestamp>.<body>")
//    "bearer_token": "...",              Authorization: Bearer (what Alertmanager's http_config sends)
//    "basic_username": "...", "basic_password": "...",  Authorization: Basic
//    "allow_sources": ["10.0.0.0/8"],    the caller's address must be in one of these (else 403)
//    "tolerance_seconds": 300}           timestamp window for the timestamped schemes
// Every configured signature scheme must verify; when a bearer token and/or basic credentials
// are configured, one of them must match. Signatures are checked over the raw body in constant
// time; a webhook-id or X-GitHub-Delivery seen before within the window is a replay.
//
// At rest: HMAC secrets are sealed (SecretBox), the bearer token and basic password are stored
// only as salted SHA-256. The API shows none of them.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto.h"
#include "http.h"
#include "net.h"
#include "secrets.h"

namespace tripline {

enum class AuthFailure {
  kNone,
  kSourceNotAllowed,  // 403
  kMissingCredential,
  kBadCredential,
  kBadSignature,
  kStaleTimestamp,
  kReplayed,
};
const char* to_string(AuthFailure f);

// Remembers message ids (Standard Webhooks webhook-id, X-GitHub-Delivery) for a window.
// In memory: a restart forgets them, but the timestamped schemes still refuse stale messages.
class ReplayGuard {
 public:
  // True when `id` was not seen within the window (and remembers it now).
  bool first_time(const std::string& id, int64_t now_s, int64_t window_s);

 private:
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> seen_;  // id -> expiry
  int64_t next_prune_ = 0;
};

class InboundAuth {
 public:
  // The stored form of a client's "auth" object: secrets sealed, passwords hashed; secrets
  // sent back as "********" (or left out) keep their `previous` stored value.
  static Result<nlohmann::json> prepare_for_storage(const nlohmann::json& auth,
                                                    const nlohmann::json& previous,
                                                    const SecretBox& box);
  static nlohmann::json redact(const nlohmann::json& stored);
  // The top-level fields of the stored form that hold sealed secrets.
  static const std::vector<std::string>& sealed_fields();
  // Compiles the stored form (null: no inbound auth).
  static Result<std::shared_ptr<const InboundAuth>> compile(const nlohmann::json& stored,
                                                            const SecretBox& box);

  AuthFailure check(const HttpRequest& request, std::string_view source, int64_t receiver_id,
                    ReplayGuard& replays, int64_t now_s) const;
  bool empty() const { return empty_; }

 private:
  bool empty_ = true;
  std::vector<Cidr> allow_sources_;
  std::shared_ptr<const crypto::HmacKey> github_, standard_, link_;
  std::string bearer_hash_;                      // "salt-hex:sha256-hex" or empty
  std::string basic_user_, basic_hash_;
  int64_t tolerance_s_ = 300;
};

// Standard Webhooks: "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)).
std::string standard_webhooks_signature(const std::string& whsec_secret, std::string_view id,
                                        std::string_view timestamp, std::string_view body);

}  // namespace tripline
