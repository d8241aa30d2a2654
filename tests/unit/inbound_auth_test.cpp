#include "inbound_auth.h"

#include <catch2/catch.hpp>

#include "../support/fake_request.h"
#include "receiver_limits.h"

using namespace tripline;
using tripline::test::FakeRequest;
using nlohmann::json;

namespace {
SecretBox box() { return SecretBox::from_key(std::string(32, 'b')); }
std::shared_ptr<const InboundAuth> compile(const json& plain) {
  auto stored = InboundAuth::prepare_for_storage(plain, nullptr, box());
  INFO(stored.status().message());
  REQUIRE(stored.ok());
  auto a = InboundAuth::compile(*stored, box());
  REQUIRE(a.ok());
  return *a;
}
constexpr int64_t kNow = 1614265330;
}  // namespace

TEST_CASE("standard webhooks: the specification's test vector") {
  CHECK(standard_webhooks_signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                    "1614265330", R"({"test": 2432232314})") ==
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("standard webhooks: valid, forged, stale, and replayed messages") {
  auto auth = compile({{"standard_webhooks_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
  ReplayGuard replays;
  FakeRequest req;
  req.body_ = R"({"test": 2432232314})";
  req.headers_ = {{"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
                  {"webhook-timestamp", "1614265330"},
                  {"webhook-signature", "v0,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kNone);
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kReplayed);
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow + 1000) == AuthFailure::kStaleTimestamp);
  FakeRequest forged = req;
  forged.body_ = R"({"test": 1})";
  forged.headers_[0].second = "msg_other";
  CHECK(auth->check(forged, "127.0.0.1", 1, replays, kNow) == AuthFailure::kBadSignature);
  FakeRequest missing;
  CHECK(auth->check(missing, "127.0.0.1", 1, replays, kNow) == AuthFailure::kMissingCredential);
}

TEST_CASE("github: X-Hub-Signature-256 over the raw body, deliveries not replayed") {
  auto auth = compile({{"github_secret", "It's a Secret to Everybody"}});
  ReplayGuard replays;
  FakeRequest req;
  req.body_ = "Hello, World!";  // GitHub's documented example
  req.headers_ = {{"X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
                  {"X-GitHub-Delivery", "d1"}};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kNone);
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kReplayed);
  req.headers_[1].second = "d2";
  req.body_ = "Hello, World?";
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kBadSignature);
}

TEST_CASE("link scheme: hex HMAC of timestamp.body within the window") {
  auto auth = compile({{"link_secret", "s3cret"}, {"tolerance_seconds", 60}});
  ReplayGuard replays;
  FakeRequest req;
  req.body_ = R"({"x":1})";
  std::string ts = std::to_string(kNow);
  std::string sig = crypto::hex(crypto::view(crypto::hmac_sha256("s3cret", ts + "." + req.body_)));
  req.headers_ = {{"X-Link-Webhook-Timestamp", ts}, {"X-Link-Webhook-Signature", sig}};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kNone);
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow + 61) == AuthFailure::kStaleTimestamp);
  req.headers_[1].second[0] = req.headers_[1].second[0] == 'a' ? 'b' : 'a';
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kBadSignature);
}

TEST_CASE("bearer and basic credentials are stored hashed and checked") {
  auto stored = InboundAuth::prepare_for_storage(
      {{"bearer_token", "am-bearer-secret"}, {"basic_username", "am"}, {"basic_password", "pw-123"}}, nullptr, box());
  REQUIRE(stored.ok());
  CHECK(stored->dump().find("am-bearer-secret") == std::string::npos);
  CHECK(stored->dump().find("pw-123") == std::string::npos);
  CHECK(InboundAuth::redact(*stored)["bearer_token"] == kRedacted);
  auto auth = *InboundAuth::compile(*stored, box());
  ReplayGuard replays;
  FakeRequest req;
  req.headers_ = {{"Authorization", "Bearer am-bearer-secret"}};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kNone);
  req.headers_ = {{"Authorization", "Basic YW06cHctMTIz"}};  // am:pw-123
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kNone);
  req.headers_ = {{"Authorization", "Bearer wrong"}};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kBadCredential);
  req.headers_ = {};
  CHECK(auth->check(req, "127.0.0.1", 1, replays, kNow) == AuthFailure::kMissingCredential);
  // An edit that sends the redacted value back keeps the old hash.
  auto edited = InboundAuth::prepare_for_storage(InboundAuth::redact(*stored), *stored, box());
  REQUIRE(edited.ok());
  CHECK((*edited)["bearer_token"] == (*stored)["bearer_token"]);
}

TEST_CASE("source allow-list answers 403 outside the ranges") {
  auto auth = compile({{"allow_sources", {"10.0.0.0/8"}}});
  ReplayGuard replays;
  FakeRequest req;
  CHECK(auth->check(req, "10.1.2.3", 1, replays, kNow) == AuthFailure::kNone);
  CHECK(auth->check(req, "192.0.2.1", 1, replays, kNow) == AuthFailure::kSourceNotAllowed);
}

TEST_CASE("auth config is validated field by field") {
  auto field_of = [](const json& j) {
    auto r = InboundAuth::prepare_for_storage(j, nullptr, box());
    REQUIRE_FALSE(r.ok());
    return r.status().fields().at(0).field;
  };
  CHECK(field_of({{"colour", "red"}}) == "auth.colour");
  CHECK(field_of({{"allow_sources", {"not-an-ip"}}}) == "auth.allow_sources");
  CHECK(field_of({{"standard_webhooks_secret", "whsec_???"}}) == "auth.standard_webhooks_secret");
  CHECK(field_of({{"basic_username", "only"}}) == "auth.basic_username");
  CHECK(field_of({{"github_secret", ""}}) == "auth.github_secret");
}

TEST_CASE("limits: token bucket and per-action cooldown") {
  auto l = *Limits::parse({{"rate_per_minute", 60}, {"burst", 2}, {"cooldown_seconds", 10}});
  LimiterState s;
  int64_t retry = 0, left = 0;
  CHECK(s.take(l, 0, &retry));
  CHECK(s.take(l, 0, &retry));
  CHECK_FALSE(s.take(l, 0, &retry));
  CHECK(retry == 1);
  CHECK(s.take(l, 1000, &retry));  // one token per second
  CHECK(s.claim_cooldown(l, "up", 0, &left));
  CHECK_FALSE(s.claim_cooldown(l, "up", 4000, &left));
  CHECK(left == 6000);
  CHECK(s.claim_cooldown(l, "down", 4000, &left));  // the inverse is not held back
  CHECK(s.claim_cooldown(l, "up", 10000, &left));
  CHECK_FALSE(Limits::parse({{"rate_per_minute", -1}}).ok());
  CHECK_FALSE(Limits::parse({{"burst_size", 1}}).ok());
}
