// The request log (docs/requests-log.md) through the whole service, on a real SQLite file: each
// outcome recorded with its reason, no secret in the stored rows or the API's answers, bounded
// under a flood while accepted triggers keep being accepted, redelivery, and cancelling an
// execution. The receivers run the webhook driver against a loopback sink
// (tests/support/webhook_sink.h), so no swarm is needed.
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "crypto.h"
#include "harness.h"
#include "tests/support/webhook_sink.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const char* kGithubSecret = "gh-signing-secret-9f2c7a1e4b";
const char* kActionSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

ServiceOptions log_options(int64_t keep = 1000) {
  ServiceOptions o;
  o.drivers.set("allow-local-webhook-targets", "true");
  o.request_log.keep_per_receiver = keep;
  return o;
}

// A webhook receiver POSTing to `sink`, with `extra` (rules, auth, limits) merged in.
json receiver(const TestServer& s, const std::string& name, const WebhookSink& sink,
              json extra = json::object()) {
  json body = {
      {"name", name},
      {"driver", "webhook"},
      {"config",
       {{"url", sink.url("/action")}, {"secret", kActionSecret}, {"payload", {{"text", "{}"}}}}}};
  body.update(extra);
  return s.create_receiver(body);
}

OutboundResponse post(const std::string& url, const std::string& body,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  OutboundRequest r;
  r.method = "POST";
  r.url = url;
  r.body = body;
  r.headers = std::move(headers);
  r.headers.emplace_back("Content-Type", "application/json");
  return http_request(r);
}

std::string github_signature(const std::string& body) {
  return "sha256=" + crypto::hex(crypto::view(crypto::hmac_sha256(kGithubSecret, body)));
}

json api(const TestServer& s, const std::string& method, const std::string& path, int expect,
         const json& body = nullptr) {
  auto r = s.request(method, path, body);
  INFO(method << " " << path << " -> " << r.status << " " << r.body);
  REQUIRE(r.status == expect);
  return r.body.empty() ? json() : json::parse(r.body);
}

std::string requests_path(int64_t rid) {
  return "/api/v1/receivers/" + std::to_string(rid) + "/requests";
}

// Polls the log until it holds `n` entries (the background writer is asynchronous).
json wait_entries(const TestServer& s, int64_t rid, size_t n, const std::string& query = "") {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  json items;
  while (std::chrono::steady_clock::now() < deadline) {
    items = api(s, "GET", requests_path(rid) + query, 200)["items"];
    if (items.size() >= n) return items;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("the request log did not reach " << n << " entries: " << items.dump(2));
  return items;
}

int64_t metric(const TestServer& s, const std::string& name) {
  auto r = s.request("GET", "/metrics", nullptr, false);
  REQUIRE(r.status == 200);
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(name + " ", 0) == 0) return std::stoll(line.substr(name.size() + 1));
  FAIL("no metric " << name);
  return -1;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

int64_t log_rows(const TestServer& s, int64_t rid) {
  SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READONLY);
  SQLite::Statement q(db, "SELECT count(*) FROM requests_log WHERE receiver_id = ?");
  q.bind(1, rid);
  REQUIRE(q.executeStep());
  return q.getColumn(0).getInt64();
}

// Rules: warnings are ignored by a named rule, criticals run by another.
const json kRules = {
    {"rules",
     {{{"name", "only critical"},
       {"when", {{"field", "body:severity"}, {"op", "not_equals"}, {"value", "critical"}}},
       {"then", "ignore"}},
      {{"name", "critical runs"},
       {"when", {{"field", "body:severity"}, {"op", "equals"}, {"value", "critical"}}},
       {"then", "run"}}}}};

}  // namespace

