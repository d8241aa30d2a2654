// The executor against a real SQLite file and a fake driver: what happens when the store fails.
#include "executor.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "../support/store_fixture.h"
#include "../support/timing.h"
#include "metrics.h"
#include "store.h"

using namespace tripline;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using tripline::test::Executions;
using tripline::test::TempDir;

struct FakeConfig : DriverConfig {
  std::string target = "one";
};

// Records the order of applies; `on_apply` runs inside apply() (e.g. to take a database lock).
class FakeDriver : public Driver {
 public:
  mutable std::mutex mu;
  mutable std::vector<int64_t> applied;
  std::function<void(int64_t)> on_apply;
  std::chrono::milliseconds delay{0};

  std::string_view name() const override { return "fake"; }
  json config_schema() const override { return {{"type", "object"}}; }
  Result<std::shared_ptr<const DriverConfig>> validate(const json&, bool) const override {
    return std::shared_ptr<const DriverConfig>(std::make_shared<FakeConfig>());
  }
  std::string describe(const DriverConfig&) const override { return "fake"; }
  std::string target(const DriverConfig& c) const override {
    return static_cast<const FakeConfig&>(c).target;
  }
  std::string action(const DriverConfig&) const override { return "run"; }
  Plan plan(const DriverConfig&) const override { return Plan::of({{"n", 1}}); }
  Outcome apply(const DriverConfig&, const json& plan) const override {
    int64_t id = plan["id"];
    {
      std::lock_guard lock(mu);
      applied.push_back(id);
    }
    if (on_apply) on_apply(id);
    if (delay.count()) std::this_thread::sleep_for(delay);
    return Outcome::succeeded({{"applied", id}});
  }
  std::vector<int64_t> order() const {
    std::lock_guard lock(mu);
    return applied;
  }
};

void make_receivers(Store& store, int n) { tripline::test::make_receivers(store, n, "fake"); }

// n executions of receiver 1 ("a") or 2 ("b"), committed; the action column names the lane.
std::vector<int64_t> insert_on(Store& store, const std::string& lane, int n) {
  make_receivers(store, 2);
  Executions batch(lane == "a" ? 1 : 2, n, store.clock().now_ms(), "fake", lane);
  REQUIRE(batch.insert(store).ok());
  return batch.ids();
}

std::vector<int64_t> insert(Store& store, int n) { return insert_on(store, "a", n); }

// A store in `dir` on `clock` (null: the system's), whose writes wait busy_timeout_ms for a lock
// held elsewhere.
std::unique_ptr<Store> open_store(const TempDir& dir, const Clock* clock = nullptr,
                                  int busy_timeout_ms = 5000) {
  StoreOptions o;
  o.clock = clock;
  o.busy_timeout_ms = busy_timeout_ms;
  return std::move(Store::open(dir.path + "/t.db", o)).value();
}

template <typename F>
bool eventually(F&& f, std::chrono::milliseconds limit = 10s) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

}  // namespace

TEST_CASE("trust 6: a failed commit does not fail the next one") {
  TempDir dir;
  auto store = open_store(dir, nullptr, 100);
  insert(*store, 1);
  {
    SQLite::Database other(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    other.exec("BEGIN EXCLUSIVE");
    std::string driver = "fake", config = "{}";
    std::vector<NewExecution> batch(1);
    batch[0].driver = &driver;
    batch[0].config = &config;
    CHECK(store->insert_executions(batch).code() == Status::Code::kUnavailable);
    other.exec("ROLLBACK");
  }
  // Found by the trust 3 test: the cached statement re-threw its last error at reset().
  CHECK(insert(*store, 1).size() == 1);
}

TEST_CASE(
    "trust 6: an outcome refused while another process holds the database leaves nothing "
    "running on the connection: the next commits succeed") {
  // The executor's statements stay prepared on the writer's connection. One that met the lock
  // (SQLITE_BUSY) was left mid-run, and every later COMMIT on that connection failed ("SQL
  // statements in progress") until the same statement ran again, which a paused executor never
  // does: the trigger path's commits failed meanwhile.
  TempDir dir;
  auto store = open_store(dir, nullptr, 100);
  auto ids = insert(*store, 3);
  const nlohmann::json result = {{"replicas", 2}};
  const nlohmann::json plan = {{"replicas", 2}};
  std::vector<Store::PlannedRun> runs = {{ids[2], 1, &plan, "fake:a"}};
  {
    SQLite::Database other(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    other.exec("BEGIN EXCLUSIVE");
    CHECK(store->finish(ids[0], ExecutionStatus::kSucceeded, result, "", 1, "fake:a").code() ==
          Status::Code::kUnavailable);
    CHECK(store->requeue(ids[1], "peer down", 2, "fake:a").code() == Status::Code::kUnavailable);
    CHECK(store->start_planned(runs, 3).code() == Status::Code::kUnavailable);
    other.exec("ROLLBACK");
  }
  // The group commit, and the request log's writer, on the same connection.
  CHECK(insert(*store, 1).size() == 1);
  std::vector<RequestLogRow> entry(1);
  entry[0].receiver_id = 1;
  entry[0].outcome = "ignored";
  entry[0].status = 200;
  entry[0].source = "127.0.0.1";
  entry[0].method = "POST";
  entry[0].headers = "[]";
  CHECK(store->insert_request_logs(entry, {}, 0).ok());
  // And the refused writes themselves, once the lock is gone.
  CHECK(store->finish(ids[0], ExecutionStatus::kSucceeded, result, "", 1, "fake:a").ok());
  CHECK(store->get_execution(ids[0])->status == ExecutionStatus::kSucceeded);
}

TEST_CASE("trust 6: an outcome the store refuses is retried, and the target's lane waits for it") {
  TempDir dir;
  auto store = open_store(dir, nullptr, 100);
  auto ids = insert(*store, 2);

  FakeDriver driver;
  SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE | SQLite::OPEN_FULLMUTEX);
  std::mutex lock_mu;
  bool locked = false;
  // The first execution's apply takes the database's write lock, as a backup tool or a full disk
  // would leave it: its "succeeded" cannot be written.
  driver.on_apply = [&](int64_t id) {
    if (id != ids[0]) return;
    std::lock_guard lock(lock_mu);
    locker.exec("BEGIN EXCLUSIVE");
    locked = true;
  };
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.start();
  auto config = std::make_shared<const FakeConfig>();
  for (int64_t id : ids) {
    Job j;
    j.id = id;
    j.driver = &driver;
    j.config = config;
    j.lane = "fake:one";
    j.plan = {{"id", id}};  // recorded plans, as after a restart: apply runs at once
    executor.enqueue(std::move(j));
  }
  REQUIRE(eventually([&] { return metrics.store_write_failures() >= 2; }));
  // The second execution on the same target has not run over the unrecorded first.
  CHECK(driver.order() == std::vector<int64_t>{ids[0]});
  {
    SQLite::Database reader(dir.path + "/t.db", SQLite::OPEN_READONLY);
    SQLite::Statement q(reader, "SELECT status FROM executions WHERE id = ?");
    q.bind(1, ids[0]);
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getString() != "succeeded");
  }
  {
    std::lock_guard lock(lock_mu);
    REQUIRE(locked);
    locker.exec("ROLLBACK");
  }
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == ids);  // each applied once, in order
  for (int64_t id : ids) {
    auto e = store->get_execution(id);
    REQUIRE(e.ok());
    CHECK(e->status == ExecutionStatus::kSucceeded);
  }
  CHECK(store->get_execution(ids[0])->finished_at <= store->get_execution(ids[1])->started_at);
}

