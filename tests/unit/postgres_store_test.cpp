// The PostgreSQL store (server/store/postgres, docs/postgres.md) against a real PostgreSQL 15:
// the test process's own server (tests/support/postgres_fixture.h), a fresh database per test. What
// only several writers can show is shown with two stores (two pools, as two replicas would have) on
// one database. Without PostgreSQL's binaries the tests skip loudly, and fail under CI=true.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>

#include "../support/postgres_fixture.h"
#include "../support/store_fixture.h"
#include "crypto.h"
#include "driver.h"
#include "migrations.h"
#include "secret_keys.h"
#include "secrets.h"
#include "store.h"
#include "token.h"

using namespace tripline;
using tripline::test::Executions;
using tripline::test::make_receivers;

namespace {

// A new, empty database on the test process's PostgreSQL (tests/support/postgres_fixture.h).
std::string fresh_url(test::PostgresServer* pg) {
  std::string why;
  std::string url = pg->fresh_database_url(&why);
  INFO(why);
  REQUIRE(!url.empty());
  return url;
}

std::unique_ptr<Store> open_store(const std::string& url, StoreOptions o = {}) {
  auto s = Store::open(url, o);
  INFO(s.status().message());
  REQUIRE(s.ok());
  return std::move(s).value();
}

// Runs one SQL text on a database, outside the store: what a test checks behind its back.
std::string scalar(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(c) == CONNECTION_OK);
  PGresult* r = PQexec(c, sql.c_str());
  INFO(PQresultErrorMessage(r));
  REQUIRE(PQresultStatus(r) == PGRES_TUPLES_OK);
  std::string out = PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  PQfinish(c);
  return out;
}

ReceiverRow receiver(const std::string& name) {
  ReceiverRow row;
  row.name = name;
  row.driver = "scale-service";
  row.config = {{"service", "web"}};
  return row;
}

}  // namespace

TEST_CASE("postgres store: migrations run once, in order, the same versions as SQLite's") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::vector<int> want;
  for (const auto& m : embedded_migrations()) want.push_back(m.version);
  std::vector<int> pg_versions;
  for (const auto& m : embedded_postgres_migrations()) pg_versions.push_back(m.version);
  CHECK(pg_versions == want);

  std::string url = fresh_url(pg);
  {
    auto s = open_store(url);
    CHECK(s->applied_migrations() == want);
  }
  auto again = open_store(url);  // nothing left to apply
  CHECK(again->applied_migrations() == want);
  CHECK(scalar(url, "SELECT count(*) FROM schema_migrations") == std::to_string(want.size()));

  SECTION("several replicas opening a new database at once migrate it once") {
    std::string fresh = fresh_url(pg);
    std::vector<std::thread> threads;
    std::atomic<int> opened{0};
    std::vector<std::string> errors(6);
    for (int i = 0; i < 6; ++i)
      threads.emplace_back([&, i] {
        auto s = Store::open(fresh);
        if (s.ok())
          ++opened;
        else
          errors[i] = s.status().message();
      });
    for (auto& t : threads) t.join();
    for (auto& e : errors) CHECK(e.empty());
    CHECK(opened == 6);
    CHECK(scalar(fresh, "SELECT count(*) FROM schema_migrations") == std::to_string(want.size()));
  }
}

TEST_CASE(
    "postgres store: a URL that reaches no server answers Unavailable, without the password") {
  int port = test::unused_loopback_port();  // nothing listens there
  StoreOptions o;
  o.busy_timeout_ms = 500;
  auto s = Store::open("postgresql://tripline:hunter2-secret@127.0.0.1:" + std::to_string(port) +
                           "/x?connect_timeout=2",
                       o);
  REQUIRE_FALSE(s.ok());
  CHECK(s.status().code() == Status::Code::kUnavailable);
  CHECK(s.status().message().find("hunter2-secret") == std::string::npos);
}

TEST_CASE("postgres store: receivers have unique names, versions, and generations") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  auto s = open_store(fresh_url(pg));
  ReceiverRow row = receiver("web-up");
  row.rules = {{"default", "ignore"}};
  auto r = s->insert_receiver(row);
  REQUIRE(r.ok());
  CHECK(r->generation == 1);
  CHECK(r->version == 1);
  CHECK(r->rules == row.rules);
  CHECK(r->auth.is_null());
  CHECK(r->enabled);
  CHECK(s->insert_receiver(row).status().code() == Status::Code::kConflict);
  row.config = {{"service", "api"}};
  CHECK(s->update_receiver(r->id, row, r->version, /*revoke=*/true)->generation == 2);
  // A stale version: the row changed meanwhile.
  CHECK(s->update_receiver(r->id, row, r->version, true).status().code() ==
        Status::Code::kConflict);
  CHECK(s->update_receiver(r->id, row, r->version + 1, false)->generation == 2);
  CHECK(s->bump_generation(r->id)->generation == 3);
  CHECK_FALSE(s->set_enabled(r->id, false)->enabled);
  CHECK(s->get_receiver(r->id)->generation == 4);  // disabling revokes
  CHECK(s->set_enabled(r->id, true)->generation == 4);
  CHECK(s->get_receiver(r->id)->version == 6);
  CHECK(s->get_receiver(r->id)->config["service"] == "api");
  // A rename onto a taken name.
  auto other = s->insert_receiver(receiver("other"));
  REQUIRE(other.ok());
  ReceiverRow clash = receiver("web-up");
  CHECK(s->update_receiver(other->id, clash, other->version, false).status().code() ==
        Status::Code::kConflict);
  CHECK(s->update_receiver(9999, clash, 1, false).status().code() == Status::Code::kNotFound);

  int64_t total = 0;
  auto page = s->list_receivers(1, 1, &total);
  REQUIRE(page.ok());
  CHECK(total == 2);
  REQUIRE(page->size() == 1);
  CHECK((*page)[0].id == other->id);
  CHECK(s->all_receivers()->size() == 2);
  CHECK(s->receivers_after(r->id, 10)->size() == 1);

  CHECK(s->delete_receiver(r->id).ok());
  CHECK(s->delete_receiver(r->id).code() == Status::Code::kNotFound);
  CHECK(s->get_receiver(r->id).status().code() == Status::Code::kNotFound);
  auto names = s->receiver_names({r->id, other->id, 777});
  REQUIRE(names.ok());
  CHECK(names->size() == 2);
  CHECK(names->at(r->id).name == "web-up");
  CHECK(names->at(r->id).deleted);
  CHECK_FALSE(names->at(other->id).deleted);
  // Ids are never reused.
  auto next = s->insert_receiver(receiver("third"));
  REQUIRE(next.ok());
  CHECK(next->id > other->id);
}

