// Execution notifications (docs/webhooks.md) against real HTTP receivers on loopback
// (tests/support/webhook_sink.h), through the whole service: the receivers run the webhook
// driver against one sink, and their subscribers are other sinks. The loopback flag
// (--allow-local-webhook-targets) is set, as the sinks are on 127.0.0.1.
#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include "harness.h"
#include "tests/support/webhook_sink.h"
#include "webhook_signing.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const char* kActionSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const char* kSecretA = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVoxMjM0NTY=";
const char* kSecretB = "whsec_WllZWFhYV1dXVlZWVVVVVFRUU1NTUlJSUVFRUFBQT08=";

ServiceOptions local_options() {
  ServiceOptions o;
  o.drivers.set("allow-local-webhook-targets", "true");
  o.notifications.base_backoff = std::chrono::milliseconds(100);
  o.notifications.max_backoff = std::chrono::milliseconds(400);
  o.notifications.poll = std::chrono::milliseconds(100);
  o.notifications.max_attempts = 4;
  return o;
}

// A receiver whose action POSTs {} to `action` (a sink); answers its id and trigger URL.
std::pair<int64_t, std::string> webhook_receiver(const TestServer& s, const std::string& name,
                                                 const WebhookSink& action) {
  json r = s.create_receiver({{"name", name},
                              {"driver", "webhook"},
                              {"config",
                               {{"url", action.url("/action")},
                                {"secret", kActionSecret},
                                {"payload", {{"text", "{}"}}}}}});
  return {r["id"].get<int64_t>(), r["trigger_url"].get<std::string>()};
}

json subscribe(const TestServer& s, int64_t rid, json body, int expect = 201) {
  auto r = s.request("POST", "/api/v1/receivers/" + std::to_string(rid) + "/notifications", body);
  INFO(r.body);
  REQUIRE(r.status == expect);
  return json::parse(r.body);
}

int64_t trigger(const TestServer& s, const std::string& url) {
  auto r = s.trigger(url);
  INFO(r.body);
  REQUIRE(r.status == 202);
  return json::parse(r.body)["execution_id"].get<int64_t>();
}

json deliveries(const TestServer& s, int64_t rid, const std::string& query = "") {
  auto r = s.request("GET", "/api/v1/receivers/" + std::to_string(rid) + "/deliveries" + query);
  INFO(r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body)["items"];
}

// Polls the API until `pred(items)` holds.
template <typename Pred>
json wait_deliveries(const TestServer& s, int64_t rid, Pred pred, int timeout_ms = 15000) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  json items;
  while (std::chrono::steady_clock::now() < deadline) {
    items = deliveries(s, rid);
    if (pred(items)) return items;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("deliveries did not settle: " << items.dump(2));
  return items;
}

bool all_final(const json& items, size_t n) {
  if (items.size() < n) return false;
  for (const auto& d : items)
    if (d["state"] == "pending") return false;
  return true;
}

}  // namespace