namespace {
// What service.cpp's loader does, minus configs: the next page of unfinished rows as jobs whose
// lane is the row's action column ("a" or "b" here).
Loader loader_for(Store& store, FakeDriver& driver, std::atomic<int>* pages) {
  return [&store, &driver, pages](int64_t after, int limit) -> Result<LoadedPage> {
    auto rows = store.unfinished_executions(after, limit);
    if (!rows.ok()) return rows.status();
    ++*pages;
    LoadedPage page;
    page.rows = int(rows->size());
    for (const auto& e : *rows) {
      page.last_id = e.id;
      auto config = std::make_shared<FakeConfig>();
      config->target = e.action;
      Job j;
      j.id = e.id;
      j.driver = &driver;
      j.config = config;
      j.lane = "fake:" + e.action;
      j.plan = {{"id", e.id}};
      page.jobs.push_back(std::move(j));
    }
    return page;
  };
}

}  // namespace

TEST_CASE(
    "floods: the executor holds a bounded window and reads the rest from the store, in order") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  // 300 executions waiting from "before a restart", on two targets.
  auto a = insert_on(*store, "a", 150);
  auto b = insert_on(*store, "b", 150);
  FakeDriver driver;
  std::atomic<size_t> most_held{0};
  Metrics metrics;
  std::atomic<int> pages{0};
  Executor executor(*store, metrics, RetryPolicy{}, 3, loader_for(*store, driver, &pages),
                    /*max_held=*/16);
  driver.on_apply = [&](int64_t) { most_held = std::max(most_held.load(), executor.held()); };
  executor.start(300);
  CHECK(executor.depth() == 300);
  // More arrive while it works, through enqueue() as the ingest hands them over.
  for (int round = 0; round < 5; ++round) {
    for (int64_t id : insert_on(*store, round % 2 ? "a" : "b", 20)) {
      Job j;
      j.id = id;
      j.driver = &driver;
      auto config = std::make_shared<FakeConfig>();
      config->target = round % 2 ? "a" : "b";
      j.config = config;
      j.lane = std::string("fake:") + (round % 2 ? "a" : "b");
      j.plan = {{"id", id}};
      (round % 2 ? a : b).push_back(id);
      executor.enqueue(std::move(j));
    }
  }
  REQUIRE(eventually([&] { return executor.depth() == 0; }, 30s));
  executor.stop();
  auto order = driver.order();
  CHECK(order.size() == 400);  // each exactly once
  CHECK(most_held <= 16);
  CHECK(pages >= 400 / 16);
  // Per target, in the order accepted.
  std::vector<int64_t> seen_a, seen_b;
  for (int64_t id : order)
    (std::find(a.begin(), a.end(), id) != a.end() ? seen_a : seen_b).push_back(id);
  CHECK(seen_a == a);
  CHECK(seen_b == b);
}

TEST_CASE("floods: a flooded target holds one worker, another target's executions start at once") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  FakeDriver driver;
  driver.delay = 20ms;
  Metrics metrics;
  std::atomic<int> pages{0};
  Executor executor(*store, metrics, RetryPolicy{}, 2, loader_for(*store, driver, &pages), 64);
  auto flood = insert_on(*store, "a", 60);  // 60 x 20 ms = 1.2 s of work on target a
  executor.start(60);
  REQUIRE(eventually([&] { return !driver.order().empty(); }));
  auto started = std::chrono::steady_clock::now();
  auto lone = insert_on(*store, "b", 1);
  Job j;
  j.id = lone[0];
  j.driver = &driver;
  auto config = std::make_shared<FakeConfig>();
  config->target = "b";
  j.config = config;
  j.lane = "fake:b";
  j.plan = {{"id", lone[0]}};
  executor.enqueue(std::move(j));
  REQUIRE(eventually([&] {
    auto o = driver.order();
    return std::find(o.begin(), o.end(), lone[0]) != o.end();
  }));
  auto waited = std::chrono::steady_clock::now() - started;
  auto o = driver.order();
  size_t before = std::find(o.begin(), o.end(), lone[0]) - o.begin();
  INFO("target b's execution ran after " << before << " of target a's");
  CHECK(before < 10);  // not behind the whole flood (60)
  CHECK(std::chrono::duration<double, std::milli>(waited).count() < 500 * test::kTimeScale);
  REQUIRE(eventually([&] { return executor.depth() == 0; }, 30s));
  executor.stop();
}

TEST_CASE("floods: a row a page already read is not held again when the ingest hands it over") {
  // Found in review: the ingest commits a batch, then hands each row to enqueue(); a page read in
  // between already holds the row.
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  FakeDriver driver;
  Metrics metrics;
  std::atomic<int> pages{0};
  auto ids = insert_on(*store, "a", 1);  // committed, not yet handed over
  Executor executor(*store, metrics, RetryPolicy{}, 1, loader_for(*store, driver, &pages), 16);
  executor.pause();
  executor.start(0);  // spilled: the first page reads the row
  executor.resume();
  REQUIRE(eventually([&] { return driver.order().size() == 1; }));
  Job j;  // the ingest's hand-over arrives late
  j.id = ids[0];
  j.driver = &driver;
  j.config = std::make_shared<FakeConfig>();
  j.lane = "fake:a";
  j.plan = {{"id", ids[0]}};
  executor.enqueue(std::move(j));
  std::this_thread::sleep_for(200ms);
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == ids);  // applied once
}

namespace {
// A counter as the peer: plan reads it and asks for +1 (at most `max`); plan_after chains from
// the plan before; apply sets it. Counts the peer's reads and writes.
class CounterDriver : public Driver {
 public:
  mutable std::mutex mu;
  mutable int64_t value = 0;
  mutable int reads = 0, writes = 0;
  mutable std::vector<int64_t> applied;  // the "replicas" of each applied plan, in order
  mutable int fail_applies = 0;          // the next n applies fail (retryable)
  std::set<int64_t> refused;             // an apply of these replicas fails for good
  int64_t max = 30;