TEST_CASE("requests log: each outcome is recorded with its reason") {
  WebhookSink sink;
  TestServer s("", log_options());
  json signed_r = receiver(s, "signed", sink,
                           {{"rules", kRules}, {"auth", {{"github_secret", kGithubSecret}}}});
  int64_t rid = signed_r["id"];
  std::string url = signed_r["trigger_url"];

  // accepted: the execution names its request and the rule that matched.
  std::string critical = R"({"severity":"critical"})";
  auto a = post(url, critical, {{"X-Hub-Signature-256", github_signature(critical)}});
  REQUIRE(a.status == 202);
  int64_t execution = json::parse(a.body)["execution_id"];
  // ignored, by the named rule, with the value it compared.
  std::string warning = R"({"severity":"warning"})";
  REQUIRE(post(url, warning, {{"X-Hub-Signature-256", github_signature(warning)}}).status == 200);
  // refused: a bad signature, and none at all.
  REQUIRE(post(url, warning, {{"X-Hub-Signature-256", github_signature("other")}}).status == 401);
  REQUIRE(post(url, warning).status == 401);
  // malformed: an Idempotency-Key over 255 characters.
  REQUIRE(post(url, critical,
               {{"X-Hub-Signature-256", github_signature(critical)},
                {"Idempotency-Key", std::string(300, 'k')}})
              .status == 400);
  // A forged token names no receiver: metrics only.
  REQUIRE(post(s.url() + "/_webhooks/not-a-token", critical).status == 401);
  // Then a request the background writer logs after anything queued before it (one queue,
  // written in order): once it is in, a forged request's entry would be too.
  json sentinel = receiver(s, "sentinel", sink, {{"auth", {{"github_secret", kGithubSecret}}}});
  REQUIRE(post(sentinel["trigger_url"], critical).status == 401);
  REQUIRE(wait_entries(s, sentinel["id"], 1).size() == 1);

  json items = wait_entries(s, rid, 5);
  REQUIRE(items.size() == 5);
  {
    // The forged token's request is nowhere in the log: five rows and the sentinel in all.
    SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("SELECT count(*) FROM requests_log").getInt64() == 6);
  }
  // Newest first.
  CHECK(items[0]["outcome"] == "malformed");
  CHECK(items[0]["status"] == 400);
  CHECK(items[0]["error"] == "bad_idempotency_key");
  std::map<std::string, json> by_check;
  for (const auto& e : items)
    if (e["outcome"] == "refused") by_check[e["detail"]["check"]] = e;
  REQUIRE(by_check.count("signature") == 1);
  CHECK(by_check["signature"]["status"] == 401);
  CHECK(by_check["signature"]["detail"]["failure"] == "bad_signature");
  REQUIRE(by_check.count("credential") == 1);
  CHECK(by_check["credential"]["detail"]["failure"] == "missing_credential");

  json accepted = wait_entries(s, rid, 1, "?outcome=accepted");
  REQUIRE(accepted.size() == 1);
  CHECK(accepted[0]["execution_id"] == execution);
  CHECK(accepted[0]["status"] == 202);
  CHECK(accepted[0]["detail"]["rule"]["name"] == "critical runs");
  json e = api(s, "GET", "/api/v1/executions/" + std::to_string(execution), 200);
  CHECK(e["request_id"] == accepted[0]["id"]);
  CHECK(e["rule"] == json({{"index", 1}, {"name", "critical runs"}}));

  json ignored = wait_entries(s, rid, 1, "?outcome=ignored");
  REQUIRE(ignored.size() == 1);
  json detail = ignored[0]["detail"];
  CHECK(detail["reason"] == "rule");
  CHECK(detail["rule"] == json({{"index", 0}, {"name", "only critical"}}));
  REQUIRE(detail["compared"].size() == 1);
  CHECK(detail["compared"][0]["field"] == "body:severity");
  CHECK(detail["compared"][0]["op"] == "not_equals");
  CHECK(detail["compared"][0]["actual"] == "warning");
  CHECK(detail["compared"][0]["matched"] == true);
  // One entry in full: method, source, headers, body.
  json full = api(s, "GET",
                  requests_path(rid) + "/" + std::to_string(ignored[0]["id"].get<int64_t>()), 200);
  CHECK(full["method"] == "POST");
  CHECK(full["source"] == "127.0.0.1");
  CHECK(full["body"] == warning);
  CHECK(full["body_truncated"] == false);
  bool saw_signature = false;
  for (const auto& h : full["headers"])
    if (h[0].get<std::string>() == "X-Hub-Signature-256") {
      saw_signature = true;
      CHECK(h[1] == "[redacted]");
    }
  CHECK(saw_signature);

  // Limits: rate limited, cooling down, queue full, each on a receiver of its own.
  json rated = receiver(s, "rated", sink, {{"limits", {{"rate_per_minute", 1}, {"burst", 1}}}});
  REQUIRE(s.trigger(rated["trigger_url"]).status == 202);
  REQUIRE(s.trigger(rated["trigger_url"]).status == 429);
  json r1 = wait_entries(s, rated["id"], 2, "");
  CHECK(r1[0]["outcome"] == "rate_limited");
  CHECK(r1[0]["error"] == "rate_limited");
  CHECK(r1[1]["outcome"] == "accepted");

  json cool = receiver(s, "cool", sink, {{"limits", {{"cooldown_seconds", 60}}}});
  REQUIRE(s.trigger(cool["trigger_url"]).status == 202);
  REQUIRE(s.trigger(cool["trigger_url"]).status == 200);
  json c1 = wait_entries(s, cool["id"], 2);
  CHECK(c1[0]["outcome"] == "cooling_down");
  CHECK(c1[0]["detail"]["cooldown_s"] == 60);

  api(s, "POST", "/api/v1/workers/pause", 200);
  json capped = receiver(s, "capped", sink, {{"limits", {{"max_queued", 1}}}});
  REQUIRE(s.trigger(capped["trigger_url"]).status == 202);
  REQUIRE(s.trigger(capped["trigger_url"]).status == 429);
  json q1 = wait_entries(s, capped["id"], 2);
  CHECK(q1[0]["outcome"] == "queue_full");
  CHECK(q1[0]["detail"]["max_queued"] == 1);
  api(s, "POST", "/api/v1/workers/resume", 200);

  // Paging and filters answer as documented.
  json page = api(s, "GET", requests_path(rid) + "?limit=2", 200);
  CHECK(page["items"].size() == 2);
  json rest = api(
      s, "GET",
      requests_path(rid) + "?limit=50&before=" + std::to_string(page["next_before"].get<int64_t>()),
      200);
  CHECK(rest["items"].size() == 3);
  CHECK(s.request("GET", requests_path(rid) + "?outcome=bogus").status == 400);
  CHECK(s.request("GET", requests_path(rid) + "?limit=0").status == 400);
  CHECK(s.request("GET", requests_path(rid) + "/999999").status == 404);
  CHECK(s.request("GET", requests_path(999999)).status == 404);
  CHECK(s.request("DELETE", requests_path(rid)).status == 405);
  CHECK(s.request("GET", requests_path(rid), nullptr, false).status == 401);
}