TEST_CASE("postgres store: a batch commits with its request log, replays keys, refuses revoked") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  auto s = open_store(fresh_url(pg));
  make_receivers(*s, 3);
  const int64_t now = s->clock().now_ms();
  Executions batch(1, 3, now);
  batch.rows[1].idempotency_key = "abc";
  batch.rows[2].idempotency_key = "abc";
  std::vector<RequestLogRow> requests(3);
  for (size_t i = 0; i < 3; ++i) {
    requests[i].receiver_id = 1;
    requests[i].received_at = now;
    requests[i].outcome = "accepted";
    requests[i].status = 202;
    requests[i].source = "127.0.0.1";
    requests[i].method = "POST";
    requests[i].headers = "[]";
    requests[i].body = std::string("body with a NUL \0 and \xff", 24);
    batch.rows[i].request = &requests[i];
  }
  REQUIRE(batch.insert(*s).ok());
  CHECK(batch.rows[0].id != batch.rows[1].id);
  CHECK_FALSE(batch.rows[1].replayed);
  CHECK(batch.rows[2].replayed);
  CHECK(batch.rows[2].id == batch.rows[1].id);
  CHECK(s->unfinished_executions()->size() == 2);
  CHECK(*s->find_execution_by_key(1, "abc") == batch.rows[1].id);
  CHECK_FALSE(s->find_execution_by_key(2, "abc")->has_value());
  // Each request's entry, its id allocated first and named by its execution.
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(requests[i].id > 0);
    auto logged = s->get_request_log(1, requests[i].id);
    REQUIRE(logged.ok());
    CHECK(logged->execution_id == batch.rows[i].id);
    CHECK(logged->body_size == 0);
    CHECK(logged->body.find("\xEF\xBF\xBD") != std::string::npos);  // NUL and 0xFF replaced
  }
  CHECK(requests[2].detail["duplicate"] == true);
  CHECK(s->get_execution(batch.rows[0].id)->request_id == requests[0].id);

  // Revoked three ways: disabled, rotated, deleted. Nothing is stored, the entry is a 401.
  REQUIRE(s->set_enabled(1, false).ok());
  REQUIRE(s->bump_generation(2).ok());
  REQUIRE(s->delete_receiver(3).ok());
  for (int64_t rid : {1, 2, 3}) {
    Executions late(rid, 1, now);
    RequestLogRow req;
    req.receiver_id = rid;
    req.outcome = "accepted";
    req.status = 202;
    late.rows[0].request = &req;
    REQUIRE(late.insert(*s).ok());
    CHECK(late.rows[0].revoked);
    CHECK(late.rows[0].id == 0);
    CHECK(req.outcome == "refused");
    CHECK(req.status == 401);
    CHECK(req.error == "revoked_token");
  }
  CHECK(s->unfinished_executions()->size() == 2);
  // A replayed key still answers the first execution after a revoke.
  Executions again(1, 1, now);
  again.rows[0].idempotency_key = "abc";
  REQUIRE(again.insert(*s).ok());
  CHECK(again.rows[0].replayed);
  CHECK(again.rows[0].id == batch.rows[1].id);
}

TEST_CASE("postgres store: two replicas inserting one idempotency key at once make one execution") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  auto a = open_store(url);
  auto b = open_store(url);
  make_receivers(*a, 1);
  for (int round = 0; round < 5; ++round) {
    std::string key = "key-" + std::to_string(round);
    std::vector<int64_t> ids(8);
    std::vector<bool> replayed(8);
    std::vector<std::thread> threads;
    std::vector<std::string> failures(8);
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        Store& s = t % 2 ? *a : *b;
        // Several keys per batch, in an order that differs by thread: deadlocks are retried.
        Executions batch(1, 2, s.clock().now_ms());
        batch.rows[0].idempotency_key = t % 2 ? key : key + "-other";
        batch.rows[1].idempotency_key = t % 2 ? key + "-other" : key;
        if (Status st = batch.insert(s); !st.ok()) {
          failures[t] = st.message();
          return;
        }
        const NewExecution& mine = t % 2 ? batch.rows[0] : batch.rows[1];
        ids[t] = mine.id;
        replayed[t] = mine.replayed;
      });
    for (auto& t : threads) t.join();
    for (const auto& f : failures) CHECK(f.empty());
    CHECK(std::set<int64_t>(ids.begin(), ids.end()).size() == 1);
    CHECK(std::count(replayed.begin(), replayed.end(), false) == 1);
    CHECK(scalar(url, "SELECT count(*) FROM executions WHERE idempotency_key = '" + key + "'") ==
          "1");
  }
}