  std::string_view name() const override { return "counter"; }
  json config_schema() const override { return {{"type", "object"}}; }
  Result<std::shared_ptr<const DriverConfig>> validate(const json&, bool) const override {
    return std::shared_ptr<const DriverConfig>(std::make_shared<FakeConfig>());
  }
  std::string describe(const DriverConfig&) const override { return "counter"; }
  std::string target(const DriverConfig&) const override { return "one"; }
  std::string action(const DriverConfig&) const override { return "up"; }
  json step(int64_t from) const {
    return {{"replicas_before", from}, {"replicas", std::min(from + 1, max)}};
  }
  Plan plan(const DriverConfig&) const override {
    std::lock_guard lock(mu);
    ++reads;
    return Plan::of(step(value));
  }
  std::optional<json> plan_after(const DriverConfig&, const json& previous) const override {
    return step(previous.at("replicas").get<int64_t>());
  }
  Outcome apply(const DriverConfig&, const json& plan) const override {
    std::lock_guard lock(mu);
    ++reads;
    if (fail_applies > 0) {
      --fail_applies;
      return Outcome::retryable("the peer is busy");
    }
    int64_t want = plan.at("replicas");
    if (refused.count(want)) return Outcome::final("the peer refuses " + std::to_string(want));
    applied.push_back(want);
    if (value != want) ++writes;
    value = want;
    return Outcome::succeeded({{"replicas_after", want}});
  }
};

void enqueue_unplanned(Executor& executor, const Driver& driver, const std::vector<int64_t>& ids) {
  auto config = std::make_shared<const FakeConfig>();
  for (int64_t id : ids) {
    Job j;
    j.id = id;
    j.driver = &driver;
    j.config = config;
    j.lane = "counter:one";
    executor.enqueue(std::move(j));
  }
}
}  // namespace

TEST_CASE("floods: a lane's queued executions are planned together, recorded each, applied once") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 50);
  CounterDriver driver;
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.start();
  executor.pause();  // they all wait in the lane, as under a flood
  enqueue_unplanned(executor, driver, ids);
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();

  CHECK(driver.value == 30);  // 50 x "+1, at most 30"
  CHECK(driver.reads <= 4);   // one plan read and one apply read per batch, not 100
  CHECK(driver.writes == 1);
  // Every execution recorded its own plan, each following the one before, in order.
  int64_t expect_before = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto e = store->get_execution(ids[i]);
    REQUIRE(e.ok());
    CHECK(e->status == ExecutionStatus::kSucceeded);
    CHECK(e->attempts == 1);
    REQUIRE(e->plan.is_object());
    CHECK(e->plan["replicas_before"] == expect_before);
    expect_before = e->plan["replicas"];
    if (i + 1 < ids.size()) CHECK(e->result == json{{"applied_with", ids.back()}});
  }
  CHECK(store->get_execution(ids.back())->result == json{{"replicas_after", 30}});
}

namespace {
// CounterDriver that says when a plan asks for what its read found (Driver::settled).
class SettlingCounterDriver : public CounterDriver {
 public:
  std::optional<Outcome> settled(const DriverConfig&, const json& read,
                                 const json& plan) const override {
    if (read.at("replicas_before") != plan.at("replicas")) return std::nullopt;
    return Outcome::succeeded({{"replicas_after", plan.at("replicas")}, {"applied", false}});
  }
};
}  // namespace

TEST_CASE(
    "floods: a lane that ran executions together gathers before its next batch: a steady "
    "stream costs a few peer reads, not one per batch") {
  // Executor::kGatherMs. Without it a flooded lane's next batch started as soon as one ended, so
  // a stream of executions cost a peer read every millisecond or so (dockerd's CPU under a
  // flood: bench/RESULTS.md "Gathering a flooded lane").
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 300);
  SettlingCounterDriver driver;
  driver.value = driver.max;  // at the bound: each batch is one read and one transaction
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.start();
  // Three every 2 ms, as a flood's group commits hand them over: each lot finds the lane busy
  // or gathering. (A lone execution, which finds it idle, runs at once.)
  auto began = std::chrono::steady_clock::now();
  for (size_t i = 0; i < ids.size(); i += 3) {
    enqueue_unplanned(executor, driver, {ids[i], ids[i + 1], ids[i + 2]});
    std::this_thread::sleep_until(began + std::chrono::milliseconds(2 * (i / 3 + 1)));
  }
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  for (int64_t id : ids) CHECK(store->get_execution(id)->status == ExecutionStatus::kSucceeded);
  // 200 ms of arrivals in batches at least 20 ms apart: about 10 reads; a batch per lot would
  // be 100.
  INFO(driver.reads << " peer reads for " << ids.size() << " executions");
  CHECK(driver.reads <= 30);
}

TEST_CASE("floods: a lane holding whole batches runs them back to back, without gathering") {
  // Gathering between whole batches would cap a lane's drain at kMaxBatch per kGatherMs (in
  // bench/flood.sh's swarm run, 4,000 of 210,000 executions were still queued at the stop).
  // The clock never moves here: a lane that gathered would wait for good.
  TempDir dir;
  ManualClock clock;
  auto store = open_store(dir, &clock);
  auto ids = insert(*store, 3000);
  SettlingCounterDriver driver;
  driver.value = driver.max;
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.start();
  executor.pause();
  enqueue_unplanned(executor, driver, ids);
  executor.resume();
  CHECK(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.reads == 3);  // three batches of 1000
}

TEST_CASE(
    "floods: a lane whose executions come one at a time runs each at once, without gathering") {
  // An alert's execution is not held: only a lane that ran several together gathers. The clock
  // never moves here: one that gathered would wait for good.
  TempDir dir;
  ManualClock clock;
  auto store = open_store(dir, &clock);
  auto ids = insert(*store, 3);
  SettlingCounterDriver driver;
  driver.value = driver.max;
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.start();
  for (int64_t id : ids) {
    enqueue_unplanned(executor, driver, {id});
    CHECK(eventually([&] { return executor.depth() == 0; }, 5s));
  }
  executor.stop();
  for (int64_t id : ids) CHECK(store->get_execution(id)->status == ExecutionStatus::kSucceeded);
}

