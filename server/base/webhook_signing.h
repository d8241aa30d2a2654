// Signatures of outbound webhooks (the webhook driver, execution notifications), in two schemes
// (docs/webhooks.md):
//   - Standard Webhooks: webhook-id, webhook-timestamp (unix seconds) and webhook-signature,
//     "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)), key = base64-decode of the
//     secret after "whsec_". During a rotation several secrets sign: one "v1,..." per secret,
//     space-separated, so a receiver holding either secret verifies.
//   - seed-002 ("Link" style): X-Link-Webhook-Timestamp and X-Link-Webhook-Signature, the
//   lower-case
//     hex HMAC-SHA256 of "<timestamp>.<body>" under the raw secret; one secret only (the header
//     has room for one signature). webhook-id is sent too, unsigned, for de-duplication.
// No I/O, no shared state: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tripline {

enum class SignatureScheme { kStandard, kSeed002 };
const char* to_string(SignatureScheme s);
std::optional<SignatureScheme> parse_signature_scheme(std::string_view s);

// The HMAC key of a "whsec_<base64>" secret (the prefix is optional), or nullopt.
std::optional<std::string> whsec_key_bytes(std::string_view secret);

// Standard Webhooks: "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)); "" when the
// secret is not whsec_ base64.
std::string standard_webhooks_signature(const std::string& whsec_secret, std::string_view id,
                                        std::string_view timestamp, std::string_view body);

// Whether `secret` can sign in `scheme` (whsec_ base64 of 24 to 64 bytes for Standard Webhooks,
// 16 to 256 bytes of anything for seed-002); the reason otherwise.
std::optional<std::string> check_signing_secret(SignatureScheme scheme, std::string_view secret);

// The headers that sign `body`: secrets[0] is the current one; the others (a rotation) also sign
// under Standard Webhooks. Secrets that cannot sign are skipped; when none can, the answer is
// empty and the caller must not send (an unsigned message is not a webhook of ours).
std::vector<std::pair<std::string, std::string>> sign_webhook(
    SignatureScheme scheme, const std::vector<std::string>& secrets, std::string_view id,
    int64_t timestamp_s, std::string_view body);

// A new message id: "msg_" + 22 base64url characters of randomness (128 bits).
std::string new_webhook_id();

}  // namespace tripline