TEST_CASE("notifications: each status change is delivered once, signed, with the execution") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n1", action);
  json sub = subscribe(s, rid, {{"url", subscriber.url("/events")}, {"secret", kSecretA}});
  CHECK(sub["secret"] == "********");  // never shown back
  CHECK(sub["events"] == json{"running", "succeeded", "failed", "retrying"});

  // The action's peer fails once (503), so the execution runs, retries, runs and succeeds.
  action.script({{503, "busy"}});
  int64_t id = trigger(s, url);
  json e = s.wait_finished(id);
  REQUIRE(e["status"] == "succeeded");
  REQUIRE(subscriber.wait_for(4, std::chrono::seconds(15)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // nothing more comes
  auto got = subscriber.requests();
  REQUIRE(got.size() == 4);
  std::vector<std::string> statuses;
  std::set<std::string> ids;
  for (const auto& r : got) {
    json b = json::parse(r.body);
    statuses.push_back(b["data"]["status"]);
    ids.insert(r.header("webhook-id"));
    CHECK(b["type"] == "execution." + b["data"]["status"].get<std::string>());
    CHECK(b["data"]["execution_id"] == id);
    CHECK(b["data"]["receiver_id"] == rid);
    CHECK(b["data"]["receiver"] == "n1");
    CHECK(b["data"]["driver"] == "webhook");
    CHECK(b["data"]["target"] == action.url("/action"));
    CHECK(b["data"]["action"] == "post");
    CHECK(r.path == "/events");
    // Checked here with our code; the reference library below.
    CHECK(r.header("webhook-signature") ==
          standard_webhooks_signature(kSecretA, r.header("webhook-id"),
                                      r.header("webhook-timestamp"), r.body));
  }
  // Delivered in the order of the status changes (one dispatcher worker would not guarantee it
  // across deliveries, but these were due one after the other, seconds apart at most).
  std::multiset<std::string> kinds(statuses.begin(), statuses.end());
  CHECK(kinds == std::multiset<std::string>{"running", "running", "retrying", "succeeded"});
  CHECK(ids.size() == 4);  // one id per notification
  json last;
  for (const auto& r : got)
    if (json::parse(r.body)["data"]["status"] == "succeeded") last = json::parse(r.body)["data"];
  CHECK(last["attempt"] == 2);
  CHECK(last["plan"]["webhook_id"].is_string());
  CHECK(last["result"]["status"] == 200);
  bool ran = false;
  CHECK(reference_verifies(got[0], kSecretA, &ran));

  // The API shows each delivery with its attempt.
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 4); });
  REQUIRE(items.size() == 4);
  for (const auto& d : items) {
    CHECK(d["state"] == "delivered");
    CHECK(d["execution_id"] == id);
    REQUIRE(d["attempt_log"].size() == 1);
    CHECK(d["attempt_log"][0]["status"] == 200);
    CHECK(d["attempt_log"][0]["answer"] == "ok");
    CHECK(d["attempt_log"][0]["latency_ms"].get<int64_t>() >= 0);
  }
}

TEST_CASE("notifications: retries (5xx, 429 Retry-After), final 4xx, 410 disables, re-send") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n2", action);
  json sub = subscribe(
      s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  std::string sub_path =
      "/api/v1/receivers/" + std::to_string(rid) + "/notifications/" + sub["id"].dump();

  // 500, then 429 asking for 1 s, then 200: one delivery, three attempts, one webhook-id.
  subscriber.script({{500, "oops"}, {429, "later", {{"Retry-After", "1"}}}, {200, "thanks"}});
  s.wait_finished(trigger(s, url));
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  REQUIRE(items.size() == 1);
  json d = items[0];
  CHECK(d["state"] == "delivered");
  REQUIRE(d["attempt_log"].size() == 3);
  CHECK(d["attempt_log"][0]["status"] == 500);
  CHECK(d["attempt_log"][0]["answer"] == "oops");
  CHECK(d["attempt_log"][1]["status"] == 429);
  CHECK(d["attempt_log"][2]["status"] == 200);
  auto got = subscriber.requests();
  REQUIRE(got.size() == 3);
  CHECK(got[0].header("webhook-id") == d["webhook_id"]);
  CHECK(got[1].header("webhook-id") == d["webhook_id"]);
  CHECK(got[2].header("webhook-id") == d["webhook_id"]);
  // Retry-After was honoured: the third attempt came a second or more after the second (the
  // backoff alone would have been at most 400 ms).
  CHECK(got[2].received_at - got[1].received_at >= std::chrono::milliseconds(950));
  CHECK(got[1].received_at - got[0].received_at < std::chrono::milliseconds(950));

  // A 400 is final after one attempt; re-sending it by hand delivers it, with the same id.
  subscriber.script({{400, "no"}});
  s.wait_finished(trigger(s, url));
  items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 2); });
  json failed = items[0];
  REQUIRE(failed["state"] == "failed");
  CHECK(failed["attempt_log"].size() == 1);
  CHECK(failed["last_status"] == 400);
  std::string redeliver = "/api/v1/receivers/" + std::to_string(rid) + "/deliveries/" +
                          failed["id"].dump() + "/redeliver";
  auto r = s.request("POST", redeliver);
  INFO(r.body);
  REQUIRE(r.status == 202);
  CHECK(json::parse(r.body)["state"] == "pending");
  items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 2); });
  CHECK(items[0]["state"] == "delivered");
  CHECK(items[0]["attempt_log"].size() == 2);
  REQUIRE(subscriber.wait_for(5, std::chrono::seconds(5)));
  got = subscriber.requests();
  CHECK(got[3].header("webhook-id") == got[4].header("webhook-id"));
  // A delivered one can be re-sent too; an unknown one is 404.
  CHECK(
      s.request("POST", "/api/v1/receivers/" + std::to_string(rid) + "/deliveries/999999/redeliver")
          .status == 404);

  // 410 Gone: the delivery fails and the subscription is disabled, with why.
  subscriber.script({{410, "gone"}});
  s.wait_finished(trigger(s, url));
  items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 3); });
  CHECK(items[0]["state"] == "failed");
  json disabled = json::parse(s.request("GET", sub_path).body);
  CHECK(disabled["enabled"] == false);
  CHECK(disabled["disabled_reason"].get<std::string>().find("410") != std::string::npos);
  // Nothing more is recorded for it, and a re-send is refused until it is enabled again.
  s.wait_finished(trigger(s, url));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(deliveries(s, rid).size() == 3);
  CHECK(s.request("POST", "/api/v1/receivers/" + std::to_string(rid) + "/deliveries/" +
                              items[0]["id"].dump() + "/redeliver")
            .status == 409);
  auto enabled = s.request("PUT", sub_path,
                           {{"url", subscriber.url()},
                            {"secret", "********"},
                            {"events", {"succeeded"}},
                            {"enabled", true}});
  INFO(enabled.body);
  REQUIRE(enabled.status == 200);
  CHECK(json::parse(enabled.body)["disabled_reason"].is_null());
  CHECK(s.request("POST", "/api/v1/receivers/" + std::to_string(rid) + "/deliveries/" +
                              items[0]["id"].dump() + "/redeliver")
            .status == 202);
  items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 3); });
  CHECK(items[0]["state"] == "delivered");
}

