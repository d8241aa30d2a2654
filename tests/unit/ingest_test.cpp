// The ingest writer against a real SQLite file: group commit, answers only after the commit,
// overload, replays, and a commit that fails.
#include "ingest.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../support/store_fixture.h"
#include "../support/timing.h"
#include "metrics.h"
#include "request_log.h"
#include "store.h"

using namespace tripline;
using nlohmann::json;
using namespace std::chrono_literals;
using tripline::test::Executions;

namespace {

// Long enough for the writer to take the first trigger and block on the held lock.
const auto kSettle = std::chrono::milliseconds(static_cast<int>(300 * tripline::test::kTimeScale));

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/tl-ingest-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path).c_str()); }
};

std::unique_ptr<Store> open_store(const TempDir& dir, int busy_timeout_ms = 5000,
                                  bool defer_accepted_log = false) {
  StoreOptions o;
  o.busy_timeout_ms = busy_timeout_ms;
  o.defer_accepted_log = defer_accepted_log;
  o.recover_request_log = defer_accepted_log;  // as `tripline serve` opens it
  auto store = Store::open(dir.path + "/t.db", o);
  REQUIRE(store.ok());
  return std::move(store).value();
}

std::shared_ptr<const Receiver> receiver(Store& store, const std::string& name = "r") {
  ReceiverRow row;
  row.name = name;
  row.driver = "fake";
  row.config = json::object();
  auto saved = store.insert_receiver(row);
  REQUIRE(saved.ok());
  auto r = std::make_shared<Receiver>();
  r->row = *saved;
  r->config_text = "{}";
  r->target = "one";
  r->action = "run";
  return r;
}

// Collects answers; wait() until `n` have come.
struct Answers {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Status, Accepted>> got;
  Ingest::Done done() {
    return [this](const Status& s, const Accepted& a) {
      std::lock_guard lock(mu);
      got.emplace_back(s, a);
      cv.notify_all();
    };
  }
  bool wait(size_t n, std::chrono::milliseconds within = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, within, [&] { return got.size() >= n; });
  }
};

int64_t count_executions(Store& store) {
  ExecutionFilter all;
  all.limit = 1000;
  auto rows = store.list_executions(all);
  REQUIRE(rows.ok());
  return static_cast<int64_t>(rows->size());
}

}  // namespace

TEST_CASE("ingest: triggers from many threads are all committed, each once, then answered") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  std::atomic<int> committed{0};
  Answers answers;
  {
    Ingest ingest(*store, [&](const Ingest::Trigger&, int64_t) { committed++; });
    std::vector<std::thread> senders;
    for (int t = 0; t < 4; ++t)
      senders.emplace_back([&] {
        for (int i = 0; i < 50; ++i)
          ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
      });
    for (auto& s : senders) s.join();
    REQUIRE(answers.wait(200));
  }
  std::set<int64_t> ids;
  for (const auto& [s, a] : answers.got) {
    CHECK(s.ok());
    CHECK_FALSE(a.replayed);
    CHECK_FALSE(a.overloaded);
    ids.insert(a.execution_id);
  }
  CHECK(ids.size() == 200);
  CHECK(committed == 200);
  CHECK(count_executions(*store) == 200);  // every answer came after its row was on disk
}

TEST_CASE("ingest: while a commit waits, the next triggers gather into one group commit") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  Answers answers;
  SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
  Ingest ingest(*store, [](const Ingest::Trigger&, int64_t) {});
  locker.exec("BEGIN EXCLUSIVE");  // the writer's first commit waits on this lock
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  std::this_thread::sleep_for(kSettle);
  for (int i = 0; i < 20; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  CHECK(answers.got.empty());  // nothing is answered before its commit
  locker.exec("COMMIT");
  REQUIRE(answers.wait(21));
  for (const auto& [s, a] : answers.got) CHECK(s.ok());
  // The 20 that gathered while the first commit waited share one transaction: their ids are
  // consecutive and they were answered together, after the first.
  std::vector<int64_t> ids;
  for (const auto& [s, a] : answers.got) ids.push_back(a.execution_id);
  for (size_t i = 2; i < ids.size(); ++i) CHECK(ids[i] == ids[i - 1] + 1);
}

