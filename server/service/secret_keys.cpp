#include "secret_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <set>

#include "crypto.h"
#include "database.h"
#include "inbound_auth.h"
#include "json_limits.h"
#include "token.h"

namespace tripline {

namespace {

const char* where_name(SealedText::Where w) {
  switch (w) {
    case SealedText::Where::kReceiverConfig:
      return "receiver config";
    case SealedText::Where::kReceiverAuth:
      return "receiver auth";
    case SealedText::Where::kExecutionConfig:
      return "execution config";
    case SealedText::Where::kSubscription:
      return "notification subscription";
  }
  return "";
}

// The fields of `t` that hold sealed secrets: what open_config() opens when tripline reads it.
std::vector<std::string> fields_of(const SealedText& t, const DriverRegistry& drivers) {
  if (t.where == SealedText::Where::kReceiverAuth) return InboundAuth::sealed_fields();
  if (t.where == SealedText::Where::kSubscription) return {"secret", "previous_secret"};
  const Driver* d = drivers.find(t.driver);
  return d ? secret_fields(*d) : std::vector<std::string>{};
}

struct Scan {
  int failures = 0;
  std::vector<std::string> places;  // the first few, for the message
  std::set<std::string> unknown_kids;
  bool has_v1 = false;

  void fail(const SealedText& t, const std::string& field, const std::string& sealed) {
    ++failures;
    if (places.size() < 5)
      places.push_back(std::string(where_name(t.where)) + " " + std::to_string(t.id) + " (" +
                       field + ")");
    std::string kid = SecretBox::key_id_of(sealed);
    if (kid.empty())
      has_v1 = true;
    else
      unknown_kids.insert(kid);
  }

