// Small wrappers over OpenSSL: randomness, HMAC-SHA256, SHA-256, base64, strict base64url, hex and
// constant-time comparison. All functions are thread-safe.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_mac_ctx_st;

namespace tripline::crypto {

using Digest = std::array<unsigned char, 32>;

// Cryptographically secure random bytes (RAND_bytes). Throws std::runtime_error on failure.
std::string random_bytes(size_t n);

Digest hmac_sha256(std::string_view key, std::string_view data);

// HMAC-SHA256 under a fixed key, set up once: each mac() copies the keyed state instead of
// fetching the algorithm and absorbing the key again (the token check on every trigger).
class HmacKey {
 public:
  explicit HmacKey(std::string_view key);
  Digest mac(std::string_view data) const;

 private:
  std::shared_ptr<evp_mac_ctx_st> keyed_;  // EVP_MAC_CTX, never modified after construction
};
Digest sha256(std::string_view data);

// Compares in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

std::string base64url_encode(std::string_view bytes);
// Strict: only [A-Za-z0-9_-], no padding, and unused trailing bits must be zero, so every byte
// string has exactly one accepted encoding (no malleability).
std::optional<std::string> base64url_decode(std::string_view text);

// Standard base64 (RFC 4648 section 4, padded), as Standard Webhooks signatures and secrets use it.
std::string base64_encode(std::string_view bytes);
// Padded input only; nullopt when it is not base64.
std::optional<std::string> base64_decode(std::string_view text);

std::string hex(std::string_view bytes);
std::optional<std::string> unhex(std::string_view text);

inline std::string_view view(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace tripline::crypto
