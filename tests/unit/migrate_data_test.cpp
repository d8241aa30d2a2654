// tripline migrate-data's copy (server/store/migrate_to_postgres.h, docs/migrate-data.md): a real
// SQLite file filled through the Store API, copied into a real PostgreSQL database (the test
// process's own server, postgres_fixture.h; under CI=true a missing PostgreSQL fails), then read
// back through the Store API of the PostgreSQL store.
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "../support/store_fixture.h"
#include "migrate_to_postgres.h"
#include "store.h"

using namespace tripline;
using tripline::test::Executions;
using tripline::test::TempDir;

namespace {

AuditEntry audit(const std::string& action, const std::string& type) {
  AuditEntry a;
  a.actor_id = 7;
  a.actor_name = "alice";
  a.actor_role = "admin";
  a.source = "10.0.0.1";
  a.action = action;
  a.target_type = type;
  a.after = {{"note", action}};
  return a;
}

void check_same(const ReceiverRow& a, const ReceiverRow& b) {
  INFO("receiver " << a.id);
  CHECK(a.id == b.id);
  CHECK(a.name == b.name);
  CHECK(a.driver == b.driver);
  CHECK(a.config == b.config);
  CHECK(a.rules == b.rules);
  CHECK(a.auth == b.auth);
  CHECK(a.limits == b.limits);
  CHECK(a.enabled == b.enabled);
  CHECK(a.generation == b.generation);
  CHECK(a.nonce == b.nonce);
  CHECK(a.version == b.version);
  CHECK(a.created_at == b.created_at);
  CHECK(a.updated_at == b.updated_at);
}

void check_same(const ExecutionRow& a, const ExecutionRow& b) {
  INFO("execution " << a.id);
  CHECK(a.id == b.id);
  CHECK(a.receiver_id == b.receiver_id);
  CHECK(a.generation == b.generation);
  CHECK(a.driver == b.driver);
  CHECK(a.config == b.config);
  CHECK(a.action == b.action);
  CHECK(a.status == b.status);
  CHECK(a.attempts == b.attempts);
  CHECK(a.plan == b.plan);
  CHECK(a.result == b.result);
  CHECK(a.error == b.error);
  CHECK(a.attempt_errors == b.attempt_errors);
  CHECK(a.created_at == b.created_at);
  CHECK(a.started_at == b.started_at);
  CHECK(a.finished_at == b.finished_at);
  CHECK(a.next_attempt_at == b.next_attempt_at);
  CHECK(a.request_id == b.request_id);
  CHECK(a.rule == b.rule);
}

int64_t count(const std::string& url, const std::string& table) {
  std::string why;
  auto v = tripline::test::postgres_query(url, "SELECT count(*) FROM " + table, &why);
  INFO(why);
  REQUIRE(v);
  return std::stoll(*v);
}

// Everything the SQLite store's API can write, one of each kind at least.
struct Filled {
  std::vector<int64_t> executions;
  int64_t deleted_receiver = 0;
  std::string hash;
};

Filled fill(Store& s) {
  Filled f;
  for (int i = 1; i <= 4; ++i) {
    ReceiverRow r;
    r.name = "r" + std::to_string(i);
    r.driver = "scale-service";
    r.config = {{"service", "web" + std::to_string(i)}, {"replicas", i}};
    if (i == 2) {
      r.rules = nlohmann::json::array({{{"name", "main only"}, {"when", "body.ref == 'main'"}}});
      r.auth = {{"type", "hmac"}, {"secret", "sealed:v2:xyz"}};
      r.limits = {{"cooldown_seconds", 30}};
    }
    r.enabled = i != 3;
    AuditEntry a = audit("receiver.create", "receiver");
    REQUIRE(s.insert_receiver(r, &a).ok());
  }
  // A deleted receiver: its id (4) is above every live one, and must never be handed out again.
  AuditEntry del = audit("receiver.delete", "receiver");
  del.target_id = 4;
  REQUIRE(s.delete_receiver(4, &del).ok());
  f.deleted_receiver = 4;

  SubscriptionRow sub;
  sub.receiver_id = 1;
  sub.url = "https://hooks.example/x";
  sub.secrets = {{"secret", "sealed:v2:abc"}};
  sub.events = {"succeeded", "failed"};
  REQUIRE(s.insert_subscription(sub).ok());

  // Three accepted triggers with request log entries and idempotency keys: one succeeds (its
  // notification becomes a delivery), one has a plan and failed attempts, one stays queued.
  Executions batch(1, 3, 1000, "scale-service", "up");
  std::vector<RequestLogRow> requests(3);
  nlohmann::json rule = {{"index", 0}, {"name", "main only"}};
  for (int i = 0; i < 3; ++i) {
    requests[i].receiver_id = 1;
    requests[i].received_at = 1000 + i;
    requests[i].outcome = "accepted";
    requests[i].status = 202;
    requests[i].source = "192.0.2.1";
    requests[i].method = "POST";
    requests[i].headers = R"([["content-type","application/json"]])";
    requests[i].body = "{\"n\":" + std::to_string(i) + "}";
    requests[i].body_size = static_cast<int64_t>(requests[i].body.size());
    requests[i].token_redacted = i == 1;
    batch.rows[i].request = &requests[i];
    batch.rows[i].idempotency_key = "key-" + std::to_string(i);
    batch.rows[i].rule = &rule;
  }
  REQUIRE(batch.insert(s).ok());
  f.executions = batch.ids();
  REQUIRE(s.mark_running(f.executions[0], 1, 1100, "web1").ok());
  REQUIRE(s.record_plan(f.executions[0], {{"replicas", 5}}).ok());
  REQUIRE(s.finish(f.executions[0], ExecutionStatus::kSucceeded, {{"replicas_after", 5}}, "", 1200,
                   "web1")
              .ok());
  REQUIRE(s.mark_running(f.executions[1], 1, 1300, "web1").ok());
  REQUIRE(s.record_plan(f.executions[1], {{"replicas", 2}}).ok());
  REQUIRE(s.requeue(f.executions[1], "connection refused", 99000, "web1").ok());

  // A refused request: truncated body, no execution.
  std::vector<RequestLogRow> refused(1);
  refused[0].receiver_id = 2;
  refused[0].received_at = 2000;
  refused[0].outcome = "refused";
  refused[0].status = 401;
  refused[0].error = "unauthorized";
  refused[0].detail = {{"check", "hmac"}};
  refused[0].source = "198.51.100.7";
  refused[0].method = "POST";
  refused[0].headers = "[]";
  refused[0].body = "x";
  refused[0].body_size = 5000000;
  refused[0].body_truncated = true;
  REQUIRE(s.insert_request_logs(refused, {}, 0).ok());

  // Raw bytes, a NUL and bytes that are not UTF-8 among them: BLOB in SQLite, BYTEA here.
  f.hash = std::string("\x00\xff\x10\x80", 4) + std::string(28, '\x7f');
  AuditEntry tok = audit("token.create", "token");
  REQUIRE(s.insert_admin_token("ops", f.hash, Role::kOperator, &tok).ok());
  REQUIRE(s.replace_env_admin_token("env", std::string(32, 'e'), nullptr).ok());
  AuditEntry pause = audit("workers.pause", "setting");
  REQUIRE(s.set_setting("workers.paused", "true", &pause).ok());
  return f;
}

}  // namespace

