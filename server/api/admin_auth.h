// Management API credentials. Tokens are 256-bit random strings shown once; only their SHA-256
// is stored (in the database and here). Checking hashes the presented token and compares it with
// every known hash in constant time, so no early exit tells how close a guess came; the match
// resolves to the token's id, name and role from memory (no database read on the request path).
// Thread safety: check() may run concurrently with reload().
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store.h"

namespace tripline {

// Who sent a management request: the admin token it presented (never the token itself).
struct Principal {
  int64_t id = 0;
  std::string name;
  Role role = Role::kReadOnly;
};

class AdminAuth {
 public:
  explicit AdminAuth(Store& store) : store_(store) {}
  Status reload();
  // Drops one credential from memory at once (a revoked token), whatever a reload does.
  void forget(const std::string& token_hash);
  // `authorization` is the raw Authorization header ("Bearer <token>"). nullopt: no valid token.
  std::optional<Principal> check(std::string_view authorization) const;

  // Creates a token with `role`, stores its hash (and `audit`, in the same transaction) and
  // returns the token (the only time it is visible).
  Result<std::pair<AdminTokenRow, std::string>> create(const std::string& name,
                                                       Role role = Role::kAdmin,
                                                       const AuditEntry* audit = nullptr);
  // Makes `token` (TRIPLINE_ADMIN_TOKEN) the one managed "from environment" token, an admin: a
  // token stored from an earlier value of the variable is revoked. Answers how many were revoked.
  Result<int> use_env_token(const std::string& token, const AuditEntry* audit = nullptr);
  bool empty() const;

 private:
  struct Known {
    std::string hash;
    Principal who;
  };
  Store& store_;
  std::mutex reload_mu_;  // orders reloads and forgets (reload())
  mutable std::mutex mu_;
  std::vector<Known> known_;
};

// "tl_" + base64url(32 random bytes).
std::string new_secret_token();

}  // namespace tripline
