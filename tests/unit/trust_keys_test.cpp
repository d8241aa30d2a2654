// Trust 10c, 10d, 10e at the unit level: sealed values carry a key id and open across a key
// rotation; a secrets key file others may read is refused; the last admin token cannot be deleted
// even by concurrent deletes. Real files, a real SQLite database.
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <thread>
#include <vector>

#include "crypto.h"
#include "secret_keys.h"
#include "secrets.h"
#include "store.h"

using namespace tripline;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tripline-trust-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

const std::string kOld(32, 'o'), kNew(32, 'n');

// The sealed format of tripline 0.1 (before key ids), written as that release's SecretBox::seal
// did: "sealed:v1:" base64url(nonce || AES-256-GCM ciphertext || tag), no associated data.
std::string seal_v1(const std::string& key, const std::string& plaintext) {
  std::string nonce = crypto::random_bytes(12);
  std::string out(plaintext.size() + 16, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  auto* u = reinterpret_cast<unsigned char*>(out.data());
  int len = 0, total = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr,
                     reinterpret_cast<const unsigned char*>(key.data()),
                     reinterpret_cast<const unsigned char*>(nonce.data()));
  EVP_EncryptUpdate(ctx, u, &len, reinterpret_cast<const unsigned char*>(plaintext.data()),
                    int(plaintext.size()));
  total = len;
  EVP_EncryptFinal_ex(ctx, u + total, &len);
  total += len;
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, u + total);
  EVP_CIPHER_CTX_free(ctx);
  return "sealed:v1:" + crypto::base64url_encode(nonce + out);
}
}  // namespace

TEST_CASE("trust 10c: a sealed value names its key and opens with it as a previous key") {
  SecretBox old_box = SecretBox::from_key(kOld);
  std::string sealed = old_box.seal("tsig-secret");
  REQUIRE(sealed.rfind("sealed:v2:" + SecretBox::key_id(kOld) + ":", 0) == 0);
  CHECK(SecretBox::key_id_of(sealed) == old_box.current_key_id());
  CHECK(SecretBox::key_id(kOld) != SecretBox::key_id(kNew));

  SecretBox rotated = SecretBox::from_key(kNew, {kOld});
  CHECK(rotated.open(sealed) == "tsig-secret");
  CHECK_FALSE(rotated.sealed_with_current_key(sealed));
  std::string resealed = rotated.seal(*rotated.open(sealed));
  CHECK(rotated.sealed_with_current_key(resealed));
  // After re-sealing, the new key alone opens it; the new key alone does not open the old value.
  CHECK(SecretBox::from_key(kNew).open(resealed) == "tsig-secret");
  CHECK_FALSE(SecretBox::from_key(kNew).open(sealed));

  // The key id is authenticated: relabelling a value to another configured key does not open it.
  std::string relabelled = sealed;
  relabelled.replace(10, 8, SecretBox::key_id(kNew));
  CHECK_FALSE(rotated.open(relabelled));
}

TEST_CASE(
    "trust 10c: values of the format before key ids (v1) still open, with any configured key") {
  std::string v1 = seal_v1(kOld, "written-by-0.1");
  CHECK(SecretBox::is_sealed(v1));
  CHECK(SecretBox::key_id_of(v1).empty());
  CHECK(SecretBox::from_key(kOld).open(v1) == "written-by-0.1");
  CHECK(SecretBox::from_key(kNew, {kOld}).open(v1) == "written-by-0.1");  // as a previous key
  CHECK_FALSE(SecretBox::from_key(kNew).open(v1));
  CHECK_FALSE(SecretBox::from_key(kNew).sealed_with_current_key(v1));  // rotation re-seals it
  CHECK_FALSE(SecretBox::from_key(kOld).open("sealed:v1:" +
                                             crypto::base64url_encode(std::string(12, '\0'))));
}