TEST_CASE("ingest: a full queue refuses at once as overloaded, without touching the store") {
  // The bound counts every trigger not answered yet: waiting, or taken by the writer.
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  Answers answers;
  SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
  Ingest ingest(
      *store, [](const Ingest::Trigger&, int64_t) {}, /*max_pending=*/2);
  locker.exec("BEGIN EXCLUSIVE");
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());  // taken by the writer
  std::this_thread::sleep_for(kSettle);
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());  // waits: the 2nd
  for (int i = 0; i < 2; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());  // over the cap
  {
    std::lock_guard lock(answers.mu);
    REQUIRE(answers.got.size() == 2);
    for (const auto& [s, a] : answers.got) {
      CHECK(a.overloaded);
      CHECK(s.code() == Status::Code::kUnavailable);
    }
  }
  locker.exec("COMMIT");
  REQUIRE(answers.wait(4));
  int ok = 0;
  for (const auto& [s, a] : answers.got) ok += s.ok();
  CHECK(ok == 2);
  CHECK(count_executions(*store) == 2);
  // Answered, they no longer count: the ingest takes triggers again.
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  REQUIRE(answers.wait(5));
  CHECK(answers.got.back().first.ok());
}

TEST_CASE("ingest: a repeated idempotency key is answered with the first execution") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  std::atomic<int> committed{0};
  Answers answers;
  Ingest ingest(*store, [&](const Ingest::Trigger&, int64_t) { committed++; });
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, "delivery-1"}, answers.done());
  REQUIRE(answers.wait(1));
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, "delivery-1"}, answers.done());
  REQUIRE(answers.wait(2));
  CHECK(answers.got[1].first.ok());
  CHECK(answers.got[1].second.replayed);
  CHECK(answers.got[1].second.execution_id == answers.got[0].second.execution_id);
  CHECK(committed == 1);  // the executor hears of the first only
}

TEST_CASE("ingest: a commit that fails answers every trigger of the batch with the error") {
  TempDir dir;
  auto store = open_store(dir, /*busy_timeout_ms=*/100);
  auto r = receiver(*store);
  std::atomic<int> committed{0};
  Answers answers;
  SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
  Ingest ingest(*store, [&](const Ingest::Trigger&, int64_t) { committed++; });
  locker.exec("BEGIN EXCLUSIVE");  // held past the busy timeout
  for (int i = 0; i < 3; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  REQUIRE(answers.wait(3));
  locker.exec("COMMIT");
  for (const auto& [s, a] : answers.got) {
    CHECK_FALSE(s.ok());
    CHECK_FALSE(a.overloaded);
  }
  CHECK(committed == 0);
  CHECK(count_executions(*store) == 0);
}

TEST_CASE("ingest: a failed commit's log entry names no execution of the rolled-back commit") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  {
    // The entry of an accepted trigger cannot be written: the execution's insert (made first, in
    // the same transaction) is rolled back with it.
    SQLite::Database db(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    db.exec(
        "CREATE TRIGGER no_accepted BEFORE INSERT ON requests_log WHEN NEW.outcome = 'accepted' "
        "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END");
  }
  Metrics metrics;
  RequestLog log(*store, metrics, RequestLog::Options{});
  Answers answers;
  Ingest ingest(
      *store, [](const Ingest::Trigger&, int64_t) {}, 20000, &log);
  Ingest::Trigger t{r, nullptr, {}, {}, {}};
  RequestLogRow row;
  row.receiver_id = r->row.id;
  t.request = log.admit(std::move(row));
  REQUIRE(t.request);
  t.request->outcome = "accepted";
  t.request->status = 202;
  t.request->source = "127.0.0.1";
  t.request->method = "POST";
  t.request->headers = "[]";
  ingest.submit(std::move(t), answers.done());
  REQUIRE(answers.wait(1));
  CHECK_FALSE(answers.got[0].first.ok());
  CHECK(count_executions(*store) == 0);
  log.flush();
  auto entries = store->list_request_logs(r->row.id, "", 10, 0);
  REQUIRE(entries.ok());
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].outcome == "unavailable");
  CHECK((*entries)[0].execution_id == 0);
}

