// The store's contract (store.h), checked on every implementation: each TEMPLATE_TEST_CASE runs
// once on SQLite (" - Sqlite") and once on PostgreSQL (" - Postgres", the test process's own
// server, tests/support/postgres_fixture.h). The TEST_CASEs left are SQLite's own: its file, its
// WAL, upgrades of databases that SQLite-only versions left.
#include "store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <thread>

#include "../support/store_fixture.h"
#include "migrations.h"
#include "pruner.h"

using namespace tripline;

using tripline::test::Executions;
using tripline::test::fresh_database;
using tripline::test::make_receivers;
using tripline::test::Postgres;
using tripline::test::Sqlite;
using tripline::test::TempDir;

// The test's store `s` on `db`, a fresh database of the backend the test runs on (TestType).
// Returns from the test when that backend cannot run here (skipped, or failed under CI=true:
// store_fixture.h).
#define OPEN_TEST_STORE(db, s)                     \
  auto db##_opt = fresh_database(TestType::kName); \
  if (!db##_opt) return;                           \
  const auto& db = *db##_opt;                      \
  auto s = db.open()

TEMPLATE_TEST_CASE("migrations: applied in order once, recorded, and idempotent on reopen", "",
                   Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  std::vector<int> applied = s->applied_migrations();
  REQUIRE_FALSE(applied.empty());
  CHECK(std::is_sorted(applied.begin(), applied.end()));
  CHECK(std::adjacent_find(applied.begin(), applied.end()) == applied.end());  // each once
  // Each implementation has its own dialect's migrations, under the same versions: every one
  // is at the schema version SQLite's last migration made.
  CHECK(applied.back() == embedded_migrations().back().version);
  s.reset();
  CHECK(db.open()->applied_migrations() == applied);  // a reopen applies nothing again
}

TEST_CASE("migrations: SQLite's are the embedded ones, and its database is in WAL mode") {
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

TEMPLATE_TEST_CASE("store: receivers have unique names and generations bump on update and rotate",
                   "", Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
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
  CHECK(s->update_receiver(r->id, row, r->version, true).status().code() ==
        Status::Code::kConflict);
  CHECK(s->update_receiver(r->id, row, r->version + 1, /*revoke=*/false)->generation == 2);
  CHECK(s->bump_generation(r->id)->generation == 3);
  CHECK_FALSE(s->set_enabled(r->id, false)->enabled);
  CHECK(s->get_receiver(r->id)->generation == 4);  // disabling revokes
  CHECK(s->set_enabled(r->id, true)->generation == 4);
  CHECK(s->get_receiver(r->id)->version == 6);
  CHECK(s->delete_receiver(r->id).ok());
  CHECK(s->get_receiver(r->id).status().code() == Status::Code::kNotFound);
}

TEMPLATE_TEST_CASE(
    "store: a batch of executions commits together and idempotency keys return the first", "",
    Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 7);
  Executions three(7, 3, Clock::system().now_ms());
  auto& batch = three.rows;
  batch[1].idempotency_key = "abc";
  batch[2].idempotency_key = "abc";
  REQUIRE(three.insert(*s).ok());
  CHECK(batch[0].id != batch[1].id);
  CHECK_FALSE(batch[1].replayed);
  CHECK(batch[2].replayed);
  CHECK(batch[2].id == batch[1].id);
  CHECK(s->unfinished_executions()->size() == 2);

  REQUIRE(s->mark_running(batch[0].id, 1, Clock::system().now_ms()).ok());
  REQUIRE(s->record_plan(batch[0].id, {{"replicas", 5}}).ok());
  REQUIRE(s->finish(batch[0].id, ExecutionStatus::kSucceeded, {{"replicas_after", 5}}, "",
                    Clock::system().now_ms())
              .ok());
  auto e = s->get_execution(batch[0].id);
  CHECK(e->status == ExecutionStatus::kSucceeded);
  CHECK(e->plan["replicas"] == 5);
  CHECK(e->attempts == 1);
  CHECK(s->unfinished_executions()->size() == 1);
  ExecutionFilter f;
  f.status = ExecutionStatus::kQueued;
  CHECK(s->list_executions(f)->size() == 1);
}

TEST_CASE(
    "trust 1: upgrading a 0.1 database keeps receivers and never reuses a deleted receiver's id") {
  TempDir dir;
  std::string db = dir.path + "/t.db";
  {
    // A database as 0.1 left it: migrations 1 and 2, receiver 5 alive, receiver 9 deleted but
    // still named by its executions, and SQLite about to hand out 6 (or 10) again.
    SQLite::Database raw(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)");
    for (const auto& m : embedded_migrations()) {
      if (m.version > 2) break;
      raw.exec(std::string(m.sql));
      raw.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) +
               ", 'old', 0)");
    }
    raw.exec(
        "INSERT INTO receivers (id, name, driver, config, generation, created_at, updated_at) "
        "VALUES (5, 'old', 'scale-service', '{}', 3, 0, 0)");
    raw.exec(
        "INSERT INTO executions (receiver_id, generation, driver, config, status, created_at) "
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

TEMPLATE_TEST_CASE("store: a deleted receiver's id is never handed out again", "", Sqlite,
                   Postgres) {
  // An execution's receiver_id names one receiver for good (store.h): a new receiver must not
  // inherit the history of a deleted one, not even the highest id, not even after a reopen.
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 3);
  REQUIRE(s->delete_receiver(3).ok());
  ReceiverRow row;
  row.name = "r3";  // the deleted one's name is free again; its id is not
  row.driver = "scale-service";
  row.config = nlohmann::json::object();
  auto again = s->insert_receiver(row);
  REQUIRE(again.ok());
  CHECK(again->id > 3);
  s.reset();
  s = db.open();
  REQUIRE(s->delete_receiver(again->id).ok());
  row.name = "r5";
  auto after_reopen = s->insert_receiver(row);
  REQUIRE(after_reopen.ok());
  CHECK(after_reopen->id > again->id);
}

TEST_CASE("migrations: a database at 017 that never had 015 gets 015 applied on open") {
  // Main gained 016 and 017 while the request log's 015 was on its branch: a database made by
  // main's binary is at 017 without 015. The runner applies every version not recorded, in
  // order, so 015 still runs, after 017.
  TempDir dir;
  std::string db = dir.path + "/t.db";
  {
    SQLite::Database raw(db, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    raw.exec(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)");
    for (const auto& m : embedded_migrations()) {
      if (m.version == 15) continue;
      raw.exec(std::string(m.sql));
      raw.exec("INSERT INTO schema_migrations VALUES (" + std::to_string(m.version) +
               ", 'main', 0)");
    }
    raw.exec(
        "INSERT INTO receivers (id, name, driver, config, generation, created_at, updated_at) "
        "VALUES (1, 'old', 'scale-service', '{}', 1, 0, 0)");
    raw.exec(
        "INSERT INTO executions (receiver_id, generation, driver, config, status, created_at) "
        "VALUES (1, 1, 'scale-service', '{}', 'succeeded', 0)");
  }
  auto s = std::move(Store::open(db)).value();
  auto versions = s->applied_migrations();
  CHECK(std::find(versions.begin(), versions.end(), 15) != versions.end());
  CHECK(versions.size() == embedded_migrations().size());
  // The execution from before reads with the columns 015 added (null), and the log takes rows.
  auto e = s->get_execution(1);
  REQUIRE(e.ok());
  CHECK(e->request_id == 0);
  CHECK(e->rule.is_null());
  std::vector<RequestLogRow> batch(1);
  batch[0].receiver_id = 1;
  batch[0].outcome = "ignored";
  batch[0].status = 200;
  batch[0].source = "127.0.0.1";
  batch[0].method = "POST";
  batch[0].headers = "[]";
  REQUIRE(s->insert_request_logs(batch, {1}, 100).ok());
  auto kept = s->list_request_logs(1, "", 10, 0);
  REQUIRE(kept.ok());
  CHECK(kept->size() == 1);
}

TEMPLATE_TEST_CASE(
    "retention: finished executions are pruned by age and count, queued ones and dedupe keys "
    "inside their window stay",
    "", Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 2);
  const int64_t now = Clock::system().now_ms(), day = 24LL * 3600 * 1000;
  std::string driver = "scale-service", config = "{}", action = "up";
  auto add = [&](int64_t receiver, int64_t created_at, std::string key) {
    Executions one(receiver, 1, created_at, driver, action);
    one.rows[0].idempotency_key = std::move(key);
    REQUIRE(one.insert(*s).ok());
    return one.rows[0].id;
  };
  auto finish = [&](int64_t id) {
    REQUIRE(s->finish(id, ExecutionStatus::kSucceeded, nullptr, "", now).ok());
  };
  // Receiver 1: 1,200 finished executions 40 days old, 3 still queued from then, and an
  // Alertmanager group notified an hour ago, finished.
  std::vector<int64_t> old;
  for (int i = 0; i < 1200; ++i) old.push_back(add(1, now - 40 * day, ""));
  for (int64_t id : old) finish(id);
  std::vector<int64_t> stuck;
  for (int i = 0; i < 3; ++i) stuck.push_back(add(1, now - 40 * day, ""));
  int64_t grouped = add(1, now - 3600 * 1000, "am:{}:{alertname=\"High\"}:firing");
  finish(grouped);
  // Receiver 2: 30 recent finished executions against a count limit of 10, the oldest five
  // carrying keys inside the dedupe window.
  std::vector<int64_t> recent;
  for (int i = 0; i < 30; ++i)
    recent.push_back(add(2, now - 1000 + i, i < 5 ? "k" + std::to_string(i) : ""));
  for (int64_t id : recent) finish(id);

  RetentionPolicy p;  // 30 days
  p.keep_per_receiver = 10;
  int batches = 0;
  Pruner pruner(*s, {p, 500, std::chrono::milliseconds(10), std::chrono::milliseconds(0)},
                [&](int n) {
                  ++batches;
                  CHECK(n <= 500);
                });
  auto pruned = pruner.run_once();
  REQUIRE(pruned.ok());
  CHECK(*pruned == 1200 + 15);
  CHECK(batches >= 3);  // small batches, never one long transaction
  for (int64_t id : stuck) CHECK(s->get_execution(id).ok());
  CHECK(s->get_execution(grouped).ok());
  for (int i = 0; i < 30; ++i) {
    bool kept = s->get_execution(recent[i]).ok();
    INFO("receiver 2 execution " << i);
    CHECK(kept == (i < 5 || i >= 20));  // keyed ones inside the window, and the newest 10
  }
  // The re-sent notification still finds its execution: nothing runs twice.
  std::vector<NewExecution> again(1);
  again[0].receiver_id = 1;
  again[0].driver = &driver;
  again[0].config = &config;
  again[0].action = &action;
  again[0].idempotency_key = "am:{}:{alertname=\"High\"}:firing";
  REQUIRE(s->insert_executions(again).ok());
  CHECK(again[0].replayed);
  CHECK(again[0].id == grouped);
  // Past the dedupe window the keyed rows go too.
  p.dedupe_window_ms = 0;
  Pruner later(*s, {p, 500, std::chrono::milliseconds(10), std::chrono::milliseconds(0)});
  CHECK(*later.run_once() == 5);
}

TEST_CASE("retention: --retention parses ages, counts, both, and off") {
  RetentionPolicy p;
  REQUIRE(parse_retention("7d", &p).ok());
  CHECK(p.max_age_ms == 7LL * 24 * 3600 * 1000);
  CHECK(p.keep_per_receiver == 0);
  REQUIRE(parse_retention("12h,5000", &p).ok());
  CHECK(p.max_age_ms == 12LL * 3600 * 1000);
  CHECK(p.keep_per_receiver == 5000);
  REQUIRE(parse_retention("off", &p).ok());
  CHECK(p.max_age_ms == 0);
  for (const char* bad : {"", "7", "0d", "-1", "7d,7d", "1w", "7d,", "abc"}) {
    RetentionPolicy q;
    INFO(bad);
    if (std::string(bad) == "7") {
      CHECK(parse_retention(bad, &q).ok());
      continue;
    }
    CHECK_FALSE(parse_retention(bad, &q).ok());
  }
}

TEMPLATE_TEST_CASE("trust 1: a trigger that waited while its URL was revoked records nothing", "",
                   Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 2);
  std::string driver = "scale-service", action = "up";
  auto one = [&](int64_t rid, int64_t generation) {
    Executions b(rid, 1, 0, driver, action);
    b.rows[0].generation = generation;
    REQUIRE(b.insert(*s).ok());
    return b.rows[0];
  };
  CHECK_FALSE(one(1, 1).revoked);
  REQUIRE(s->bump_generation(1).ok());  // rotated while the request waited in the ingest queue
  auto late = one(1, 1);
  CHECK(late.revoked);
  CHECK(late.id == 0);
  CHECK_FALSE(one(1, 2).revoked);
  REQUIRE(s->set_enabled(2, false).ok());  // disabled (and so revoked)
  CHECK(one(2, 1).revoked);
  CHECK(one(2, 2).revoked);  // the new URL of a disabled receiver records nothing
  REQUIRE(s->delete_receiver(1).ok());
  CHECK(one(1, 2).revoked);
  ExecutionFilter all;
  CHECK(s->list_executions(all)->size() == 2);
}

