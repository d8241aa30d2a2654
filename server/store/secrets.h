// Secrets at rest: config fields a driver marks "writeOnly": true in its schema (TSIG secrets,
// passwords) are sealed with AES-256-GCM before they are stored, in receivers and in execution
// snapshots alike, and are never returned by the API.
//
// Keys: the current key is 32 bytes from TRIPLINE_SECRET_KEY (64 hex digits) or
// <data-dir>/secrets.key (created on first start, mode 0600; refused when group or others may
// read it). Previous keys, which only open values, come from TRIPLINE_SECRET_KEY_PREVIOUS
// (comma-separated, 64 hex digits each) and <data-dir>/secrets.key.previous (one per line, 0600),
// so the key can be rotated: see secret_keys.h and docs/secret-keys.md.
//
// A sealed value is the string
//   "sealed:v2:" KID ":" base64url(nonce[12] || ciphertext || tag[16])
// where KID (8 hex digits) names the key: the first 4 bytes of SHA-256("tripline secrets key
// id" NUL key). "sealed:v2:" KID is authenticated as GCM associated data, so a value cannot be
// relabelled. The format before key ids, "sealed:v1:" base64url(...), is still opened (by
// trying each key); new values are always v2.
// Thread safety: a SecretBox is immutable after construction.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "status.h"

namespace tripline {

class SecretBox {
 public:
  // env_key: TRIPLINE_SECRET_KEY (null or empty: the key file); env_previous:
  // TRIPLINE_SECRET_KEY_PREVIOUS (may be null).
  static Result<SecretBox> load_or_create(const std::string& dir, const char* env_key,
                                          const char* env_previous = nullptr);
  // 32 raw bytes each; `previous` keys only open.
  static SecretBox from_key(std::string key, std::vector<std::string> previous = {});

  std::string seal(const std::string& plaintext) const;  // always v2, with the current key
  std::optional<std::string> open(const std::string& sealed) const;
  static bool is_sealed(const std::string& value);

  // Key ids (8 hex digits, safe to show).
  static std::string key_id(std::string_view key);
  const std::string& current_key_id() const { return keys_.front().first; }
  std::vector<std::string> key_ids() const;  // current first
  // The key id a sealed value names; empty for v1 values (and anything else).
  static std::string key_id_of(const std::string& sealed);
  // Whether `sealed` is a v2 value under the current key (needs no re-sealing).
  bool sealed_with_current_key(const std::string& sealed) const;
  // The current key as 64 hex digits (for rotate-secret-key, which writes it to a file).
  std::string current_key_hex() const;

 private:
  std::vector<std::pair<std::string, std::string>> keys_;  // (kid, key), current first
};

inline constexpr const char* kRedacted = "********";

// Seals every secret field (a client's value is always treated as plaintext). `previous` (a stored
// config, may be null) supplies the sealed value for a secret sent back as kRedacted or left out,
// so clients can edit a receiver without re-entering its secrets.
nlohmann::json seal_config(const nlohmann::json& config, const std::vector<std::string>& fields,
                           const SecretBox& box, const nlohmann::json& previous = nullptr);
// Opens every sealed field; Internal when one cannot be opened (wrong key).
Result<nlohmann::json> open_config(const nlohmann::json& stored,
                                   const std::vector<std::string>& fields, const SecretBox& box);
// Replaces every secret field present with kRedacted.
nlohmann::json redact_config(const nlohmann::json& config, const std::vector<std::string>& fields);
// Every sealed value anywhere in `j` replaced by kRedacted: what the schema's secret fields miss
// (a driver no longer registered, a secret of some future nested field) is still not shown.
nlohmann::json redact_sealed(nlohmann::json j);

}  // namespace tripline