TEST_CASE("requests log: no secret reaches the stored rows or the API") {
  WebhookSink sink;
  TestServer s("", log_options());
  json r = receiver(
      s, "secretive", sink,
      {{"rules", kRules},
       {"auth", {{"github_secret", kGithubSecret}, {"bearer_token", "inbound-bearer-77"}}}});
  int64_t rid = r["id"];
  std::string url = r["trigger_url"];
  std::string token = url.substr(url.find("/_webhooks/") + 11);
  std::string warning = R"({"severity":"warning"})";
  std::string critical = R"({"severity":"critical"})";
  // The token as a header (the URL's path is never logged), with every kind of credential.
  std::string header_url = s.url() + "/_webhooks/trigger";
  std::vector<std::pair<std::string, std::string>> creds = {
      {"X-Tripline-Token", token},
      {"Cookie", "session=cookie-value-31337"},
      {"X-Api-Key", "api-key-value-4242"},
      {"X-Hub-Signature-256", github_signature(warning)}};
  post(header_url, warning, creds);  // refused: no bearer credential
  post(url, warning,
       {{"Authorization", "Bearer inbound-bearer-77"},
        {"X-Hub-Signature-256", github_signature(warning)}});  // ignored
  auto ok = post(url, critical,
                 {{"Authorization", "Bearer inbound-bearer-77"},
                  {"X-Hub-Signature-256", github_signature(critical)}});
  REQUIRE(ok.status == 202);
  json items = wait_entries(s, rid, 3);
  std::string answers;
  for (const auto& e : items)
    answers += api(s, "GET", requests_path(rid) + "/" + std::to_string(e["id"].get<int64_t>()), 200)
                   .dump();
  answers += api(s, "GET", requests_path(rid), 200).dump();

  std::string stored;
  {
    SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT headers || body || detail || source FROM requests_log");
    while (q.executeStep()) stored += q.getColumn(0).getString();
  }
  REQUIRE(stored.find("[redacted]") != std::string::npos);  // the rows were read
  std::string files =
      slurp(s.data_dir() + "/tripline.db") + slurp(s.data_dir() + "/tripline.db-wal");
  for (const std::string& secret :
       {token, std::string(kGithubSecret), std::string("inbound-bearer-77"),
        std::string("cookie-value-31337"), std::string("api-key-value-4242"),
        github_signature(warning).substr(7), github_signature(critical).substr(7)}) {
    INFO(secret);
    CHECK(stored.find(secret) == std::string::npos);
    CHECK(answers.find(secret) == std::string::npos);
    // The accepted request's signature is on disk by design, as its execution's idempotency
    // key (a MAC of a body already used: what recognises a replay, inbound_auth.h).
    if (secret != github_signature(critical).substr(7))
      CHECK(files.find(secret) == std::string::npos);
  }
}

