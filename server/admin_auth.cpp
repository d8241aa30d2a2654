#include "admin_auth.h"

#include "crypto.h"

namespace tripline {

std::string new_secret_token() { return "tl_" + crypto::base64url_encode(crypto::random_bytes(32)); }

void AdminAuth::reload() {
  std::vector<std::string> hashes;
  for (const auto& row : store_.list_admin_tokens()) hashes.push_back(row.token_hash);
  std::lock_guard lock(mu_);
  hashes_ = std::move(hashes);
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
  reload();
  return std::make_pair(*row, token);
}

Status AdminAuth::ensure(const std::string& name, const std::string& token) {
  std::string hash(crypto::view(crypto::sha256(token)));
  for (const auto& row : store_.list_admin_tokens())
    if (crypto::constant_time_equal(row.token_hash, hash)) return Status::Ok();
  auto row = store_.insert_admin_token(name, hash);
  if (!row.ok()) return row.status();
  reload();
  return Status::Ok();
}

bool AdminAuth::empty() const {
  std::lock_guard lock(mu_);
  return hashes_.empty();
}

}  // namespace tripline
