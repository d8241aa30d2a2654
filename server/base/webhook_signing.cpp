#include "webhook_signing.h"

#include "crypto.h"

namespace tripline {

const char* to_string(SignatureScheme s) {
  return s == SignatureScheme::kStandard ? "standard" : "seed-002";
}

std::optional<SignatureScheme> parse_signature_scheme(std::string_view s) {
  if (s == "standard") return SignatureScheme::kStandard;
  if (s == "seed-002") return SignatureScheme::kSeed002;
  return std::nullopt;
}

std::optional<std::string> whsec_key_bytes(std::string_view secret) {
  if (secret.rfind("whsec_", 0) == 0) secret.remove_prefix(6);
  return crypto::base64_decode(secret);
}

std::string standard_webhooks_signature(const std::string& secret, std::string_view id,
                                        std::string_view timestamp, std::string_view body) {
  auto key = whsec_key_bytes(secret);
  if (!key) return {};
  std::string signed_content;
  signed_content.reserve(id.size() + timestamp.size() + body.size() + 2);
  signed_content.append(id).append(".").append(timestamp).append(".").append(body);
  return "v1," + crypto::base64_encode(crypto::view(crypto::hmac_sha256(*key, signed_content)));
}

std::optional<std::string> check_signing_secret(SignatureScheme scheme, std::string_view secret) {
  if (scheme == SignatureScheme::kStandard) {
    if (secret.rfind("whsec_", 0) != 0) return "must start with whsec_";
    auto key = whsec_key_bytes(secret);
    if (!key) return "must be whsec_ followed by base64";
    // The reference libraries accept any length; below 24 bytes a key is too weak to trust.
    if (key->size() < 24 || key->size() > 64)
      return "must hold 24 to 64 bytes after whsec_ (base64)";
    return std::nullopt;
  }
  if (secret.size() < 16 || secret.size() > 256) return "must be 16 to 256 characters";
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> sign_webhook(
    SignatureScheme scheme, const std::vector<std::string>& secrets, std::string_view id,
    int64_t timestamp_s, std::string_view body) {
  std::vector<std::pair<std::string, std::string>> out;
  std::string ts = std::to_string(timestamp_s);
  out.emplace_back("webhook-id", std::string(id));
  if (scheme == SignatureScheme::kStandard) {
    std::string sigs;
    for (const auto& s : secrets) {
      std::string sig = standard_webhooks_signature(s, id, ts, body);
      if (sig.empty()) continue;
      if (!sigs.empty()) sigs += ' ';
      sigs += sig;
    }
    if (sigs.empty()) return {};  // unsigned, a receiver would refuse it (or worse, not check)
    out.emplace_back("webhook-timestamp", ts);
    out.emplace_back("webhook-signature", sigs);
    return out;
  }
  if (secrets.empty() || secrets[0].empty()) return {};
  std::string signed_content = ts + ".";
  signed_content.append(body);
  out.emplace_back("X-Link-Webhook-Timestamp", ts);
  out.emplace_back("X-Link-Webhook-Signature",
                   crypto::hex(crypto::view(crypto::hmac_sha256(secrets[0], signed_content))));
  return out;
}

std::string new_webhook_id() { return "msg_" + crypto::base64url_encode(crypto::random_bytes(16)); }

}  // namespace tripline
