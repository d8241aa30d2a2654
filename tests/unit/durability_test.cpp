// Which store writes wait for the disk (docs/durability.md), counted where SQLite asks for it: a
// VFS wrapping the default one counts xSync calls on WAL files. A trigger's commit and a plan's
// record must sync before they return; an execution's outcome must not (its plan is on disk, and
// recovery re-applies it), and it must leave the connection syncing for the next commit.
#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <vector>

#include "../support/store_fixture.h"
#include "ingest.h"
#include "store.h"

using namespace tripline;

using tripline::test::Executions;
using tripline::test::make_receivers;
using tripline::test::TempDir;

namespace {

std::atomic<int> wal_syncs{0};
sqlite3_vfs* real_vfs = nullptr;

// The wrapper's file: our header, then the real VFS's file in the same allocation.
struct CountingFile {
  sqlite3_file base;
  sqlite3_file* real;
  bool wal;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<CountingFile*>(f)->real; }

int c_close(sqlite3_file* f) { return real_of(f)->pMethods->xClose(real_of(f)); }
int c_read(sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xRead(real_of(f), b, n, o);
}
int c_write(sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
  return real_of(f)->pMethods->xWrite(real_of(f), b, n, o);
}
int c_truncate(sqlite3_file* f, sqlite3_int64 n) {
  return real_of(f)->pMethods->xTruncate(real_of(f), n);
}
int c_sync(sqlite3_file* f, int flags) {
  if (reinterpret_cast<CountingFile*>(f)->wal) ++wal_syncs;
  return real_of(f)->pMethods->xSync(real_of(f), flags);
}
int c_file_size(sqlite3_file* f, sqlite3_int64* n) {
  return real_of(f)->pMethods->xFileSize(real_of(f), n);
}
int c_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int c_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int c_check_reserved(sqlite3_file* f, int* r) {
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), r);
}
int c_file_control(sqlite3_file* f, int op, void* a) {
  return real_of(f)->pMethods->xFileControl(real_of(f), op, a);
}
int c_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int c_device(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
int c_shm_map(sqlite3_file* f, int i, int sz, int extend, void volatile** p) {
  return real_of(f)->pMethods->xShmMap(real_of(f), i, sz, extend, p);
}
int c_shm_lock(sqlite3_file* f, int o, int n, int flags) {
  return real_of(f)->pMethods->xShmLock(real_of(f), o, n, flags);
}
void c_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int c_shm_unmap(sqlite3_file* f, int del) {
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}
int c_fetch(sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
  return real_of(f)->pMethods->xFetch(real_of(f), o, n, p);
}
int c_unfetch(sqlite3_file* f, sqlite3_int64 o, void* p) {
  return real_of(f)->pMethods->xUnfetch(real_of(f), o, p);
}

const sqlite3_io_methods counting_methods = {
    3,           c_close,   c_read,     c_write,          c_truncate,     c_sync,
    c_file_size, c_lock,    c_unlock,   c_check_reserved, c_file_control, c_sector_size,
    c_device,    c_shm_map, c_shm_lock, c_shm_barrier,    c_shm_unmap,    c_fetch,
    c_unfetch};

int c_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
  auto* c = reinterpret_cast<CountingFile*>(f);
  c->real = reinterpret_cast<sqlite3_file*>(c + 1);
  c->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = real_vfs->xOpen(real_vfs, name, c->real, flags, out_flags);
  c->base.pMethods = c->real->pMethods ? &counting_methods : nullptr;
  return rc;
}

// Every connection opened while it lives goes through the counting VFS (it is the default).
struct CountingVfs {
  sqlite3_vfs vfs;
  CountingVfs() {
    real_vfs = sqlite3_vfs_find(nullptr);
    REQUIRE(real_vfs->iVersion >= 3);
    REQUIRE(real_vfs->szOsFile > 0);
    vfs = *real_vfs;
    vfs.zName = "tripline-counting";
    vfs.szOsFile = static_cast<int>(sizeof(CountingFile)) + real_vfs->szOsFile;
    vfs.xOpen = c_open;
    REQUIRE(sqlite3_vfs_register(&vfs, 1) == SQLITE_OK);
  }
  ~CountingVfs() {
    sqlite3_vfs_register(real_vfs, 1);
    sqlite3_vfs_unregister(&vfs);
  }
};

// A store with receiver 1, whose only syncs are those of the writes under test (no background
// checkpoints).
std::unique_ptr<Store> open_syncing_only_on_writes(const TempDir& dir) {
  StoreOptions o;
  o.background_checkpoints = false;
  auto s = std::move(Store::open(dir.path + "/t.db", o)).value();
  make_receivers(*s, 1);
  return s;
}

}  // namespace