TEST_CASE("requests log: bounded under a flood of ignored requests; accepted ones still accepted") {
  WebhookSink sink;
  ServiceOptions o = log_options(/*keep=*/50);
  o.request_log.max_queued = 32;
  o.request_log.batch = 8;
  TestServer s("", o);
  json noisy = receiver(s, "noisy", sink, {{"rules", kRules}});
  json busy = receiver(s, "busy", sink, {{"limits", {{"rate_per_minute", 0}, {"max_queued", 0}}}});
  int64_t noisy_id = noisy["id"];
  std::string noisy_url = noisy["trigger_url"];
  std::string warning = R"({"severity":"warning"})";

  // 1. The log's writer cannot write (another connection holds the write lock): ignored
  //    requests, answered without the database, are still answered; the queue fills and the
  //    rest are dropped, counted.
  int64_t dropped_before = metric(s, "tripline_request_log_dropped_total");
  {
    SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READWRITE);
    db.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 100; ++i) REQUIRE(post(noisy_url, warning).status == 200);
    db.exec("ROLLBACK");
  }
  int64_t dropped = metric(s, "tripline_request_log_dropped_total") - dropped_before;
  CHECK(dropped >= 100 - 32 - 8);  // at most the queue and one batch were held

  // 2. A flood of ignored requests on one receiver while another is triggered: every accepted
  //    trigger is accepted, and the flooded receiver's log holds its cap.
  std::atomic<bool> stop{false};
  std::atomic<int> ignored{0}, errors{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t)
    flood.emplace_back([&] {
      while (!stop) {
        int st = post(noisy_url, warning).status;
        st == 200 ? ++ignored : ++errors;
      }
    });
  int accepted = 0;
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) accepted += s.trigger(busy["trigger_url"]).status == 202;
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  stop = true;
  for (auto& t : flood) t.join();
  CHECK(accepted == 100);
  CHECK(errors == 0);
  CHECK(ignored > 200);
  CHECK(seconds < 20);
  WARN("100 accepted triggers during the flood took " << seconds << " s; " << ignored
                                                      << " ignored requests");
  // The writer applies the cap after each batch; poll until it settled.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (log_rows(s, noisy_id) > 50 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(log_rows(s, noisy_id) == 50);
  // Accepted entries are written just after their executions and capped too (within 250 ms).
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (log_rows(s, busy["id"]) > 50 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(log_rows(s, busy["id"]) == 50);
  // Every request was either written or dropped, nothing lost uncounted: the 100 ignored of
  // step 1, the flood's, and the 100 accepted (written after their commit by the log's writer,
  // or left unwritten for newer ones under the cap: capped).
  int64_t counted = 0;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    counted = metric(s, "tripline_request_log_written_total") +
              metric(s, "tripline_request_log_dropped_total") +
              metric(s, "tripline_request_log_capped_total");
    if (counted == 100 + ignored + 100) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  CHECK(counted == 100 + ignored + 100);
}

