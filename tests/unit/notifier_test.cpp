// The notification dispatcher's policy (what an answer leads to) and the store's side of it:
// deliveries recorded with status changes, bounded per subscription, pruned with executions.
#include "notifier.h"

#include <catch2/catch.hpp>

#include "../support/store_fixture.h"
#include "store.h"

using namespace tripline;
using std::chrono::milliseconds;
using tripline::test::fresh_database;
using tripline::test::Postgres;
using tripline::test::Sqlite;

TEST_CASE("notifier: what each answer leads to") {
  NotifierOptions o;
  o.base_backoff = milliseconds(1000);
  o.max_backoff = milliseconds(8000);
  o.max_attempts = 5;
  int64_t now = 1'700'000'000'000;
  CHECK(judge_delivery(200, false, 1, nullptr, 0.5, o, now).state == "delivered");
  CHECK(judge_delivery(204, false, 5, nullptr, 0.5, o, now).state == "delivered");
  auto gone = judge_delivery(410, false, 1, nullptr, 0.5, o, now);
  CHECK(gone.state == "failed");
  CHECK(gone.disable);
  for (int final_status : {400, 401, 403, 404, 301, 302, 422})
    CHECK(judge_delivery(final_status, false, 1, nullptr, 0.5, o, now).state == "failed");
  for (int retry_status : {0, 500, 502, 503, 429, 408})
    CHECK(judge_delivery(retry_status, false, 1, nullptr, 0.5, o, now).state == "pending");
  // A refused (local) address is final: another try goes to the same address.
  CHECK(judge_delivery(0, true, 1, nullptr, 0.5, o, now).state == "failed");
  // Bounded: the last allowed attempt fails for good.
  CHECK(judge_delivery(503, false, 5, nullptr, 0.5, o, now).state == "failed");
  // Exponential with equal jitter: attempt n waits in [step/2, step], step = base * 2^(n-1),
  // capped.
  CHECK(judge_delivery(503, false, 1, nullptr, 0.0, o, now).retry_in == milliseconds(500));
  CHECK(judge_delivery(503, false, 1, nullptr, 0.999, o, now).retry_in <= milliseconds(1000));
  CHECK(judge_delivery(503, false, 3, nullptr, 0.0, o, now).retry_in == milliseconds(2000));
  CHECK(judge_delivery(503, false, 4, nullptr, 1.0, o, now).retry_in == milliseconds(8000));
  CHECK(judge_delivery(503, false, 30, nullptr, 1.0, NotifierOptions{}, now).retry_in <=
        NotifierOptions{}.max_backoff);
  // Retry-After wins over the backoff, capped.
  std::string secs = "7", date = "Tue, 14 Nov 2023 22:13:40 GMT", huge = "999999", junk = "soon";
  CHECK(judge_delivery(429, false, 1, &secs, 0.5, o, now).retry_in == milliseconds(7000));
  CHECK(judge_delivery(503, false, 1, &date, 0.5, o, now).retry_in == milliseconds(20000));
  CHECK(judge_delivery(429, false, 1, &huge, 0.5, o, now).retry_in == o.max_retry_after);
  auto fallback = judge_delivery(429, false, 1, &junk, 0.0, o, now);
  CHECK(fallback.retry_in == milliseconds(500));
  CHECK(parse_retry_after(" 12 ", now) == milliseconds(12000));
  CHECK_FALSE(parse_retry_after("-1", now).has_value());
  CHECK_FALSE(parse_retry_after("", now).has_value());
  CHECK(parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now) == milliseconds(0));  // past
}