TEST_CASE("migrate-data: a SQLite database copied into PostgreSQL, every row with its id") {
  std::string why;
  auto* pg = tripline::test::postgres_or_skip();
  if (!pg) return;
  const std::string url = pg->fresh_database_url(&why);
  REQUIRE(!url.empty());
  TempDir dir;
  const std::string path = dir.path + "/tripline.db";

  Filled filled;
  std::vector<ReceiverRow> receivers;
  std::vector<ExecutionRow> executions;
  std::vector<RequestLogRow> requests1, requests2;
  std::vector<SubscriptionRow> subscriptions;
  std::vector<DeliveryRow> deliveries;
  std::vector<AdminTokenRow> tokens;
  std::vector<AuditEntry> audits;
  {
    auto sqlite = std::move(Store::open(path)).value();
    filled = fill(*sqlite);
    receivers = sqlite->all_receivers().value();
    for (int64_t id : filled.executions) executions.push_back(sqlite->get_execution(id).value());
    requests1 = sqlite->list_request_logs(1, "", 50, 0).value();
    requests2 = sqlite->list_request_logs(2, "", 50, 0).value();
    subscriptions = sqlite->list_subscriptions(1).value();
    deliveries = sqlite->list_deliveries(1, "", 50, 0).value();
    tokens = sqlite->list_admin_tokens().value();
    AuditFilter all;
    all.limit = 500;
    audits = sqlite->list_audit(all).value();
  }
  REQUIRE(receivers.size() == 3);
  REQUIRE(requests1.size() == 3);
  REQUIRE(deliveries.size() == 1);  // the success, announced to the subscription
  REQUIRE(tokens.size() == 2);
  REQUIRE(audits.size() >= 6);

  TableCounts counts;
  Status copied = migrate_sqlite_to_postgres(path, url, &counts);
  INFO(copied.message());
  REQUIRE(copied.ok());
  std::map<std::string, int64_t> by_table(counts.tables.begin(), counts.tables.end());
  CHECK(by_table["receivers"] == 3);
  CHECK(by_table["deleted_receivers"] == 1);
  CHECK(by_table["executions"] == 3);
  CHECK(by_table["requests_log"] == 4);
  CHECK(by_table["subscriptions"] == 1);
  CHECK(by_table["deliveries"] == 1);
  CHECK(by_table["admin_tokens"] == 2);
  CHECK(by_table["settings"] == 1);
  CHECK(by_table["audit_log"] == static_cast<int64_t>(audits.size()));
  CHECK(by_table.count("schema_migrations") == 0);
  CHECK(by_table.count("sqlite_sequence") == 0);
  // Parents before children.
  CHECK(counts.tables.front().first == "receivers");

  auto target = std::move(Store::open(url)).value();
  auto got_receivers = target->all_receivers().value();
  REQUIRE(got_receivers.size() == receivers.size());
  for (size_t i = 0; i < receivers.size(); ++i) check_same(got_receivers[i], receivers[i]);
  CHECK_FALSE(target->get_receiver(3)->enabled);
  auto names = target->receiver_names({filled.deleted_receiver}).value();
  REQUIRE(names.count(filled.deleted_receiver) == 1);
  CHECK(names[filled.deleted_receiver].name == "r4");
  CHECK(names[filled.deleted_receiver].deleted);

  for (const ExecutionRow& e : executions) check_same(target->get_execution(e.id).value(), e);
  CHECK(executions[0].status == ExecutionStatus::kSucceeded);
  CHECK(executions[1].attempt_errors.size() == 1);
  for (int i = 0; i < 3; ++i) {
    auto found = target->find_execution_by_key(1, "key-" + std::to_string(i)).value();
    REQUIRE(found);
    CHECK(*found == filled.executions[i]);
  }
  // The unfinished ones are there to run, owned by nobody: the first replica to start takes them
  // (migrations/postgres/018_replicas.sql).
  CHECK(count(url, "executions WHERE owner = '' AND status IN ('queued', 'running')") == 2);
  CHECK(target->unfinished_executions(0, 10)->empty());                    // nobody's yet
  REQUIRE(target->renew_lease(target->clock().now_ms() + 60000).value());  // a replica starts
  auto unfinished = target->unfinished_executions(0, 10).value();
  REQUIRE(unfinished.size() == 2);
  CHECK(unfinished[0].id == filled.executions[1]);
  CHECK(unfinished[1].id == filled.executions[2]);

  auto got_requests = target->list_request_logs(1, "", 50, 0).value();
  REQUIRE(got_requests.size() == requests1.size());
  for (size_t i = 0; i < requests1.size(); ++i) {
    CHECK(got_requests[i].id == requests1[i].id);
    CHECK(got_requests[i].execution_id == requests1[i].execution_id);
    CHECK(got_requests[i].body == requests1[i].body);
    CHECK(got_requests[i].headers == requests1[i].headers);
    CHECK(got_requests[i].token_redacted == requests1[i].token_redacted);
  }
  auto got_refused = target->list_request_logs(2, "", 50, 0).value();
  REQUIRE(got_refused.size() == 1);
  CHECK(got_refused[0].id == requests2[0].id);
  CHECK(got_refused[0].body_truncated);
  CHECK_FALSE(got_refused[0].token_redacted);
  CHECK(got_refused[0].detail == requests2[0].detail);
  CHECK(got_refused[0].body_size == 5000000);

  auto got_subs = target->list_subscriptions(1).value();
  REQUIRE(got_subs.size() == 1);
  CHECK(got_subs[0].id == subscriptions[0].id);
  CHECK(got_subs[0].secrets == subscriptions[0].secrets);
  CHECK(got_subs[0].events == subscriptions[0].events);
  CHECK(got_subs[0].enabled);
  auto got_deliveries = target->list_deliveries(1, "", 50, 0).value();
  REQUIRE(got_deliveries.size() == 1);
  CHECK(got_deliveries[0].id == deliveries[0].id);
  CHECK(got_deliveries[0].execution_id == filled.executions[0]);
  CHECK(got_deliveries[0].payload == deliveries[0].payload);
  CHECK(got_deliveries[0].webhook_id == deliveries[0].webhook_id);
  CHECK(got_deliveries[0].state == deliveries[0].state);

  auto got_tokens = target->list_admin_tokens().value();
  REQUIRE(got_tokens.size() == tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    CHECK(got_tokens[i].id == tokens[i].id);
    CHECK(got_tokens[i].name == tokens[i].name);
    CHECK(got_tokens[i].token_hash == tokens[i].token_hash);
    CHECK(got_tokens[i].role == tokens[i].role);
    CHECK(got_tokens[i].from_env == tokens[i].from_env);
    CHECK(got_tokens[i].created_at == tokens[i].created_at);
  }
  CHECK(std::any_of(got_tokens.begin(), got_tokens.end(),
                    [&](const AdminTokenRow& t) { return t.token_hash == filled.hash; }));
  CHECK(target->get_setting("workers.paused").value() == std::optional<std::string>("true"));

  AuditFilter all;
  all.limit = 500;
  auto got_audit = target->list_audit(all).value();
  REQUIRE(got_audit.size() == audits.size());
  for (size_t i = 0; i < audits.size(); ++i) {
    CHECK(got_audit[i].id == audits[i].id);
    CHECK(got_audit[i].action == audits[i].action);
    CHECK(got_audit[i].actor_id == audits[i].actor_id);
    CHECK(got_audit[i].target_id == audits[i].target_id);
    CHECK(got_audit[i].after == audits[i].after);
  }

  // New rows take ids past every copied one, and past the deleted receiver's.
  ReceiverRow fresh;
  fresh.name = "r5";
  fresh.driver = "scale-service";
  fresh.config = nlohmann::json::object();
  auto added = target->insert_receiver(fresh);
  REQUIRE(added.ok());
  CHECK(added->id == filled.deleted_receiver + 1);
  Executions more(1, 1, 5000);
  std::vector<RequestLogRow> more_requests(1);
  more_requests[0].receiver_id = 1;
  more_requests[0].outcome = "accepted";
  more_requests[0].status = 202;
  more_requests[0].source = "x";
  more_requests[0].method = "POST";
  more_requests[0].headers = "[]";
  more.rows[0].request = &more_requests[0];
  REQUIRE(more.insert(*target).ok());
  CHECK(more.rows[0].id > filled.executions.back());
  CHECK(more_requests[0].id > requests2[0].id);
  auto token = target->insert_admin_token("new", std::string(32, 'n'), Role::kAdmin, nullptr);
  REQUIRE(token.ok());
  CHECK(token->id > std::max(tokens[0].id, tokens[1].id));
  AuditEntry later = audit("receiver.create", "receiver");
  REQUIRE(target->record_audit(later).ok());
  CHECK(target->list_audit(all)->front().id > audits.front().id);
  SubscriptionRow sub2 = subscriptions[0];
  auto sub_added = target->insert_subscription(sub2);
  REQUIRE(sub_added.ok());
  CHECK(sub_added->id > subscriptions[0].id);

  // A second run into the same, now non-empty, database is refused and changes nothing.
  const int64_t receivers_before = count(url, "receivers");
  const int64_t executions_before = count(url, "executions");
  const int64_t audit_before = count(url, "audit_log");
  Status again = migrate_sqlite_to_postgres(path, url, nullptr);
  CHECK(again.code() == Status::Code::kConflict);
  CHECK(again.message().find("receivers") != std::string::npos);
  CHECK(count(url, "receivers") == receivers_before);
  CHECK(count(url, "executions") == executions_before);
  CHECK(count(url, "audit_log") == audit_before);
}

