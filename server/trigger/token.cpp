#include "token.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>

#include "crypto.h"

namespace tripline {

const char* to_string(TokenError e) {
  switch (e) {
    case TokenError::kNone:
      return "none";
    case TokenError::kMalformed:
      return "malformed_token";
    case TokenError::kUnknownKey:
      return "unknown_key";
    case TokenError::kBadSignature:
      return "bad_signature";
  }
  return "unknown";
}

namespace {

Keyring::Key make_key(std::string kid, std::string secret) {
  nlohmann::json header = {{"alg", "HS256"}, {"kid", kid}, {"typ", "JWT"}};
  std::string encoded = crypto::base64url_encode(header.dump());
  auto hmac = std::make_shared<const crypto::HmacKey>(secret);
  return Keyring::Key{std::move(kid), std::move(secret), std::move(encoded), std::move(hmac)};
}

// Key ids are "k" + creation time + "-" + random hex, as write_new_key makes them.
bool valid_kid(std::string_view kid) {
  if (kid.size() < 2 || kid.size() > 64 || kid[0] != 'k') return false;
  return std::all_of(kid.begin(), kid.end(),
                     [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

Status write_new_key(const std::string& dir, std::string* kid_out) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "k%Y%m%d%H%M%S", &tm);
  std::string kid = std::string(stamp) + "-" + crypto::hex(crypto::random_bytes(3));
  std::string path = dir + "/" + kid + ".key";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Internal("cannot create " + path + ": " + std::strerror(errno));
  std::string content = crypto::hex(crypto::random_bytes(32)) + "\n";
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal("cannot write " + path);
  *kid_out = kid;
  return Status::Ok();
}

}  // namespace

Keyring Keyring::from_keys(std::vector<std::pair<std::string, std::string>> kid_secret) {
  Keyring k;
  for (auto& [kid, secret] : kid_secret) k.keys_.push_back(make_key(kid, secret));
  std::sort(k.keys_.begin(), k.keys_.end(),
            [](const Key& a, const Key& b) { return a.kid < b.kid; });
  return k;
}

Result<std::string> Keyring::add_key(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create " + dir + ": " + std::strerror(errno));
  std::string kid;
  Status s = write_new_key(dir, &kid);
  if (!s.ok()) return s;
  return kid;
}

Result<Keyring> Keyring::load_or_create(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create " + dir + ": " + std::strerror(errno));
  auto read_all = [&]() -> Result<Keyring> {
    std::vector<std::pair<std::string, std::string>> found;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return Status::Internal("cannot open " + dir + ": " + std::strerror(errno));
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".key") != 0) continue;
      std::string kid = name.substr(0, name.size() - 4);
      if (!valid_kid(kid)) continue;
      std::string path = dir + "/" + name;
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        ::closedir(d);
        return Status::Internal(path + " is readable by group or others; chmod 600 it");
      }
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      char buf[128];
      ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
      if (fd >= 0) ::close(fd);
      std::string text(buf, n > 0 ? size_t(n) : 0);
      while (!text.empty() && isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
      auto secret = crypto::unhex(text);
      if (!secret || secret->size() < 32) {
        ::closedir(d);
        return Status::Internal(path + " does not hold a 256-bit hex key");
      }
      found.emplace_back(kid, *secret);
    }
    ::closedir(d);
    return from_keys(std::move(found));
  };
  auto ring = read_all();
  if (!ring.ok() || !ring->keys().empty()) return ring;
  std::string kid;
  Status s = write_new_key(dir, &kid);
  if (!s.ok()) return s;
  return read_all();
}

std::string Keyring::sign(const TokenClaims& c) const {
  const Key& key = keys_.back();
  nlohmann::json claims = {{"rid", c.receiver_id},
                           {"gen", c.generation},
                           {"drv", c.driver},
                           {"tgt", c.target},
                           {"act", c.action}};
  if (!c.nonce.empty()) claims["rn"] = c.nonce;
  std::string payload = crypto::base64url_encode(claims.dump());
  // Sized exactly: tokens are held for every receiver (ReceiverCache), and a string grown by
  // appending keeps up to twice the capacity it needs.
  std::string token;
  token.reserve(key.encoded_header.size() + payload.size() + 2 + 43);  // 43: base64url of 32 bytes
  token += key.encoded_header;
  token += '.';
  token += payload;
  auto mac = key.hmac->mac(token);
  token += '.';
  token += crypto::base64url_encode(crypto::view(mac));
  return token;
}

TokenError Keyring::verify(std::string_view token, TokenClaims* out) const {
  if (token.empty() || token.size() > kMaxTokenLength) return TokenError::kMalformed;
  size_t dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return TokenError::kMalformed;
  size_t dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return TokenError::kMalformed;
  std::string_view header = token.substr(0, dot1);
  std::string_view signing_input = token.substr(0, dot2);
  std::string_view sig_text = token.substr(dot2 + 1);

  const Key* key = nullptr;
  for (const Key& k : keys_)
    if (header == k.encoded_header) key = &k;
  if (!key) return TokenError::kUnknownKey;

  auto sig = crypto::base64url_decode(sig_text);
  if (!sig || sig->size() != 32) return TokenError::kMalformed;
  auto mac = key->hmac->mac(signing_input);
  if (!crypto::constant_time_equal(crypto::view(mac), *sig)) return TokenError::kBadSignature;

  // Only claims this server signed reach the JSON parser.
  auto claims_text = crypto::base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims_text) return TokenError::kMalformed;
  auto j = nlohmann::json::parse(*claims_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return TokenError::kMalformed;
  auto rid = j.find("rid"), gen = j.find("gen"), drv = j.find("drv"), tgt = j.find("tgt"),
       act = j.find("act");
  if (rid == j.end() || !rid->is_number_integer() || gen == j.end() || !gen->is_number_integer() ||
      drv == j.end() || !drv->is_string() || tgt == j.end() || !tgt->is_string() ||
      act == j.end() || !act->is_string())
    return TokenError::kMalformed;
  out->receiver_id = rid->get<int64_t>();
  out->generation = gen->get<int64_t>();
  out->driver = drv->get<std::string>();
  out->target = tgt->get<std::string>();
  out->action = act->get<std::string>();
  out->nonce.clear();
  if (auto rn = j.find("rn"); rn != j.end()) {
    if (!rn->is_string()) return TokenError::kMalformed;
    out->nonce = rn->get<std::string>();
  }
  return TokenError::kNone;
}

}  // namespace tripline
