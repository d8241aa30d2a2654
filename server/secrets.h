// Secrets at rest: config fields a driver marks "writeOnly": true in its schema (TSIG secrets,
// passwords) are sealed with AES-256-GCM before they are stored, in receivers and in execution
// snapshots alike, and are never returned by the API.
//
// The key is 32 bytes from TRIPLINE_SECRET_KEY (64 hex digits) or <data-dir>/secrets.key
// (created on first start, mode 0600). A sealed value is the string
//   "sealed:v1:" base64url(nonce[12] || ciphertext || tag[16])
// Thread safety: a SecretBox is immutable after construction.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../drivers/driver.h"
#include "status.h"

namespace tripline {

class SecretBox {
 public:
  static Result<SecretBox> load_or_create(const std::string& dir, const char* env_key);
  static SecretBox from_key(std::string key);  // for tests: 32 raw bytes

  std::string seal(const std::string& plaintext) const;
  std::optional<std::string> open(const std::string& sealed) const;
  static bool is_sealed(const std::string& value);

 private:
  std::string key_;
};

inline constexpr const char* kRedacted = "********";

// The top-level config properties the driver's schema marks writeOnly.
std::vector<std::string> secret_fields(const Driver& driver);

// Seals every secret field (a client's value is always treated as plaintext). `previous` (a stored config, may be null)
// supplies the sealed value for a secret sent back as kRedacted or left out, so clients can
// edit a receiver without re-entering its secrets.
nlohmann::json seal_config(const nlohmann::json& config, const std::vector<std::string>& fields,
                           const SecretBox& box, const nlohmann::json& previous = nullptr);
// Opens every sealed field; Internal when one cannot be opened (wrong key).
Result<nlohmann::json> open_config(const nlohmann::json& stored,
                                   const std::vector<std::string>& fields, const SecretBox& box);
// Replaces every secret field present with kRedacted.
nlohmann::json redact_config(const nlohmann::json& config, const std::vector<std::string>& fields);

}  // namespace tripline
