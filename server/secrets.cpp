#include "secrets.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "crypto.h"

namespace tripline {

namespace {
constexpr std::string_view kPrefix = "sealed:v1:";
constexpr size_t kNonce = 12, kTag = 16;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
}  // namespace

SecretBox SecretBox::from_key(std::string key) {
  SecretBox b;
  b.key_ = std::move(key);
  return b;
}

Result<SecretBox> SecretBox::load_or_create(const std::string& dir, const char* env_key) {
  if (env_key && *env_key) {
    auto key = crypto::unhex(env_key);
    if (!key || key->size() != 32) return Status::Invalid("TRIPLINE_SECRET_KEY must be 64 hex digits");
    return from_key(*key);
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create " + dir + ": " + std::strerror(errno));
  std::string path = dir + "/secrets.key";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    std::string text = crypto::hex(crypto::random_bytes(32)) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return Status::Internal("cannot write " + path);
  } else if (errno != EEXIST) {
    return Status::Internal("cannot create " + path + ": " + std::strerror(errno));
  }
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  char buf[80];
  ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
  if (fd >= 0) ::close(fd);
  auto key = crypto::unhex(std::string_view(buf, n >= 64 ? 64 : 0));
  if (!key || key->size() != 32) return Status::Internal(path + " does not hold a 256-bit hex key");
  return from_key(*key);
}

bool SecretBox::is_sealed(const std::string& v) { return v.rfind(kPrefix, 0) == 0; }

std::string SecretBox::seal(const std::string& plaintext) const {
  std::string nonce = crypto::random_bytes(kNonce);
  std::string out(plaintext.size() + kTag, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0, total = 0;
  auto* u = reinterpret_cast<unsigned char*>(out.data());
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()),
                     reinterpret_cast<const unsigned char*>(nonce.data()));
  EVP_EncryptUpdate(ctx.get(), u, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                    int(plaintext.size()));
  total = len;
  EVP_EncryptFinal_ex(ctx.get(), u + total, &len);
  total += len;
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, u + total);
  return std::string(kPrefix) + crypto::base64url_encode(nonce + out);
}

std::optional<std::string> SecretBox::open(const std::string& sealed) const {
  if (!is_sealed(sealed)) return std::nullopt;
  auto raw = crypto::base64url_decode(std::string_view(sealed).substr(kPrefix.size()));
  if (!raw || raw->size() < kNonce + kTag) return std::nullopt;
  size_t n = raw->size() - kNonce - kTag;
  std::string out(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  auto* in = reinterpret_cast<unsigned char*>(raw->data());
  int len = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key_.data()), in);
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in + kNonce, int(n));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, in + kNonce + n);
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return std::nullopt;
  return out;
}

std::vector<std::string> secret_fields(const Driver& driver) {
  std::vector<std::string> out;
  auto schema = driver.config_schema();
  if (auto props = schema.find("properties"); props != schema.end() && props->is_object())
    for (const auto& [name, prop] : props->items())
      if (prop.is_object() && prop.value("writeOnly", false)) out.push_back(name);
  return out;
}

nlohmann::json seal_config(const nlohmann::json& config, const std::vector<std::string>& fields,
                           const SecretBox& box, const nlohmann::json& previous) {
  nlohmann::json out = config;
  if (!out.is_object()) return out;
  for (const auto& f : fields) {
    auto it = out.find(f);
    bool keep_previous = it == out.end() || (it->is_string() && *it == kRedacted);
    if (keep_previous) {
      if (previous.is_object() && previous.contains(f)) out[f] = previous[f];
      else if (it != out.end()) out.erase(f);
      continue;
    }
    // Whatever a client sends is plaintext, even if it looks sealed: only values we stored
    // ourselves (from `previous`) are kept sealed as they are.
    if (it->is_string()) *it = box.seal(*it);
  }
  return out;
}

Result<nlohmann::json> open_config(const nlohmann::json& stored,
                                   const std::vector<std::string>& fields, const SecretBox& box) {
  nlohmann::json out = stored;
  if (!out.is_object()) return out;
  for (const auto& f : fields) {
    auto it = out.find(f);
    if (it == out.end() || !it->is_string() || !SecretBox::is_sealed(*it)) continue;
    auto plain = box.open(*it);
    if (!plain) return Status::Internal("secret " + f + " cannot be decrypted: wrong secrets key?");
    *it = *plain;
  }
  return out;
}

nlohmann::json redact_config(const nlohmann::json& config, const std::vector<std::string>& fields) {
  nlohmann::json out = config;
  if (!out.is_object()) return out;
  for (const auto& f : fields)
    if (out.contains(f)) out[f] = kRedacted;
  return out;
}

}  // namespace tripline