TEST_CASE("notifications: retries are bounded, then the delivery fails") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());  // max_attempts 4
  auto [rid, url] = webhook_receiver(s, "n3", action);
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  subscriber.script({{503, ""}, {502, ""}, {504, ""}, {500, ""}, {200, ""}});
  s.wait_finished(trigger(s, url));
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  CHECK(items[0]["state"] == "failed");
  CHECK(items[0]["attempts"] == 4);
  CHECK(subscriber.requests().size() == 4);
}

TEST_CASE("notifications: a secret rotation signs with both secrets, then with the new one") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n4", action);
  json sub = subscribe(
      s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  std::string path =
      "/api/v1/receivers/" + std::to_string(rid) + "/notifications/" + sub["id"].dump();
  // Rotate: B is current, A still signs while receivers move over.
  auto r = s.request("PUT", path,
                     {{"url", subscriber.url()},
                      {"secret", kSecretB},
                      {"previous_secret", kSecretA},
                      {"events", {"succeeded"}}});
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body)["previous_secret"] == "********");
  s.wait_finished(trigger(s, url));
  REQUIRE(subscriber.wait_for(1, std::chrono::seconds(10)));
  auto during = subscriber.requests()[0];
  bool ran = false;
  CHECK(reference_verifies(during, kSecretB, &ran));
  if (ran) CHECK(reference_verifies(during, kSecretA, &ran));
  // Done: the previous secret is dropped; A no longer verifies.
  r = s.request("PUT", path,
                {{"url", subscriber.url()},
                 {"secret", "********"},
                 {"previous_secret", nullptr},
                 {"events", {"succeeded"}}});
  REQUIRE(r.status == 200);
  CHECK_FALSE(json::parse(r.body).contains("previous_secret"));
  s.wait_finished(trigger(s, url));
  REQUIRE(subscriber.wait_for(2, std::chrono::seconds(10)));
  auto after = subscriber.requests()[1];
  CHECK(after.header("webhook-signature").find(' ') == std::string::npos);
  CHECK(after.header("webhook-signature") ==
        standard_webhooks_signature(kSecretB, after.header("webhook-id"),
                                    after.header("webhook-timestamp"), after.body));
  if (ran) CHECK_FALSE(reference_verifies(after, kSecretA, &ran));
}