TEST_CASE("postgres store: a trigger committed after a concurrent revoke records nothing") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  auto s = open_store(url);
  make_receivers(*s, 1);
  // Another replica revokes the URL in a transaction still open while this one records a
  // trigger checked at generation 1: the insert waits for the receiver's row (FOR SHARE), then
  // sees the revoke, and records nothing. A check that read the committed row without locking
  // it would have recorded an execution for a URL revoked before this commit.
  PGconn* other = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(other) == CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PQclear(PQexec(other, "UPDATE receivers SET generation = generation + 1 WHERE id = 1"));
  Executions batch(1, 1, s->clock().now_ms());
  Status inserted;
  std::atomic<bool> finished{false};
  std::thread trigger([&] {
    inserted = batch.insert(*s);
    finished = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(finished);  // waiting for the revoke's row lock
  PQclear(PQexec(other, "COMMIT"));
  PQfinish(other);
  trigger.join();
  CHECK(inserted.ok());
  CHECK(batch.rows[0].revoked);
  CHECK(scalar(url, "SELECT count(*) FROM executions") == "0");

  // And the other way round: a revoke made while a group commit holds the row waits for it.
  // (Measured through the store: the executions recorded before a rotation all carry the old
  // generation, and none is recorded at it afterwards.)
  Executions before(1, 3, s->clock().now_ms());
  for (auto& e : before.rows) e.generation = 2;
  REQUIRE(before.insert(*s).ok());
  REQUIRE(s->bump_generation(1).ok());
  Executions after(1, 1, s->clock().now_ms());
  for (auto& e : after.rows) e.generation = 2;
  REQUIRE(after.insert(*s).ok());
  CHECK(after.rows[0].revoked);
  CHECK(scalar(url, "SELECT count(*) FROM executions WHERE generation = 2") == "3");
}

TEST_CASE("postgres store: the executor's writes, with notifications in the same transaction") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  auto s = open_store(fresh_url(pg));
  make_receivers(*s, 1);
  SubscriptionRow sub;
  sub.receiver_id = 1;
  sub.url = "https://hooks.example/x";
  sub.secrets = {{"secret", "sealed:v1:abc"}};
  sub.events = {"running", "succeeded", "failed", "retrying"};
  auto subscribed = s->insert_subscription(sub);
  REQUIRE(subscribed.ok());
  sub.receiver_id = 99;
  CHECK(s->insert_subscription(sub).status().code() == Status::Code::kNotFound);

  const int64_t now = s->clock().now_ms();
  Executions batch(1, 6, now, "webhook", "post");
  REQUIRE(batch.insert(*s).ok());
  auto ids = batch.ids();

  // mark_running, record_plan, requeue (with its error kept), finish.
  REQUIRE(s->mark_running(ids[0], 1, now, "https://x.example/").ok());
  REQUIRE(s->record_plan(ids[0], {{"url", "https://x.example/"}, {"body", "big"}}).ok());
  REQUIRE(s->requeue(ids[0], "peer said 503", now + 1000, "https://x.example/").ok());
  auto e0 = s->get_execution(ids[0]);
  CHECK(e0->status == ExecutionStatus::kQueued);
  CHECK(e0->next_attempt_at == now + 1000);
  REQUIRE(e0->attempt_errors.size() == 1);
  CHECK(e0->attempt_errors[0]["error"] == "peer said 503");
  CHECK(e0->attempt_errors[0]["attempt"] == 1);
  REQUIRE(s->mark_running(ids[0], 2, now + 1000).ok());
  CHECK(s->get_execution(ids[0])->started_at == now);  // the first start is kept
  REQUIRE(s->finish(ids[0], ExecutionStatus::kSucceeded, {{"status", 200}}, "", now + 2000,
                    "https://x.example/")
              .ok());
  e0 = s->get_execution(ids[0]);
  CHECK(e0->status == ExecutionStatus::kSucceeded);
  CHECK(e0->result["status"] == 200);
  CHECK(e0->finished_at == now + 2000);
  CHECK_FALSE(e0->next_attempt_at.has_value());

  // Attempt errors are bounded: the first and the 15 latest.
  for (int i = 0; i < 20; ++i)
    REQUIRE(s->requeue(ids[5], "failure " + std::to_string(i), now, "").ok());
  auto e5 = s->get_execution(ids[5]);
  REQUIRE(e5->attempt_errors.size() == 16);
  CHECK(e5->attempt_errors[0]["error"] == "failure 0");
  CHECK(e5->attempt_errors[15]["error"] == "failure 19");

  // requeue_all and finish_all, several in one transaction; a failure with its error.
  REQUIRE(s->requeue_all({ids[1], ids[2]}, "lane retry", now + 5, "t").ok());
  CHECK(s->get_execution(ids[1])->error == "lane retry");
  CHECK(s->get_execution(ids[2])->next_attempt_at == now + 5);
  nlohmann::json ok_result = {{"done", true}};
  REQUIRE(s->finish_all({{ids[1], ExecutionStatus::kSucceeded, &ok_result, "", now + 6, "t"},
                         {ids[2], ExecutionStatus::kFailed, nullptr, "gave up", now + 6, "t"}})
              .ok());
  CHECK(s->get_execution(ids[1])->status == ExecutionStatus::kSucceeded);
  auto e2 = s->get_execution(ids[2]);
  CHECK(e2->status == ExecutionStatus::kFailed);
  CHECK(e2->error == "gave up");
  CHECK(e2->attempt_errors.size() == 2);

  // start_planned, then finish_settled refused for a planned one and applied to an unplanned one.
  nlohmann::json plan = {{"replicas", 3}};
  REQUIRE(s->start_planned({{ids[3], 1, &plan, "t"}}, now + 7).ok());
  auto e3 = s->get_execution(ids[3]);
  CHECK(e3->status == ExecutionStatus::kRunning);
  CHECK(e3->plan == plan);
  nlohmann::json settled = {{"unchanged", true}};
  CHECK_FALSE(s->finish_settled({{ids[3], 1, &plan, "t"}}, now + 8,
                                {{ids[3], ExecutionStatus::kSucceeded, &settled, "", now + 8, "t"}})
                  .ok());
  CHECK(s->get_execution(ids[3])->status == ExecutionStatus::kRunning);  // nothing recorded
  REQUIRE(s->finish_settled({{ids[4], 1, &plan, "t"}}, now + 8,
                            {{ids[4], ExecutionStatus::kSucceeded, &settled, "", now + 9, "t"}})
              .ok());
  auto e4 = s->get_execution(ids[4]);
  CHECK(e4->status == ExecutionStatus::kSucceeded);
  CHECK(e4->plan == plan);
  CHECK(e4->result == settled);
  CHECK(e4->started_at == now + 8);

  // commit_group: triggers and a lane's plans in one transaction; a lane whose plans fail (an
  // execution id that names nothing still succeeds, so use a plan that cannot be written) is
  // rolled back alone.
  Executions more(1, 2, now);
  nlohmann::json plan2 = {{"replicas", 4}};
  std::vector<Store::PlannedRun> lane = {{ids[3], 2, &plan2, "t"}};
  std::vector<Store::PlannedBatch> plans = {{&lane, now + 10}};
  std::vector<Status> plan_status;
  REQUIRE(s->commit_group(more.rows, plans, &plan_status, /*deferred_sync=*/true).ok());
  REQUIRE(s->sync_wal().ok());
  REQUIRE(plan_status.size() == 1);
  CHECK(plan_status[0].ok());
  CHECK(more.rows[0].id > 0);
  CHECK(s->get_execution(ids[3])->plan == plan2);

  // Cancel: only a queued one.
  CHECK(s->cancel_execution(more.rows[0].id, now + 11).ok());
  CHECK(s->get_execution(more.rows[0].id)->error == "cancelled");
  CHECK(s->cancel_execution(ids[3], now + 11).code() == Status::Code::kConflict);
  CHECK(s->cancel_execution(123456, now + 11).code() == Status::Code::kNotFound);

  // The notifications: one delivery per status change, a webhook plan without its body.
  auto deliveries = s->list_deliveries(1, "", 100, 0);
  REQUIRE(deliveries.ok());
  CHECK(deliveries->size() >= 10);
  bool saw_running_with_plan = false;
  std::set<std::string> webhook_ids;
  for (const auto& d : *deliveries) {
    webhook_ids.insert(d.webhook_id);
    CHECK(d.webhook_id.rfind("msg_", 0) == 0);
    CHECK(d.webhook_id.size() == 36);
    CHECK(d.state == "pending");
    auto body = nlohmann::json::parse(d.payload);
    CHECK(body["type"] == "execution." + d.event);
    CHECK(body["data"]["receiver"] == "r1");
    CHECK(body["timestamp"].get<std::string>().size() == 24);
    if (d.execution_id == ids[0] && d.event == "succeeded") {
      CHECK(body["data"]["plan"]["url"] == "https://x.example/");
      CHECK_FALSE(body["data"]["plan"].contains("body"));
      CHECK(body["data"]["attempt"] == 2);
      CHECK(body["data"]["target"] == "https://x.example/");
      saw_running_with_plan = true;
    }
  }
  CHECK(saw_running_with_plan);
  CHECK(webhook_ids.size() == deliveries->size());
  // Deleting finished executions takes their deliveries.
  auto gone = s->delete_executions({ids[0], ids[3]});  // ids[3] is running: kept
  REQUIRE(gone.ok());
  CHECK(*gone == 1);
  auto left = s->list_deliveries(1, "", 100, 0);
  REQUIRE(left.ok());
  for (const auto& d : *left) CHECK(d.execution_id != ids[0]);
}