TEST_CASE("floods: executions at the peer's bound are recorded without an apply") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  SettlingCounterDriver driver;
  driver.value = driver.max;  // already at the bound: every "+1" plans the count it read
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.start();
  SECTION("planned together") {
    // Plans and outcomes in one transaction (Store::finish_settled): the plan recorder, which
    // rides on the ingest's synced commit, is never asked.
    std::atomic<int> recorded{0};
    executor.record_plans_with([&](const std::vector<Store::PlannedRun>& runs, int64_t at) {
      ++recorded;
      return store->start_planned(runs, at);
    });
    auto ids = insert(*store, 20);
    executor.pause();
    enqueue_unplanned(executor, driver, ids);
    executor.resume();
    REQUIRE(eventually([&] { return executor.depth() == 0; }));
    executor.stop();
    CHECK(driver.reads == 1);  // the plan's read; no apply, which would read again
    CHECK(driver.applied.empty());
    CHECK(recorded == 0);
    auto last = store->get_execution(ids.back());
    REQUIRE(last.ok());
    CHECK(last->status == ExecutionStatus::kSucceeded);
    CHECK(last->result == json{{"replicas_after", driver.max}, {"applied", false}});
    for (int64_t id : ids) {  // each with its own plan, attempt and times, as if applied
      auto e = store->get_execution(id);
      REQUIRE(e.ok());
      CHECK(e->status == ExecutionStatus::kSucceeded);
      CHECK(e->attempts == 1);
      CHECK(e->plan == json{{"replicas_before", driver.max}, {"replicas", driver.max}});
      CHECK(e->started_at.has_value());
      CHECK(e->finished_at.has_value());
      if (id != ids.back()) CHECK(e->result == json{{"applied_with", ids.back()}});
    }
  }
  SECTION("a row whose plan is recorded already is not finished from a fresh read") {
    // finish_settled refuses the whole lane (nothing recorded); the executor then records the
    // plans first, as for any batch, and the outcome is the same.
    auto ids = insert(*store, 5);
    const json recorded_plan = {{"replicas_before", 7}, {"replicas", 8}};
    REQUIRE(store->record_plan(ids[2], recorded_plan).ok());
    std::vector<Store::PlannedRun> runs;
    std::vector<Store::Finished> outcomes;
    json plan = {{"replicas", 1}}, result = {{"applied", false}};
    for (int64_t id : ids) {
      runs.push_back({id, 1, &plan, "one"});
      outcomes.push_back({id, ExecutionStatus::kSucceeded, &result, {}, 1, "one"});
    }
    CHECK_FALSE(store->finish_settled(runs, 1, outcomes).ok());
    for (int64_t id : ids) {  // all or nothing
      auto e = store->get_execution(id);
      REQUIRE(e.ok());
      CHECK(e->status == ExecutionStatus::kQueued);
      CHECK(e->plan == (id == ids[2] ? recorded_plan : json()));
    }
  }
  SECTION("alone") {
    auto ids = insert(*store, 1);
    enqueue_unplanned(executor, driver, ids);
    REQUIRE(eventually([&] { return executor.depth() == 0; }));
    executor.stop();
    CHECK(driver.reads == 1);
    CHECK(driver.applied.empty());
    CHECK(store->get_execution(ids[0])->status == ExecutionStatus::kSucceeded);
  }
  SECTION("below the bound, it applies") {
    driver.value = driver.max - 1;
    auto ids = insert(*store, 1);
    enqueue_unplanned(executor, driver, ids);
    REQUIRE(eventually([&] { return executor.depth() == 0; }));
    executor.stop();
    CHECK(driver.applied == std::vector<int64_t>{driver.max});
  }
}

TEST_CASE("floods: executions planned together retry together when their apply fails") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 5);
  CounterDriver driver;
  driver.fail_applies = 1;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = 10ms;
  Executor executor(*store, metrics, policy, 2, /*loader=*/nullptr);
  executor.start();
  executor.pause();
  enqueue_unplanned(executor, driver, ids);
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  // The combined apply (of 5) failed, then succeeded on the retry: the target went 0 -> 5
  // without passing back through 1..4.
  CHECK(driver.applied == std::vector<int64_t>{5});
  CHECK(driver.value == 5);
  CHECK(driver.reads == 1 + 2);  // one plan read, two apply reads
  for (int64_t id : ids) {
    auto e = store->get_execution(id);
    REQUIRE(e.ok());
    CHECK(e->status == ExecutionStatus::kSucceeded);
    CHECK(e->attempts == 2);
  }
}

TEST_CASE("executions: an execution that fails retryably, then succeeds, keeps the first error") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 1);
  CounterDriver driver;
  driver.fail_applies = 2;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = 10ms;
  Executor executor(*store, metrics, policy, 1, /*loader=*/nullptr);
  executor.start();
  enqueue_unplanned(executor, driver, ids);
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  auto e = store->get_execution(ids[0]);
  REQUIRE(e.ok());
  CHECK(e->status == ExecutionStatus::kSucceeded);
  CHECK(e->attempts == 3);
  CHECK(e->error.empty());  // the last attempt's: none
  REQUIRE(e->attempt_errors.size() == 2);
  CHECK(e->attempt_errors[0]["attempt"] == 1);
  CHECK(e->attempt_errors[0]["error"] == "the peer is busy");
  CHECK(e->attempt_errors[1]["attempt"] == 2);
}

TEST_CASE(
    "floods: recorded plans found after a crash are applied once, the last, the target never moves "
    "back") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 4);
  CounterDriver driver;
  driver.value = 7;  // the crash came after the combined apply, before the outcomes were written
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.start();
  executor.pause();
  auto config = std::make_shared<const FakeConfig>();
  for (size_t i = 0; i < ids.size(); ++i) {
    Job j;
    j.id = ids[i];
    j.driver = &driver;
    j.config = config;
    j.lane = "counter:one";
    j.plan = driver.step(3 + int64_t(i));  // 3 -> 4, 4 -> 5, 5 -> 6, 6 -> 7
    j.attempts = 1;
    executor.enqueue(std::move(j));
  }
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.applied == std::vector<int64_t>{7});  // not 4, 5, 6, 7
  CHECK(driver.writes == 0);                         // it was there already
  for (int64_t id : ids) CHECK(store->get_execution(id)->status == ExecutionStatus::kSucceeded);
}

TEST_CASE("floods: when executions planned together fail for good, each runs alone") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 3);
  CounterDriver driver;
  driver.refused = {3};  // the last one's plan (0 -> 1 -> 2 -> 3) is refused by the peer
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.start();
  executor.pause();
  enqueue_unplanned(executor, driver, ids);
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  // The combined apply (3) failed; then 1 and 2 were applied on their own, and 3 failed alone.
  CHECK(driver.applied == std::vector<int64_t>{1, 2});
  CHECK(driver.value == 2);
  CHECK(store->get_execution(ids[0])->status == ExecutionStatus::kSucceeded);
  CHECK(store->get_execution(ids[1])->status == ExecutionStatus::kSucceeded);
  auto last = store->get_execution(ids[2]);
  REQUIRE(last.ok());
  CHECK(last->status == ExecutionStatus::kFailed);
  CHECK(last->error.find("the peer refuses 3") != std::string::npos);
  for (int64_t id : ids) CHECK(store->get_execution(id)->attempts == 2);
}

