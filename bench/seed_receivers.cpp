#include "seed_receivers.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <nlohmann/json.hpp>

#include "crypto.h"
#include "store.h"

namespace tripline {

Status seed_receivers(const std::string& db_path, int count, const std::string& provider_url,
                      const std::string& prefix) {
  {
    auto store = Store::open(db_path);  // creates and migrates
    if (!store.ok()) return store.status();
  }
  try {
    SQLite::Database db(db_path, SQLite::OPEN_READWRITE);
    db.exec("PRAGMA journal_mode = WAL");
    SQLite::Transaction tx(db);
    // The statement of Store::insert_receiver.
    SQLite::Statement q(
        db,
        "INSERT INTO receivers (name, driver, config, rules, auth, limits, enabled, "
        "created_at, updated_at, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    int64_t now = Clock::system().now_ms();
    for (int i = 0; i < count; ++i) {
      std::string name = prefix + "-" + std::to_string(i);
      nlohmann::json config = {
          {"backend", "externaldns-webhook"},
          {"provider_url", provider_url},
          {"record", {{"name", name + ".bench.example.org"}, {"type", "A"}, {"ttl", 60}}},
          {"action", "upsert"},
          {"value", "192.0.2." + std::to_string(1 + i % 254)}};
      q.bind(1, name);
      q.bind(2, "dns-update");
      q.bind(3, config.dump());
      q.bind(4);
      q.bind(5);
      q.bind(6);
      q.bind(7, 1);
      q.bind(8, now);
      q.bind(9, now);
      q.bind(10, crypto::base64url_encode(crypto::random_bytes(16)));
      q.exec();
      q.reset();
    }
    tx.commit();
  } catch (const std::exception& e) {
    return Status::Internal(std::string("seeding receivers: ") + e.what());
  }
  return Status::Ok();
}

}  // namespace tripline