TEST_CASE("requests log: redeliver replays a logged request as a new, marked entry") {
  WebhookSink sink;
  TestServer s("", log_options());
  json r = receiver(s, "replayed", sink,
                    {{"rules", kRules}, {"auth", {{"github_secret", kGithubSecret}}}});
  int64_t rid = r["id"];
  std::string url = r["trigger_url"];
  std::string critical = R"({"severity":"critical"})";
  auto first = post(url, critical, {{"X-Hub-Signature-256", github_signature(critical)}});
  REQUIRE(first.status == 202);
  int64_t first_execution = json::parse(first.body)["execution_id"];
  json entry = wait_entries(s, rid, 1)[0];
  REQUIRE(entry["outcome"] == "accepted");
  // The signature was redacted: the admin token authorises the replay instead.
  json replay = api(
      s, "POST",
      requests_path(rid) + "/" + std::to_string(entry["id"].get<int64_t>()) + "/redeliver", 202);
  CHECK(replay["replay_of"] == entry["id"]);
  CHECK(replay["outcome"] == "accepted");
  CHECK(replay["id"] != entry["id"]);
  REQUIRE(replay["execution_id"].is_number());
  CHECK(replay["execution_id"] != first_execution);
  json e = s.wait_finished(replay["execution_id"]);
  CHECK(e["status"] == "succeeded");
  CHECK(e["request_id"] == replay["id"]);
  REQUIRE(sink.wait_for(2, std::chrono::seconds(10)));

  // An ignored request replayed is ignored again, recorded as a replay.
  std::string warning = R"({"severity":"warning"})";
  REQUIRE(post(url, warning, {{"X-Hub-Signature-256", github_signature(warning)}}).status == 200);
  json ignored = wait_entries(s, rid, 1, "?outcome=ignored")[0];
  json again = api(
      s, "POST",
      requests_path(rid) + "/" + std::to_string(ignored["id"].get<int64_t>()) + "/redeliver", 200);
  CHECK(again["outcome"] == "ignored");
  CHECK(again["replay_of"] == ignored["id"]);
  CHECK(again["detail"]["rule"]["name"] == "only critical");
  CHECK(s.request("POST", requests_path(rid) + "/999999/redeliver").status == 404);
  CHECK(s.request("GET", requests_path(rid) + "/1/redeliver").status == 405);
  // Both redeliveries are in the audit log, naming the entry replayed and the one made.
  json audit = api(s, "GET", "/api/v1/audit?target=request&limit=10", 200)["items"];
  REQUIRE(audit.size() == 2);
  CHECK(audit[0]["action"] == "request.redeliver");
  CHECK(audit[0]["target"]["id"] == ignored["id"]);
  CHECK(audit[0]["after"]["request_id"] == again["id"]);
  CHECK(audit[0]["after"]["outcome"] == "ignored");
  CHECK(audit[1]["target"]["id"] == entry["id"]);
  CHECK(audit[1]["after"]["execution_id"] == replay["execution_id"]);

  // A body the log cut cannot be replayed as sent.
  std::string big = R"({"severity":"warning","pad":")" + std::string(5000, 'x') + R"("})";
  REQUIRE(post(url, big, {{"X-Hub-Signature-256", github_signature(big)}}).status == 200);
  // The third ignored entry (after the first and its replay): the writer is asynchronous.
  json cut = wait_entries(s, rid, 3, "?outcome=ignored")[0];
  REQUIRE(cut["body_truncated"] == true);
  CHECK(s.request("POST", requests_path(rid) + "/" + std::to_string(cut["id"].get<int64_t>()) +
                              "/redeliver")
            .status == 409);
}