// On each store implementation (store_fixture.h): " - Sqlite", " - Postgres".
TEMPLATE_TEST_CASE(
    "store: status changes record deliveries for subscribers, bounded, pruned with them", "",
    Sqlite, Postgres) {
  auto db = fresh_database(TestType::kName);
  if (!db) return;
  auto opened = db->open();
  Store& store = *opened;
  auto now_ms = [&] { return store.clock().now_ms(); };
  ReceiverRow r;
  r.name = "n";
  r.driver = "webhook";
  r.config = {{"url", "https://x.example/"}};
  auto rec = store.insert_receiver(r);
  REQUIRE(rec.ok());
  std::string driver = "webhook", config = "{}", action = "post";
  auto run = [&] {
    std::vector<NewExecution> batch(1);
    batch[0] = {rec->id, rec->generation, &driver, &config, &action, "", now_ms()};
    REQUIRE(store.insert_executions(batch).ok());
    return batch[0].id;
  };
  // No subscription: a status change records nothing.
  int64_t e0 = run();
  REQUIRE(store.mark_running(e0, 1, now_ms(), "https://x.example/").ok());
  CHECK(store.list_deliveries(rec->id, "", 50, 0)->empty());

  SubscriptionRow s;
  s.receiver_id = rec->id;
  s.url = "https://notify.example/";
  s.secrets = {{"secret", "sealed:v2:whatever"}};
  s.events = {"succeeded", "retrying"};
  auto sub = store.insert_subscription(s);
  REQUIRE(sub.ok());
  int64_t e1 = run();
  REQUIRE(store.mark_running(e1, 1, now_ms(), "https://x.example/").ok());  // not asked for
  REQUIRE(store.requeue(e1, "busy", now_ms() + 100, "https://x.example/").ok());
  nlohmann::json result = {{"status", 200}};
  REQUIRE(store.finish(e1, ExecutionStatus::kSucceeded, result, "", now_ms(), "https://x.example/")
              .ok());
  auto list = store.list_deliveries(rec->id, "", 50, 0);
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  const DeliveryRow& done = (*list)[0];  // newest first
  CHECK(done.event == "succeeded");
  CHECK(done.state == "pending");
  CHECK(done.webhook_id.rfind("msg_", 0) == 0);
  CHECK((*list)[1].webhook_id != done.webhook_id);
  auto payload = nlohmann::json::parse(done.payload);
  CHECK(payload["type"] == "execution.succeeded");
  CHECK(payload["data"]["execution_id"] == e1);
  CHECK(payload["data"]["receiver"] == "n");
  CHECK(payload["data"]["target"] == "https://x.example/");
  CHECK(payload["data"]["action"] == "post");
  CHECK(payload["data"]["attempt"] == 1);
  CHECK(payload["data"]["result"] == result);
  CHECK(payload["data"]["plan"].is_null());

  // Claimed: due again only after the lease (a crash mid-send resends the same row).
  auto c = store.claim_due_delivery(now_ms() + 1000, 60000);
  REQUIRE(c.ok());
  REQUIRE(c->has_value());
  CHECK((*c)->subscription->url == s.url);
  auto again = store.claim_due_delivery(now_ms() + 1000, 60000);
  REQUIRE(again.ok());
  REQUIRE(again->has_value());
  CHECK((*again)->delivery.id != (*c)->delivery.id);
  CHECK_FALSE(store.claim_due_delivery(now_ms() + 1000, 60000)->has_value());

  // Pruning an execution takes its deliveries and their attempts along.
  DeliveryOutcome out;
  out.attempt.attempt = 1;
  out.attempt.started_at = now_ms();
  out.attempt.status = 200;
  out.state = "delivered";
  REQUIRE(store.record_delivery_attempt(done.id, out).ok());
  auto attempts = store.delivery_attempts({done.id}, 10);
  REQUIRE(attempts.ok());
  CHECK(attempts->at(done.id).size() == 1);
  REQUIRE(*store.delete_executions({e1}) == 1);
  CHECK(store.list_deliveries(rec->id, "", 50, 0)->empty());
  CHECK(store.delivery_attempts({done.id}, 10)->at(done.id).empty());

  // Bounded: past kMaxPendingPerSubscription pending, notifications are counted as dropped.
  for (int64_t i = 0; i < kMaxPendingPerSubscription + 3; ++i) {
    int64_t e = run();
    REQUIRE(store.requeue(e, "busy", now_ms(), "t").ok());
  }
  CHECK(store.list_deliveries(rec->id, "pending", 2000, 0)->size() ==
        size_t(kMaxPendingPerSubscription));
  CHECK(store.get_subscription(rec->id, sub->id)->dropped == 3);

  // Deleting the subscription deletes its deliveries; later changes record nothing.
  REQUIRE(store.delete_subscription(rec->id, sub->id).ok());
  CHECK(store.list_deliveries(rec->id, "", 50, 0)->empty());
  int64_t e2 = run();
  REQUIRE(store.requeue(e2, "busy", now_ms(), "t").ok());
  CHECK(store.list_deliveries(rec->id, "", 50, 0)->empty());
}

TEST_CASE("notifier: Retry-After is read safely and never asks for an immediate retry") {
  NotifierOptions o;
  o.max_attempts = 3;
  int64_t now = 1'700'000'000'000;
  // Bytes above 0x7f (negative as char) are not digits, and reading them is defined behaviour.
  for (std::string hostile : {"\xB9", "1\xB2", "\xFF\xFF", "\xD9\xA3"})
    CHECK_FALSE(parse_retry_after(hostile, now).has_value());
  // "0", or a date already past, would have a crowd of deliveries retry at once: 1 s at least.
  std::string zero = "0", past = "Tue, 14 Nov 2023 22:13:00 GMT";
  CHECK(judge_delivery(503, false, 1, &zero, 0.5, o, now).retry_in == milliseconds(1000));
  CHECK(judge_delivery(429, false, 1, &past, 0.5, o, now).retry_in == milliseconds(1000));
  // The documented limit holds with Retry-After too: the last allowed attempt is final.
  CHECK(judge_delivery(429, false, 3, &zero, 0.5, o, now).state == "failed");
  CHECK(judge_delivery(429, false, 2, &zero, 0.5, o, now).state == "pending");
}
