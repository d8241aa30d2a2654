// Inbound authentication, per receiver, in addition to the trigger token. A receiver's "auth":
//   {"github_secret": "...",             X-Hub-Signature-256: sha256=<hex HMAC of the raw body>
//    "standard_webhooks_secret": "whsec_...",  webhook-id / webhook-timestamp / webhook-signature
//    "link_secret": "...",               X-Link-Webhook-Timestamp + X-Link-Webhook-Signature
//                                        (hex HMAC-SHA256 of "<timestamp>.<body>")
//    "bearer_token": "...",              Authorization: Bearer (what Alertmanager's http_config
//    sends) "basic_username": "...", "basic_password": "...",  Authorization: Basic
//    "allow_sources": ["10.0.0.0/8"],    the caller's address must be in one of these (else 403)
//    "tolerance_seconds": 300}           timestamp window for the timestamped schemes
// Every configured signature scheme must verify; when a bearer token and/or basic credentials
// are configured, one of them must match. Signatures are checked over the raw body in constant
// time.
//
// Replays: a verified signature yields a message key drawn only from SIGNED content — the
// Standard Webhooks webhook-id when that scheme is configured (it is inside the signed string),
// else the GitHub or Link signature itself (a MAC of the body, and of the timestamp for Link).
// Unsigned headers such as X-GitHub-Delivery or Idempotency-Key play no part. The trigger path uses
// the key as the execution's idempotency key: a replay, or a sender's legitimate retry, finds the
// execution the first delivery made (answered 202 with "replayed": true) instead of running again.
// The memory is the executions table's unique index: durable across restarts, and no bigger than
// the executions kept.
//
// At rest: HMAC secrets are sealed (SecretBox), the bearer token and basic password are stored
// only as salted SHA-256. The API shows none of them.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto.h"
#include "net.h"
#include "request.h"
#include "secrets.h"
#include "webhook_signing.h"  // standard_webhooks_signature(), whsec_key_bytes()

namespace tripline {

enum class AuthFailure {
  kNone,
  kSourceNotAllowed,  // 403
  kMissingCredential,
  kBadCredential,
  kBadSignature,
  kStaleTimestamp,
};
const char* to_string(AuthFailure f);

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

  // On success with a signature scheme configured, `*message_key` is the replay key (see above;
  // empty otherwise).
  AuthFailure check(const InboundRequest& request, std::string_view source, int64_t now_s,
                    std::string* message_key) const;
  bool empty() const { return empty_; }

 private:
  bool empty_ = true;
  std::vector<Cidr> allow_sources_;
  std::shared_ptr<const crypto::HmacKey> github_, standard_, link_;
  std::string bearer_hash_;  // "salt-hex:sha256-hex" or empty
  std::string basic_user_, basic_hash_;
  int64_t tolerance_s_ = 300;
};

}  // namespace tripline