TEMPLATE_TEST_CASE("store: receiver pages follow ids, skip deleted ones, and agree with the total",
                   "", Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  ReceiverRow row;
  row.driver = "scale-service";
  row.config = {{"service", "web"}};
  for (int i = 0; i < 12; ++i) {
    row.name = "r" + std::to_string(i);
    REQUIRE(s->insert_receiver(row).ok());
  }
  REQUIRE(s->delete_receiver(3).ok());  // ids 1..12, without 3
  int64_t total = 0;
  auto ids = [](const std::vector<ReceiverRow>& rows) {
    std::vector<int64_t> out;
    for (const auto& r : rows) out.push_back(r.id);
    return out;
  };
  CHECK(ids(*s->list_receivers(4, 0, &total)) == std::vector<int64_t>{1, 2, 4, 5});
  CHECK(total == 11);
  CHECK(ids(*s->list_receivers(4, 4, &total)) == std::vector<int64_t>{6, 7, 8, 9});
  CHECK(ids(*s->list_receivers(4, 8, &total)) == std::vector<int64_t>{10, 11, 12});
  CHECK(s->list_receivers(4, 11, &total)->empty());
  CHECK(s->list_receivers(4, 1000, &total)->empty());
  CHECK(total == 11);
}

TEST_CASE("floods: WAL checkpoints run in the background, not in the trigger path's commits") {
  // Rows of the main database file alone, without the WAL (immutable=1): only checkpointed pages.
  // immutable=1 takes no lock, so a read racing the checkpointer's copy can see a page half
  // written ("database disk image is malformed"): that read says nothing, and is made again.
  auto rows_in_main_file = [](const std::string& db) {
    for (int attempt = 0;; ++attempt) {
      try {
        SQLite::Database f("file:" + db + "?immutable=1", SQLite::OPEN_READONLY | SQLite::OPEN_URI);
        if (!f.tableExists("executions")) return int64_t(0);  // the schema is still in the WAL
        return f.execAndGet("SELECT count(*) FROM executions").getInt64();
      } catch (const SQLite::Exception&) {
        if (attempt == 20) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  };
  // 200 rows: fewer pages than SQLite's own 1,000-page threshold, so no commit checkpoints them.
  auto commit_and_wait = [&](bool background) {
    TempDir dir;
    std::string db = dir.path + "/t.db";
    StoreOptions o;
    o.background_checkpoints = background;
    o.checkpoint_interval = std::chrono::milliseconds(50);
    auto store = std::move(Store::open(db, o)).value();
    make_receivers(*store, 1);
    int64_t before = rows_in_main_file(db);
    REQUIRE(Executions(1, 200, 1).insert(*store).ok());
    int64_t seen = 0;
    for (int i = 0; i < 50 && seen < 200; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      seen = rows_in_main_file(db) - before;
    }
    return seen;
  };
  CHECK(commit_and_wait(true) == 200);  // copied into the database file by the checkpointer
  CHECK(commit_and_wait(false) == 0);   // without it, they wait in the WAL
}

TEMPLATE_TEST_CASE("floods: executions retried together are requeued together, with the reason", "",
                   Sqlite, Postgres) {
  OPEN_TEST_STORE(db, store);
  make_receivers(*store, 1);
  Executions three(1, 3, 1);
  auto& batch = three.rows;
  REQUIRE(three.insert(*store).ok());
  nlohmann::json plan = {{"replicas", 2}};
  std::vector<Store::PlannedRun> runs;
  for (auto& e : batch) runs.push_back({e.id, 1, &plan});
  REQUIRE(store->start_planned(runs, 5).ok());
  REQUIRE(store->requeue_all({batch[0].id, batch[1].id}, "the peer is busy", 99).ok());
  for (int i = 0; i < 3; ++i) {
    auto e = store->get_execution(batch[i].id);
    REQUIRE(e.ok());
    CHECK(e->plan == plan);  // the recorded plan stays
    if (i < 2) {
      CHECK(e->status == ExecutionStatus::kQueued);
      CHECK(e->error == "the peer is busy");
    } else {
      CHECK(e->status == ExecutionStatus::kRunning);
    }
  }
}

TEMPLATE_TEST_CASE("clock: retention prunes by age on the store's clock, without waiting 30 days",
                   "", Sqlite, Postgres) {
  auto db = fresh_database(TestType::kName);
  if (!db) return;
  ManualClock clock;
  StoreOptions o;
  o.clock = &clock;
  auto s = db->open(o);
  make_receivers(*s, 1);
  Executions three(1, 3, clock.now_ms(), "scale-service", "up");
  auto& b = three.rows;
  REQUIRE(three.insert(*s).ok());
  for (auto& e : b)
    REQUIRE(s->finish(e.id, ExecutionStatus::kSucceeded, nullptr, "", clock.now_ms()).ok());
  RetentionPolicy p;  // 30 days
  Pruner pruner(*s, {p, 500, std::chrono::milliseconds(10), std::chrono::milliseconds(0)});
  const auto day = std::chrono::hours(24);

  clock.advance(30 * day - std::chrono::milliseconds(1));
  REQUIRE(pruner.run_once().ok());
  for (auto& e : b) CHECK(s->get_execution(e.id).ok());  // 30 days less 1 ms: all kept

  clock.advance(std::chrono::milliseconds(2));
  auto pruned = pruner.run_once();
  REQUIRE(pruned.ok());
  CHECK(*pruned == 3);
  for (auto& e : b) CHECK_FALSE(s->get_execution(e.id).ok());
}

TEMPLATE_TEST_CASE("executions: each failed attempt's error is kept, bounded, first and latest", "",
                   Sqlite, Postgres) {
  auto db = fresh_database(TestType::kName);
  if (!db) return;
  int64_t id = 0;
  {
    auto store = db->open();
    make_receivers(*store, 1);
    Executions one(1, 1, 1);
    REQUIRE(one.insert(*store).ok());
    id = one.rows[0].id;
    REQUIRE(store->get_execution(id)->attempt_errors == nlohmann::json::array());
    // 20 failed attempts, each with its own error; the 3rd far over the 1024-character cap.
    for (int attempt = 1; attempt <= 20; ++attempt) {
      REQUIRE(store->mark_running(id, attempt, 100 * attempt).ok());
      std::string error = "attempt " + std::to_string(attempt) + " failed";
      if (attempt == 3) error += std::string(5000, 'x');
      if (attempt < 20)
        REQUIRE(store->requeue(id, error, 100 * attempt + 50).ok());
      else
        REQUIRE(store->finish(id, ExecutionStatus::kFailed, nullptr, error, 2000).ok());
    }
  }
  // Read back after a reopen: the history is in the row, not in memory.
  auto store = db->open();
  auto e = store->get_execution(id);
  REQUIRE(e.ok());
  CHECK(e->error == "attempt 20 failed");
  const auto& h = e->attempt_errors;
  REQUIRE(h.size() == 16);
  CHECK(h[0]["attempt"] == 1);  // the first is kept
  CHECK(h[0]["error"] == "attempt 1 failed");
  CHECK(h[1]["attempt"] == 6);  // 2..5 made room for the latest
  CHECK(h[15]["attempt"] == 20);
  CHECK(h[15]["error"] == "attempt 20 failed");
  CHECK(h[15]["at"] == 2000);

  // The cap on one error, seen on a second execution.
  Executions two(1, 1, 1);
  REQUIRE(two.insert(*store).ok());
  REQUIRE(store->mark_running(two.rows[0].id, 1, 10).ok());
  REQUIRE(store->requeue(two.rows[0].id, std::string(5000, 'y'), 20).ok());
  auto e2 = store->get_execution(two.rows[0].id);
  REQUIRE(e2->attempt_errors.size() == 1);
  CHECK(e2->attempt_errors[0]["error"].template get<std::string>().size() == 1024);

  // A success leaves `error` empty and the history as it was.
  REQUIRE(store->finish(two.rows[0].id, ExecutionStatus::kSucceeded, {{"ok", 1}}, "", 30).ok());
  e2 = store->get_execution(two.rows[0].id);
  CHECK(e2->error.empty());
  REQUIRE(e2->attempt_errors.size() == 1);
  CHECK(e2->attempt_errors[0]["attempt"] == 1);
}

TEMPLATE_TEST_CASE(
    "store: a request log batch with a compared value that is not UTF-8 is written whole", "",
    Sqlite, Postgres) {
  // A rule compared a header holding byte 0xFF: the value reaches the entry's detail as sent.
  // nlohmann's strict dump threw on it, and the whole batch was lost.
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 1);
  std::vector<RequestLogRow> batch(3);
  for (auto& r : batch) {
    r.receiver_id = 1;
    r.outcome = "ignored";
    r.status = 200;
    r.source = "127.0.0.1";
    r.method = "POST";
    r.headers = "[]";
  }
  batch[1].detail = {{"reason", "rule"},
                     {"compared", {{{"field", "header:X-Env"}, {"actual", "prod\xFF"}}}}};
  REQUIRE(s->insert_request_logs(batch, {1}, 100).ok());
  auto kept = s->list_request_logs(1, "", 10, 0);
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 3);
  // Shown with U+FFFD for the byte that is not UTF-8.
  CHECK((*kept)[1].detail["compared"][0]["actual"] == "prod\xEF\xBF\xBD");
}

