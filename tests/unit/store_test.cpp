#include "store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <cstdlib>

#include "migrations.h"

using namespace tripline;

namespace {
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tripline-store-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};
}  // namespace

TEST_CASE("migrations: applied in order once, recorded, and idempotent on reopen") {
  TempDir dir;
  std::string db = dir.path + "/t.db";
  {
    auto s = Store::open(db);
    REQUIRE(s.ok());
    std::vector<int> want;
    for (const auto& m : embedded_migrations()) want.push_back(m.version);
    REQUIRE_FALSE(want.empty());
    CHECK(std::is_sorted(want.begin(), want.end()));
    CHECK((*s)->applied_migrations() == want);
  }
  auto again = Store::open(db);
  REQUIRE(again.ok());
  CHECK((*again)->applied_migrations().size() == embedded_migrations().size());
  SQLite::Database raw(db);
  CHECK(raw.execAndGet("PRAGMA journal_mode").getString() == "wal");
}

TEST_CASE("store: receivers have unique names and generations bump on update and rotate") {
  TempDir dir;
  auto s = std::move(Store::open(dir.path + "/t.db")).value();
  ReceiverRow row;
  row.name = "web-up";
  row.driver = "scale-service";
  row.config = {{"service", "web"}};
  row.rules = {{"default", "ignore"}};
  auto r = s->insert_receiver(row);
  REQUIRE(r.ok());
  CHECK(r->generation == 1);
  CHECK(r->rules == row.rules);
  CHECK(r->auth.is_null());
  CHECK(s->insert_receiver(row).status().code() == Status::Code::kConflict);
  row.config = {{"service", "api"}};
  CHECK(s->update_receiver(r->id, row, r->version, /*revoke=*/true)->generation == 2);
  CHECK(s->update_receiver(r->id, row, r->version, true).status().code() == Status::Code::kConflict);
  CHECK(s->update_receiver(r->id, row, r->version + 1, /*revoke=*/false)->generation == 2);
  CHECK(s->bump_generation(r->id)->generation == 3);
  CHECK_FALSE(s->set_enabled(r->id, false)->enabled);
  CHECK(s->get_receiver(r->id)->generation == 4);  // disabling revokes
  CHECK(s->set_enabled(r->id, true)->generation == 4);
  CHECK(s->get_receiver(r->id)->version == 6);
  CHECK(s->delete_receiver(r->id).ok());
  CHECK(s->get_receiver(r->id).status().code() == Status::Code::kNotFound);
}

TEST_CASE("store: a batch of executions commits together and idempotency keys return the first") {
  TempDir dir;
  auto s = std::move(Store::open(dir.path + "/t.db")).value();
  std::string driver = "scale-service", config = "{}";
  std::vector<NewExecution> batch(3);
  for (auto& e : batch) {
    e.receiver_id = 7;
    e.generation = 1;
    e.driver = &driver;
    e.config = &config;
    e.created_at = now_ms();
  }
  batch[1].idempotency_key = "abc";
  batch[2].idempotency_key = "abc";
  REQUIRE(s->insert_executions(batch).ok());
  CHECK(batch[0].id != batch[1].id);
  CHECK_FALSE(batch[1].replayed);
  CHECK(batch[2].replayed);
  CHECK(batch[2].id == batch[1].id);
  CHECK(s->unfinished_executions()->size() == 2);

  REQUIRE(s->mark_running(batch[0].id, 1, now_ms()).ok());
  REQUIRE(s->record_plan(batch[0].id, {{"replicas", 5}}).ok());
  REQUIRE(s->finish(batch[0].id, ExecutionStatus::kSucceeded, {{"replicas_after", 5}}, "", now_ms()).ok());
  auto e = s->get_execution(batch[0].id);
  CHECK(e->status == ExecutionStatus::kSucceeded);
  CHECK(e->plan["replicas"] == 5);
  CHECK(e->attempts == 1);
  CHECK(s->unfinished_executions()->size() == 1);
  ExecutionFilter f;
  f.status = ExecutionStatus::kQueued;
  CHECK(s->list_executions(f)->size() == 1);
}

TEST_CASE("trust 1: upgrading a 0.1 database keeps receivers and never reuses a deleted receiver's id") {
  TempDir dir;
  std::string db = dir.path + "/t.db";
  {
    // A database as 0.1 left it: migrations 1 and 2, receiver 5 alive, receiver 9 deleted but
    // still named by its executions, and SQLite about to hand out 6 (or 10) again.
    SQLite::Database raw(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const auto& m : embedded_migrations()) {
      if (m.version > 2) break;
      raw.exec(std::string(m.sql));
      raw.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) + ", 'old', 0)");
    }
    raw.exec("INSERT INTO receivers (id, name, driver, config, generation, created_at, updated_at) "
             "VALUES (5, 'old', 'scale-service', '{}', 3, 0, 0)");
    raw.exec("INSERT INTO executions (receiver_id, generation, driver, config, status, created_at) "
             "VALUES (9, 1, 'scale-service', '{}', 'succeeded', 0)");
  }
  auto s = std::move(Store::open(db)).value();
  auto old = s->get_receiver(5);
  REQUIRE(old.ok());
  CHECK(old->generation == 3);
  CHECK(old->nonce.empty());  // its URL is unchanged by the upgrade
  ReceiverRow row;
  row.name = "new";
  row.driver = "scale-service";
  row.config = nlohmann::json::object();
  row.nonce = "n1";
  auto fresh = s->insert_receiver(row);
  REQUIRE(fresh.ok());
  CHECK(fresh->id == 10);
  CHECK(fresh->nonce == "n1");
  REQUIRE(s->delete_receiver(fresh->id).ok());
  row.name = "newer";
  CHECK(s->insert_receiver(row)->id == 11);
}