TEST_CASE("trust 10c: the start-up check names queued executions and receivers a key cannot open") {
  TempDir d;
  auto store = Store::open(d.path + "/t.db");
  REQUIRE(store.ok());
  DriverRegistry drivers;
  register_drivers(drivers, DriverEnv().set("docker-host", "http://127.0.0.1:1"));
  SecretBox old_box = SecretBox::from_key(kOld);
  // A dns-update (rfc2136) config: tsig_secret is a writeOnly field, sealed at rest.
  nlohmann::json config = {{"backend", "rfc2136"},
                           {"server", "127.0.0.1:53"},
                           {"zone", "example.org"},
                           {"tsig_key", "k"},
                           {"tsig_secret", old_box.seal("c2VjcmV0")},
                           {"record", {{"name", "www.example.org"}, {"type", "A"}}},
                           {"action", "upsert"},
                           {"value", "192.0.2.1"}};
  ReceiverRow r;
  r.name = "dns";
  r.driver = "dns-update";
  r.config = config;
  auto row = (*store)->insert_receiver(r);
  REQUIRE(row.ok());
  std::string driver = "dns-update", text = config.dump();
  std::vector<NewExecution> batch(2);
  for (auto& e : batch) {
    e.receiver_id = row->id;
    e.generation = 1;
    e.driver = &driver;
    e.config = &text;
    e.created_at = Clock::system().now_ms();
  }
  REQUIRE((*store)->insert_executions(batch).ok());
  REQUIRE(
      (*store)
          ->finish(batch[1].id, ExecutionStatus::kSucceeded, nullptr, "", Clock::system().now_ms())
          .ok());

  CHECK(check_sealed_data(**store, drivers, old_box).ok());
  Status wrong = check_sealed_data(**store, drivers, SecretBox::from_key(kNew));
  REQUIRE_FALSE(wrong.ok());
  INFO(wrong.message());
  // The receiver and the queued execution; the finished one is never opened again.
  CHECK(wrong.message().rfind("2 sealed secrets in the database do not open", 0) == 0);
  CHECK(wrong.message().find("receiver config " + std::to_string(row->id) + " (tsig_secret)") !=
        std::string::npos);
  CHECK(wrong.message().find("execution config " + std::to_string(batch[0].id) +
                             " (tsig_secret)") != std::string::npos);
  CHECK(wrong.message().find("sealed with key id " + SecretBox::key_id(kOld)) != std::string::npos);

  // Rotation re-seals all three (finished included), after which the new key alone opens them.
  SecretBox rotated = SecretBox::from_key(kNew, {kOld});
  auto report = reseal_all(**store, drivers, rotated);
  REQUIRE(report.ok());
  CHECK(report->values == 3);
  CHECK(report->rows == 3);
  CHECK(check_sealed_data(**store, drivers, SecretBox::from_key(kNew)).ok());
  auto texts = (*store)->sealed_texts(true);
  REQUIRE(texts.ok());
  for (const auto& t : texts.value())
    CHECK(SecretBox::from_key(kNew).open(nlohmann::json::parse(t.text)["tsig_secret"]) ==
          "c2VjcmV0");
  CHECK(reseal_all(**store, drivers, SecretBox::from_key(kNew))->values ==
        0);  // nothing left to do
  // A key that opens nothing changes nothing.
  CHECK_FALSE(reseal_all(**store, drivers, SecretBox::from_key(kOld)).ok());
  CHECK(check_sealed_data(**store, drivers, SecretBox::from_key(kNew)).ok());
}

TEST_CASE("trust 10d: a secrets key file that group or others may read is refused") {
  TempDir d;
  std::string key = crypto::hex(std::string(32, 'k')) + "\n";
  write_file(d.path + "/secrets.key", key, 0644);
  auto refused = SecretBox::load_or_create(d.path, nullptr);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message() ==
        d.path + "/secrets.key is readable by group or others; chmod 600 it");
  REQUIRE(::chmod((d.path + "/secrets.key").c_str(), 0600) == 0);
  auto ok = SecretBox::load_or_create(d.path, nullptr);
  REQUIRE(ok.ok());
  CHECK(ok->current_key_id() == SecretBox::key_id(std::string(32, 'k')));

  write_file(d.path + "/secrets.key.previous", crypto::hex(kOld) + "\n", 0640);
  auto previous = SecretBox::load_or_create(d.path, nullptr);
  REQUIRE_FALSE(previous.ok());
  CHECK(previous.status().message().find("secrets.key.previous is readable by group or others") !=
        std::string::npos);
  REQUIRE(::chmod((d.path + "/secrets.key.previous").c_str(), 0600) == 0);
  auto both = SecretBox::load_or_create(d.path, nullptr);
  REQUIRE(both.ok());
  CHECK(both->key_ids() ==
        std::vector<std::string>{SecretBox::key_id(std::string(32, 'k')), SecretBox::key_id(kOld)});

  // A key created on first start is 0600.
  TempDir fresh;
  REQUIRE(SecretBox::load_or_create(fresh.path, nullptr).ok());
  struct stat st {};
  REQUIRE(::stat((fresh.path + "/secrets.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("trust 10e: concurrent deletes never remove the last admin token") {
  TempDir d;
  auto store = Store::open(d.path + "/t.db");
  REQUIRE(store.ok());
  Store& s = **store;
  constexpr int kRounds = 200, kTokens = 3;
  int conflicts = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<int64_t> ids;
    for (int i = 0; i < kTokens; ++i) {
      auto row = s.insert_admin_token("t", crypto::random_bytes(32));
      REQUIRE(row.ok());
      ids.push_back(row->id);
    }
    // Remove whatever survived the last round, so exactly kTokens exist.
    auto tokens = s.list_admin_tokens();
    REQUIRE(tokens.ok());
    for (const auto& t : tokens.value())
      if (std::find(ids.begin(), ids.end(), t.id) == ids.end())
        REQUIRE(s.delete_admin_token(t.id).ok());
    std::atomic<bool> go{false};
    std::vector<Status> results(kTokens);
    std::vector<std::thread> threads;
    for (int i = 0; i < kTokens; ++i)
      threads.emplace_back([&, i] {
        while (!go) std::this_thread::yield();
        results[i] = s.delete_admin_token(ids[i]);
      });
    go = true;
    for (auto& t : threads) t.join();
    REQUIRE(s.list_admin_tokens()->size() == 1);
    int ok = 0;
    for (const Status& r : results) {
      ok += r.ok();
      if (!r.ok()) {
        CHECK(r.code() == Status::Code::kConflict);
        ++conflicts;
      }
    }
    CHECK(ok == kTokens - 1);
  }
  CHECK(conflicts == kRounds);
  CHECK(s.delete_admin_token(987654).code() == Status::Code::kNotFound);
}
