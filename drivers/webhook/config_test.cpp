// webhook driver: config parsing, rendering the body from the request, signing (no network).
#include <catch2/catch.hpp>

#include "http_client.h"
#include "json_limits.h"
#include "webhook.h"
#include "webhook_signing.h"

using namespace tripline;
using nlohmann::json;

namespace {
const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
json base(json extra = json::object()) {
  json c = {{"url", "https://hooks.example.org/in"}, {"secret", kSecret}};
  c.update(extra);
  return c;
}
std::vector<std::string> fields_of(const Status& s) {
  std::vector<std::string> out;
  for (const auto& f : s.fields()) out.push_back(f.field);
  return out;
}
}  // namespace

TEST_CASE("webhook signing: the Standard Webhooks test vector") {
  // docs/webhooks.md: the specification's own example.
  CHECK(standard_webhooks_signature(kSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                    R"({"test": 2432232314})") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  auto h = sign_webhook(SignatureScheme::kStandard, {kSecret, "whsec_" + std::string(32, 'A')},
                        "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})");
  REQUIRE(h.size() == 3);
  CHECK(h[0] == std::pair<std::string, std::string>{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"});
  CHECK(h[1].second == "1614265330");
  // Two secrets (a rotation): two signatures, the current one first.
  CHECK(h[2].second.rfind("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,", 0) == 0);
}

TEST_CASE("webhook signing: seed-002 is hex HMAC of timestamp.body under the raw secret") {
  auto h =
      sign_webhook(SignatureScheme::kSeed002, {"shared-secret-0123"}, "msg_x", 1700000000, "{}");
  REQUIRE(h.size() == 3);
  CHECK(h[1] == std::pair<std::string, std::string>{"X-Link-Webhook-Timestamp", "1700000000"});
  // python3 -c 'import hmac,hashlib;print(hmac.new(b"shared-secret-0123",b"1700000000.{}",
  //   hashlib.sha256).hexdigest())'
  CHECK(h[2].first == "X-Link-Webhook-Signature");
  CHECK(h[2].second == "39a1a116c9950a602a964657cbce6c14ef5d454fadbc58f182878c090f8443b3");
}

TEST_CASE("webhook config: valid forms and their target") {
  WebhookDriver d(false);
  auto c = d.validate(base(), false);
  REQUIRE(c.ok());
  CHECK(d.target(**c) == "https://hooks.example.org/in");
  CHECK(d.action(**c) == "post");
  CHECK(d.binds_request(**c));  // the request's body by default
  CHECK(d.describe(**c) == "POST the request's body to hooks.example.org, signed (standard)");
  auto fixed = d.validate(base({{"payload", {{"text", "{\"a\":1}"}}}}), false);
  REQUIRE(fixed.ok());
  CHECK_FALSE(d.binds_request(**fixed));
  auto templ = d.validate(base({{"payload", {{"template", {{"a", 1}}}}}}), false);
  REQUIRE(templ.ok());
  CHECK_FALSE(d.binds_request(**templ));  // reads nothing from the request
  auto seed = d.validate(
      base({{"scheme", "seed-002"}, {"secret", "a-shared-secret-16"}, {"resource_id", "r-1"}}),
      false);
  CHECK(seed.ok());
}

TEST_CASE("webhook config: hostile or wrong values are field errors") {
  WebhookDriver d(false);
  struct Case {
    json config;
    std::string field;
  } cases[] = {
      {base({{"url", "ftp://x.example/"}}), "config.url"},
      {base({{"url", "file:///etc/passwd"}}), "config.url"},
      {base({{"url", "http://127.0.0.1:8080/x"}}), "config.url"},
      {base({{"url", "http://[::1]/x"}}), "config.url"},
      {base({{"url", "http://169.254.169.254/latest/meta-data"}}), "config.url"},
      {base({{"url", "not a url"}}), "config.url"},
      {base({{"secret", "whsec_short"}}), "config.secret"},
      {base({{"secret", "no-prefix-but-long-enough-123456"}}), "config.secret"},
      {json{{"url", "https://x.example/"}}, "config.secret"},
      {base({{"scheme", "hmac"}}), "config.scheme"},
      {base({{"scheme", "seed-002"}, {"secret", "short"}}), "config.secret"},
      {base({{"scheme", "seed-002"},
             {"secret", "a-shared-secret-16"},
             {"previous_secret", "another-secret-16x"}}),
       "config.previous_secret"},
      {base({{"headers", {{"Content-Type", "text/plain"}}}}), "config.headers.Content-Type"},
      {base({{"headers", {{"webhook-id", "forged"}}}}), "config.headers.webhook-id"},
      {base({{"headers", {{"X-A", "a\r\nInjected: 1"}}}}), "config.headers.X-A"},
      {base({{"headers", {{"Bad Name", "v"}}}}), "config.headers.Bad Name"},
      {base({{"authorization", "Bearer x\r\nHost: evil"}}), "config.authorization"},
      {base({{"payload", {{"template", {{"a", {{"from_request", "header:X"}}}}}}}}),
       "config.payload.template.a.from_request"},
      {base({{"payload", {{"from", "elsewhere"}}}}), "config.payload"},
      {base({{"timeout_seconds", 600}}), "config.timeout_seconds"},
      {base({{"extra", 1}}), "config.extra"},
  };
  for (const auto& c : cases) {
    INFO(c.config.dump());
    auto r = d.validate(c.config, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalid);
    auto f = fields_of(r.status());
    CHECK(std::find(f.begin(), f.end(), c.field) != f.end());
  }
  // Deep templates are refused, not recursed into without bound.
  json deep = {{"from_request", "source"}};
  for (int i = 0; i < 40; ++i) deep = json::array({deep});
  CHECK_FALSE(d.validate(base({{"payload", {{"template", deep}}}}), false).ok());
  // With the operator's flag, loopback is allowed.
  WebhookDriver local(true);
  CHECK(local.validate(base({{"url", "http://127.0.0.1:8080/x"}}), false).ok());
}

TEST_CASE("webhook bind: the template reads the request with the rules' field syntax") {
  WebhookDriver d(false);
  json stored = base({{"payload",
                       {{"template",
                         {{"event", "deploy"},
                          {"who", {{"from_request", "source"}}},
                          {"ref", {{"from_request", "body:/push/ref"}}},
                          {"first", {{"from_request", "body:commits[0].id"}}},
                          {"missing", {{"from_request", "body:/nope"}}}}}}}});
  auto c = d.validate(stored, false);
  REQUIRE(c.ok());
  CHECK(d.binds_request(**c));
  auto bound =
      d.bind(stored, {"203.0.113.7", R"({"push":{"ref":"main"},"commits":[{"id":"abc"}]})"});
  REQUIRE(bound.ok());
  json body = json::parse((*bound)["payload"]["text"].get<std::string>());
  CHECK(body == json{{"event", "deploy"},
                     {"who", "203.0.113.7"},
                     {"ref", "main"},
                     {"first", "abc"},
                     {"missing", nullptr}});
  // The bound config is a valid config (the executor validates it again).
  REQUIRE(d.validate(*bound, false).ok());
  // Passing the request through keeps its bytes as they came.
  json pass = base();
  auto passed = d.bind(pass, {"", "{ \"raw\" : 1 }"});
  REQUIRE(passed.ok());
  CHECK((*passed)["payload"]["text"] == "{ \"raw\" : 1 }");
  // Bytes that are not UTF-8 cannot be recorded as the execution's config: refused (422).
  auto binary = d.bind(pass, {"", std::string("\xff\xfe\x00raw", 6)});
  REQUIRE_FALSE(binary.ok());
  CHECK(binary.status().code() == Status::Code::kInvalid);
  // Not JSON: template values from the body are null, never an exception.
  auto junk = d.bind(stored, {"198.51.100.1", "\x01not json"});
  REQUIRE(junk.ok());
  CHECK(json::parse((*junk)["payload"]["text"].get<std::string>())["ref"].is_null());
}

TEST_CASE("webhook plan: a fresh message id recorded with the exact body") {
  WebhookDriver d(false);
  auto c = d.validate(base({{"payload", {{"text", "{\"a\":1}"}}}}), false);
  REQUIRE(c.ok());
  Plan p1 = d.plan(**c), p2 = d.plan(**c);
  REQUIRE(p1.ok());
  CHECK(p1.desired["body"] == "{\"a\":1}");
  CHECK(p1.desired["webhook_id"].get<std::string>().rfind("msg_", 0) == 0);
  CHECK(p1.desired["webhook_id"] != p2.desired["webhook_id"]);
  CHECK_FALSE(d.plan_after(**c, p1.desired).has_value());  // every execution is sent
}

TEST_CASE("outbound guard: local addresses") {
  for (const char* ip :
       {"127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fe80::1",
        "0.0.0.0", "::", "224.0.0.1", "fd00:ec2::254", "100.100.100.200",
        // Carrier-grade NAT, Azure's WireServer, and 6to4 forms of refused IPv4 addresses.
        "100.64.0.1", "100.127.255.254", "168.63.129.16", "2002:7f00:1::1",
        "2002:a9fe:a9fe::", "2002:a83f:8110::1"}) {
    INFO(ip);
    CHECK(is_local_address(ip));
  }
  // RFC 1918 stays allowed (docs/webhooks.md), as do public 6to4 and the edges of 100.64/10.
  for (const char* ip : {"10.0.0.1", "192.168.1.1", "203.0.113.7", "2001:db8::1", "172.16.0.1",
                         "100.63.255.255", "100.128.0.1", "168.63.129.17", "2002:cb00:7107::1"}) {
    INFO(ip);
    CHECK_FALSE(is_local_address(ip));
  }
}

TEST_CASE("utf8_text: cut at a character boundary, invalid bytes replaced") {
  bool cut = false;
  CHECK(utf8_text("abc", 512, &cut) == "abc");
  CHECK_FALSE(cut);
  // "é" is 2 bytes: a cut at 2 keeps "a" and leaves the character out whole.
  CHECK(utf8_text("a\xC3\xA9", 2, &cut) == "a");
  CHECK(cut);
  CHECK(utf8_text("a\xC3\xA9", 3, &cut) == "a\xC3\xA9");
  CHECK_FALSE(cut);
  // Lone continuation, truncated sequence, overlong, surrogate, above U+10FFFF: each byte U+FFFD.
  CHECK(utf8_text("\x80") == "\xEF\xBF\xBD");
  CHECK(utf8_text("x\xE2\x82") == "x\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8_text("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8_text("\xED\xA0\x80").find("\xED") == std::string::npos);
  CHECK(utf8_text("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);
  CHECK(utf8_text("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");  // a 4-byte character stays
  // Whatever goes in, the result dumps as JSON (the store's dump would throw otherwise).
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  CHECK_NOTHROW(nlohmann::json(utf8_text(all)).dump());
}

TEST_CASE("webhook signing: no usable secret gives no headers at all, so nothing is sent") {
  // A seed-002 raw secret under the standard scheme cannot sign.
  CHECK(sign_webhook(SignatureScheme::kStandard, {"a-seed-002-shared-secret"}, "msg_x", 1, "{}")
            .empty());
  CHECK(sign_webhook(SignatureScheme::kStandard, {}, "msg_x", 1, "{}").empty());
  CHECK(sign_webhook(SignatureScheme::kSeed002, {}, "msg_x", 1, "{}").empty());
  CHECK(sign_webhook(SignatureScheme::kSeed002, {""}, "msg_x", 1, "{}").empty());
  // One usable secret among unusable ones still signs.
  CHECK_FALSE(sign_webhook(SignatureScheme::kStandard, {"bad", kSecret}, "msg_x", 1, "{}").empty());
}