TEST_CASE("clock: retry backoff is timed by the store's clock, not by sleeping") {
  TempDir dir;
  ManualClock clock;
  auto store = open_store(dir, &clock);
  auto ids = insert(*store, 1);
  CounterDriver driver;
  driver.fail_applies = 2;
  Metrics metrics;
  RetryPolicy policy;  // "equal jitter": try n waits [d/2, d], d = 10 min * 2^(n-1)
  policy.base = std::chrono::minutes(10);
  policy.max = std::chrono::hours(1);
  Executor executor(*store, metrics, policy, 1, /*loader=*/nullptr);
  executor.start();
  enqueue_unplanned(executor, driver, ids);
  auto row = [&] { return store->get_execution(ids[0]).value(); };
  auto reads = [&] {
    std::lock_guard lock(driver.mu);
    return driver.reads;
  };

  // Try 1 fails: requeued for [5, 10] minutes from the clock's now, to the millisecond.
  REQUIRE(eventually([&] { return row().error == "the peer is busy"; }));
  const int64_t t0 = clock.now_ms();
  auto first = row();
  CHECK(first.status == ExecutionStatus::kQueued);
  CHECK(first.attempts == 1);
  REQUIRE(first.next_attempt_at);
  CHECK(*first.next_attempt_at >= t0 + 5 * 60 * 1000);
  CHECK(*first.next_attempt_at <= t0 + 10 * 60 * 1000);
  CHECK(reads() == 2);  // plan, apply

  // A millisecond before it is due, nothing runs (however long the worker is left alone).
  clock.set(*first.next_attempt_at - 1);
  CHECK_FALSE(eventually([&] { return reads() != 2; }, 100ms));

  // Due: try 2 runs at once and fails; the next wait doubles, [10, 20] minutes.
  clock.set(*first.next_attempt_at);
  REQUIRE(
      eventually([&] { return row().attempts == 2 && row().status == ExecutionStatus::kQueued; }));
  auto second = row();
  REQUIRE(second.next_attempt_at);
  CHECK(*second.next_attempt_at >= clock.now_ms() + 10 * 60 * 1000);
  CHECK(*second.next_attempt_at <= clock.now_ms() + 20 * 60 * 1000);

  // Try 3 succeeds, recorded at the clock's time.
  clock.set(*second.next_attempt_at);
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  auto done = row();
  CHECK(done.status == ExecutionStatus::kSucceeded);
  CHECK(done.attempts == 3);
  CHECK(done.finished_at == clock.now_ms());
  CHECK(driver.value == 1);
}

TEST_CASE("executor: counts say how many executions are queued, running and waiting to retry") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto a = insert_on(*store, "a", 3);  // lane a: the first is held in apply, two wait behind it
  auto b = insert_on(*store, "b", 1);  // lane b: fails, retryable, and waits a long backoff

  FakeDriver driver;
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool open = false;
  std::atomic<bool> fail_b{true};
  driver.on_apply = [&](int64_t id) {
    if (id != a[0]) return;
    std::unique_lock lock(gate_mu);
    gate_cv.wait(lock, [&] { return open; });
  };
  // Lane b's driver answers retryable; its backoff (an hour) outlasts the test.
  struct Failing : FakeDriver {
    std::atomic<bool>* fail = nullptr;
    Outcome apply(const DriverConfig& c, const json& plan) const override {
      if (fail->load()) return Outcome::retryable("the peer is busy");
      return FakeDriver::apply(c, plan);
    }
  } failing;
  failing.fail = &fail_b;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = std::chrono::hours(1);
  policy.max = std::chrono::hours(1);
  Executor executor(*store, metrics, policy, 2, /*loader=*/nullptr);
  executor.pause();
  executor.start();
  auto enqueue = [&](int64_t id, const Driver* d, const std::string& lane) {
    auto config = std::make_shared<FakeConfig>();
    config->target = lane;
    Job j;
    j.id = id;
    j.driver = d;
    j.config = config;
    j.lane = "fake:" + lane;
    j.plan = {{"id", id}};
    executor.enqueue(std::move(j));
  };
  for (int64_t id : a) enqueue(id, &driver, "a");
  enqueue(b[0], &failing, "b");

  // Paused: all four queued, none running.
  auto c = executor.counts();
  CHECK(c.queued == 4);
  CHECK(c.running == 0);
  CHECK(c.retrying == 0);
  executor.resume();
  REQUIRE(eventually([&] {
    auto n = executor.counts();
    return n.running == 1 && n.retrying == 1;
  }));
  c = executor.counts();
  CHECK(c.queued == 2);  // lane a's two behind the one held in apply
  CHECK(c.queued + c.running + c.retrying == executor.depth());
  {
    std::lock_guard lock(gate_mu);
    open = true;
  }
  gate_cv.notify_all();
  REQUIRE(eventually([&] { return executor.counts().queued == 0; }));
  c = executor.counts();
  CHECK(c.running == 0);
  CHECK(c.retrying == 1);  // lane b, still waiting out its backoff
  CHECK(executor.depth() == 1);
  executor.stop();
}

namespace {
Job fake_job(FakeDriver& driver, int64_t id) {
  Job j;
  j.id = id;
  j.driver = &driver;
  j.config = std::make_shared<const FakeConfig>();
  j.lane = "fake:one";
  j.plan = {{"id", id}};
  return j;
}
}  // namespace

TEST_CASE(
    "cancel: the store is written without the executor lock and a failed write puts it back") {
  TempDir dir;
  auto store = open_store(dir, nullptr, 2000);
  auto ids = insert(*store, 4);
  FakeDriver driver;
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.pause();
  executor.start();
  for (int i = 0; i < 3; ++i) executor.enqueue(fake_job(driver, ids[i]));

  // Another connection holds the write lock: the cancel's synced write waits for it, then fails.
  SQLite::Database locker(dir.path + "/t.db", SQLite::OPEN_READWRITE);
  locker.exec("BEGIN EXCLUSIVE");
  Status cancelled = Status::Ok();
  bool held = false;
  std::thread canceller([&] { cancelled = executor.cancel(ids[1], &held); });
  std::this_thread::sleep_for(300ms);
  // Meanwhile the executor answers and takes work: it was blocked for the whole wait.
  auto started = std::chrono::steady_clock::now();
  CHECK(executor.depth() == 3);
  executor.enqueue(fake_job(driver, ids[3]));
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(took < 500ms);
  canceller.join();
  locker.exec("ROLLBACK");
  CHECK(cancelled.code() == Status::Code::kUnavailable);
  CHECK_FALSE(held);
  // Put back where it was: all four run, in order.
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == ids);
}