TEST_CASE("requests log: the trigger token in a body or header is taken out; not redelivered") {
  WebhookSink sink;
  TestServer s("", log_options());
  // A rule that compares the field holding the hook's URL, so the decision's detail holds it.
  json rules = {
      {"rules",
       {{{"name", "pings ignored"},
         {"when", {{"field", "body:hook.config.url"}, {"op", "not_equals"}, {"value", "x"}}},
         {"then", "ignore"}}}}};
  json r = receiver(s, "pinged", sink, {{"rules", rules}});
  int64_t rid = r["id"];
  std::string url = r["trigger_url"];
  std::string token = url.substr(url.find("/_webhooks/") + 11);
  // GitHub's ping event carries the hook's config, the trigger URL included; proxies put the
  // original path in headers.
  std::string ping = R"({"zen":"Design for failure.","hook":{"config":{"url":")" + url +
                     R"(","content_type":"json"}}})";
  REQUIRE(post(url, ping,
               {{"Referer", url},
                {"X-Original-URI", "/_webhooks/" + token},
                {"X-Forwarded-Uri", "/_webhooks/" + token},
                {"X-Envoy-Original-Path", "/_webhooks/" + token},
                {"X-GitHub-Event", "ping"}})
              .status == 200);
  // The header form of the token, with the URL in the body and a Referer.
  REQUIRE(
      post(s.url() + "/_webhooks/trigger", ping, {{"X-Tripline-Token", token}, {"Referer", url}})
          .status == 200);
  json items = wait_entries(s, rid, 2);
  REQUIRE(items.size() == 2);
  std::string answers = api(s, "GET", requests_path(rid), 200).dump();
  for (const auto& e : items) {
    CHECK(e["outcome"] == "ignored");
    CHECK(e["token_redacted"] == true);
    std::string one = requests_path(rid) + "/" + std::to_string(e["id"].get<int64_t>());
    json full = api(s, "GET", one, 200);
    answers += full.dump();
    CHECK(full["body"].get<std::string>().find("/_webhooks/[redacted]") != std::string::npos);
    CHECK(full["detail"]["compared"][0]["actual"] == s.url() + "/_webhooks/[redacted]");
    bool saw_referer = false;
    for (const auto& h : full["headers"])
      if (h[0] == "Referer") {
        saw_referer = true;
        CHECK(h[1] == s.url() + "/_webhooks/[redacted]");
      }
    CHECK(saw_referer);
    // What was kept is not what was sent: no replay.
    auto replay = s.request("POST", one + "/redeliver");
    CHECK(replay.status == 409);
    CHECK(replay.body.find("token") != std::string::npos);
  }
  std::string stored;
  {
    SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT headers || body || detail FROM requests_log");
    while (q.executeStep()) stored += q.getColumn(0).getString();
  }
  REQUIRE(stored.find("/_webhooks/[redacted]") != std::string::npos);  // the rows were read
  std::string files =
      slurp(s.data_dir() + "/tripline.db") + slurp(s.data_dir() + "/tripline.db-wal");
  CHECK(stored.find(token) == std::string::npos);
  CHECK(answers.find(token) == std::string::npos);
  CHECK(files.find(token) == std::string::npos);
  CHECK(sink.requests().empty());
}

