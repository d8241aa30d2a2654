// The webhook driver against a real HTTP receiver on loopback (tests/support/webhook_sink.h),
// driven as the executor drives it: validate -> bind -> plan -> apply. The signatures are checked
// by the reference Standard Webhooks implementation (the npm `standardwebhooks` package,
// tests/interop/verify.mjs), code we did not write.
#include <catch2/catch.hpp>

#include "../../tests/integration/harness.h"
#include "../../tests/support/webhook_sink.h"
#include "http_client.h"
#include "webhook.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const char* kNewSecret = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVoxMjM0NTY=";

std::shared_ptr<const DriverConfig> valid(const WebhookDriver& d, const json& c) {
  auto v = d.validate(c, true);
  INFO(v.status().message());
  REQUIRE(v.ok());
  return *v;
}

}  // namespace

TEST_CASE("webhook driver: a templated, signed POST the reference standardwebhooks verifies") {
  WebhookSink sink;
  WebhookDriver d(/*allow_local=*/true);  // the sink is on loopback
  json stored = {
      {"url", sink.url("/in?x=1")},
      {"secret", kNewSecret},
      {"previous_secret", kSecret},  // a rotation: both sign
      {"headers", {{"X-Team", "ops"}}},
      {"authorization", "Bearer tok-123"},
      {"payload",
       {{"template", {{"text", "deployed"}, {"tag", {{"from_request", "body:push_data.tag"}}}}}}}};
  auto bound = d.bind(stored, {"203.0.113.9", R"({"push_data":{"tag":"v1.2"}})"});
  REQUIRE(bound.ok());
  auto config = valid(d, *bound);
  Plan p = d.plan(*config);
  REQUIRE(p.ok());
  Outcome o = d.apply(*config, p.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["status"] == 200);
  CHECK(o.result["webhook_id"] == p.desired["webhook_id"]);
  CHECK(o.result["answer"] == "ok");
  auto reqs = sink.requests();
  REQUIRE(reqs.size() == 1);
  const auto& r = reqs[0];
  CHECK(r.method == "POST");
  CHECK(r.path == "/in?x=1");
  CHECK(json::parse(r.body) == json{{"text", "deployed"}, {"tag", "v1.2"}});
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.header("x-team") == "ops");
  CHECK(r.header("authorization") == "Bearer tok-123");
  CHECK(r.header("webhook-id") == p.desired["webhook_id"]);
  std::string signatures = r.header("webhook-signature");
  CHECK(std::count(signatures.begin(), signatures.end(), ' ') == 1);  // two signatures
  bool ran = false;
  // A receiver on either secret accepts it (the rotation); one on another secret refuses it.
  CHECK(reference_verifies(r, kNewSecret, &ran));
  if (!ran) return;
  CHECK(reference_verifies(r, kSecret, &ran));
  CHECK_FALSE(reference_verifies(r, "whsec_" + std::string(40, 'B'), &ran));
  // A tampered body is refused by the reference code too.
  auto tampered = r;
  tampered.body = R"({"text":"deployed","tag":"v9"})";
  CHECK_FALSE(reference_verifies(tampered, kNewSecret, &ran));
}

TEST_CASE("webhook driver: 5xx, 429 and transport errors retry with the same id, 4xx is final") {
  WebhookSink sink;
  WebhookDriver d(true);
  auto config = valid(d, {{"url", sink.url()}, {"secret", kSecret}, {"payload", {{"text", "{}"}}}});
  Plan p = d.plan(*config);
  sink.script({{503, "busy"}, {429, "slow down", {{"Retry-After", "1"}}}, {200, "ok"}});
  Outcome first = d.apply(*config, p.desired);
  CHECK(first.kind == Outcome::Kind::kRetryable);
  CHECK(first.reason.find("503") != std::string::npos);
  CHECK(first.reason.find("busy") != std::string::npos);
  CHECK(d.apply(*config, p.desired).kind == Outcome::Kind::kRetryable);
  CHECK(d.apply(*config, p.desired).ok());
  auto reqs = sink.requests();
  REQUIRE(reqs.size() == 3);
  // Retries carry the recorded id (receivers de-duplicate on it).
  for (const auto& r : reqs) CHECK(r.header("webhook-id") == p.desired["webhook_id"]);

  sink.script({{410, "gone"}, {400, "bad"}, {302, "", {{"Location", sink.url("/elsewhere")}}}});
  CHECK(d.apply(*config, p.desired).kind == Outcome::Kind::kFinal);
  CHECK(d.apply(*config, p.desired).kind == Outcome::Kind::kFinal);
  // A redirect is not followed: final, and nothing was sent to /elsewhere.
  CHECK(d.apply(*config, p.desired).kind == Outcome::Kind::kFinal);
  reqs = sink.requests();
  REQUIRE(reqs.size() == 6);
  CHECK(reqs.back().path == "/hook");

  // Nobody listening: a transport error, retried.
  sink.stop();
  CHECK(d.apply(*config, p.desired).kind == Outcome::Kind::kRetryable);
  sink.start();

  // An oversized answer is not buffered, but its status counts: a 2xx accepted the message.
  sink.script({{200, std::string(200 * 1024, 'x')}, {503, std::string(200 * 1024, 'y')}});
  Outcome big = d.apply(*config, p.desired);
  INFO(big.reason);
  CHECK(big.ok());
  CHECK(big.result["status"] == 200);
  CHECK(big.result["answer"] == std::string(512, 'x') + "...");
  Outcome big_error = d.apply(*config, p.desired);
  CHECK(big_error.kind == Outcome::Kind::kRetryable);
  CHECK(big_error.reason.find("503") != std::string::npos);
}

TEST_CASE("webhook driver: without the flag, a name that resolves to loopback is refused") {
  WebhookSink sink;
  WebhookDriver d(/*allow_local=*/false);
  // "localhost" is a name, so validation cannot see where it goes: the check is on the address
  // curl connects to.
  auto config = valid(d, {{"url", "http://localhost:" + std::to_string(sink.port()) + "/hook"},
                          {"secret", kSecret},
                          {"payload", {{"text", "{}"}}}});
  Plan p = d.plan(*config);
  Outcome o = d.apply(*config, p.desired);
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("loopback") != std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(sink.requests().empty());
}

TEST_CASE("webhook driver: a refused address is final only when every address was refused") {
  // 192.0.2.1 (TEST-NET-1) is public to the guard and answers nothing: a transport failure.
  OutboundRequest req;
  req.method = "POST";
  req.refuse_local_addresses = true;
  req.connect_timeout = std::chrono::milliseconds(300);
  req.timeout = std::chrono::milliseconds(1000);
  req.url = "http://mixed.test:9/hook";
  req.resolve = {"mixed.test:9:127.0.0.1,192.0.2.1"};
  OutboundResponse mixed = http_request(req);
  INFO(mixed.error);
  CHECK(mixed.transport_failed());
  CHECK_FALSE(mixed.address_refused);
  req.url = "http://local.test:9/hook";
  req.resolve = {"local.test:9:127.0.0.1,169.254.169.254"};
  OutboundResponse local = http_request(req);
  CHECK(local.address_refused);
}
