// What the store and executor unit tests share: a temporary directory, a fresh database of each
// store implementation (SQLite, PostgreSQL), receivers that executions can be recorded for, and
// batches of executions as the ingest hands them to insert_executions().
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "postgres_fixture.h"
#include "store.h"

namespace tripline::test {

// A fresh directory under /tmp, removed with everything in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tl-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The store implementations a test runs on, as TEMPLATE_TEST_CASE's types: the test's name ends
// with " - Sqlite" or " - Postgres" (docs/postgres-testing.md).
struct Sqlite {
  static constexpr const char* kName = "sqlite";
};
struct Postgres {
  static constexpr const char* kName = "postgres";
};

// One empty database for one test: `database` is what Store::open takes (a SQLite file in a
// temporary directory, or a postgres:// URL of a database made for the test on the process's
// PostgreSQL server, postgres_fixture.h).
struct TestDatabase {
  std::string kind;
  std::string database;
  std::shared_ptr<TempDir> dir;  // the SQLite file's

  // Opens (again, for a test of what a reopen sees) the store on it; the test fails if it cannot.
  std::unique_ptr<Store> open(StoreOptions options = {}) const {
    auto store = Store::open(database, options);
    INFO(kind << " store " << database << ": " << store.status().message());
    REQUIRE(store.ok());
    return std::move(store).value();
  }
};

// A fresh database of `kind` ("sqlite" or "postgres"), or nullopt when that backend cannot run
// here: the test was then FAILed (CI=true) or warned "SKIPPED" with the reason, and returns.
inline std::optional<TestDatabase> fresh_database(const std::string& kind) {
  TestDatabase db;
  db.kind = kind;
  if (kind == Sqlite::kName) {
    db.dir = std::make_shared<TempDir>();
    db.database = db.dir->path + "/t.db";
    return db;
  }
  REQUIRE(kind == Postgres::kName);
  PostgresServer* server = postgres_or_skip();
  if (!server) return std::nullopt;
  db.database = fresh_database_url();
  return db;
}

// Executions are recorded only for a receiver that still grants them: receivers 1..n (those not
// there yet), named r1..rn.
inline void make_receivers(Store& store, int n, const std::string& driver = "scale-service") {
  for (int i = 1; i <= n; ++i) {
    if (store.get_receiver(i).ok()) continue;
    ReceiverRow row;
    row.name = "r" + std::to_string(i);
    row.driver = driver;
    row.config = nlohmann::json::object();
    REQUIRE(store.insert_receiver(row).ok());
  }
}

// n executions of one receiver at generation 1, config "{}". The strings the rows point at live
// here, so a batch is neither copied nor moved. An empty action leaves the rows' action unset.
struct Executions {
  std::string driver, config = "{}", action;
  std::vector<NewExecution> rows;

  Executions(int64_t receiver_id, int n, int64_t created_at,
             std::string driver_name = "scale-service", std::string action_name = "")
      : driver(std::move(driver_name)), action(std::move(action_name)), rows(n) {
    for (auto& e : rows) {
      e.receiver_id = receiver_id;
      e.generation = 1;
      e.driver = &driver;
      e.config = &config;
      if (!action.empty()) e.action = &action;
      e.created_at = created_at;
    }
  }
  Executions(const Executions&) = delete;
  Executions& operator=(const Executions&) = delete;

  // Inserts the rows (ids, replayed and revoked filled in).
  Status insert(Store& store) { return store.insert_executions(rows); }
  std::vector<int64_t> ids() const {
    std::vector<int64_t> out;
    for (const auto& e : rows) out.push_back(e.id);
    return out;
  }
};

}  // namespace tripline::test