TEST_CASE("durability: triggers and plans wait for the disk, outcomes do not and leave it so") {
  CountingVfs counting;
  TempDir dir;
  {
    auto s = open_syncing_only_on_writes(dir);
    const int64_t now = Clock::system().now_ms();

    int before = wal_syncs;
    Executions first(1, 3, now);
    REQUIRE(first.insert(*s).ok());
    CHECK(wal_syncs > before);  // a 202 is answered after this returns: it must be on disk

    nlohmann::json plan = {{"replicas", 2}};
    before = wal_syncs;
    REQUIRE(s->start_planned(
                 {{first.rows[0].id, 1, &plan, "svc"}, {first.rows[1].id, 1, &plan, "svc"}}, now)
                .ok());
    CHECK(wal_syncs > before);  // the plan is on disk before the driver applies it

    nlohmann::json result = {{"replicas_after", 2}};
    before = wal_syncs;
    REQUIRE(
        s->finish_all({{first.rows[0].id, ExecutionStatus::kSucceeded, &result, "", now, "svc"}})
            .ok());
    REQUIRE(s->requeue(first.rows[1].id, "peer timed out", now + 1000, "svc").ok());
    CHECK(wal_syncs == before);  // outcomes ride on the next synced commit

    // ...which still syncs: the outcome's relaxed level did not stay on the connection.
    before = wal_syncs;
    Executions second(1, 1, now);
    REQUIRE(second.insert(*s).ok());
    CHECK(wal_syncs > before);

    auto done = s->get_execution(first.rows[0].id);
    REQUIRE(done.ok());
    CHECK(done->status == ExecutionStatus::kSucceeded);
    auto retrying = s->get_execution(first.rows[1].id);
    REQUIRE(retrying.ok());
    CHECK(retrying->status == ExecutionStatus::kQueued);
    CHECK(retrying->plan["replicas"] == 2);  // what recovery would re-apply
  }
  // Reopened: the outcomes committed without a sync of their own are there (a process crash
  // keeps them; only a power loss before the next sync could take them, docs/durability.md).
  auto s = std::move(Store::open(dir.path + "/t.db")).value();
  auto done = s->get_execution(1);
  REQUIRE(done.ok());
  CHECK(done->status == ExecutionStatus::kSucceeded);
}

TEST_CASE("durability: a commit of triggers and plans together syncs once, as triggers alone") {
  CountingVfs counting;
  TempDir dir;
  auto s = open_syncing_only_on_writes(dir);
  const int64_t now = Clock::system().now_ms();
  Executions planned(1, 2, now);
  REQUIRE(planned.insert(*s).ok());
  nlohmann::json plan = {{"replicas", 3}};
  std::vector<Store::PlannedRun> runs = {{planned.rows[0].id, 1, &plan, "svc"},
                                         {planned.rows[1].id, 1, &plan, "svc"}};

  Executions alone(1, 5, now);
  int before = wal_syncs;
  REQUIRE(alone.insert(*s).ok());
  const int syncs_alone = wal_syncs - before;

  Executions with_plans(1, 5, now);
  before = wal_syncs;
  REQUIRE(s->commit_group(with_plans.rows, {{&runs, now}}).ok());
  CHECK(wal_syncs - before == syncs_alone);
  CHECK(syncs_alone >= 1);
  for (const auto& e : with_plans.rows) CHECK(e.id > 0);
  for (const auto& r : runs) {
    auto e = s->get_execution(r.id);
    REQUIRE(e.ok());
    CHECK(e->status == ExecutionStatus::kRunning);
    CHECK(e->plan["replicas"] == 3);
  }
}

TEST_CASE(
    "durability: Ingest::record_plans returns once its plans are committed, also after stop") {
  TempDir dir;
  auto s = std::move(Store::open(dir.path + "/t.db")).value();
  make_receivers(*s, 1);
  const int64_t now = Clock::system().now_ms();
  Executions planned(1, 2, now);
  REQUIRE(planned.insert(*s).ok());
  nlohmann::json first = {{"replicas", 4}}, second = {{"replicas", 6}};
  Ingest ingest(*s, [](const Ingest::Trigger&, int64_t) {});
  REQUIRE(ingest.record_plans({{planned.rows[0].id, 2, &first, "svc"}}, now).ok());
  auto e = s->get_execution(planned.rows[0].id);
  REQUIRE(e.ok());
  CHECK(e->status == ExecutionStatus::kRunning);
  CHECK(e->attempts == 2);
  CHECK(e->plan["replicas"] == 4);

  ingest.stop();  // workers may still record plans while the service stops
  REQUIRE(ingest.record_plans({{planned.rows[1].id, 1, &second, "svc"}}, now).ok());
  e = s->get_execution(planned.rows[1].id);
  REQUIRE(e.ok());
  CHECK(e->plan["replicas"] == 6);
}