TEST_CASE("migrate-data: one table with a row in the target refuses the whole copy") {
  std::string why;
  auto* pg = tripline::test::postgres_or_skip();
  if (!pg) return;
  TempDir dir;
  const std::string path = dir.path + "/tripline.db";
  {
    auto sqlite = std::move(Store::open(path)).value();
    fill(*sqlite);
  }
  // Only a setting in the target, the last table but one that is copied: the receivers,
  // executions... written before it are rolled back with it.
  const std::string url = pg->fresh_database_url(&why);
  REQUIRE(!url.empty());
  {
    auto target = std::move(Store::open(url)).value();
    REQUIRE(target->set_setting("other", "x").ok());
  }
  Status s = migrate_sqlite_to_postgres(path, url, nullptr);
  CHECK(s.code() == Status::Code::kConflict);
  CHECK(s.message().find("settings") != std::string::npos);
  CHECK(count(url, "receivers") == 0);
  CHECK(count(url, "deleted_receivers") == 0);
  CHECK(count(url, "admin_tokens") == 0);
  CHECK(count(url, "settings") == 1);

  // A column the target lacks: refused naming the table and the column, nothing written.
  const std::string url2 = pg->fresh_database_url(&why);
  REQUIRE(!url2.empty());
  REQUIRE(Store::open(url2).ok());
  tripline::test::postgres_query(url2, "ALTER TABLE receivers DROP COLUMN limits", &why);
  Status missing = migrate_sqlite_to_postgres(path, url2, nullptr);
  CHECK(missing.code() == Status::Code::kInvalid);
  CHECK(missing.message().find("receivers") != std::string::npos);
  CHECK(missing.message().find("limits") != std::string::npos);
  CHECK(count(url2, "admin_tokens") == 0);

  // A source that is not at this build's schema: refused, and the file is left as it was.
  const std::string old_path = dir.path + "/old.db";
  { auto sqlite = std::move(Store::open(old_path)).value(); }
  {
    SQLite::Database raw(old_path, SQLite::OPEN_READWRITE);
    raw.exec("DELETE FROM schema_migrations WHERE version = 18");
  }
  const std::string url3 = pg->fresh_database_url(&why);
  Status old = migrate_sqlite_to_postgres(old_path, url3, nullptr);
  CHECK(old.code() == Status::Code::kInvalid);
  CHECK(old.message().find("schema version") != std::string::npos);
  {
    SQLite::Database raw(old_path, SQLite::OPEN_READONLY);
    SQLite::Statement q(raw, "SELECT count(*) FROM schema_migrations WHERE version = 18");
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getInt() == 0);  // read-only: not migrated by its copy
  }
}