TEST_CASE("postgres store: two dispatchers never claim the same delivery (SKIP LOCKED)") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  auto a = open_store(url);
  auto b = open_store(url);
  make_receivers(*a, 1);
  SubscriptionRow sub;
  sub.receiver_id = 1;
  sub.url = "https://hooks.example/x";
  sub.secrets = {{"secret", "s"}};
  sub.events = {"running"};
  REQUIRE(a->insert_subscription(sub).ok());
  const int64_t now = a->clock().now_ms();
  Executions batch(1, 60, now);
  REQUIRE(batch.insert(*a).ok());
  for (int64_t id : batch.ids()) REQUIRE(a->mark_running(id, 1, now).ok());
  CHECK(a->next_delivery_due()->value_or(0) == now);

  std::mutex mu;
  std::vector<int64_t> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Store& s = t % 2 ? *a : *b;
      for (;;) {
        auto c = s.claim_due_delivery(now + 10, /*lease_ms=*/3600000);
        if (!c.ok()) {
          ++errors;
          continue;
        }
        if (!c->has_value()) return;
        CHECK((*c)->subscription.has_value());
        std::lock_guard lock(mu);
        claimed.push_back((*c)->delivery.id);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(errors == 0);
  CHECK(claimed.size() == 60);
  CHECK(std::set<int64_t>(claimed.begin(), claimed.end()).size() == 60);

  // An attempt recorded; a 410 disables the subscription and fails its other pending ones.
  DeliveryOutcome o;
  o.attempt.attempt = 1;
  o.attempt.started_at = now;
  o.attempt.latency_ms = 12;
  o.attempt.status = 410;
  o.attempt.answer = "gone";
  o.state = "failed";
  o.disable_subscription = "the subscriber answered 410 Gone";
  REQUIRE(a->record_delivery_attempt(claimed[0], o).ok());
  auto d = a->get_delivery(1, claimed[0]);
  REQUIRE(d.ok());
  CHECK(d->state == "failed");
  CHECK(d->last_status == 410);
  CHECK(d->finished_at == now + 12);
  CHECK(a->list_deliveries(1, "pending", 100, 0)->empty());
  auto subs = a->list_subscriptions(1);
  REQUIRE(subs->size() == 1);
  CHECK_FALSE((*subs)[0].enabled);
  CHECK((*subs)[0].disabled_reason == o.disable_subscription);
  auto attempts = a->delivery_attempts({claimed[0], claimed[1]}, 5);
  REQUIRE(attempts.ok());
  CHECK(attempts->at(claimed[0]).size() == 1);
  CHECK(attempts->at(claimed[0])[0].answer == "gone");
  CHECK(attempts->at(claimed[1]).empty());
  // Re-sending needs an enabled subscription.
  CHECK(a->redeliver(1, claimed[0], now).code() == Status::Code::kConflict);
  SubscriptionRow again = (*subs)[0];
  again.enabled = true;
  REQUIRE(a->update_subscription(again).ok());
  CHECK(a->get_subscription(1, again.id)->disabled_reason.empty());
  REQUIRE(a->redeliver(1, claimed[0], now).ok());
  CHECK(a->get_delivery(1, claimed[0])->state == "pending");
  CHECK(a->redeliver(1, claimed[0], now).code() == Status::Code::kConflict);  // pending
  REQUIRE(a->delete_subscription(1, again.id).ok());
  CHECK(a->list_deliveries(1, "", 100, 0)->empty());
}

TEST_CASE("postgres store: concurrent deletes and demotions never remove the last admin") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  auto a = open_store(url);
  auto b = open_store(url);
  for (int round = 0; round < 10; ++round) {
    auto t1 =
        a->insert_admin_token("one" + std::to_string(round), std::string(32, char(2 * round)));
    auto t2 =
        a->insert_admin_token("two" + std::to_string(round), std::string(32, char(2 * round + 1)));
    REQUIRE(t1.ok());
    REQUIRE(t2.ok());
    // Before: every admin of earlier rounds is gone but one; leave only these two as admins.
    auto tokens = a->list_admin_tokens();
    REQUIRE(tokens.ok());
    for (const auto& t : *tokens)
      if (t.id != t1->id && t.id != t2->id) {
        Status gone = a->delete_admin_token(t.id);
        INFO(gone.message());
        REQUIRE(gone.ok());
      }
    Status s1, s2;
    std::thread x([&] {
      s1 = round % 2 ? a->delete_admin_token(t1->id)
                     : a->set_admin_token_role(t1->id, Role::kOperator).status();
    });
    std::thread y([&] { s2 = b->delete_admin_token(t2->id); });
    x.join();
    y.join();
    CHECK(s1.ok() != s2.ok());  // exactly one went through
    CHECK((s1.ok() ? s2 : s1).code() == Status::Code::kConflict);
    int admins = 0;
    auto after = a->list_admin_tokens();
    REQUIRE(after.ok());
    for (const auto& t : *after)
      if (t.role == Role::kAdmin) ++admins;
    CHECK(admins == 1);
  }
  // The hash round-trips as raw bytes; replacing the env token revokes the old one.
  std::string h1(32, '\0'), h2(32, '\xff');
  h1[5] = 'x';
  REQUIRE(a->replace_env_admin_token("from env", h1).ok());
  bool found = false;
  auto tokens = a->list_admin_tokens();
  REQUIRE(tokens.ok());
  for (const auto& t : *tokens)
    if (t.from_env) found = t.token_hash == h1;
  CHECK(found);
  AuditEntry by;
  by.actor_name = "service";
  by.actor_role = "admin";
  CHECK(*a->replace_env_admin_token("from env", h2, &by) == 1);
  CHECK(a->insert_admin_token("dup", h2).status().code() == Status::Code::kConflict);
  auto audit = a->list_audit({});
  REQUIRE(audit.ok());
  REQUIRE(audit->size() == 2);
  CHECK((*audit)[0].action == "token.create");
  CHECK((*audit)[1].action == "token.revoke");
}