TEMPLATE_TEST_CASE("store: a lowered request log cap is applied in bounded steps", "", Sqlite,
                   Postgres) {
  // --request-log lowered from 100000 to 1000 once deleted ~99,000 rows in one transaction
  // under the write lock the trigger path's commits wait for.
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 2);
  std::vector<RequestLogRow> batch(3000);
  for (auto& r : batch) {
    r.receiver_id = 1;
    r.outcome = "ignored";
    r.status = 200;
    r.source = "127.0.0.1";
    r.method = "POST";
    r.headers = "[]";
  }
  std::vector<RequestLogRow> other(batch.begin(), batch.begin() + 50);
  for (auto& r : other) r.receiver_id = 2;
  REQUIRE(s->insert_request_logs(batch, {}, 0).ok());
  REQUIRE(s->insert_request_logs(other, {}, 0).ok());
  const int64_t newest = batch.back().id;
  // The rows a receiver has, through the contract (no limit of list_request_logs in the way).
  auto count = [&](int64_t receiver) {
    auto rows = s->list_request_logs(receiver, "", 1000000, 0);
    REQUIRE(rows.ok());
    return int64_t(rows->size());
  };
  std::vector<RequestLogRow> none;
  std::vector<int64_t> untrimmed;
  REQUIRE(s->insert_request_logs(none, {1, 2}, 100, &untrimmed, 1000).ok());
  CHECK(count(1) == 2000);  // at most 1000 deleted
  CHECK(count(2) == 50);
  CHECK(untrimmed == std::vector<int64_t>{1, 2});  // the budget ran out: both may hold more
  int calls = 1;
  while (!untrimmed.empty() && calls < 10) {
    REQUIRE(s->insert_request_logs(none, untrimmed, 100, &untrimmed, 1000).ok());
    ++calls;
  }
  CHECK(untrimmed.empty());
  CHECK(calls == 3);  // 1000, 1000, then the last 900
  CHECK(count(1) == 100);
  CHECK(count(2) == 50);
  auto kept = s->list_request_logs(1, "", 200, 0);
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 100);
  CHECK(kept->front().id == newest);  // the newest stayed
  CHECK(kept->back().id == newest - 99);
}

