#include "secrets.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "crypto.h"

namespace tripline {

namespace {
constexpr std::string_view kPrefixV1 = "sealed:v1:";
constexpr std::string_view kPrefixV2 = "sealed:v2:";
constexpr size_t kNonce = 12, kTag = 16, kKidLength = 8;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;
const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Key files hold 64 hex digits (secrets.key) or one such line per key (secrets.key.previous).
// Like the signing keys (token.cpp), a file group or others may read is refused.
Result<std::vector<std::string>> read_key_file(const std::string& path, bool must_exist) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !must_exist) return std::vector<std::string>{};
    return Status::Internal("cannot read " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || (st.st_mode & 077) != 0) {
    ::close(fd);
    return Status::Internal(path + " is readable by group or others; chmod 600 it");
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1 << 16))
    text.append(buf, size_t(n));
  ::close(fd);
  std::vector<std::string> keys;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line = std::string_view(text).substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back())))
      line.remove_suffix(1);
    start = end + 1;
    if (line.empty()) continue;
    auto key = crypto::unhex(line);
    if (!key || key->size() != 32)
      return Status::Internal(path + " does not hold 256-bit hex keys, one per line");
    keys.push_back(*key);
  }
  if (must_exist && keys.size() != 1)
    return Status::Internal(path + " does not hold a 256-bit hex key");
  return keys;
}

std::optional<std::string> open_with(std::string_view key, std::string_view raw,
                                     std::string_view aad) {
  if (raw.size() < kNonce + kTag) return std::nullopt;
  size_t n = raw.size() - kNonce - kTag;
  std::string out(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  auto* in = bytes(raw);
  int len = 0;
  EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), in);
  if (!aad.empty()) EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), int(aad.size()));
  EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in + kNonce,
                    int(n));
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                      const_cast<unsigned char*>(in + kNonce + n));
  if (EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) != 1)
    return std::nullopt;
  return out;
}
}  // namespace

std::string SecretBox::key_id(std::string_view key) {
  std::string input = "tripline secrets key id";
  input.push_back('\0');
  input.append(key);
  return crypto::hex(crypto::view(crypto::sha256(input))).substr(0, kKidLength);
}

SecretBox SecretBox::from_key(std::string key, std::vector<std::string> previous) {
  SecretBox b;
  b.keys_.emplace_back(key_id(key), std::move(key));
  for (auto& k : previous) {
    std::string kid = key_id(k);
    bool known = false;
    for (const auto& [id, _] : b.keys_) known |= id == kid;
    if (!known) b.keys_.emplace_back(std::move(kid), std::move(k));
  }
  return b;
}

std::vector<std::string> SecretBox::key_ids() const {
  std::vector<std::string> out;
  for (const auto& [kid, _] : keys_) out.push_back(kid);
  return out;
}

std::string SecretBox::current_key_hex() const { return crypto::hex(keys_.front().second); }

Result<SecretBox> SecretBox::load_or_create(const std::string& dir, const char* env_key,
                                            const char* env_previous) {
  std::vector<std::string> previous;
  if (env_previous && *env_previous) {
    std::string_view list(env_previous);
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      if (item.empty()) continue;
      auto key = crypto::unhex(item);
      if (!key || key->size() != 32)
        return Status::Invalid(
            "TRIPLINE_SECRET_KEY_PREVIOUS must be keys of 64 hex digits, separated by commas");
      previous.push_back(*key);
    }
  }
  auto file_previous = read_key_file(dir + "/secrets.key.previous", /*must_exist=*/false);
  if (!file_previous.ok()) return file_previous.status();
  for (auto& k : *file_previous) previous.push_back(std::move(k));

  if (env_key && *env_key) {
    auto key = crypto::unhex(env_key);
    if (!key || key->size() != 32)
      return Status::Invalid("TRIPLINE_SECRET_KEY must be 64 hex digits");
    return from_key(*key, std::move(previous));
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
  auto key = read_key_file(path, /*must_exist=*/true);
  if (!key.ok()) return key.status();
  return from_key(key->front(), std::move(previous));
}

bool SecretBox::is_sealed(const std::string& v) {
  return v.rfind(kPrefixV2, 0) == 0 || v.rfind(kPrefixV1, 0) == 0;
}

std::string SecretBox::key_id_of(const std::string& sealed) {
  if (sealed.rfind(kPrefixV2, 0) != 0 || sealed.size() < kPrefixV2.size() + kKidLength + 1 ||
      sealed[kPrefixV2.size() + kKidLength] != ':')
    return {};
  return sealed.substr(kPrefixV2.size(), kKidLength);
}

bool SecretBox::sealed_with_current_key(const std::string& sealed) const {
  return key_id_of(sealed) == current_key_id();
}

std::string SecretBox::seal(const std::string& plaintext) const {
  const auto& [kid, key] = keys_.front();
  std::string header = std::string(kPrefixV2) + kid;
  std::string nonce = crypto::random_bytes(kNonce);
  std::string out(plaintext.size() + kTag, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0, total = 0;
  auto* u = reinterpret_cast<unsigned char*>(out.data());
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce));
  EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(header), int(header.size()));
  EVP_EncryptUpdate(ctx.get(), u, &len, bytes(plaintext), int(plaintext.size()));
  total = len;
  EVP_EncryptFinal_ex(ctx.get(), u + total, &len);
  total += len;
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, u + total);
  return header + ":" + crypto::base64url_encode(nonce + out);
}

std::optional<std::string> SecretBox::open(const std::string& sealed) const {
  if (sealed.rfind(kPrefixV1, 0) == 0) {
    auto raw = crypto::base64url_decode(std::string_view(sealed).substr(kPrefixV1.size()));
    if (!raw) return std::nullopt;
    for (const auto& [_, key] : keys_)  // v1 names no key: try each
      if (auto plain = open_with(key, *raw, {})) return plain;
    return std::nullopt;
  }
  std::string kid = key_id_of(sealed);
  if (kid.empty()) return std::nullopt;
  const size_t header = kPrefixV2.size() + kKidLength;
  auto raw = crypto::base64url_decode(std::string_view(sealed).substr(header + 1));
  if (!raw) return std::nullopt;
  for (const auto& [id, key] : keys_)
    if (id == kid) return open_with(key, *raw, std::string_view(sealed).substr(0, header));
  return std::nullopt;
}

nlohmann::json seal_config(const nlohmann::json& config, const std::vector<std::string>& fields,
                           const SecretBox& box, const nlohmann::json& previous) {
  nlohmann::json out = config;
  if (!out.is_object()) return out;
  for (const auto& f : fields) {
    auto it = out.find(f);
    bool keep_previous = it == out.end() || (it->is_string() && *it == kRedacted);
    if (keep_previous) {
      if (previous.is_object() && previous.contains(f))
        out[f] = previous[f];
      else if (it != out.end())
        out.erase(f);
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
    if (!plain) {
      std::string kid = SecretBox::key_id_of(*it);
      return Status::Internal(
          "secret " + f + " cannot be decrypted: " +
          (kid.empty() ? std::string("none of the secrets keys opens it")
                       : "it was sealed with key " + kid + ", which is not configured"));
    }
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

nlohmann::json redact_sealed(nlohmann::json j) {
  if (j.is_string() && SecretBox::is_sealed(j.get<std::string>())) return kRedacted;
  if (j.is_object() || j.is_array())
    for (auto& v : j) v = redact_sealed(std::move(v));
  return j;
}

}  // namespace tripline
