#include "inbound_auth.h"

#include <openssl/evp.h>

#include <charconv>
#include <optional>

#include "field_reader.h"

namespace tripline {

using nlohmann::json;

const char* to_string(AuthFailure f) {
  switch (f) {
    case AuthFailure::kNone:
      return "none";
    case AuthFailure::kSourceNotAllowed:
      return "source_not_allowed";
    case AuthFailure::kMissingCredential:
      return "missing_credential";
    case AuthFailure::kBadCredential:
      return "bad_credential";
    case AuthFailure::kBadSignature:
      return "bad_signature";
    case AuthFailure::kStaleTimestamp:
      return "stale_timestamp";
  }
  return "other";
}

namespace {

const std::vector<std::string> kSealed = {"github_secret", "standard_webhooks_secret",
                                          "link_secret"};
const std::vector<std::string> kHashed = {"bearer_token", "basic_password"};
constexpr std::string_view kHashedPrefix = "hashed:";

std::string salted_hash(std::string_view salt, std::string_view secret) {
  std::string input(salt);
  input += secret;
  return crypto::hex(crypto::view(crypto::sha256(input)));
}

// "hashed:<salt hex>:<sha256 hex>" against a presented secret, in constant time.
bool matches_hash(const std::string& stored, std::string_view presented) {
  auto colon = stored.find(':', kHashedPrefix.size());
  if (stored.rfind(kHashedPrefix, 0) != 0 || colon == std::string::npos) return false;
  auto salt = crypto::unhex(
      std::string_view(stored).substr(kHashedPrefix.size(), colon - kHashedPrefix.size()));
  if (!salt) return false;
  return crypto::constant_time_equal(salted_hash(*salt, presented),
                                     std::string_view(stored).substr(colon + 1));
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::shared_ptr<const crypto::HmacKey> whsec_key(const std::string& secret) {
  auto key = whsec_key_bytes(secret);
  return key ? std::make_shared<const crypto::HmacKey>(*key) : nullptr;
}

}  // namespace

Result<json> InboundAuth::prepare_for_storage(const json& auth, const json& previous,
                                              const SecretBox& box) {
  if (auth.is_null()) return json(nullptr);
  using Need = FieldReader::Need;
  if (!auth.is_object())
    return Status::Invalid("auth must be an object", {{"auth", "must be an object"}});
  FieldReader r(auth, "auth.");
  std::vector<std::string_view> secrets(kSealed.begin(), kSealed.end());
  secrets.insert(secrets.end(), kHashed.begin(), kHashed.end());
  std::vector<std::string_view> known = secrets;
  known.insert(known.end(), {"basic_username", "allow_sources", "tolerance_seconds"});
  r.reject_unknown(known, "is not an auth field");
  secrets.push_back("basic_username");
  auto non_empty = [](const std::string& v) { return !v.empty(); };
  std::optional<std::string> standard;
  for (std::string_view k : secrets) {
    auto v = r.string(k, Need::kOptional, "must be a non-empty string", non_empty);
    if (k == "standard_webhooks_secret") standard = v;
  }
  r.strings("allow_sources", Need::kOptional, "must be a list of addresses or CIDR ranges",
            "is not an address or CIDR range",
            [](const std::string& c) { return Cidr::parse(c).has_value(); });
  r.integer("tolerance_seconds", Need::kOptional, 1, 3600, "must be 1 to 3600");
  if (standard && *standard != kRedacted && !whsec_key(*standard))
    r.error("standard_webhooks_secret", "must be whsec_ followed by base64");
  if (auth.contains("basic_password") != auth.contains("basic_username") &&
      !(previous.is_object() && previous.contains("basic_password")))
    r.error("basic_username", "and basic_password go together");
  if (!r.ok()) return r.status();

  json out = seal_config(auth, kSealed, box, previous);
  for (const auto& f : kHashed) {
    auto it = out.find(f);
    if (it == out.end() || *it == kRedacted) {
      if (previous.is_object() && previous.contains(f))
        out[f] = previous[f];
      else if (it != out.end())
        out.erase(f);
      continue;
    }
    std::string salt = crypto::random_bytes(16);
    *it = std::string(kHashedPrefix) + crypto::hex(salt) + ":" +
          salted_hash(salt, it->get<std::string>());
  }
  return out;
}

const std::vector<std::string>& InboundAuth::sealed_fields() { return kSealed; }

json InboundAuth::redact(const json& stored) {
  json out = redact_config(stored, kSealed);
  return redact_config(out, kHashed);
}

Result<std::shared_ptr<const InboundAuth>> InboundAuth::compile(const json& stored,
                                                                const SecretBox& box) {
  auto a = std::make_shared<InboundAuth>();
  if (stored.is_null() || (stored.is_object() && stored.empty()))
    return std::shared_ptr<const InboundAuth>(a);
  auto plain = open_config(stored, kSealed, box);
  if (!plain.ok()) return plain.status();
  const json& j = *plain;
  a->empty_ = false;
  for (const auto& c : j.value("allow_sources", json::array()))
    a->allow_sources_.push_back(*Cidr::parse(c.get<std::string>()));
  if (j.contains("github_secret"))
    a->github_ = std::make_shared<const crypto::HmacKey>(j["github_secret"].get<std::string>());
  if (j.contains("standard_webhooks_secret"))
    a->standard_ = whsec_key(j["standard_webhooks_secret"]);
  if (j.contains("link_secret"))
    a->link_ = std::make_shared<const crypto::HmacKey>(j["link_secret"].get<std::string>());
  a->bearer_hash_ = j.value("bearer_token", "");
  a->basic_user_ = j.value("basic_username", "");
  a->basic_hash_ = j.value("basic_password", "");
  a->tolerance_s_ = j.value("tolerance_seconds", 300);
  return std::shared_ptr<const InboundAuth>(a);
}

AuthFailure InboundAuth::check(const InboundRequest& req, std::string_view source, int64_t now_s,
                               std::string* message_key) const {
  message_key->clear();
  if (empty_) return AuthFailure::kNone;
  if (!allow_sources_.empty()) {
    bool allowed = false;
    for (const auto& c : allow_sources_) allowed |= c.contains(source);
    if (!allowed) return AuthFailure::kSourceNotAllowed;
  }
  const std::string_view body = req.body();
  auto fresh = [&](const std::optional<std::string>& ts) -> AuthFailure {
    auto t = ts ? parse_int(*ts) : std::nullopt;
    if (!t) return AuthFailure::kMissingCredential;
    if (*t < now_s - tolerance_s_ || *t > now_s + tolerance_s_) return AuthFailure::kStaleTimestamp;
    return AuthFailure::kNone;
  };
  // All configured schemes must verify. The key: the Standard Webhooks id when that scheme is
  // configured (a real message id, kept across the sender's retries), else the first MAC.
  std::string key;

  if (github_) {
    auto sig = req.header("X-Hub-Signature-256");
    if (!sig) return AuthFailure::kMissingCredential;
    std::string expected = "sha256=" + crypto::hex(crypto::view(github_->mac(body)));
    if (!crypto::constant_time_equal(expected, *sig)) return AuthFailure::kBadSignature;
    // X-GitHub-Delivery is not signed: the body's MAC is the message's identity.
    if (key.empty()) key = "gh:" + expected.substr(7);
  }
  if (standard_) {
    auto id = req.header("webhook-id"), ts = req.header("webhook-timestamp"),
         sigs = req.header("webhook-signature");
    if (!id || !ts || !sigs) return AuthFailure::kMissingCredential;
    if (id->empty() || id->size() > 200) return AuthFailure::kBadCredential;
    if (AuthFailure f = fresh(ts); f != AuthFailure::kNone) return f;
    std::string signed_content = *id + "." + *ts + ".";
    signed_content.append(body);
    std::string expected = crypto::base64_encode(crypto::view(standard_->mac(signed_content)));
    bool match = false;
    std::string_view list = *sigs;
    while (!list.empty()) {
      auto space = list.find(' ');
      std::string_view one = list.substr(0, space);
      list = space == std::string_view::npos ? std::string_view() : list.substr(space + 1);
      if (one.rfind("v1,", 0) == 0) match |= crypto::constant_time_equal(one.substr(3), expected);
    }
    if (!match) return AuthFailure::kBadSignature;
    // Signed: a sender's retry keeps its webhook-id (and re-signs with a new timestamp).
    key = "sw:" + *id;
  }
  if (link_) {
    auto ts = req.header("X-Link-Webhook-Timestamp"), sig = req.header("X-Link-Webhook-Signature");
    if (!ts || !sig) return AuthFailure::kMissingCredential;
    if (AuthFailure f = fresh(ts); f != AuthFailure::kNone) return f;
    std::string signed_content = *ts + ".";
    signed_content.append(body);
    std::string expected = crypto::hex(crypto::view(link_->mac(signed_content)));
    if (!crypto::constant_time_equal(expected, *sig)) return AuthFailure::kBadSignature;
    if (key.empty()) key = "link:" + expected;
  }
  if (!bearer_hash_.empty() || !basic_hash_.empty()) {
    auto authz = req.header("Authorization");
    if (!authz) return AuthFailure::kMissingCredential;
    std::string_view a = *authz;
    bool ok = false;
    if (!bearer_hash_.empty() && a.size() > 7 && a.substr(0, 7) == "Bearer ")
      ok = matches_hash(bearer_hash_, a.substr(7));
    if (!ok && !basic_hash_.empty() && a.size() > 6 && a.substr(0, 6) == "Basic ") {
      if (auto decoded = crypto::base64_decode(a.substr(6))) {
        auto colon = decoded->find(':');
        if (colon != std::string::npos)
          ok = crypto::constant_time_equal(decoded->substr(0, colon), basic_user_) &
               matches_hash(basic_hash_, std::string_view(*decoded).substr(colon + 1));
      }
    }
    if (!ok) return AuthFailure::kBadCredential;
  }
  *message_key = std::move(key);
  return AuthFailure::kNone;
}

}  // namespace tripline