TEST_CASE("postgres store: request log, audit, settings, retention and sealed texts") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  auto s = open_store(fresh_url(pg));
  make_receivers(*s, 2);
  // The request log: written relaxed, capped per receiver in bounded steps.
  std::vector<RequestLogRow> rows(10);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].receiver_id = 1;
    rows[i].received_at = 1000 + int64_t(i);
    rows[i].outcome = i % 2 ? "ignored" : "refused";
    rows[i].status = i % 2 ? 200 : 401;
    rows[i].detail = {{"i", i}};
    rows[i].headers = "[[\"x\",\"y\"]]";
  }
  std::vector<int64_t> untrimmed;
  REQUIRE(s->insert_request_logs(rows, {1}, 4, &untrimmed, 3).ok());
  CHECK(untrimmed == std::vector<int64_t>{1});  // 6 to go, 3 gone
  CHECK(s->list_request_logs(1, "", 100, 0)->size() == 7);
  std::vector<RequestLogRow> none;
  REQUIRE(s->insert_request_logs(none, {1}, 4, &untrimmed, 100).ok());
  CHECK(untrimmed.empty());
  auto kept = s->list_request_logs(1, "", 100, 0);
  REQUIRE(kept->size() == 4);
  CHECK((*kept)[0].id == rows[9].id);
  CHECK(s->list_request_logs(1, "ignored", 100, 0)->size() == 2);
  CHECK(s->list_request_logs(1, "", 100, rows[9].id)->size() == 3);
  CHECK(s->get_request_log(1, rows[9].id)->detail["i"] == 9);
  CHECK(s->get_request_log(2, rows[9].id).status().code() == Status::Code::kNotFound);
  CHECK(*s->prune_request_logs(1008, 100) == 2);

  // Settings, audited.
  AuditEntry audit;
  audit.actor_id = 7;
  audit.actor_name = "ops";
  audit.actor_role = "operator";
  audit.source = "10.0.0.1";
  audit.action = "workers.pause";
  audit.target_type = "workers";
  audit.after = {{"paused", true}};
  CHECK_FALSE(s->get_setting("workers_paused")->has_value());
  REQUIRE(s->set_setting("workers_paused", "1", &audit).ok());
  REQUIRE(s->set_setting("workers_paused", "0").ok());
  CHECK(**s->get_setting("workers_paused") == "0");
  auto entries = s->list_audit({});
  REQUIRE(entries->size() == 1);
  CHECK((*entries)[0].actor_id == 7);
  CHECK((*entries)[0].after["paused"] == true);
  CHECK((*entries)[0].before.is_null());
  CHECK((*entries)[0].at > 0);
  // An audited receiver change renders the row as the transaction left it.
  AuditEntry create;
  create.actor_name = "admin";
  create.actor_role = "admin";
  create.action = "receiver.create";
  create.target_type = "receiver";
  create.render_after = [](const ReceiverRow& r) { return nlohmann::json{{"name", r.name}}; };
  auto r = s->insert_receiver(receiver("audited"), &create);
  REQUIRE(r.ok());
  AuditFilter by_target;
  by_target.target_type = "receiver";
  by_target.target_id = r->id;
  auto mine = s->list_audit(by_target);
  REQUIRE(mine->size() == 1);
  CHECK((*mine)[0].after["name"] == "audited");
  CHECK((*mine)[0].target_name == "audited");
  AuditRetention keep_one;
  keep_one.max_age_ms = 0;
  keep_one.keep = 1;
  keep_one.count_floor_ms = 0;
  CHECK(*s->prune_audit(keep_one, s->clock().now_ms() + 1, 100) == 1);

  // Retention of executions: by age, keeping those with a fresh idempotency key.
  Executions old(2, 3, 1000);
  old.rows[2].idempotency_key = "k";
  REQUIRE(old.insert(*s).ok());
  for (int64_t id : old.ids())
    REQUIRE(s->finish(id, ExecutionStatus::kSucceeded, nullptr, "", 1001, "").ok());
  RetentionPolicy policy;
  policy.max_age_ms = 100;
  policy.dedupe_window_ms = 1000000;
  auto prunable = s->prunable_executions(policy, 5000, 5000, {}, 100);
  REQUIRE(prunable.ok());
  CHECK(*prunable == std::vector<int64_t>{old.rows[0].id, old.rows[1].id});
  CHECK(s->receivers_over(2)->size() == 1);
  CHECK(*s->unfinished_count(2) == 0);
  CHECK(s->recent_executions(2, 1000)->size() == 3);
  CHECK(s->recent_executions(2, 1001)->empty());
  CHECK(s->recent_executions(1000)->at(2).size() == 3);
  CHECK(*s->delete_executions(*prunable) == 2);

  // Sealed texts: listed and rewritten in one transaction.
  ReceiverRow sealed = receiver("sealed");
  sealed.config = {{"token", "sealed:v1:aaa"}};
  auto sr = s->insert_receiver(sealed);
  REQUIRE(sr.ok());
  auto listed = s->sealed_texts(false);
  REQUIRE(listed.ok());
  std::vector<SealedText> texts = std::move(listed).value();
  REQUIRE(texts.size() == 1);
  CHECK(texts[0].where == SealedText::Where::kReceiverConfig);
  texts[0].text = R"({"token":"sealed:v1:bbb"})";
  REQUIRE(s->rewrite_sealed_texts(texts).ok());
  CHECK(s->get_receiver(sr->id)->config["token"] == "sealed:v1:bbb");
  CHECK(s->check_writable().ok());
}

TEST_CASE("postgres store: a server that goes away answers Unavailable, and comes back") {
  // The test process's own server (one per ctest entry): this test stops it.
  test::PostgresServer* server = test::postgres_or_skip();
  if (!server) return;
  std::string url = fresh_url(server);
  StoreOptions o;
  o.busy_timeout_ms = 1000;
  o.max_connections = 2;
  auto s = open_store(url, o);
  make_receivers(*s, 1);
  REQUIRE(s->check_writable().ok());
  server->stop();
  CHECK(s->get_receiver(1).status().code() == Status::Code::kUnavailable);
  CHECK(s->check_writable().code() == Status::Code::kUnavailable);
  Executions batch(1, 2, s->clock().now_ms());
  CHECK(batch.insert(*s).code() == Status::Code::kUnavailable);
  CHECK(s->insert_receiver(receiver("while down")).status().code() == Status::Code::kUnavailable);
  std::string why;
  bool started = server->start(&why);
  INFO(why);
  REQUIRE(started);
  // The next calls reconnect.
  CHECK(s->get_receiver(1).ok());
  Executions after(1, 2, s->clock().now_ms());
  CHECK(after.insert(*s).ok());
  CHECK(s->check_writable().ok());
}

TEST_CASE("postgres store: a lock held elsewhere past busy_timeout_ms answers Unavailable") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  StoreOptions o;
  o.busy_timeout_ms = 300;
  auto s = open_store(url, o);
  make_receivers(*s, 1);
  // Another session holds the receiver's row.
  PGconn* other = PQconnectdb(url.c_str());
  REQUIRE(PQstatus(other) == CONNECTION_OK);
  PQclear(PQexec(other, "BEGIN"));
  PQclear(PQexec(other, "SELECT 1 FROM receivers WHERE id = 1 FOR UPDATE"));
  auto started = std::chrono::steady_clock::now();
  auto r = s->bump_generation(1);
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  PQclear(PQexec(other, "ROLLBACK"));
  PQfinish(other);
  CHECK(s->bump_generation(1).ok());
}

