#include "admin_auth.h"

#include <algorithm>

#include "crypto.h"

namespace tripline {

std::string new_secret_token() {
  return "tl_" + crypto::base64url_encode(crypto::random_bytes(32));
}

Status AdminAuth::reload() {
  auto rows = store_.list_admin_tokens();
  if (!rows.ok()) return rows.status();
  std::vector<std::string> hashes;
  for (const auto& row : *rows) hashes.push_back(row.token_hash);
  std::lock_guard lock(mu_);
  hashes_ = std::move(hashes);
  return Status::Ok();
}

void AdminAuth::forget(const std::string& token_hash) {
  std::lock_guard lock(mu_);
  hashes_.erase(std::remove(hashes_.begin(), hashes_.end(), token_hash), hashes_.end());
}

bool AdminAuth::check(std::string_view authorization) const {
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size() || authorization.size() > 512) return false;
  for (size_t i = 0; i < kBearer.size(); ++i)
    if (tolower(authorization[i]) != tolower(kBearer[i])) return false;
  auto digest = crypto::sha256(authorization.substr(kBearer.size()));
  std::string_view presented = crypto::view(digest);
  std::lock_guard lock(mu_);
  bool match = false;
  for (const auto& h : hashes_) match |= crypto::constant_time_equal(presented, h);
  return match;
}

Result<std::pair<AdminTokenRow, std::string>> AdminAuth::create(const std::string& name) {
  std::string token = new_secret_token();
  auto row = store_.insert_admin_token(name, std::string(crypto::view(crypto::sha256(token))));
  if (!row.ok()) return row.status();
  if (Status s = reload(); !s.ok()) return s;
  return std::make_pair(*row, token);
}

Result<int> AdminAuth::use_env_token(const std::string& token) {
  auto revoked = store_.replace_env_admin_token("from TRIPLINE_ADMIN_TOKEN",
                                                std::string(crypto::view(crypto::sha256(token))));
  if (!revoked.ok()) return revoked.status();
  if (Status s = reload(); !s.ok()) return s;
  return revoked;
}

bool AdminAuth::empty() const {
  std::lock_guard lock(mu_);
  return hashes_.empty();
}

}  // namespace tripline