namespace {
RequestLogRow big_row(int64_t receiver_id, size_t body) {
  RequestLogRow row;
  row.receiver_id = receiver_id;
  row.outcome = "ignored";
  row.status = 200;
  row.source = "127.0.0.1";
  row.method = "POST";
  row.headers = "[]";
  row.body = std::string(body, 'b');
  return row;
}
}  // namespace

TEST_CASE("request log: entries alive are bounded by bytes, from capture until written") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  Metrics metrics;
  RequestLog::Options o;
  o.max_queued = 1000;           // not what bounds it here
  o.max_live_bytes = 64 * 1024;  // about six entries of 8 KiB (and their detail's allowance)
  o.receiver_share = 1;          // one receiver may take it all
  o.batch = 1;
  {
    RequestLog log(*store, metrics, o);
    // Entries held by the trigger path (as the ingest's queue holds accepted ones) count: they
    // are claimed when captured, before anything is queued.
    std::vector<RequestLogEntry> held;
    for (int i = 0; i < 20; ++i)
      if (auto e = log.admit(big_row(r->row.id, 8 * 1024))) held.push_back(std::move(e));
    CHECK(held.size() == 6);
    CHECK(log.live_bytes() <= o.max_live_bytes);
    CHECK(metrics.request_log_dropped_count() == 14);
    // Given back as they go: room again.
    held.pop_back();
    CHECK(log.admit(big_row(r->row.id, 8 * 1024)) != nullptr);
    held.clear();
    CHECK(log.live_bytes() == 0);

    SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    locker.exec("BEGIN IMMEDIATE");  // the writer cannot write: entries wait in its queue
    for (int i = 0; i < 20; ++i) log.record(log.admit(big_row(r->row.id, 8 * 1024)));
    CHECK(log.live_bytes() <= o.max_live_bytes);
    locker.exec("ROLLBACK");
    log.flush();
    CHECK(log.live_bytes() == 0);  // written: given back
  }
  auto kept = store->list_request_logs(r->row.id, "", 100, 0);
  REQUIRE(kept.ok());
  // At most the budget (six) waited; with the one in the writer's hands, seven at most written.
  CHECK(kept->size() >= 1);
  CHECK(kept->size() <= 7);
  CHECK(kept->size() + metrics.request_log_dropped_count() == 14 + 20);
}

TEST_CASE("request log: one flooded receiver cannot push out another receiver's entries") {
  TempDir dir;
  auto store = open_store(dir);
  auto noisy = receiver(*store);
  auto quiet = receiver(*store, "quiet");
  REQUIRE(noisy->row.id != quiet->row.id);
  Metrics metrics;
  RequestLog::Options o;
  o.max_queued = 64;
  o.max_live_bytes = 1 << 20;
  o.receiver_share = 4;  // 16 queued entries and 256 KiB each
  o.batch = 1;
  {
    RequestLog log(*store, metrics, o);
    SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    locker.exec("BEGIN IMMEDIATE");
    // Small entries: the queue's share binds first.
    for (int i = 0; i < 200; ++i) log.record(log.admit(big_row(noisy->row.id, 10)));
    // Big ones: the bytes' share binds first (each claims about 10 KiB).
    std::vector<RequestLogEntry> held;
    for (int i = 0; i < 100; ++i)
      if (auto e = log.admit(big_row(noisy->row.id, 8 * 1024))) held.push_back(std::move(e));
    CHECK(log.live_bytes() <= o.max_live_bytes / 4);
    CHECK(held.size() < 30);
    // The quiet receiver's entries are all taken, however long the flood goes on.
    for (int i = 0; i < 10; ++i) {
      auto e = log.admit(big_row(quiet->row.id, 100));
      REQUIRE(e);
      log.record(std::move(e));
    }
    held.clear();
    locker.exec("ROLLBACK");
    log.flush();
  }
  auto kept = store->list_request_logs(quiet->row.id, "", 100, 0);
  REQUIRE(kept.ok());
  CHECK(kept->size() == 10);
  auto flooded = store->list_request_logs(noisy->row.id, "", 1000, 0);
  REQUIRE(flooded.ok());
  CHECK(flooded->size() <= 17);  // its share of the queue, and one in the writer's hands
  CHECK(flooded->size() >= 1);
}