TEST_CASE("cancel: a queued job is taken out and never runs while the others run in order") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 3);
  FakeDriver driver;
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.pause();
  executor.start();
  auto backlog = std::make_shared<std::atomic<int64_t>>(3);
  for (int64_t id : ids) {
    Job j = fake_job(driver, id);
    j.backlog = backlog;
    executor.enqueue(std::move(j));
  }
  bool held = false;
  REQUIRE(executor.cancel(ids[1], &held).ok());
  CHECK(held);
  CHECK(backlog->load() == 2);  // its slot given back, once
  CHECK(executor.depth() == 2);
  CHECK(executor.cancel(ids[1], &held).code() == Status::Code::kConflict);
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == std::vector<int64_t>{ids[0], ids[2]});
  CHECK(backlog->load() == 0);
  auto e = store->get_execution(ids[1]);
  REQUIRE(e.ok());
  CHECK(e->status == ExecutionStatus::kFailed);
  CHECK(e->error == "cancelled");
}

TEST_CASE("cancel: a lane waiting to retry whose only job is cancelled runs its next job at once") {
  TempDir dir;
  ManualClock clock;
  auto store = open_store(dir, &clock);
  auto ids = insert(*store, 2);
  CounterDriver driver;
  driver.fail_applies = 1;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = std::chrono::minutes(10);
  policy.max = std::chrono::hours(1);
  Executor executor(*store, metrics, policy, 1, /*loader=*/nullptr);
  executor.start();
  enqueue_unplanned(executor, driver, {ids[0]});
  // Its first try fails: the lane waits at least 5 minutes of the (manual) clock.
  REQUIRE(eventually([&] { return store->get_execution(ids[0])->attempts == 1; }));
  REQUIRE(eventually([&] { return store->get_execution(ids[0])->next_attempt_at.has_value(); }));
  bool held = false;
  REQUIRE(executor.cancel(ids[0], &held).ok());
  CHECK(held);
  // The next job of that lane does not wait for the cancelled one's retry time.
  enqueue_unplanned(executor, driver, {ids[1]});
  CHECK(eventually([&] { return executor.depth() == 0; }, 3s));
  // And the stale timer, when due, does not schedule the lane a second time.
  clock.set(clock.now_ms() + 2 * 3600 * 1000);
  std::this_thread::sleep_for(100ms);
  executor.stop();
  CHECK(store->get_execution(ids[1])->status == ExecutionStatus::kSucceeded);
  CHECK(store->get_execution(ids[0])->status == ExecutionStatus::kFailed);
}

TEST_CASE(
    "cancel: a lane's only job put back after the store refused its cancel runs when its timer is "
    "due") {
  // The lane had gone with the cancel; the put-back made its timer again, but with the timer's
  // id in the wrong field: the timer was taken for a stale one, and the lane never ran again,
  // nor anything enqueued for its target after.
  TempDir dir;
  ManualClock clock;
  auto store = open_store(dir, &clock, 100);
  auto ids = insert(*store, 2);
  CounterDriver driver;
  driver.fail_applies = 1;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = std::chrono::minutes(10);
  policy.max = std::chrono::hours(1);
  Executor executor(*store, metrics, policy, 1, /*loader=*/nullptr);
  executor.start();
  enqueue_unplanned(executor, driver, {ids[0]});
  REQUIRE(eventually([&] { return store->get_execution(ids[0])->next_attempt_at.has_value(); }));
  {
    SQLite::Database other(dir.path + "/t.db", SQLite::OPEN_READWRITE);
    other.exec("BEGIN EXCLUSIVE");
    bool held = false;
    CHECK_FALSE(executor.cancel(ids[0], &held).ok());  // refused: put back, timer and all
    other.exec("ROLLBACK");
  }
  enqueue_unplanned(executor, driver, {ids[1]});
  clock.set(clock.now_ms() + 2 * 3600 * 1000);  // past its retry time
  CHECK(eventually([&] { return executor.depth() == 0; }, 5s));
  executor.stop();
  CHECK(store->get_execution(ids[0])->status == ExecutionStatus::kSucceeded);
  CHECK(store->get_execution(ids[1])->status == ExecutionStatus::kSucceeded);
}

TEST_CASE(
    "cancel: a job cancelled in the store while a page holding it is read gives its slot back "
    "once") {
  // Only the canceller gives the queue slot back (App::cancel_execution, when the executor did
  // not hold the job): a page read before the cancel, bringing the job after it, must not.
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 3);
  FakeDriver driver;
  Metrics metrics;
  auto backlog = std::make_shared<std::atomic<int64_t>>(3);
  std::mutex m;
  std::condition_variable cv;
  bool read = false, go = false;
  Loader loader = [&](int64_t after, int limit) -> Result<LoadedPage> {
    auto rows = store->unfinished_executions(after, limit);
    if (!rows.ok()) return rows.status();
    LoadedPage page;
    page.rows = int(rows->size());
    for (const auto& e : *rows) {
      page.last_id = e.id;
      Job j = fake_job(driver, e.id);
      j.backlog = backlog;
      page.jobs.push_back(std::move(j));
    }
    std::unique_lock lock(m);
    read = true;
    cv.notify_all();
    cv.wait(lock, [&] { return go; });
    return page;
  };
  Executor executor(*store, metrics, RetryPolicy{}, 1, loader, /*max_held=*/16);
  executor.start(3);
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return read; }));
  }
  bool held = true;
  REQUIRE(executor.cancel(ids[2], &held).ok());  // the page being read holds it, still queued
  CHECK_FALSE(held);
  {
    std::lock_guard lock(m);
    go = true;
  }
  cv.notify_all();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == std::vector<int64_t>{ids[0], ids[1]});
  CHECK(backlog->load() == 1);  // the two that ran gave theirs back; the third is the canceller's
  CHECK(store->get_execution(ids[2])->error == "cancelled");
}

