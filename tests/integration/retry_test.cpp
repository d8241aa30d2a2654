// POST /api/v1/executions/{id}/retry against a real server and SQLite file, with a real webhook
// sink as the receiver's peer: a failed execution runs again, as recorded, only while the grant
// it ran under holds.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "../support/webhook_sink.h"
#include "harness.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

ServiceOptions one_attempt() {
  ServiceOptions o;
  o.drivers.set("allow-local-webhook-targets", "true");  // the sink is on 127.0.0.1
  o.retry.max_attempts = 1;                              // a 500 fails the execution at once
  return o;
}

json create_hook(const TestServer& s, const std::string& name, const WebhookSink& sink) {
  return s.create_receiver({{"name", name},
                            {"driver", "webhook"},
                            {"config", {{"url", sink.url("/" + name)}, {"secret", kSecret}}}});
}

// Triggers with `body` and waits until the execution finished; answers it.
json run(const TestServer& s, const std::string& url, const std::string& body) {
  auto r = s.request("POST", url, json::parse(body), false);
  REQUIRE(r.status == 202);
  return s.wait_finished(json::parse(r.body)["execution_id"].get<int64_t>());
}

std::string retry_path(const json& execution) {
  return "/api/v1/executions/" + std::to_string(execution["id"].get<int64_t>()) + "/retry";
}

}  // namespace

TEST_CASE("retry: a failed execution runs again as a new one, with the same recorded request") {
  WebhookSink sink;
  sink.script({{500, "down"}});  // then 200
  TestServer s("", one_attempt());
  json hook = create_hook(s, "hook", sink);
  json failed = run(s, hook["trigger_url"], R"({"deploy":"v42"})");
  REQUIRE(failed["status"] == "failed");
  // The execution says how many tries it gets (--max-attempts), so a client can say "1 of 1".
  CHECK(failed["attempts"] == 1);
  CHECK(failed["max_attempts"] == 1);

  auto r = s.request("POST", retry_path(failed));
  INFO(r.body);
  REQUIRE(r.status == 202);
  json accepted = json::parse(r.body);
  CHECK(accepted["retry_of"] == failed["id"]);
  CHECK(accepted["receiver_id"] == hook["id"]);
  CHECK_FALSE(accepted.contains("replayed"));
  int64_t again = accepted["execution_id"];
  CHECK(again > failed["id"].get<int64_t>());
  json done = s.wait_finished(again);
  CHECK(done["status"] == "succeeded");
  REQUIRE(sink.wait_for(2, std::chrono::seconds(5)));
  auto got = sink.requests();
  CHECK(got[1].body == got[0].body);  // the request's body, as recorded with the execution
  CHECK(got[1].body.find("v42") != std::string::npos);

  // The failed one stays as it was: the record of what happened.
  auto old = s.request("GET", "/api/v1/executions/" + std::to_string(failed["id"].get<int64_t>()));
  CHECK(json::parse(old.body)["status"] == "failed");

  // Retrying the same execution again answers the first retry; nothing runs twice.
  r = s.request("POST", retry_path(failed));
  REQUIRE(r.status == 202);
  CHECK(json::parse(r.body)["execution_id"] == again);
  CHECK(json::parse(r.body)["replayed"] == true);
  CHECK(s.execution_count() == 2);

  // Only failed executions; unknown ids; only POST.
  r = s.request("POST", retry_path(done));
  CHECK(r.status == 409);
  CHECK(json::parse(r.body)["message"] ==
        "only a failed execution can be retried; this one is succeeded");
  CHECK(s.request("POST", "/api/v1/executions/999/retry").status == 404);
  CHECK(s.request("POST", "/api/v1/executions/x/retry").status == 404);
  r = s.request("GET", retry_path(failed));
  CHECK(r.status == 405);
  REQUIRE(r.header("allow"));
  CHECK(*r.header("allow") == "POST");
  CHECK(s.request("POST", retry_path(failed), nullptr, false).status == 401);  // admin only
}