  Status status(const SecretBox& box) const {
    std::string msg = std::to_string(failures) +
                      (failures == 1 ? " sealed secret in the database does not open"
                                     : " sealed secrets in the database do not open") +
                      " with the configured secrets key";
    msg += ": ";
    for (size_t i = 0; i < places.size(); ++i) msg += (i ? ", " : "") + places[i];
    if (failures > int(places.size())) msg += ", ...";
    msg += ". They were sealed with ";
    if (!unknown_kids.empty()) {
      msg += "key id";
      for (const auto& k : unknown_kids) msg += " " + k;
      if (has_v1) msg += " and ";
    }
    if (has_v1) msg += "a key of the older format without a key id";
    msg += "; the configured keys are";
    for (const auto& k : box.key_ids())
      msg += " " + k + (k == box.current_key_id() ? " (current)" : "");
    msg +=
        ". Start with TRIPLINE_SECRET_KEY (or DATA_DIR/secrets.key) set to the key they were "
        "sealed with, or give that key in TRIPLINE_SECRET_KEY_PREVIOUS; see docs/secret-keys.md";
    return Status::Internal(msg);
  }
};

// Opens (and with `reseal`, re-seals under the current key) every sealed field of `t`. Answers
// whether the text changed.
bool visit(SealedText& t, const DriverRegistry& drivers, const SecretBox& box, bool reseal,
           Scan& scan, int* resealed) {
  auto parsed = parse_json_bounded(t.text, {kMaxJsonDepth, t.text.size()});
  if (!parsed.ok() || !parsed.value.is_object()) return false;
  nlohmann::json& j = parsed.value;
  bool changed = false;
  for (const std::string& f : fields_of(t, drivers)) {
    auto it = j.find(f);
    if (it == j.end() || !it->is_string() || !SecretBox::is_sealed(*it)) continue;
    const std::string sealed = *it;
    auto plain = box.open(sealed);
    if (!plain) {
      scan.fail(t, f, sealed);
      continue;
    }
    if (reseal && !box.sealed_with_current_key(sealed)) {
      *it = box.seal(*plain);
      changed = true;
      ++*resealed;
    }
  }
  if (changed) t.text = j.dump();
  return changed;
}

Status write_key_file(const std::string& path, const std::string& text, bool append) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return Status::Internal("cannot write " + path + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

// Nothing is written when one does not open.
Result<int> reseal_signing_keys(Store& store, const SecretBox& box, bool reseal) {
  if (!store.shared()) return 0;
  auto keys = store.signing_keys();
  if (!keys.ok()) return keys.status();
  std::vector<std::pair<std::string, std::string>> resealed;
  for (const auto& [kid, sealed] : *keys) {
    auto secret = box.open(sealed);
    if (!secret)
      return Status::Internal("the signing key " + kid +
                              " in the database does not open with the secrets key " +
                              box.current_key_id() + " or a previous one");
    if (!box.sealed_with_current_key(sealed)) resealed.emplace_back(kid, box.seal(*secret));
  }
  if (reseal)
    for (const auto& [kid, sealed] : resealed)
      if (Status s = store.add_signing_key(kid, sealed, /*replace=*/true); !s.ok()) return s;
  return int(resealed.size());
}

Status check_sealed_data(Store& store, const DriverRegistry& drivers, const SecretBox& box) {
  Scan scan;
  int unused = 0;
  auto texts = store.sealed_texts(/*include_finished_executions=*/false);
  if (!texts.ok()) return texts.status();
  for (SealedText& t : texts.value()) visit(t, drivers, box, /*reseal=*/false, scan, &unused);
  return scan.failures ? scan.status(box) : Status::Ok();
}

Result<ResealReport> reseal_all(Store& store, const DriverRegistry& drivers, const SecretBox& box) {
  Scan scan;
  ResealReport report;
  std::vector<SealedText> changed;
  auto texts = store.sealed_texts(/*include_finished_executions=*/true);
  if (!texts.ok()) return texts.status();
  for (SealedText& t : texts.value())
    if (visit(t, drivers, box, /*reseal=*/true, scan, &report.values))
      changed.push_back(std::move(t));
  if (scan.failures) return scan.status(box);
  if (Status s = store.rewrite_sealed_texts(changed); !s.ok()) return s;
  report.rows = int(changed.size());
  return report;
}

Result<std::string> rotate_secret_key(const std::string& data_dir, const DriverEnv& env,
                                      const char* env_key, const char* env_previous,
                                      const std::string& database) {
  DriverRegistry drivers;
  register_drivers(drivers, env);
  auto old_box = SecretBox::load_or_create(data_dir, env_key, env_previous);
  if (!old_box.ok()) return old_box.status();
  const std::string db = database_or_default(data_dir, database);
  auto store = Store::open(db);
  if (!store.ok()) return redact_database_in(store.status(), db);
  const bool from_env = env_key && *env_key;
  std::string line;
  if (!from_env) {
    const std::string key_path = data_dir + "/secrets.key";
    const std::string previous_path = data_dir + "/secrets.key.previous";
    {  // Fail before touching any file if a value does not open now.
      Scan scan;
      int unused = 0;
      auto texts = (*store)->sealed_texts(true);
      if (!texts.ok()) return texts.status();
      for (SealedText& t : texts.value()) visit(t, drivers, *old_box, false, scan, &unused);
      if (scan.failures) return scan.status(*old_box);
      if (auto keys = reseal_signing_keys(**store, *old_box, false); !keys.ok())
        return keys.status();
    }
    // The old key goes to the previous-keys file first: whatever happens next, every value
    // stays readable by a server that starts on these files.
    if (Status s =
            write_key_file(previous_path, old_box->current_key_hex() + "\n", /*append=*/true);
        !s.ok())
      return s;
    const std::string tmp = key_path + ".new";
    if (Status s = write_key_file(tmp, crypto::hex(crypto::random_bytes(32)) + "\n", false);
        !s.ok())
      return s;
    if (::rename(tmp.c_str(), key_path.c_str()) != 0)
      return Status::Internal("cannot replace " + key_path + ": " + std::strerror(errno));
    if (int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
      ::fsync(dir);
      ::close(dir);
    }
    auto new_box = SecretBox::load_or_create(data_dir, nullptr, env_previous);
    if (!new_box.ok()) return new_box.status();
    auto report = reseal_all(**store, drivers, *new_box);
    if (!report.ok()) return report.status();
    auto keys = reseal_signing_keys(**store, *new_box, true);
    if (!keys.ok()) return keys.status();
    // Every value is under the new key now: the old one is no longer needed.
    if (::unlink(previous_path.c_str()) != 0)
      return Status::Internal("re-sealed, but cannot remove " + previous_path + ": " +
                              std::strerror(errno));
    line = "new secrets key " + new_box->current_key_id() + " in " + key_path + " (was " +
           old_box->current_key_id() + "); re-sealed " + std::to_string(report->values + *keys) +
           " secrets in " + std::to_string(report->rows) + " rows; the old key is no longer needed";
  } else {
    auto report = reseal_all(**store, drivers, *old_box);
    if (!report.ok()) return report.status();
    auto keys = reseal_signing_keys(**store, *old_box, true);
    if (!keys.ok()) return keys.status();
    line = "re-sealed " + std::to_string(report->values + *keys) + " secrets in " +
           std::to_string(report->rows) + " rows under TRIPLINE_SECRET_KEY (key " +
           old_box->current_key_id() + "); TRIPLINE_SECRET_KEY_PREVIOUS is no longer needed";
  }
  return line;
}

Result<std::string> rotate_signing_key(const std::string& data_dir, const char* env_key,
                                       const char* env_previous, const std::string& database) {
  std::unique_ptr<Store> shared;
  std::optional<SecretBox> box;
  if (!database.empty()) {  // checked before the key is made: nothing half done
    auto store = Store::open(database);
    if (!store.ok()) return redact_database_in(store.status(), database);
    if ((*store)->shared()) {
      auto opened = SecretBox::load_or_create(data_dir, env_key, env_previous);
      if (!opened.ok()) return opened.status();
      if (auto keys = reseal_signing_keys(**store, *opened, false); !keys.ok())
        return keys.status();  // the secrets key must be the replicas' one
      box = *opened;
      shared = std::move(store).value();
    }
  }
  auto kid = Keyring::add_key(data_dir + "/keys");
  if (!kid.ok()) return kid.status();
  if (!shared) return "new signing key " + *kid + "; restart the server to sign with it";
  auto ring = Keyring::load_or_create(data_dir + "/keys");
  if (!ring.ok()) return ring.status();
  for (const auto& k : ring->keys())
    if (k.kid == *kid) {
      if (Status s = shared->add_signing_key(k.kid, box->seal(k.secret)); !s.ok()) return s;
      return "new signing key " + *kid +
             " in the database for every replica; restart the replicas to sign with it";
    }
  return Status::Internal("the new signing key " + *kid + " is not in " + data_dir + "/keys");
}

}  // namespace tripline
