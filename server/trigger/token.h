// Trigger tokens: the capability carried by a trigger URL.
//
// Format: JWS compact serialization (RFC 7515), HS256, so standard tools can read it:
//   base64url(header) "." base64url(claims) "." base64url(HMAC-SHA256(key, header "." claims))
//   header = {"alg":"HS256","kid":"<key id>","typ":"JWT"}
//   claims = {"rid":<receiver id>,"gen":<generation>,"rn":"<receiver nonce>","drv":"<driver>",
//             "tgt":"<target>","act":"<action>"}
//   "rn" is a random value made when the receiver is created (left out for receivers created
//   before it existed), so a token names one receiver for good: no later receiver, not even one
//   in a database recreated next to the same keys, is ever issued the same URL.
//
// Verification accepts only the exact header bytes this server issues for one of its keys, so
// there is no algorithm negotiation at all (`alg: none`, RS/HS confusion and `crit` cannot get
// in). Every segment must be canonical unpadded base64url, and the signature is compared in
// constant time. A valid signature says only that this server issued the claims: the caller must
// still check them against the receiver's current generation (see ReceiverCache).
//
// Keys live in <data-dir>/keys/<kid>.key (hex of 32 random bytes, mode 0600). All keys verify;
// the newest (greatest kid, which sorts by creation time) signs.
//
// Thread safety: a Keyring is immutable after load and may be shared by all threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto.h"
#include "status.h"

namespace tripline {

struct TokenClaims {
  int64_t receiver_id = 0;
  int64_t generation = 0;
  std::string driver;
  std::string target;
  std::string action;
  std::string nonce;  // "" for receivers created before nonces
  bool operator==(const TokenClaims&) const = default;
};

enum class TokenError {
  kNone,
  kMalformed,     // not three canonical base64url segments, too long, or bad claims JSON
  kUnknownKey,    // header is not one this server issues (other alg, unknown kid, altered)
  kBadSignature,  // signature does not match
};
const char* to_string(TokenError e);

class Keyring {
 public:
  struct Key {
    std::string kid;
    std::string secret;          // 32 raw bytes
    std::string encoded_header;  // base64url of the exact header issued with this key
    std::shared_ptr<const crypto::HmacKey> hmac;
  };

  // Loads every key in `dir`, creating the directory (0700) and a first key when none exists.
  static Result<Keyring> load_or_create(const std::string& dir);
  // Adds a new newest key to `dir`; returns its kid. Old keys keep verifying.
  static Result<std::string> add_key(const std::string& dir);
  // For tests: a keyring from explicit keys, newest last.
  static Keyring from_keys(std::vector<std::pair<std::string, std::string>> kid_secret);

  std::string sign(const TokenClaims& claims) const;
  TokenError verify(std::string_view token, TokenClaims* out) const;

  const std::vector<Key>& keys() const { return keys_; }

 private:
  std::vector<Key> keys_;  // sorted by kid; back() signs
};

// Length cap applied before any work: a token is never longer than this.
inline constexpr size_t kMaxTokenLength = 1024;

}  // namespace tripline