TEST_CASE("retry: refused once the grant the execution ran under is gone") {
  WebhookSink sink;
  sink.script({{500}, {500}, {500}});
  TestServer s("", one_attempt());
  json hook = create_hook(s, "hook", sink);
  std::string id = std::to_string(hook["id"].get<int64_t>());

  SECTION("rotated") {
    json failed = run(s, hook["trigger_url"], "{}");
    REQUIRE(s.request("POST", "/api/v1/receivers/" + id + "/rotate").status == 200);
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 409);
    CHECK(json::parse(r.body)["message"].get<std::string>().find("revoked") != std::string::npos);
  }
  SECTION("disabled, and enabled again: the URL it came in on stays revoked") {
    json failed = run(s, hook["trigger_url"], "{}");
    REQUIRE(s.request("POST", "/api/v1/receivers/" + id + "/disable").status == 200);
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 409);
    CHECK(json::parse(r.body)["message"].get<std::string>().find("disabled") != std::string::npos);
    REQUIRE(s.request("POST", "/api/v1/receivers/" + id + "/enable").status == 200);
    CHECK(s.request("POST", retry_path(failed)).status == 409);
  }
  SECTION("a sender took the retry's key first: no other request answers for the retry") {
    sink.script({{500}, {200}});
    json failed = run(s, hook["trigger_url"], R"({"real":1})");
    std::string key = "retry-of:" + std::to_string(failed["id"].get<int64_t>());
    auto first = s.request("POST", hook["trigger_url"], json{{"forged", 1}}, false,
                           {{"Idempotency-Key", key}});
    REQUIRE(first.status == 202);
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 409);
    CHECK(json::parse(r.body)["message"].get<std::string>().find("not a retry") !=
          std::string::npos);
  }
  SECTION("edited since, without revoking the URL: the recorded config is not run again") {
    json failed = run(s, hook["trigger_url"], "{}");
    json edited = hook;
    for (const char* k : {"id", "last_execution", "generation", "version", "description", "target",
                          "action", "trigger_url", "created_at", "updated_at", "driver"})
      edited.erase(k);
    edited["rules"] = nullptr;
    edited["auth"] = nullptr;
    edited["limits"] = {{"max_queued", 7}};  // an edit that keeps the URL
    auto put = s.request("PUT", "/api/v1/receivers/" + id, edited);
    INFO(put.body);
    REQUIRE(put.status == 200);
    CHECK(json::parse(put.body)["url_revoked"] == false);
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 409);
    CHECK(json::parse(r.body)["message"].get<std::string>().find("changed since") !=
          std::string::npos);
  }
  SECTION("deleted") {
    json failed = run(s, hook["trigger_url"], "{}");
    REQUIRE(s.request("DELETE", "/api/v1/receivers/" + id).status == 204);
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 409);
  }
  SECTION("the receiver's queue is full: 429 until it drains") {
    json limited = hook;
    limited["limits"] = {{"max_queued", 1}};
    for (const char* k : {"id", "last_execution", "generation", "version", "description", "target",
                          "action", "trigger_url", "created_at", "updated_at", "driver"})
      limited.erase(k);
    limited["rules"] = nullptr;
    limited["auth"] = nullptr;
    auto put = s.request("PUT", "/api/v1/receivers/" + id, limited);
    INFO(put.body);
    REQUIRE(put.status == 200);
    json failed = run(s, hook["trigger_url"], "{}");
    REQUIRE(s.request("POST", "/api/v1/workers/pause").status == 200);
    auto queued = s.request("POST", hook["trigger_url"], json::object(), false);
    REQUIRE(queued.status == 202);  // the one slot
    auto r = s.request("POST", retry_path(failed));
    CHECK(r.status == 429);
    CHECK(json::parse(r.body)["error"] == "queue_full");
    REQUIRE(s.request("POST", "/api/v1/workers/resume").status == 200);
    s.wait_finished(json::parse(queued.body)["execution_id"].get<int64_t>());
    r = s.request("POST", retry_path(failed));
    CHECK(r.status == 202);
  }
}

TEST_CASE("retry: a retry claims the receiver's cooldown, as the execution of a trigger does") {
  WebhookSink sink;
  sink.script({{500, "down"}});  // then 200
  TestServer s("", one_attempt());
  json hook = s.create_receiver({{"name", "cool"},
                                 {"driver", "webhook"},
                                 {"config", {{"url", sink.url("/cool")}, {"secret", kSecret}}},
                                 {"limits", {{"cooldown_seconds", 2}}}});
  json failed = run(s, hook["trigger_url"], "{}");
  REQUIRE(failed["status"] == "failed");
  // Past the failed trigger's cooldown: only the retry's own claim can hold the next one back.
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  auto r = s.request("POST", retry_path(failed));
  INFO(r.body);
  REQUIRE(r.status == 202);
  auto next = s.request("POST", hook["trigger_url"], json::object(), false);
  INFO(next.body);
  CHECK(next.status == 200);
  CHECK(json::parse(next.body)["ignored"] == true);
  CHECK(json::parse(next.body)["reason"].get<std::string>().find("cooling down") !=
        std::string::npos);
  s.wait_finished(json::parse(r.body)["execution_id"].get<int64_t>());
}

TEST_CASE("executions: a deleted receiver's executions keep its name") {
  WebhookSink sink;
  TestServer s("", one_attempt());
  json hook = create_hook(s, "named-hook", sink);
  json done = run(s, hook["trigger_url"], "{}");
  CHECK(done["receiver_name"] == "named-hook");
  CHECK(done["receiver_deleted"] == false);
  const std::string id = std::to_string(hook["id"].get<int64_t>());
  REQUIRE(s.request("DELETE", "/api/v1/receivers/" + id).status == 204);

  auto one = s.request("GET", "/api/v1/executions/" + std::to_string(done["id"].get<int64_t>()));
  REQUIRE(one.status == 200);
  json e = json::parse(one.body);
  CHECK(e["receiver_name"] == "named-hook");
  CHECK(e["receiver_deleted"] == true);
  auto list = s.request("GET", "/api/v1/executions?receiver_id=" + id);
  REQUIRE(list.status == 200);
  json items = json::parse(list.body)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["receiver_name"] == "named-hook");
  CHECK(items[0]["receiver_deleted"] == true);
}