TEST_CASE("executor: counts after batches stay consistent and return to zero") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  Metrics metrics;
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  // Sampled while work moves: the sum is the depth read under the same lock, and no counter
  // wraps below zero (size_t: a wrapped one would be far above the total).
  std::atomic<bool> sampling{true};
  std::atomic<int> bad{0};
  std::atomic<size_t> most_retrying{0};
  std::thread sampler([&] {
    while (sampling) {
      auto c = executor.counts();
      if (c.queued + c.running + c.retrying != c.total || c.queued > c.total ||
          c.running > c.total || c.retrying > c.total || c.held > c.total)
        ++bad;
      size_t seen = most_retrying;
      while (c.retrying > seen && !most_retrying.compare_exchange_weak(seen, c.retrying)) {
      }
    }
  });
  auto zero = [&] {
    auto c = executor.counts();
    return c.queued == 0 && c.running == 0 && c.retrying == 0 && c.total == 0 && c.held == 0;
  };
  SECTION("planned and applied together (run_batch)") {
    CounterDriver driver;
    auto ids = insert(*store, 40);
    executor.start();
    executor.pause();
    enqueue_unplanned(executor, driver, ids);
    CHECK(executor.counts().queued == 40);
    executor.resume();
    REQUIRE(eventually(zero));
    CHECK(driver.value == 30);
  }
  SECTION("settled without an apply (Executor::finish_settled)") {
    SettlingCounterDriver driver;
    driver.value = driver.max;
    auto ids = insert(*store, 40);
    executor.start();
    executor.pause();
    enqueue_unplanned(executor, driver, ids);
    executor.resume();
    REQUIRE(eventually(zero));
    CHECK(driver.applied.empty());
  }
  SECTION("a batch whose plans the store refused waits as retrying, not queued") {
    CounterDriver driver;
    auto ids = insert(*store, 20);
    std::atomic<int> refusals{0};
    executor.record_plans_with([&](const std::vector<Store::PlannedRun>& runs, int64_t at) {
      if (refusals < 3) {
        ++refusals;
        return Status::Unavailable("database is locked");
      }
      return store->start_planned(runs, at);
    });
    executor.start();
    executor.pause();
    enqueue_unplanned(executor, driver, ids);
    executor.resume();
    REQUIRE(eventually(zero));
    CHECK(refusals == 3);
    CHECK(most_retrying == 20);  // the whole batch waited on the 100 ms timer to record again
    for (int64_t id : ids) CHECK(store->get_execution(id)->status == ExecutionStatus::kSucceeded);
  }
  sampling = false;
  sampler.join();
  executor.stop();
  CHECK(bad == 0);
  CHECK(zero());
}

namespace {
Job job_on(FakeDriver& driver, const std::string& lane, int64_t id) {
  Job j;
  j.id = id;
  j.driver = &driver;
  auto config = std::make_shared<FakeConfig>();
  config->target = lane;
  j.config = config;
  j.lane = "fake:" + lane;
  j.plan = {{"id", id}};
  return j;
}
}  // namespace

TEST_CASE("replicas: a lane runs only while this replica holds its target's lock") {
  // The lock hooks stand for the store's (Store::lock_target): another replica holds target a
  // until `other_holds` is cleared.
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto a = insert_on(*store, "a", 3);
  auto b = insert_on(*store, "b", 1);
  FakeDriver driver;
  Metrics metrics;
  std::mutex mu;
  bool other_holds = true;
  std::set<std::string> held;  // by this replica
  int refused = 0, released = 0;
  bool applied_unlocked = false;
  driver.on_apply = [&](int64_t id) {
    std::lock_guard lock(mu);
    bool on_a = std::find(a.begin(), a.end(), id) != a.end();
    if (!held.count(on_a ? "fake:a" : "fake:b")) applied_unlocked = true;
  };
  Executor executor(*store, metrics, RetryPolicy{}, 2, /*loader=*/nullptr);
  executor.lock_targets_with({[&](const std::string& lane) -> Result<int64_t> {
                                std::lock_guard lock(mu);
                                if (lane == "fake:a" && other_holds) {
                                  ++refused;
                                  return int64_t{0};
                                }
                                held.insert(lane);
                                return int64_t{7};
                              },
                              [&](const std::string& lane, int64_t token) {
                                std::lock_guard lock(mu);
                                CHECK(token == 7);
                                held.erase(lane);
                                ++released;
                              }});
  executor.start();
  for (int64_t id : a) executor.enqueue(job_on(driver, "a", id));
  executor.enqueue(job_on(driver, "b", b[0]));
  // Target b is free: it runs. Target a waits, asked again every kTargetBusy, its executions
  // still queued.
  REQUIRE(eventually([&] { return driver.order() == b; }));
  REQUIRE(eventually([&] {
    std::lock_guard lock(mu);
    return refused >= 3;
  }));
  CHECK(driver.order() == b);
  CHECK(executor.depth() == 3);
  {
    std::lock_guard lock(mu);
    other_holds = false;
  }
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  auto order = driver.order();
  CHECK(order == std::vector<int64_t>{b[0], a[0], a[1], a[2]});  // each once, a's in order
  std::lock_guard lock(mu);
  CHECK_FALSE(applied_unlocked);
  CHECK(held.empty());  // every round let its lock go
  CHECK(released >= 2);
}

TEST_CASE("replicas: executions taken over run once, those above the watermark by the pages") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  FakeDriver driver;
  Metrics metrics;
  std::atomic<int> pages{0};
  // Rows another replica accepted: a shared store's pages leave them out until they are taken
  // over (Store::unfinished_executions answers this replica's own); here the loader does.
  std::mutex mu;
  std::set<int64_t> foreign;
  auto own_pages = [&, inner = loader_for(*store, driver, &pages)](
                       int64_t after, int limit) -> Result<LoadedPage> {
    auto read = inner(after, limit);
    if (!read.ok()) return read;
    LoadedPage page = std::move(read).value();
    std::lock_guard lock(mu);
    auto& jobs = page.jobs;
    jobs.erase(std::remove_if(jobs.begin(), jobs.end(),
                              [&](const Job& j) { return foreign.count(j.id) > 0; }),
               jobs.end());
    return page;
  };
  auto below = insert_on(*store, "a", 2);
  {
    std::lock_guard lock(mu);
    foreign.insert(below.begin(), below.end());
  }
  auto own = insert_on(*store, "a", 1);
  Executor executor(*store, metrics, RetryPolicy{}, 1, own_pages, 16);
  executor.start(1);  // the first page reads `own`: the watermark is past `below`
  REQUIRE(eventually([&] { return driver.order() == own && executor.depth() == 0; }));
  auto above = insert_on(*store, "b", 2);
  std::vector<int64_t> taken = below;
  taken.insert(taken.end(), above.begin(), above.end());
  {
    std::lock_guard lock(mu);
    foreign.clear();  // taken over: this replica's own now
  }
  auto now = executor.adopt_ids(taken);
  CHECK(now == below);  // the caller builds jobs for these; the pages bring the others
  std::vector<Job> jobs;
  for (int64_t id : now) jobs.push_back(job_on(driver, "a", id));
  executor.adopt(std::move(jobs));
  REQUIRE(eventually([&] { return executor.depth() == 0 && driver.order().size() >= 5; }));
  executor.stop();
  auto order = driver.order();
  std::multiset<int64_t> seen(order.begin(), order.end());
  for (int64_t id : taken) CHECK(seen.count(id) == 1);
  CHECK(seen.count(own[0]) == 1);
  CHECK(order.size() == 5);
}