TEST_CASE("postgres store: group commit cost, measured") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  auto s = open_store(fresh_url(pg));
  make_receivers(*s, 1);
  for (int size : {1, 100}) {
    const int rounds = size == 1 ? 200 : 20;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) {
      Executions batch(1, size, s->clock().now_ms());
      REQUIRE(batch.insert(*s).ok());
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                    .count() /
                rounds;
    WARN("postgres group commit of " << size << " execution(s): " << ms << " ms");
    CHECK(ms > 0);
  }
}

TEST_CASE("replicas: rotating the secrets key re-seals the signing keys a shared store holds") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  test::TempDir dir;
  const std::string raw1(32, '1'), raw2(32, '2'), raw3(32, '3');
  const std::string signing = crypto::random_bytes(32);
  {
    auto s = open_store(url);
    REQUIRE(s->add_signing_key("k-1", SecretBox::from_key(raw1).seal(signing)).ok());
  }
  {  // A key that opens nothing stored: refused, nothing written.
    auto refused =
        rotate_secret_key(dir.path, DriverEnv(), crypto::hex(raw3).c_str(), nullptr, url);
    CHECK_FALSE(refused.ok());
    auto s = open_store(url);
    CHECK(SecretBox::key_id_of(s->signing_keys()->at(0).second) == SecretBox::key_id(raw1));
  }
  // The new key, with the old one as previous (TRIPLINE_SECRET_KEY, _PREVIOUS).
  auto done = rotate_secret_key(dir.path, DriverEnv(), crypto::hex(raw2).c_str(),
                                crypto::hex(raw1).c_str(), url);
  INFO(done.status().message());
  REQUIRE(done.ok());
  CHECK(done->find("re-sealed 1 secrets") != std::string::npos);
  auto s = open_store(url);
  auto keys = s->signing_keys();
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 1);
  CHECK(keys->at(0).first == "k-1");
  CHECK(SecretBox::key_id_of(keys->at(0).second) == SecretBox::key_id(raw2));
  CHECK(SecretBox::from_key(raw2).open(keys->at(0).second) == std::optional<std::string>(signing));
}

TEST_CASE("replicas: rotate-signing-key puts the new key in a shared store, sealed") {
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  test::TempDir dir;
  const std::string raw(32, '4');
  auto done = rotate_signing_key(dir.path, crypto::hex(raw).c_str(), nullptr, url);
  INFO(done.status().message());
  REQUIRE(done.ok());
  auto ring = Keyring::load_or_create(dir.path + "/keys");
  REQUIRE(ring.ok());
  auto s = open_store(url);
  auto keys = s->signing_keys();
  REQUIRE(keys.ok());
  REQUIRE(keys->size() == 1);
  CHECK(done->find(keys->at(0).first) != std::string::npos);
  CHECK(keys->at(0).first == ring->keys().back().kid);
  CHECK(SecretBox::from_key(raw).open(keys->at(0).second) ==
        std::optional<std::string>(ring->keys().back().secret));
  // A secrets key that does not open the stored keys is refused before any key is made.
  size_t before = ring->keys().size();
  CHECK_FALSE(
      rotate_signing_key(dir.path, crypto::hex(std::string(32, '5')).c_str(), nullptr, url).ok());
  CHECK(Keyring::load_or_create(dir.path + "/keys")->keys().size() == before);
}

TEST_CASE("replicas: a lease that runs out is taken over once, with its executions and locks") {
  // Two stores on one database, as two replicas; their clocks are the test's.
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  StoreOptions oa, ob, oc;
  oa.replica = "a";
  ob.replica = "b";
  oc.replica = "c";
  auto a = open_store(url, oa);
  auto b = open_store(url, ob);
  auto c = open_store(url, oc);
  const int64_t now = a->clock().now_ms();
  REQUIRE(*a->renew_lease(now + 10000));
  REQUIRE(*b->renew_lease(now + 10000));
  REQUIRE(*c->renew_lease(now + 10000));
  make_receivers(*a, 1);
  Executions mine(1, 3, now);
  REQUIRE(mine.insert(*a).ok());
  // Each replica's pages read its own executions only.
  CHECK(a->unfinished_executions(0, -1)->size() == 3);
  CHECK(b->unfinished_executions(0, -1)->empty());
  int64_t token = *a->lock_target("fake:one", now);
  REQUIRE(token != 0);
  CHECK(*a->lock_target("fake:one", now) == token);  // kept: the same token
  CHECK(*b->lock_target("fake:one", now) == 0);      // another replica holds it
  // A live lease is not taken over.
  CHECK(b->take_over_expired(now)->executions.empty());
  // a's lease runs out (it froze); b and c look at once: one of them takes it, whole.
  REQUIRE(*a->renew_lease(now - 1));
  Store::TakenOver by_b, by_c;
  std::thread tb([&] { by_b = std::move(b->take_over_expired(now)).value(); });
  std::thread tc([&] { by_c = std::move(c->take_over_expired(now)).value(); });
  tb.join();
  tc.join();
  CHECK(by_b.executions.size() + by_c.executions.size() == 3);
  CHECK((by_b.executions.empty() || by_c.executions.empty()));
  auto& taker_result = by_b.executions.empty() ? by_c : by_b;
  Store& taker = by_b.executions.empty() ? *c : *b;
  Store& other = by_b.executions.empty() ? *b : *c;
  std::vector<int64_t> taken;
  for (const auto& e : taker_result.executions) taken.push_back(e.id);
  CHECK(taken == mine.ids());
  REQUIRE(taker_result.locks.size() == 1);
  CHECK(taker_result.locks[0].first == "fake:one");
  int64_t moved = taker_result.locks[0].second;
  CHECK(moved != token);
  CHECK(taker.unfinished_executions(0, -1)->size() == 3);
  // The lock stays taken (an expired lease does not free it): the other replica still waits.
  CHECK(*other.lock_target("fake:one", now) == 0);
  // a comes back: its lease is gone, and its old token frees nothing.
  CHECK_FALSE(*a->renew_lease(now + 10000));
  REQUIRE(a->unlock_target("fake:one", token).ok());
  CHECK(*other.lock_target("fake:one", now) == 0);
  CHECK(*taker.lock_target("fake:one", now) == moved);
  // The taker lets go with its token: then another replica may take it.
  REQUIRE(taker.unlock_target("fake:one", moved).ok());
  CHECK(*other.lock_target("fake:one", now) != 0);
}