TEMPLATE_TEST_CASE(
    "store: a request log entry that reaches the writer after its receiver was deleted is not "
    "written",
    "", Sqlite, Postgres) {
  // The delete takes the receiver's entries; one still on its way to the log's writer (in its
  // queue, or waiting to be written after its execution's commit) would be left behind, shown
  // nowhere and trimmed by nothing.
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 2);
  REQUIRE(s->delete_receiver(2, nullptr).ok());
  std::vector<RequestLogRow> batch(4);
  for (size_t i = 0; i < batch.size(); ++i) {
    RequestLogRow& r = batch[i];
    r.receiver_id = i % 2 == 0 ? 1 : 2;
    r.outcome = "ignored";
    r.status = 200;
    r.source = "127.0.0.1";
    r.method = "POST";
    r.headers = "[]";
  }
  REQUIRE(s->insert_request_logs(batch, {1, 2}, 100).ok());
  auto kept = s->list_request_logs(1, "", 10, 0);
  REQUIRE(kept.ok());
  CHECK(kept->size() == 2);
  auto gone = s->list_request_logs(2, "", 10, 0);
  REQUIRE(gone.ok());
  CHECK(gone->empty());
}

TEMPLATE_TEST_CASE("deleted receivers: executions keep the name until the last of them is pruned",
                   "", Sqlite, Postgres) {
  OPEN_TEST_STORE(db, s);
  make_receivers(*s, 2);
  auto one = s->get_receiver(1);
  REQUIRE(one.ok());
  Executions two(1, 2, 0, "scale-service", "up");
  REQUIRE(two.insert(*s).ok());
  for (auto& e : two.rows)
    REQUIRE(s->finish(e.id, ExecutionStatus::kSucceeded, nullptr, "", 1).ok());

  auto names = s->receiver_names({1, 2, 1, 99});
  REQUIRE(names.ok());
  CHECK(names->size() == 2);  // 99 was never a receiver
  CHECK(names->at(1).name == one->name);
  CHECK_FALSE(names->at(1).deleted);

  REQUIRE(s->delete_receiver(1).ok());
  names = s->receiver_names({1, 2});
  REQUIRE(names.ok());
  CHECK(names->at(1).name == one->name);  // the name it had when deleted
  CHECK(names->at(1).deleted);
  CHECK_FALSE(names->at(2).deleted);

  // Pruned one execution: one still names it. Pruned the last: the name goes too.
  REQUIRE(s->delete_executions({two.rows[0].id}).ok());
  CHECK(s->receiver_names({1})->count(1) == 1);
  REQUIRE(s->delete_executions({two.rows[1].id}).ok());
  CHECK(s->receiver_names({1})->count(1) == 0);
  CHECK(s->receiver_names(std::vector<int64_t>(501, 2)).status().code() == Status::Code::kInvalid);
}