TEST_CASE("ingest: no answer, plan return or hand-over before the sync that covers the commit") {
  // The writer commits without waiting for the disk and goes on; the answerer syncs the WAL and
  // only then answers. A sync held back must hold back every answer, even though the rows are
  // already committed (visible to another connection).
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> syncs{0}, committed{0};
  Answers answers;
  Ingest ingest(
      *store, [&](const Ingest::Trigger&, int64_t) { committed++; }, 20000, nullptr,
      [&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return release; });
        syncs++;
        return store->sync_wal();
      });
  for (int i = 0; i < 5; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  // The rows are committed while the sync waits...
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_executions(*store) < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  CHECK(count_executions(*store) == 5);
  // ...and more batches commit behind it, but nothing is answered or handed over.
  for (int i = 0; i < 5; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  // A worker's plan rides on a commit too: record_plans() must not return before its sync.
  int64_t planned_id = 0;
  {
    Executions planned(r->row.id, 1, Clock::system().now_ms());
    REQUIRE(planned.insert(*store).ok());
    planned_id = planned.rows[0].id;
  }
  REQUIRE(planned_id > 0);
  nlohmann::json plan = {{"replicas", 3}};
  std::atomic<bool> plan_returned{false};
  Status plan_status = Status::Internal("not returned");
  std::thread worker([&] {
    plan_status = ingest.record_plans({{planned_id, 1, &plan, "svc"}}, 1);
    plan_returned = true;
  });
  std::this_thread::sleep_for(kSettle);
  CHECK(count_executions(*store) == 11);
  auto started = store->get_execution(planned_id);
  REQUIRE(started.ok());
  CHECK(started->status == ExecutionStatus::kRunning);  // the plan is committed...
  CHECK_FALSE(plan_returned);                           // ...but its worker still waits
  CHECK_FALSE(answers.wait(1, 0ms));
  CHECK(committed == 0);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  worker.join();
  CHECK(plan_status.ok());
  REQUIRE(answers.wait(10));
  CHECK(committed == 10);
  CHECK(syncs >= 1);
  CHECK(syncs <= 2);  // one sync covers every batch committed before it started
  for (const auto& [s, a] : answers.got) CHECK(s.ok());
}

TEST_CASE("ingest: triggers committed but not yet synced count against the bound") {
  // The writer may run ahead of the answerer's sync; what it committed and has not answered
  // still holds memory, so it counts: with the sync held, the bound refuses the next trigger.
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  Answers answers;
  Ingest ingest(
      *store, [](const Ingest::Trigger&, int64_t) {}, /*max_pending=*/3, nullptr,
      [&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return release; });
        return store->sync_wal();
      });
  for (int i = 0; i < 3; ++i)
    ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (count_executions(*store) < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(count_executions(*store) == 3);  // committed: none waits in the queue any more
  ingest.submit(Ingest::Trigger{r, nullptr, {}, {}, {}}, answers.done());
  {
    std::lock_guard lock(answers.mu);
    REQUIRE(answers.got.size() == 1);
    CHECK(answers.got[0].second.overloaded);
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  REQUIRE(answers.wait(4));
  CHECK(count_executions(*store) == 3);
}

TEST_CASE("ingest: the store's sync_wal syncs the WAL file SQLite writes") {
  TempDir dir;
  auto store = open_store(dir);
  auto r = receiver(*store);
  CHECK(store->sync_wal().ok());
  struct stat st {};
  REQUIRE(::stat((dir.path + "/t.db-wal").c_str(), &st) == 0);
  CHECK(store->sync_wal().ok());  // the file it opened the first time
  // Another file under the WAL's name: SQLite still writes to the one it opened, so a sync of the
  // name would cover nothing. It is refused (the ingest then stops: Ingest::answer_all).
  std::system(("cp " + dir.path + "/t.db-wal " + dir.path + "/copy && mv " + dir.path + "/copy " +
               dir.path + "/t.db-wal")
                  .c_str());
  Status replaced = store->sync_wal();
  CHECK_FALSE(replaced.ok());
  CHECK(replaced.message().find("replaced the WAL file") != std::string::npos);
  std::system(("rm " + dir.path + "/t.db-wal").c_str());
  Status gone = store->sync_wal();
  CHECK_FALSE(gone.ok());
  CHECK(gone.message().find("cannot find the WAL file") != std::string::npos);
}

namespace {
RequestLogRow accepted_row(int64_t receiver_id, const std::string& body) {
  RequestLogRow row;
  row.receiver_id = receiver_id;
  row.received_at = 1000;
  row.outcome = "accepted";
  row.status = 202;
  row.source = "192.0.2.7";
  row.method = "POST";
  row.headers = R"([["content-type","application/json"]])";
  row.body = body;
  row.body_size = static_cast<int64_t>(body.size());
  return row;
}

// Hands one accepted entry to the log as the ingest's answerer hands a committed batch's.
void record_accepted(RequestLog& log, RequestLogEntry entry) {
  std::vector<RequestLogEntry> batch;
  batch.push_back(std::move(entry));
  log.record_accepted(batch);
}

int64_t log_row_count(const TempDir& dir) {
  SQLite::Database db(dir.path + "/t.db", SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM requests_log").getInt64();
}
}  // namespace

TEST_CASE(
    "request log: an accepted request's entry is written after its commit, under the id its "
    "execution names, and a read after the answer finds it") {
  TempDir dir;
  auto store = open_store(dir, 5000, /*defer_accepted_log=*/true);
  auto r = receiver(*store);
  Metrics metrics;
  RequestLog log(*store, metrics, RequestLog::Options{});
  Answers answers;
  Ingest ingest(
      *store, [](const Ingest::Trigger&, int64_t) {}, 20000, &log);
  constexpr int kTriggers = 20;
  for (int i = 0; i < kTriggers; ++i) {
    Ingest::Trigger t{r, nullptr, {}, {}, {}};
    t.request = log.admit(accepted_row(r->row.id, "{\"n\":" + std::to_string(i) + "}"));
    REQUIRE(t.request);
    ingest.submit(std::move(t), answers.done());
  }
  REQUIRE(answers.wait(kTriggers));
  // What a read of the log does first (App::sync_request_log): each answered entry is there.
  log.sync();
  std::set<std::string> bodies;
  for (const auto& [status, a] : answers.got) {
    REQUIRE(status.ok());
    REQUIRE(a.request_id > 0);
    auto e = store->get_execution(a.execution_id);
    REQUIRE(e.ok());
    CHECK(e->request_id == a.request_id);
    auto entry = store->get_request_log(r->row.id, a.request_id);
    REQUIRE(entry.ok());
    CHECK(entry->outcome == "accepted");
    CHECK(entry->execution_id == a.execution_id);
    CHECK(entry->source == "192.0.2.7");
    CHECK(entry->headers == R"([["content-type","application/json"]])");
    bodies.insert(entry->body);
  }
  CHECK(bodies.size() == kTriggers);  // each its own request's excerpt
  CHECK(log_row_count(dir) == kTriggers);
  CHECK(log.live_bytes() == 0);  // given back once written
  CHECK(metrics.request_log_dropped_count() == 0);
}

TEST_CASE(
    "store: a deferred accepted entry keeps its id, one a crash left unwritten is rebuilt when "
    "the store opens (once), and one the cap deleted stays deleted") {
  TempDir dir;
  auto r = [&] {
    auto store = open_store(dir, 5000, true);
    return receiver(*store);
  }();
  std::vector<RequestLogRow> entries;
  std::vector<int64_t> executions;
  nlohmann::json rule = {{"index", 0}, {"name", "firing"}};
  {
    auto store = open_store(dir, 5000, true);
    Executions batch(r->row.id, 3, 1000);
    entries.assign(3, accepted_row(r->row.id, "{}"));
    for (size_t i = 0; i < 3; ++i) {
      batch.rows[i].request = &entries[i];
      batch.rows[i].rule = &rule;
    }
    REQUIRE(batch.insert(*store).ok());
    executions = batch.ids();
    for (size_t i = 0; i < 3; ++i) {
      CHECK(entries[i].deferred);
      CHECK(entries[i].id > 0);
      CHECK(entries[i].execution_id == executions[i]);
      auto e = store->get_execution(executions[i]);
      REQUIRE(e.ok());
      CHECK(e->request_id == entries[i].id);
    }
    CHECK(log_row_count(dir) == 0);  // not by the commit
    // The log's writer writes the first two, under their ids, and notes how far it got.
    std::vector<RequestLogRow> written(entries.begin(), entries.begin() + 2);
    REQUIRE(store->insert_request_logs(written, {}, 0, nullptr, 2000, entries[1].id).ok());
    CHECK(written[0].id == entries[0].id);
    CHECK(written[1].id == entries[1].id);
    auto listed = store->list_request_logs(r->row.id, "", 10, 0);
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 2);
    CHECK((*listed)[0].id == entries[1].id);
    CHECK((*listed)[0].body == "{}");
    // The cap deletes the oldest one after it was written.
    std::vector<RequestLogRow> none;
    REQUIRE(store->insert_request_logs(none, {r->row.id}, 1).ok());
    CHECK(log_row_count(dir) == 1);
  }  // "crash": the third was never written
  {
    // Another process on the file (a CLI command) rebuilds nothing: the server may still hold
    // the entry in memory.
    StoreOptions other;
    auto store = Store::open(dir.path + "/t.db", other);
    REQUIRE(store.ok());
    CHECK(log_row_count(dir) == 1);
  }
  for (int open = 0; open < 2; ++open) {
    auto store = open_store(dir, 5000, true);
    auto listed = store->list_request_logs(r->row.id, "accepted", 10, 0);
    REQUIRE(listed.ok());
    INFO("open " << open);
    REQUIRE(listed->size() == 2);  // the third rebuilt (once), the capped first not
    const RequestLogRow& rebuilt = (*listed)[0];
    CHECK(rebuilt.id == entries[2].id);
    CHECK(rebuilt.execution_id == executions[2]);
    CHECK(rebuilt.outcome == "accepted");
    CHECK(rebuilt.status == 202);
    CHECK(rebuilt.detail["rule"] == rule);
    CHECK(rebuilt.detail.contains("excerpt_lost"));
    CHECK((*listed)[1].id == entries[1].id);
    CHECK((*listed)[1].detail.contains("excerpt_lost") == false);
    // The first open rebuilt it, for this receiver: its cap is applied at start (service.cpp).
    CHECK(store->rebuilt_request_log_receivers() ==
          (open == 0 ? std::vector<int64_t>{r->row.id} : std::vector<int64_t>{}));
    // New entries take ids after every one an execution names.
    std::vector<RequestLogRow> more{accepted_row(r->row.id, "{}")};
    more[0].outcome = "ignored";
    REQUIRE(store->insert_request_logs(more, {}, 0).ok());
    CHECK(more[0].id > entries[2].id);
  }
}

TEST_CASE(
    "request log: under a flood of accepted entries only the newest of each receiver wait to be "
    "written, the older counted as capped") {
  TempDir dir;
  auto store = open_store(dir, 5000, true);
  auto flooded = receiver(*store);
  auto quiet = receiver(*store, "quiet");
  Metrics metrics;
  RequestLog::Options o;
  o.keep_per_receiver = 10;
  {
    RequestLog log(*store, metrics, o);
    SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    locker.exec("BEGIN IMMEDIATE");  // the writer cannot write: everything waits
    // Ids as the commits would allocate them: in the order of their executions.
    int64_t next = 1;
    auto accepted = [&](int64_t receiver_id) {
      RequestLogEntry e = log.admit(accepted_row(receiver_id, std::to_string(next)));
      REQUIRE(e);
      e->id = next;
      e->execution_id = next;
      e->deferred = true;
      ++next;
      record_accepted(log, std::move(e));
    };
    for (int i = 0; i < 50; ++i) {
      accepted(flooded->row.id);
      if (i % 20 == 0) accepted(quiet->row.id);
    }
    // 53 recorded: 40 of the flooded receiver's made room for newer ones, given back at once.
    auto capped = [&] {
      std::string text = metrics.render();
      auto at = text.find("\ntripline_request_log_capped_total ");
      REQUIRE(at != std::string::npos);
      return std::stoll(text.substr(at + 35));
    };
    CHECK(capped() == 40);
    CHECK(log.live_bytes() > 0);
    locker.exec("ROLLBACK");
    log.sync();  // everything recorded before it is written
    CHECK(log.live_bytes() == 0);
  }
  auto kept = store->list_request_logs(flooded->row.id, "", 100, 0);
  REQUIRE(kept.ok());
  REQUIRE(kept->size() == 10);
  // The newest ten, under their own ids, each with its own body.
  CHECK(kept->front().id == 53);
  CHECK(kept->back().id == 43);  // 44 is the quiet receiver's
  for (const auto& e : *kept) CHECK(e.body == std::to_string(e.id));
  auto other = store->list_request_logs(quiet->row.id, "", 100, 0);
  REQUIRE(other.ok());
  CHECK(other->size() == 3);  // another receiver's flood takes none of its entries
}

TEST_CASE(
    "request log: an accepted entry whose write failed is written with the next batch, and the "
    "store's note never passes it meanwhile") {
  TempDir dir;
  std::shared_ptr<const Receiver> r;
  std::vector<RequestLogRow> entries(3);
  auto deferred_upto = [&] {
    SQLite::Database db(dir.path + "/t.db", SQLite::OPEN_READONLY);
    return db
        .execAndGet(
            "SELECT CAST(value AS INTEGER) FROM settings WHERE name = 'request_log_deferred_upto'")
        .getInt64();
  };
  {
    auto store = open_store(dir, 5000, true);
    r = receiver(*store);
    Executions batch(r->row.id, 3, 1000);
    for (size_t i = 0; i < 3; ++i) {
      entries[i] = accepted_row(r->row.id, "{\"n\":" + std::to_string(i) + "}");
      batch.rows[i].request = &entries[i];
    }
    REQUIRE(batch.insert(*store).ok());
    REQUIRE(entries[0].deferred);
    REQUIRE(entries[1].id > entries[0].id);
    const int64_t before = deferred_upto();
    CHECK(before < entries[0].id);
    Metrics metrics;
    RequestLog log(*store, metrics, RequestLog::Options{});
    {
      SQLite::Database db(dir.path + "/t.db", SQLite::OPEN_READWRITE);
      db.exec("CREATE TRIGGER refuse_first BEFORE INSERT ON requests_log WHEN NEW.id = " +
              std::to_string(entries[0].id) + " BEGIN SELECT RAISE(ABORT, 'for the test'); END");
    }
    record_accepted(log, log.admit(entries[0]));
    log.sync();  // the write failed: not hanging
    CHECK(log_row_count(dir) == 0);
    CHECK(deferred_upto() == before);
    // Still failing with the next entry: neither is written, the note stays below both.
    record_accepted(log, log.admit(entries[1]));
    log.sync();
    CHECK(log_row_count(dir) == 0);
    CHECK(deferred_upto() == before);
    {
      SQLite::Database db(dir.path + "/t.db", SQLite::OPEN_READWRITE);
      db.exec("DROP TRIGGER refuse_first");
    }
    record_accepted(log, log.admit(entries[2]));
    log.sync();
    // The failed ones went with it, as they were captured.
    CHECK(log_row_count(dir) == 3);
    CHECK(deferred_upto() == entries[2].id);
    CHECK(metrics.request_log_dropped_count() == 0);
    CHECK(log.live_bytes() == 0);
  }
  auto store = open_store(dir, 5000, true);
  auto listed = store->list_request_logs(r->row.id, "", 10, 0);
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    const RequestLogRow& e = (*listed)[2 - i];
    CHECK(e.id == entries[i].id);
    CHECK(e.body == "{\"n\":" + std::to_string(i) + "}");
    CHECK_FALSE(e.detail.contains("excerpt_lost"));
  }
  CHECK(store->rebuilt_request_log_receivers().empty());
}