namespace {
// One execution of receiver `rid` through `s`, held to `limits` (a shared store's check across
// replicas, store.h LimitsCheck), with its request log entry; answers what came of it.
struct Admitted {
  NewExecution e;
  RequestLogRow log;
};
Admitted admit_one(Store& s, int64_t rid, const std::string& action, const LimitsCheck& limits,
                   int64_t at, const std::string& key = "") {
  Executions one(rid, 1, at, "scale-service", action);
  Admitted out;
  out.log.receiver_id = rid;
  out.log.received_at = at;
  out.log.outcome = "accepted";
  out.log.status = 202;
  one.rows[0].request = &out.log;
  one.rows[0].limits = limits;
  one.rows[0].idempotency_key = key;
  Status st = one.insert(s);
  INFO(st.message());
  REQUIRE(st.ok());
  out.e = one.rows[0];
  out.e.request = nullptr;
  out.e.driver = out.e.config = out.e.action = nullptr;
  return out;
}
}  // namespace

TEST_CASE("replicas: cooldowns, rate limits and queue caps hold across replicas") {
  // Two stores on one database, as two replicas; every limit is the receiver's whole count.
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  StoreOptions oa, ob;
  oa.replica = "a";
  ob.replica = "b";
  auto a = open_store(url, oa);
  auto b = open_store(url, ob);
  make_receivers(*a, 5);
  const int64_t now = a->clock().now_ms();
  // Times in the past: the database's clock bounds a replica's ahead of it (by a second).
  const int64_t t0 = now - 120000;
  using Kind = LimitsCheck::Kind;

  SECTION("a rate limit: the bucket is one, whichever replica takes the trigger") {
    LimitsCheck l;
    l.rate_per_s = 1 / 60.0;  // one a minute
    l.burst = 3;
    int admitted = 0;
    for (int i = 0; i < 6; ++i) {
      Admitted r = admit_one(i % 2 ? *a : *b, 1, "up", l, t0);
      if (r.e.limited == LimitRefusal::kNone) {
        ++admitted;
        CHECK(r.e.id > 0);
        CHECK(r.log.execution_id == r.e.id);
        continue;
      }
      CHECK(r.e.limited == LimitRefusal::kRateLimited);
      CHECK(r.e.id == 0);
      CHECK(r.e.limit_wait == 60);  // one token at one a minute
      CHECK(r.log.outcome == "rate_limited");
      CHECK(r.log.status == 429);
      CHECK(r.log.error == "rate_limited");
      CHECK(r.log.execution_id == 0);
      auto stored = a->get_request_log(1, r.log.id);
      REQUIRE(stored.ok());
      CHECK(stored->outcome == "rate_limited");
    }
    CHECK(admitted == 3);
    CHECK(scalar(url, "SELECT count(*) FROM executions WHERE receiver_id = 1") == "3");
    // A minute later one token is back, on either replica.
    CHECK(admit_one(*b, 1, "up", l, t0 + 60000).e.limited == LimitRefusal::kNone);
    CHECK(admit_one(*a, 1, "up", l, t0 + 60000).e.limited == LimitRefusal::kRateLimited);
    // An admin's retry is held to the queue cap only, not the rate.
    LimitsCheck retry = l;
    retry.kind = Kind::kRetry;
    CHECK(admit_one(*a, 1, "up", retry, t0 + 60000).e.limited == LimitRefusal::kNone);
  }

  SECTION("a queue cap counts every replica's unfinished executions, and each that finishes") {
    LimitsCheck l;
    l.max_queued = 2;
    Admitted first = admit_one(*a, 2, "up", l, now, "key-1");
    REQUIRE(first.e.limited == LimitRefusal::kNone);
    REQUIRE(admit_one(*b, 2, "up", l, now).e.limited == LimitRefusal::kNone);
    for (Kind k : {Kind::kTrigger, Kind::kRetry, Kind::kRedeliver}) {
      LimitsCheck lk = l;
      lk.kind = k;
      Admitted full = admit_one(k == Kind::kRetry ? *b : *a, 2, "up", lk, now);
      CHECK(full.e.limited == LimitRefusal::kQueueFull);
      CHECK(full.e.limit_wait == 10);
      CHECK(full.log.outcome == "queue_full");
      CHECK(full.log.status == 429);
    }
    // A re-send of a recorded key answers its execution, full queue or not.
    Admitted again = admit_one(*b, 2, "up", l, now, "key-1");
    CHECK(again.e.replayed);
    CHECK(again.e.id == first.e.id);
    CHECK(again.e.limited == LimitRefusal::kNone);
    // One finishes (on replica a): a slot opens for either replica.
    REQUIRE(
        a->finish(first.e.id, ExecutionStatus::kSucceeded, nlohmann::json::object(), "", now + 1)
            .ok());
    CHECK(admit_one(*b, 2, "up", l, now + 2).e.limited == LimitRefusal::kNone);
    CHECK(admit_one(*a, 2, "up", l, now + 2).e.limited == LimitRefusal::kQueueFull);
    // A cancelled one too; then deleting the receiver takes its counts with it.
    auto mine = b->unfinished_executions(0, -1);
    REQUIRE(mine.ok());
    REQUIRE_FALSE(mine->empty());
    REQUIRE(b->cancel_execution(mine->front().id, now + 3).ok());
    CHECK(admit_one(*a, 2, "up", l, now + 3).e.limited == LimitRefusal::kNone);
    REQUIRE(a->delete_receiver(2).ok());
    CHECK(scalar(url, "SELECT count(*) FROM limit_state WHERE receiver_id = 2") == "0");
    CHECK(scalar(url, "SELECT count(*) FROM limit_deltas WHERE receiver_id = 2") == "0");
  }

  SECTION("a cooldown holds per action, whichever replica ran it") {
    LimitsCheck l;
    l.cooldown_ms = 60000;
    l.ignore_status = 202;
    REQUIRE(admit_one(*a, 3, "up", l, t0).e.limited == LimitRefusal::kNone);
    Admitted cooling = admit_one(*b, 3, "up", l, t0 + 1000);
    CHECK(cooling.e.limited == LimitRefusal::kCoolingDown);
    CHECK(cooling.e.limit_wait == 59000);
    CHECK(cooling.log.outcome == "cooling_down");
    CHECK(cooling.log.status == 202);  // the receiver's answer to an ignored request
    CHECK(cooling.log.detail["action"] == "up");
    // "down" undoes "up": not held back by it.
    CHECK(admit_one(*b, 3, "down", l, t0 + 1000).e.limited == LimitRefusal::kNone);
    CHECK(admit_one(*a, 3, "up", l, t0 + 61000).e.limited == LimitRefusal::kNone);
    // A replica's clock a little behind never reopens it.
    CHECK(admit_one(*b, 3, "up", l, t0 + 60500).e.limited == LimitRefusal::kCoolingDown);
    // A replica whose clock is an hour ahead counts as a second ahead of the database: the
    // others are not held back for the hour.
    REQUIRE(admit_one(*a, 3, "jump", l, now + 3600000).e.limited == LimitRefusal::kNone);
    int64_t recorded =
        std::stoll(scalar(url, "SELECT last_runs->>'jump' FROM limit_state WHERE receiver_id = 3"));
    CHECK(recorded <= a->clock().now_ms() + 1000 + 100);
    CHECK(recorded >= now);
  }

  SECTION("replicas racing: exactly the burst is admitted, and batches never deadlock") {
    // Eight writers on two replicas, each batch with receivers 4 and 5 in an order that
    // differs by thread.
    LimitsCheck l;
    l.rate_per_s = 1 / 3600.0;
    l.burst = 10;
    std::vector<std::string> failures(8);
    std::atomic<int> admitted4{0}, admitted5{0}, refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        Store& s = t % 2 ? *a : *b;
        for (int round = 0; round < 5; ++round) {
          Executions batch(4, 2, now, "scale-service", "up");
          batch.rows[t % 2].receiver_id = 5;
          for (auto& e : batch.rows) e.limits = l;
          if (Status st = batch.insert(s); !st.ok()) {
            failures[t] = st.message();
            return;
          }
          for (const auto& e : batch.rows) {
            if (e.limited != LimitRefusal::kNone)
              ++refused;
            else
              ++(e.receiver_id == 4 ? admitted4 : admitted5);
          }
        }
      });
    for (auto& t : threads) t.join();
    for (const auto& f : failures) CHECK(f.empty());
    CHECK(admitted4 == 10);
    CHECK(admitted5 == 10);
    CHECK(refused == 8 * 5 * 2 - 20);
    CHECK(scalar(url, "SELECT count(*) FROM executions WHERE receiver_id IN (4, 5)") == "20");
  }
}

