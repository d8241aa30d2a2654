#include "admin_auth.h"

#include <algorithm>

#include "crypto.h"

namespace tripline {

std::string new_secret_token() {
  return "tl_" + crypto::base64url_encode(crypto::random_bytes(32));
}

Status AdminAuth::reload() {
  // Held from the read to the swap: two reloads racing could otherwise publish the older list
  // last, bringing back a token revoked or demoted in between.
  std::lock_guard order(reload_mu_);
  auto rows = store_.list_admin_tokens();
  if (!rows.ok()) return rows.status();
  std::vector<Known> known;
  for (const auto& row : *rows) known.push_back({row.token_hash, {row.id, row.name, row.role}});
  std::lock_guard lock(mu_);
  known_ = std::move(known);
  return Status::Ok();
}

void AdminAuth::forget(const std::string& token_hash) {
  // After any reload that read the list before the revocation committed has published it.
  std::lock_guard order(reload_mu_);
  std::lock_guard lock(mu_);
  known_.erase(std::remove_if(known_.begin(), known_.end(),
                              [&](const Known& k) { return k.hash == token_hash; }),
               known_.end());
}

std::optional<Principal> AdminAuth::check(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() || authorization.size() > 512) return std::nullopt;
  for (size_t i = 0; i < kBearer.size(); ++i)
    if (tolower(authorization[i]) != tolower(kBearer[i])) return std::nullopt;
  auto digest = crypto::sha256(authorization.substr(kBearer.size()));
  std::string_view presented = crypto::view(digest);
  std::lock_guard lock(mu_);
  // Every hash is compared, and the match is picked by masking, not by branching on it: the
  // time taken does not depend on which token (if any) matched. Hashes are unique (the table's
  // UNIQUE constraint), so at most one matches.
  size_t index = 0;
  size_t match = 0;
  for (size_t i = 0; i < known_.size(); ++i) {
    size_t eq = crypto::constant_time_equal(presented, known_[i].hash) ? 1 : 0;
    size_t mask = size_t(0) - eq;
    index = (index & ~mask) | (i & mask);
    match |= eq;
  }
  if (!match) return std::nullopt;
  return known_[index].who;
}

Result<std::pair<AdminTokenRow, std::string>> AdminAuth::create(const std::string& name, Role role,
                                                                const AuditEntry* audit) {
  std::string token = new_secret_token();
  auto row = store_.insert_admin_token(name, std::string(crypto::view(crypto::sha256(token))), role,
                                       audit);
  if (!row.ok()) return row.status();
  if (Status s = reload(); !s.ok()) return s;
  return std::make_pair(*row, token);
}

Result<int> AdminAuth::use_env_token(const std::string& token, const AuditEntry* audit) {
  auto revoked = store_.replace_env_admin_token(
      "from TRIPLINE_ADMIN_TOKEN", std::string(crypto::view(crypto::sha256(token))), audit);
  if (!revoked.ok()) return revoked.status();
  if (Status s = reload(); !s.ok()) return s;
  return revoked;
}

bool AdminAuth::empty() const {
  std::lock_guard lock(mu_);
  return known_.empty();
}

}  // namespace tripline