TEST_CASE("notifications: seed-002 subscribers get X-Link-Webhook-* signatures") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n5", action);
  subscribe(s, rid,
            {{"url", subscriber.url()},
             {"secret", "a-seed-002-shared-secret"},
             {"scheme", "seed-002"},
             {"events", {"succeeded"}}});
  s.wait_finished(trigger(s, url));
  REQUIRE(subscriber.wait_for(1, std::chrono::seconds(10)));
  auto r = subscriber.requests()[0];
  std::string ts = r.header("x-link-webhook-timestamp");
  auto expect = sign_webhook(SignatureScheme::kSeed002, {"a-seed-002-shared-secret"}, "x",
                             std::stoll(ts), r.body);
  CHECK(r.header("x-link-webhook-signature") == expect.back().second);
  CHECK(r.header("x-link-webhook-signature").size() == 64);
  CHECK(r.header("webhook-id").rfind("msg_", 0) == 0);
}

TEST_CASE("notifications: pending deliveries survive a restart, each sent once with its id") {
  WebhookSink action, subscriber;
  subscriber.stop();  // the subscriber is down
  std::string dir = make_temp_dir("tl-notify");
  int64_t rid = 0;
  std::vector<int64_t> executions;
  {
    TestServer s(dir, local_options());
    auto [id, url] = webhook_receiver(s, "n6", action);
    rid = id;
    subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
    for (int i = 0; i < 3; ++i) executions.push_back(trigger(s, url));
    for (int64_t e : executions) s.wait_finished(e);
    // Each delivery was tried (connection refused) and waits for its next attempt.
    json waiting = wait_deliveries(s, rid, [](const json& items) {
      if (items.size() < 3) return false;
      for (const auto& d : items)
        if (d["state"] != "pending" || d["attempts"].get<int>() < 1) return false;
      return true;
    });
    // When the next attempt is due, as a time like every other time of the API (docs/openapi.yaml).
    for (const auto& d : waiting) {
      INFO(d.dump());
      REQUIRE(d["next_attempt_at"].is_string());
      CHECK(std::regex_match(d["next_attempt_at"].get<std::string>(),
                             std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)")));
    }
    s.stop();
  }
  subscriber.start();
  TestServer s(dir, local_options());
  REQUIRE(subscriber.wait_for(3, std::chrono::seconds(15)));
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 3); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  auto got = subscriber.requests();
  CHECK(got.size() == 3);
  std::map<int64_t, std::set<std::string>> ids_by_execution;
  for (const auto& r : got)
    ids_by_execution[json::parse(r.body)["data"]["execution_id"].get<int64_t>()].insert(
        r.header("webhook-id"));
  CHECK(ids_by_execution.size() == 3);
  for (const auto& [e, ids] : ids_by_execution) CHECK(ids.size() == 1);
  for (const auto& d : items) {
    CHECK(d["state"] == "delivered");
    CHECK(ids_by_execution[d["execution_id"].get<int64_t>()] ==
          std::set<std::string>{d["webhook_id"].get<std::string>()});
  }
  s.stop();
  sh("rm -rf " + dir);
}