TEST_CASE("replicas: a recorded plan waiting to retry keeps its target's lock until it succeeds") {
  // Another replica acting on the target between the attempts would move it, and the recorded
  // plan, re-applied as is, would then set it back.
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  auto ids = insert(*store, 1);
  CounterDriver driver;
  driver.fail_applies = 3;
  Metrics metrics;
  RetryPolicy policy;
  policy.base = 20ms;
  std::mutex mu;
  std::vector<std::string> events;  // acquire / release, with what was applied by then
  Executor executor(*store, metrics, policy, 2, /*loader=*/nullptr);
  executor.lock_targets_with({[&](const std::string&) -> Result<int64_t> {
                                std::lock_guard lock(mu);
                                events.push_back("acquire");
                                return int64_t{1};
                              },
                              [&](const std::string&, int64_t) {
                                std::lock_guard lock(mu);
                                std::lock_guard peer(driver.mu);
                                events.push_back("release after " +
                                                 std::to_string(driver.applied.size()));
                              }});
  executor.start();
  enqueue_unplanned(executor, driver, ids);
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(store->get_execution(ids[0])->attempts == 4);
  std::lock_guard lock(mu);
  // Taken once, for the first attempt, and let go only after the fourth applied the plan.
  CHECK(events == std::vector<std::string>{"acquire", "release after 1"});
}

TEST_CASE("replicas: a lock taken over is kept for a recorded plan, let go when none waits") {
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  FakeDriver driver;
  Metrics metrics;
  std::mutex mu;
  std::vector<std::pair<std::string, int64_t>> released;
  int acquired = 0;
  Executor executor(*store, metrics, RetryPolicy{}, 1, /*loader=*/nullptr);
  executor.lock_targets_with({[&](const std::string&) -> Result<int64_t> {
                                std::lock_guard lock(mu);
                                ++acquired;
                                return int64_t{1};
                              },
                              [&](const std::string& lane, int64_t token) {
                                std::lock_guard lock(mu);
                                released.emplace_back(lane, token);
                              }});
  executor.pause();
  executor.start();
  auto ids = insert_on(*store, "a", 1);
  std::vector<Job> jobs;
  jobs.push_back(job_on(driver, "a", ids[0]));  // its plan recorded by the dead replica
  executor.adopt(std::move(jobs));
  executor.hold_target("fake:a", 42);  // lane a holds a recorded plan: kept
  executor.hold_target("fake:b", 43);  // nothing waits on b: let go at once
  {
    std::lock_guard lock(mu);
    CHECK(released == std::vector<std::pair<std::string, int64_t>>{{"fake:b", 43}});
  }
  executor.resume();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  CHECK(driver.order() == ids);
  std::lock_guard lock(mu);
  CHECK(acquired == 0);  // ran under the lock taken over, not a new one
  CHECK(released == std::vector<std::pair<std::string, int64_t>>{{"fake:b", 43}, {"fake:a", 42}});
}

TEST_CASE(
    "replicas: a recorded plan taken over runs before this replica's own executions on its "
    "target, once, even above the watermark") {
  // The dead replica recorded "10 -> 11" for X while holding the target's lock, and died. This
  // replica has its own executions queued on the target, waiting for that lock. X's plan is
  // re-applied as is, so it must run first: after this replica's own moves it would set the
  // target back (11 after 13), and the others would be planned again from there.
  TempDir dir;
  auto store = std::move(Store::open(dir.path + "/t.db")).value();
  CounterDriver driver;
  driver.value = 10;
  Metrics metrics;
  std::mutex mu;
  std::set<int64_t> foreign;  // the dead replica's, until taken over
  bool dead_holds = true;     // the dead replica's lock on the target
  auto config = std::make_shared<const FakeConfig>();
  auto own_pages = [&](int64_t after, int limit) -> Result<LoadedPage> {
    auto rows = store->unfinished_executions(after, limit);
    if (!rows.ok()) return rows.status();
    LoadedPage page;
    page.rows = int(rows->size());
    std::lock_guard lock(mu);
    for (const auto& e : *rows) {
      page.last_id = e.id;
      if (foreign.count(e.id)) continue;
      Job j;
      j.id = e.id;
      j.driver = &driver;
      j.config = config;
      j.lane = "counter:one";
      page.jobs.push_back(std::move(j));  // unplanned, as the store holds them
    }
    return page;
  };
  auto own = insert(*store, 3);
  Executor executor(*store, metrics, RetryPolicy{}, 1, own_pages, 16);
  executor.lock_targets_with({[&](const std::string&) -> Result<int64_t> {
                                std::lock_guard lock(mu);
                                return dead_holds ? int64_t{0} : int64_t{1};
                              },
                              [&](const std::string&, int64_t) {}});
  executor.start(3);
  REQUIRE(eventually([&] { return executor.depth() == 3; }));  // own: queued, the lock busy
  // Accepted by the dead replica after this one's first page: above its watermark.
  std::vector<int64_t> dead;
  {
    std::lock_guard lock(mu);
    dead = insert(*store, 2);  // X (planned), then Y (queued, not planned)
    foreign.insert(dead.begin(), dead.end());
  }
  std::this_thread::sleep_for(300ms);  // asked, and waited, once
  {
    std::lock_guard lock(driver.mu);
    REQUIRE(driver.applied.empty());
  }
  // Taken over: X with its recorded plan, Y without; the lock comes with them. From the take-over's
  // commit the lock is this replica's (Store::lock_target answers it to any of its lanes), while
  // X's row is still being read: this replica's own jobs must not take it meanwhile.
  executor.begin_take_over();
  {
    std::lock_guard lock(mu);
    foreign.clear();
    dead_holds = false;
  }
  std::this_thread::sleep_for(300ms);  // the lane's busy timer fires in between, at least once
  auto now = executor.adopt_ids({dead[1]}, {dead[0]});
  CHECK(now == std::vector<int64_t>{dead[0]});  // X now, whatever its id; Y by the pages
  Job x;
  x.id = dead[0];
  x.driver = &driver;
  x.config = config;
  x.lane = "counter:one";
  x.plan = driver.step(10);
  std::vector<Job> jobs;
  jobs.push_back(std::move(x));
  executor.adopt(std::move(jobs));
  executor.hold_target("counter:one", 7);
  executor.end_take_over();
  REQUIRE(eventually([&] { return executor.depth() == 0; }));
  executor.stop();
  std::lock_guard lock(driver.mu);
  // X first; then never set back (a lane's executions planned together apply once); each once.
  REQUIRE_FALSE(driver.applied.empty());
  CHECK(driver.applied.front() == 11);
  CHECK(std::adjacent_find(driver.applied.begin(), driver.applied.end(),
                           std::greater_equal<int64_t>()) == driver.applied.end());
  CHECK(driver.value == 15);
}