TEST_CASE("replicas: a lost listening connection is followed by kEverything once it is back") {
  // docs/scale-out.md: a change made while a replica's listening connection is down reaches no
  // one (NOTIFY goes only to sessions listening at commit), so after reconnecting the store says
  // that anything may have changed. The connection is cut from outside, and kept from coming back
  // (the database refuses new sessions) until a change has been made without it.
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  const std::string db = scalar(url, "SELECT current_database()");
  // The server's maintenance database: it still answers while the test's refuses sessions.
  const std::string admin = url.substr(0, url.rfind('/') + 1) + "postgres";
  auto command = [](const std::string& on, const std::string& sql) {
    PGconn* c = PQconnectdb(on.c_str());
    REQUIRE(PQstatus(c) == CONNECTION_OK);
    PGresult* r = PQexec(c, sql.c_str());
    INFO(sql << ": " << PQresultErrorMessage(r));
    CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
  };
  StoreOptions oa, ob;
  oa.replica = "a";
  ob.replica = "b";
  auto a = open_store(url, oa);
  auto b = open_store(url, ob);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Store::Change> seen;
  auto saw = [&](auto pred, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return std::any_of(seen.begin(), seen.end(), pred); });
  };
  auto everything = [](const Store::Change& c) {
    return c.kind == Store::Change::Kind::kEverything;
  };
  auto receiver_id = [](int64_t id) {
    return [id](const Store::Change& c) {
      return c.kind == Store::Change::Kind::kReceiver && c.id == id;
    };
  };
  REQUIRE(a->watch([&](const Store::Change& c) {
             {
               std::lock_guard lock(mu);
               seen.push_back(c);
             }
             cv.notify_all();
           }).ok());
  REQUIRE(saw(everything, std::chrono::seconds(5)));  // the first, once listening
  auto before = b->insert_receiver(receiver("before"));
  REQUIRE(before.ok());
  REQUIRE(saw(receiver_id(before->id), std::chrono::seconds(5)));

  // a's listening session is cut; the database takes no new one until the test says so.
  {
    std::lock_guard lock(mu);
    seen.clear();
  }
  command(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false");
  const std::string listening = "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db +
                                "' AND application_name = 'tripline-watch'";
  REQUIRE(scalar(admin, listening) == "1");
  CHECK(scalar(admin,
               "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
               "datname = '" +
                   db + "' AND application_name = 'tripline-watch'") == "1");
  auto gone_by = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (scalar(admin, listening) != "0" && std::chrono::steady_clock::now() < gone_by)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(scalar(admin, listening) == "0");
  // Made through b's open session while nobody listens, then some reconnection attempts refused.
  auto missed = b->insert_receiver(receiver("while a is away"));
  REQUIRE(missed.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  command(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true");

  // a reconnects (its back-off between attempts is 1.6 s at most by now) and says that anything
  // may have changed: the only way it learns of `missed`, whose notification went to no one.
  CHECK(saw(everything, std::chrono::seconds(10)));
  CHECK_FALSE(saw(receiver_id(missed->id), std::chrono::milliseconds(0)));
  // Later changes come one by one again.
  auto after = b->insert_receiver(receiver("after"));
  REQUIRE(after.ok());
  CHECK(saw(receiver_id(after->id), std::chrono::seconds(5)));
}

TEST_CASE(
    "postgres store: every pooled connection cut while idle is replaced and not only the first") {
  // After a restart, a failover or a proxy's reconnect every idle connection of the pool is dead,
  // and the store finds out only by using one. A read or a write then must not fail for each dead
  // connection it happens to take: the replica's read of everything after its listening
  // connection came back (docs/scale-out.md) would be lost.
  test::PostgresServer* pg = test::postgres_or_skip();
  if (!pg) return;
  std::string url = fresh_url(pg);
  const std::string db = scalar(url, "SELECT current_database()");
  StoreOptions o;
  o.max_connections = 4;
  auto s = open_store(url, o);
  make_receivers(*s, 1);
  const std::string pooled = "SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db +
                             "' AND application_name = 'tripline'";
  auto wait_pooled = [&](const std::string& n) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (scalar(url, pooled) != n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(scalar(url, pooled) == n);
  };
  // Four writes held at once by a row lock taken outside: four connections, idle once they end.
  auto fill_pool = [&] {
    PGconn* other = PQconnectdb(url.c_str());
    REQUIRE(PQstatus(other) == CONNECTION_OK);
    PQclear(PQexec(other, "BEGIN"));
    PQclear(PQexec(other, "SELECT 1 FROM receivers WHERE id = 1 FOR UPDATE"));
    std::atomic<int> ok{0};
    std::vector<std::thread> writers;
    for (int i = 0; i < 4; ++i)
      writers.emplace_back([&] { ok += s->bump_generation(1).ok() ? 1 : 0; });
    wait_pooled("4");
    PQclear(PQexec(other, "ROLLBACK"));
    PQfinish(other);
    for (auto& t : writers) t.join();
    REQUIRE(ok == 4);
  };
  auto cut_pool = [&] {
    CHECK(scalar(url,
                 "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                 "datname = '" +
                     db + "' AND application_name = 'tripline'") == "4");
    wait_pooled("0");
  };
  fill_pool();
  cut_pool();
  auto read = s->get_receiver(1);
  INFO(read.status().message());
  CHECK(read.ok());
  fill_pool();
  cut_pool();
  auto written = s->bump_generation(1);
  INFO(written.status().message());
  CHECK(written.ok());
}