TEST_CASE("notifications API: hostile input, secrets never shown, local targets refused") {
  WebhookSink action, subscriber;
  {
    TestServer s("", local_options());
    auto [rid, url] = webhook_receiver(s, "n7", action);
    std::string base = "/api/v1/receivers/" + std::to_string(rid);
    struct Case {
      json body;
      std::string field;
    } cases[] = {
        {{{"url", "ftp://x.example/"}, {"secret", kSecretA}}, "url"},
        {{{"secret", kSecretA}}, "url"},
        {{{"url", "https://x.example/"}}, "secret"},
        {{{"url", "https://x.example/"}, {"secret", "not-whsec"}}, "secret"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"events", {"queued"}}}, "events"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"scheme", "md5"}}, "scheme"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"extra", 1}}, "extra"},
        // Wrong types are field errors (422), never a 500.
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"enabled", "yes"}}, "enabled"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"enabled", 1}}, "enabled"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"scheme", 2}}, "scheme"},
        {{{"url", 7}, {"secret", kSecretA}}, "url"},
        {{{"url", "https://x.example/"}, {"secret", kSecretA}, {"events", "running"}}, "events"},
        {{{"url", "https://x.example/"}, {"secret", 5}}, "secret"},
    };
    for (const auto& c : cases) {
      auto r = s.request("POST", base + "/notifications", c.body);
      INFO(c.body.dump() << " -> " << r.body);
      CHECK(r.status == 422);
      json b = json::parse(r.body, nullptr, false);
      bool named = false;
      for (const auto& f : b["fields"]) named = named || f["field"] == c.field;
      CHECK(named);
    }
    CHECK(s.request("POST", "/api/v1/receivers/99999/notifications",
                    {{"url", "https://x.example/"}, {"secret", kSecretA}})
              .status == 404);
    CHECK(s.request("GET", base + "/deliveries?state=lost").status == 400);
    CHECK(s.request("GET", base + "/deliveries/abc").status == 404);
    CHECK(s.request("DELETE", base + "/deliveries").status == 405);
    for (int i = 0; i < 10; ++i)
      subscribe(s, rid, {{"url", "https://x.example/" + std::to_string(i)}, {"secret", kSecretA}});
    CHECK(s.request("POST", base + "/notifications",
                    {{"url", "https://x.example/"}, {"secret", kSecretA}})
              .status == 409);
    auto list = s.request("GET", base + "/notifications");
    CHECK(list.body.find(kSecretA) == std::string::npos);
    CHECK(list.body.find("sealed:") == std::string::npos);
  }
  // Without the flag, a subscriber on loopback is never sent anything.
  ServiceOptions strict = local_options();
  strict.drivers.set("allow-local-webhook-targets", "false");
  TestServer s("", strict);
  // The action must still run: a receiver whose own webhook goes to loopback is refused at save.
  auto refused = s.request("POST", "/api/v1/receivers",
                           {{"name", "n8"},
                            {"driver", "webhook"},
                            {"config", {{"url", action.url()}, {"secret", kActionSecret}}}});
  CHECK(refused.status == 422);
  json r = s.create_receiver({{"name", "n8"},
                              {"driver", "webhook"},
                              {"config",
                               {{"url", "http://localhost:" + std::to_string(action.port())},
                                {"secret", kActionSecret}}}});
  int64_t rid = r["id"];
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"failed"}}});
  json e = s.wait_finished(trigger(s, r["trigger_url"]));
  CHECK(e["status"] == "failed");  // "localhost" resolved to loopback: refused
  CHECK(e["error"].get<std::string>().find("loopback") != std::string::npos);
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  CHECK(items[0]["state"] == "failed");
  CHECK(items[0]["last_error"].get<std::string>().find("loopback") != std::string::npos);
  CHECK(subscriber.requests().empty());
  CHECK(action.requests().empty());
}

TEST_CASE("notifications: answers cut inside a character or not UTF-8 are stored, not stuck") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n-utf8", action);
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  // 511 bytes, then a 2-byte character across the 512-byte cut; then bytes that are not UTF-8.
  action.script({{200, std::string(511, 'a') + "\xC3\xA9" + "tail"}});
  subscriber.script({{500, "\xFF\xFE bad \xC3"}, {200, "ok"}});
  json e = s.wait_finished(trigger(s, url));
  REQUIRE(e["status"] == "succeeded");
  // Cut before the character, never inside it, and the rest marked as left out.
  CHECK(e["result"]["answer"] == std::string(511, 'a') + "...");
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  CHECK(items[0]["state"] == "delivered");
  REQUIRE(items[0]["attempt_log"].size() == 2);
  CHECK(items[0]["attempt_log"][0]["answer"] == "\xEF\xBF\xBD\xEF\xBF\xBD bad \xEF\xBF\xBD");
}