TEST_CASE("requests log: a refused request is never redelivered") {
  WebhookSink sink;
  TestServer s("", log_options());
  json r = receiver(s, "guarded", sink, {{"auth", {{"github_secret", kGithubSecret}}}});
  int64_t rid = r["id"];
  std::string url = r["trigger_url"];
  // An attacker's payloads, each refused: a forged signature, none, a bad Idempotency-Key
  // (answered before inbound auth is checked).
  std::string evil = R"({"severity":"critical","evil":true})";
  REQUIRE(post(url, evil, {{"X-Hub-Signature-256", github_signature("other")}}).status == 401);
  REQUIRE(post(url, evil).status == 401);
  REQUIRE(post(url, evil, {{"Idempotency-Key", std::string(300, 'k')}}).status == 400);
  // A disabled receiver, then an old URL after a rotation.
  api(s, "POST", "/api/v1/receivers/" + std::to_string(rid) + "/disable", 200);
  REQUIRE(post(url, evil).status >= 401);
  api(s, "POST", "/api/v1/receivers/" + std::to_string(rid) + "/enable", 200);
  std::string current =
      api(s, "GET", "/api/v1/receivers/" + std::to_string(rid), 200)["trigger_url"];
  api(s, "POST", "/api/v1/receivers/" + std::to_string(rid) + "/rotate", 200);
  REQUIRE(post(current, evil).status == 401);

  json items = wait_entries(s, rid, 5);
  REQUIRE(items.size() == 5);
  std::set<std::string> checks;
  for (const auto& e : items) {
    INFO(e.dump());
    CHECK((e["outcome"] == "refused" || e["error"] == "bad_idempotency_key"));
    if (e["outcome"] == "refused") checks.insert(e["detail"]["check"].get<std::string>());
    auto replay = s.request(
        "POST", requests_path(rid) + "/" + std::to_string(e["id"].get<int64_t>()) + "/redeliver");
    CHECK(replay.status == 409);
  }
  CHECK(checks.count("signature") == 1);
  CHECK(checks.count("credential") == 1);
  CHECK(checks.count("revoked") == 1);
  CHECK((checks.count("disabled") + checks.count("revoked")) >= 1);
  // Nothing ran, nothing was recorded as a replay.
  CHECK(
      api(s, "GET", "/api/v1/executions?receiver_id=" + std::to_string(rid), 200)["items"].empty());
  CHECK(wait_entries(s, rid, 5).size() == 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(sink.requests().empty());
}

TEST_CASE("executions: cancel a queued execution; it never runs; a finished one answers 409") {
  WebhookSink sink;
  TestServer s("", log_options());
  json r = receiver(s, "cancelled", sink);
  api(s, "POST", "/api/v1/workers/pause", 200);
  auto t = s.trigger(r["trigger_url"]);
  REQUIRE(t.status == 202);
  int64_t id = json::parse(t.body)["execution_id"];
  json cancelled = api(s, "POST", "/api/v1/executions/" + std::to_string(id) + "/cancel", 200);
  CHECK(cancelled["status"] == "failed");
  CHECK(cancelled["error"] == "cancelled");
  // Audited in the cancel's own transaction.
  json audit = api(s, "GET", "/api/v1/audit?target=execution:" + std::to_string(id), 200)["items"];
  REQUIRE(audit.size() == 1);
  CHECK(audit[0]["action"] == "execution.cancel");
  CHECK(audit[0]["target"]["name"] == "cancelled");
  CHECK(audit[0]["before"]["status"] == "queued");
  CHECK(audit[0]["after"]["error"] == "cancelled");
  CHECK(s.request("POST", "/api/v1/executions/" + std::to_string(id) + "/cancel").status == 409);
  api(s, "POST", "/api/v1/workers/resume", 200);
  // Another execution after it runs, so the workers did run; the cancelled one did not.
  auto next = s.trigger(r["trigger_url"]);
  REQUIRE(next.status == 202);
  int64_t next_id = json::parse(next.body)["execution_id"];
  CHECK(s.wait_finished(next_id)["status"] == "succeeded");
  REQUIRE(sink.wait_for(1, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(sink.requests().size() == 1);
  json after = api(s, "GET", "/api/v1/executions/" + std::to_string(id), 200);
  CHECK(after["status"] == "failed");
  CHECK(after["attempts"] == 0);
  CHECK(after["started_at"].is_null());
  // Finished, unknown, wrong method.
  CHECK(s.request("POST", "/api/v1/executions/" + std::to_string(next_id) + "/cancel").status ==
        409);
  CHECK(s.request("POST", "/api/v1/executions/999999/cancel").status == 404);
  // A refused cancel leaves no audit row.
  CHECK(api(s, "GET", "/api/v1/audit?target=execution&limit=50", 200)["items"].size() == 1);
  CHECK(s.request("GET", "/api/v1/executions/" + std::to_string(id) + "/cancel").status == 405);
  // The receiver's queue slot was given back: with max_queued 1 it can be triggered again.
  json capped = receiver(s, "capped-cancel", sink, {{"limits", {{"max_queued", 1}}}});
  api(s, "POST", "/api/v1/workers/pause", 200);
  auto c1 = s.trigger(capped["trigger_url"]);
  REQUIRE(c1.status == 202);
  api(s, "POST",
      "/api/v1/executions/" + std::to_string(json::parse(c1.body)["execution_id"].get<int64_t>()) +
          "/cancel",
      200);
  CHECK(s.trigger(capped["trigger_url"]).status == 202);
  api(s, "POST", "/api/v1/workers/resume", 200);
}

TEST_CASE("requests log: over its byte budget an entry is dropped, counted; the trigger is not") {
  WebhookSink sink;
  ServiceOptions o = log_options();
  o.request_log.max_live_bytes = 1;  // no entry fits
  TestServer s("", o);
  json r = receiver(s, "unlogged", sink);
  int64_t dropped = metric(s, "tripline_request_log_dropped_total");
  for (int i = 0; i < 5; ++i) {
    auto t = s.trigger(r["trigger_url"]);
    REQUIRE(t.status == 202);
    CHECK(s.wait_finished(json::parse(t.body)["execution_id"])["status"] == "succeeded");
  }
  CHECK(metric(s, "tripline_request_log_dropped_total") - dropped == 5);
  CHECK(log_rows(s, r["id"]) == 0);
  // The executions name no entry.
  json e = api(s, "GET", "/api/v1/executions?receiver_id=" + r["id"].dump(), 200)["items"];
  REQUIRE(e.size() == 5);
  for (const auto& x : e) CHECK(x["request_id"].is_null());
}

TEST_CASE("requests log: a flooded receiver cannot crowd out another receiver's entries") {
  WebhookSink sink;
  ServiceOptions o = log_options();
  o.request_log.max_queued = 40;  // a receiver may hold 10
  o.request_log.batch = 4;
  TestServer s("", o);
  json noisy = receiver(s, "noisy", sink, {{"rules", kRules}});
  json quiet = receiver(s, "quiet", sink, {{"rules", kRules}});
  std::string warning = R"({"severity":"warning"})";
  {
    // The writer cannot write meanwhile: entries wait in its queue.
    SQLite::Database db(s.data_dir() + "/tripline.db", SQLite::OPEN_READWRITE);
    db.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 100; ++i) REQUIRE(post(noisy["trigger_url"], warning).status == 200);
    for (int i = 0; i < 5; ++i) REQUIRE(post(quiet["trigger_url"], warning).status == 200);
    db.exec("ROLLBACK");
  }
  CHECK(wait_entries(s, quiet["id"], 5).size() == 5);
  CHECK(log_rows(s, noisy["id"]) <= 10 + 4);  // its share, and a batch in the writer's hands
}

TEST_CASE("requests log: off with --request-log 0") {
  WebhookSink sink;
  TestServer s("", log_options(/*keep=*/0));
  json r = receiver(s, "quiet", sink);
  REQUIRE(s.trigger(r["trigger_url"]).status == 202);
  json page = api(s, "GET", requests_path(r["id"]), 200);
  CHECK(page["items"].empty());
  CHECK(page["enabled"] == false);
  CHECK(log_rows(s, r["id"]) == 0);
}

TEST_CASE(
    "requests log: deleting a receiver takes its accepted entries still waiting to be written") {
  WebhookSink sink;
  TestServer s("", log_options());
  json r =
      receiver(s, "deleted-soon", sink, {{"limits", {{"rate_per_minute", 0}, {"max_queued", 0}}}});
  const int64_t rid = r["id"];
  // Accepted entries are written up to 250 ms after their commit (docs/requests-log.md): the
  // delete comes before that.
  for (int i = 0; i < 5; ++i) REQUIRE(s.trigger(r["trigger_url"]).status == 202);
  REQUIRE(s.request("DELETE", "/api/v1/receivers/" + std::to_string(rid)).status == 204);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the writer's next round
  CHECK(log_rows(s, rid) == 0);  // no entry of a deleted receiver left behind
}