TEST_CASE("durability: one lane's plans that cannot be recorded fail alone, not the group") {
  TempDir dir;
  auto s = std::move(Store::open(dir.path + "/t.db")).value();
  make_receivers(*s, 1);
  const int64_t now = Clock::system().now_ms();
  Executions planned(1, 2, now);
  REQUIRE(planned.insert(*s).ok());
  nlohmann::json good = {{"replicas", 2}};
  nlohmann::json bad = {{"value", std::string("\xff\xfe not UTF-8")}};  // dump() throws
  std::vector<Store::PlannedRun> good_runs = {{planned.rows[0].id, 1, &good, "a"}};
  std::vector<Store::PlannedRun> bad_runs = {{planned.rows[1].id, 1, &bad, "b"}};
  Executions triggers(1, 3, now);
  std::vector<Status> plan_status;
  REQUIRE(s->commit_group(triggers.rows, {{&good_runs, now}, {&bad_runs, now}}, &plan_status).ok());
  REQUIRE(plan_status.size() == 2);
  CHECK(plan_status[0].ok());
  CHECK_FALSE(plan_status[1].ok());
  for (const auto& e : triggers.rows) CHECK(e.id > 0);  // the triggers are committed
  auto a = s->get_execution(planned.rows[0].id);
  REQUIRE(a.ok());
  CHECK(a->status == ExecutionStatus::kRunning);
  CHECK(a->plan["replicas"] == 2);
  auto b = s->get_execution(planned.rows[1].id);
  REQUIRE(b.ok());
  CHECK(b->status == ExecutionStatus::kQueued);  // rolled back to its savepoint: not started
  CHECK(b->plan.is_null());
}

TEST_CASE("durability: a failed outcome waits for the disk, a success does not") {
  CountingVfs counting;
  TempDir dir;
  auto s = open_syncing_only_on_writes(dir);
  const int64_t now = Clock::system().now_ms();
  Executions e(1, 3, now);
  REQUIRE(e.insert(*s).ok());
  nlohmann::json result = {{"ok", true}};
  int before = wal_syncs;
  REQUIRE(s->finish_all({{e.rows[0].id, ExecutionStatus::kSucceeded, &result, "", now, "t"}}).ok());
  CHECK(wal_syncs == before);
  // Lost, a failure would come back as running and recovery could act on it: synced.
  before = wal_syncs;
  REQUIRE(s->finish(e.rows[1].id, ExecutionStatus::kFailed, nullptr, "peer refused", now).ok());
  CHECK(wal_syncs > before);
  before = wal_syncs;
  REQUIRE(s->finish_all({{e.rows[2].id, ExecutionStatus::kSucceeded, &result, "", now, "t"},
                         {e.rows[0].id, ExecutionStatus::kFailed, nullptr, "x", now, "t"}})
              .ok());
  CHECK(wal_syncs > before);
}

TEST_CASE(
    "durability: accepted requests' log entries ride on the group commit, others never sync") {
  CountingVfs counting;
  TempDir dir;
  auto s = open_syncing_only_on_writes(dir);
  const int64_t now = Clock::system().now_ms();

  Executions plain(1, 5, now);
  int before = wal_syncs;
  REQUIRE(plain.insert(*s).ok());
  const int syncs_plain = wal_syncs - before;
  REQUIRE(syncs_plain >= 1);

  // The same commit, each execution with its request log entry (docs/requests-log.md).
  Executions logged(1, 5, now);
  std::vector<RequestLogRow> entries(5);
  nlohmann::json rule = {{"index", 0}, {"name", "r"}};
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].receiver_id = 1;
    entries[i].received_at = now;
    entries[i].outcome = "accepted";
    entries[i].status = 202;
    entries[i].source = "127.0.0.1";
    entries[i].method = "POST";
    entries[i].headers = "[]";
    entries[i].body = "{}";
    logged.rows[i].request = &entries[i];
    logged.rows[i].rule = &rule;
  }
  before = wal_syncs;
  REQUIRE(logged.insert(*s).ok());
  CHECK(wal_syncs - before == syncs_plain);
  for (size_t i = 0; i < entries.size(); ++i) {
    CHECK(entries[i].id > 0);
    CHECK(entries[i].execution_id == logged.rows[i].id);
    auto e = s->get_execution(logged.rows[i].id);
    REQUIRE(e.ok());
    CHECK(e->request_id == entries[i].id);
    CHECK(e->rule == rule);
  }

  // The background writer's batches (ignored, refused...) commit without a sync of their own.
  std::vector<RequestLogRow> others(50, entries[0]);
  for (auto& o : others) o.outcome = "ignored";
  before = wal_syncs;
  REQUIRE(s->insert_request_logs(others, {1}, 20).ok());
  CHECK(wal_syncs == before);
  auto kept = s->list_request_logs(1, "", 100, 0);
  REQUIRE(kept.ok());
  CHECK(kept->size() == 20);                    // the cap per receiver held
  CHECK(kept->front().id == others.back().id);  // the newest kept, newest first
}