TEST_CASE("notifications API: a PUT keeps what it leaves out; a kept secret must fit the scheme") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n-put", action);
  json sub = subscribe(s, rid,
                       {{"url", subscriber.url()},
                        {"secret", "a-seed-002-shared-secret"},
                        {"scheme", "seed-002"},
                        {"events", {"succeeded"}}});
  std::string path =
      "/api/v1/receivers/" + std::to_string(rid) + "/notifications/" + sub["id"].dump();
  // Only the URL: scheme, events, enabled and the secret are the stored ones.
  auto put = s.request("PUT", path, {{"url", subscriber.url("/moved")}});
  INFO(put.body);
  REQUIRE(put.status == 200);
  json after = json::parse(put.body);
  CHECK(after["url"] == subscriber.url("/moved"));
  CHECK(after["scheme"] == "seed-002");
  CHECK(after["events"] == json{"succeeded"});
  CHECK(after["enabled"] == true);
  // Switching to standard while keeping the raw seed-002 secret would sign nothing: refused.
  auto switched = s.request("PUT", path, {{"scheme", "standard"}});
  INFO(switched.body);
  CHECK(switched.status == 422);
  json b = json::parse(switched.body, nullptr, false);
  REQUIRE(b.is_object());
  REQUIRE(b["fields"].is_array());
  CHECK(b["fields"][0]["field"] == "secret");
  // With a new secret that fits, it is accepted.
  CHECK(s.request("PUT", path, {{"scheme", "standard"}, {"secret", kSecretA}}).status == 200);
  // A disabled subscription stays disabled through a PUT that does not name `enabled`.
  CHECK(s.request("PUT", path, {{"enabled", false}}).status == 200);
  auto renamed = s.request("PUT", path, {{"url", subscriber.url("/again")}});
  REQUIRE(renamed.status == 200);
  CHECK(json::parse(renamed.body)["enabled"] == false);
  CHECK(json::parse(renamed.body)["scheme"] == "standard");
}

TEST_CASE("notifications: a 2xx with a body over the 64 KiB limit is delivered, not retried") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  auto [rid, url] = webhook_receiver(s, "n-big", action);
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  subscriber.script({{200, std::string(200 * 1024, 'x')}});
  s.wait_finished(trigger(s, url));
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  CHECK(items[0]["state"] == "delivered");
  CHECK(items[0]["attempts"] == 1);
  REQUIRE(items[0]["attempt_log"].size() == 1);
  CHECK(items[0]["attempt_log"][0]["status"] == 200);
  CHECK(items[0]["attempt_log"][0]["answer"] == std::string(512, 'x'));
  CHECK(subscriber.requests().size() == 1);
}

TEST_CASE("notifications: a webhook plan's body is left out of the payload") {
  WebhookSink action, subscriber;
  TestServer s("", local_options());
  json r = s.create_receiver({{"name", "n-plan"},
                              {"driver", "webhook"},
                              {"config",
                               {{"url", action.url("/action")},
                                {"secret", kActionSecret},
                                {"payload", {{"text", std::string(20 * 1024, 'p')}}}}}});
  int64_t rid = r["id"];
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  s.wait_finished(trigger(s, r["trigger_url"]));
  REQUIRE(subscriber.wait_for(1, std::chrono::seconds(10)));
  auto got = subscriber.requests();
  REQUIRE(got.size() == 1);
  CHECK(got[0].body.size() < 4096);
  json plan = json::parse(got[0].body)["data"]["plan"];
  CHECK(plan["webhook_id"].is_string());
  CHECK_FALSE(plan.contains("body"));
}

TEST_CASE("notifications: the allow-local flag is read as the webhook driver reads it") {
  WebhookSink action, subscriber;
  ServiceOptions o = local_options();
  o.drivers.set("allow-local-webhook-targets", "TRUE");  // the driver lower-cases: so must we
  TestServer s("", o);
  auto [rid, url] = webhook_receiver(s, "n-flag", action);
  subscribe(s, rid, {{"url", subscriber.url()}, {"secret", kSecretA}, {"events", {"succeeded"}}});
  json e = s.wait_finished(trigger(s, url));
  CHECK(e["status"] == "succeeded");  // the driver took "TRUE" as on
  json items = wait_deliveries(s, rid, [](const json& i) { return all_final(i, 1); });
  CHECK(items[0]["state"] == "delivered");  // and so did the notifications
}
