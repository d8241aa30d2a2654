#include "inbound_auth.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "../support/fake_request.h"
#include "receiver_limits.h"
#include "store.h"

using namespace tripline;
using nlohmann::json;
using tripline::test::FakeRequest;

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
  CHECK(standard_webhooks_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
            R"({"test": 2432232314})") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST_CASE("standard webhooks: valid, forged and stale messages, the replay key is the signed id") {
  auto auth = compile({{"standard_webhooks_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}});
  std::string key;
  FakeRequest req;
  req.body_ = R"({"test": 2432232314})";
  req.headers_ = {
      {"webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"},
      {"webhook-timestamp", "1614265330"},
      {"webhook-signature", "v0,bogus v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  // The replay key is the signed webhook-id: a retry (same id, new timestamp, new signature)
  // yields the same key, so the trigger path answers it with the first execution.
  CHECK(key == "sw:msg_p5jXN8AQM9LWM0D4loKWxJek");
  CHECK(auth->check(req, "127.0.0.1", kNow + 1000, &key) == AuthFailure::kStaleTimestamp);
  CHECK(key.empty());
  FakeRequest forged = req;
  forged.body_ = R"({"test": 1})";
  forged.headers_[0].second = "msg_other";
  CHECK(auth->check(forged, "127.0.0.1", kNow, &key) == AuthFailure::kBadSignature);
  FakeRequest missing;
  CHECK(auth->check(missing, "127.0.0.1", kNow, &key) == AuthFailure::kMissingCredential);
}

TEST_CASE(
    "trust 4: github's replay key comes from the signed body, not the unsigned X-GitHub-Delivery") {
  auto auth = compile({{"github_secret", "It's a Secret to Everybody"}});
  std::string key;
  FakeRequest req;
  req.body_ = "Hello, World!";  // GitHub's documented example
  req.headers_ = {{"X-Hub-Signature-256",
                   "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
                  {"X-GitHub-Delivery", "d1"}};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  std::string first = key;
  CHECK(first == "gh:757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  // A captured request replayed with another delivery id, or none, is the same message.
  req.headers_[1].second = "d2";
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  CHECK(key == first);
  req.headers_.pop_back();
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  CHECK(key == first);
  req.headers_.push_back({"X-GitHub-Delivery", "d3"});
  req.body_ = "Hello, World?";
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kBadSignature);
}

TEST_CASE("link scheme: hex HMAC of timestamp.body within the window") {
  auto auth = compile({{"link_secret", "s3cret"}, {"tolerance_seconds", 60}});
  std::string key;
  FakeRequest req;
  req.body_ = R"({"x":1})";
  std::string ts = std::to_string(kNow);
  std::string sig = crypto::hex(crypto::view(crypto::hmac_sha256("s3cret", ts + "." + req.body_)));
  req.headers_ = {{"X-Link-Webhook-Timestamp", ts}, {"X-Link-Webhook-Signature", sig}};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  CHECK(key == "link:" + sig);
  CHECK(auth->check(req, "127.0.0.1", kNow + 61, &key) == AuthFailure::kStaleTimestamp);
  req.headers_[1].second[0] = req.headers_[1].second[0] == 'a' ? 'b' : 'a';
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kBadSignature);
}

TEST_CASE("bearer and basic credentials are stored hashed and checked") {
  auto stored = InboundAuth::prepare_for_storage({{"bearer_token", "am-bearer-secret"},
                                                  {"basic_username", "am"},
                                                  {"basic_password", "pw-123"}},
                                                 nullptr, box());
  REQUIRE(stored.ok());
  CHECK(stored->dump().find("am-bearer-secret") == std::string::npos);
  CHECK(stored->dump().find("pw-123") == std::string::npos);
  CHECK(InboundAuth::redact(*stored)["bearer_token"] == kRedacted);
  auto auth = *InboundAuth::compile(*stored, box());
  std::string key;
  FakeRequest req;
  req.headers_ = {{"Authorization", "Bearer am-bearer-secret"}};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  req.headers_ = {{"Authorization", "Basic YW06cHctMTIz"}};  // am:pw-123
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kNone);
  req.headers_ = {{"Authorization", "Bearer wrong"}};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kBadCredential);
  req.headers_ = {};
  CHECK(auth->check(req, "127.0.0.1", kNow, &key) == AuthFailure::kMissingCredential);
  // An edit that sends the redacted value back keeps the old hash.
  auto edited = InboundAuth::prepare_for_storage(InboundAuth::redact(*stored), *stored, box());
  REQUIRE(edited.ok());
  CHECK((*edited)["bearer_token"] == (*stored)["bearer_token"]);
}

TEST_CASE("source allow-list answers 403 outside the ranges") {
  auto auth = compile({{"allow_sources", {"10.0.0.0/8"}}});
  std::string key;
  FakeRequest req;
  CHECK(auth->check(req, "10.1.2.3", kNow, &key) == AuthFailure::kNone);
  CHECK(auth->check(req, "192.0.2.1", kNow, &key) == AuthFailure::kSourceNotAllowed);
}

TEST_CASE("auth config is validated field by field") {
  auto field_of = [](const json& j) {
    auto r = InboundAuth::prepare_for_storage(j, nullptr, box());
    REQUIRE_FALSE(r.ok());
    return r.status().fields().at(0).field;
  };
  CHECK(field_of({{"colour", "red"}}) == "auth.colour");
  CHECK(field_of({{"allow_sources", {"not-an-ip"}}}) == "auth.allow_sources[0]");
  CHECK(field_of({{"standard_webhooks_secret", "whsec_???"}}) == "auth.standard_webhooks_secret");
  CHECK(field_of({{"basic_username", "only"}}) == "auth.basic_username");
  CHECK(field_of({{"github_secret", ""}}) == "auth.github_secret");
}

TEST_CASE("auth config reports every bad field, the first one in the message") {
  auto r = InboundAuth::prepare_for_storage(
      {{"allow_sources", {"10.0.0.0/8", "nope"}}, {"tolerance_seconds", 0}, {"colour", "red"}},
      nullptr, box());
  REQUIRE_FALSE(r.ok());
  const Status s = r.status();
  CHECK(s.message() == "auth.colour is not an auth field (and 2 more)");
  std::vector<std::string> fields;
  for (const auto& f : s.fields()) fields.push_back(f.field + " " + f.message);
  CHECK(fields == std::vector<std::string>{
                      "auth.colour is not an auth field",
                      "auth.allow_sources[1] is not an address or CIDR range (got \"nope\")",
                      "auth.tolerance_seconds must be 1 to 3600",
                  });
}

TEST_CASE("limits: token bucket and per-action cooldown") {
  auto rate = *Limits::parse({{"rate_per_minute", 60}, {"burst", 2}});
  auto s = std::make_shared<LimiterState>();
  int64_t wait = 0;
  Reservation a, b, c, d;
  CHECK(s->reserve(rate, "up", "", 0, &a, &wait) == LimiterState::Verdict::kOk);
  CHECK(s->reserve(rate, "up", "", 0, &b, &wait) == LimiterState::Verdict::kOk);
  CHECK(s->reserve(rate, "up", "", 0, &c, &wait) == LimiterState::Verdict::kRateLimited);
  CHECK(wait == 1);
  CHECK(s->reserve(rate, "up", "", 1000, &d, &wait) ==
        LimiterState::Verdict::kOk);  // one per second

  auto cool = *Limits::parse({{"cooldown_seconds", 10}});
  auto t = std::make_shared<LimiterState>();
  Reservation up, up2, down, up3;
  CHECK(t->reserve(cool, "up", "", 0, &up, &wait) == LimiterState::Verdict::kOk);
  CHECK(t->reserve(cool, "up", "", 4000, &up2, &wait) == LimiterState::Verdict::kCoolingDown);
  CHECK(wait == 6000);
  CHECK(t->reserve(cool, "down", "", 4000, &down, &wait) ==
        LimiterState::Verdict::kOk);  // the inverse is not held back
  CHECK(t->reserve(cool, "up", "", 10000, &up3, &wait) == LimiterState::Verdict::kOk);
  CHECK_FALSE(Limits::parse({{"rate_per_minute", -1}}).ok());
  CHECK_FALSE(Limits::parse({{"burst_size", 1}}).ok());
}

TEST_CASE(
    "limits: an admin's retry takes a queue slot and claims the cooldown, but no rate token") {
  auto l = *Limits::parse(
      {{"rate_per_minute", 60}, {"burst", 1}, {"cooldown_seconds", 10}, {"max_queued", 2}});
  auto s = std::make_shared<LimiterState>();
  int64_t wait = 0;
  Reservation trigger, retry, refused, held;
  REQUIRE(s->reserve(l, "up", "", 0, &trigger, &wait) == LimiterState::Verdict::kOk);
  trigger.settle();
  // The bucket is empty and "up" is cooling down: a retry is not held to either.
  REQUIRE(s->reserve_retry(l, "up", 20000 - 1, &retry, &wait) == LimiterState::Verdict::kOk);
  CHECK(s->queued()->load() == 2);
  // The cap holds for retries too.
  CHECK(s->reserve_retry(l, "up", 20000, &refused, &wait) == LimiterState::Verdict::kQueueFull);
  CHECK(wait == 10);
  s->queued()->fetch_sub(2);  // both executions finished (the executor gives the slots back)
  // The retry's claim holds the next "up" back from when the retry was made, not from the trigger.
  CHECK(s->reserve(l, "up", "", 25000, &held, &wait) == LimiterState::Verdict::kCoolingDown);
  CHECK(wait == 10000 - (25000 - 19999));
  // A retry that was not recorded gives its claim back: the trigger's stands again.
  retry.release();
  Reservation after;
  CHECK(s->reserve(l, "up", "", 25000, &after, &wait) == LimiterState::Verdict::kOk);
}

TEST_CASE("limits: triggers and retries racing for a capped queue never pass the cap") {
  auto l = *Limits::parse({{"rate_per_minute", 0}, {"max_queued", 5}});
  auto s = std::make_shared<LimiterState>();
  std::atomic<int> taken{0};
  std::vector<std::thread> threads;
  std::vector<std::vector<Reservation>> kept(8);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        Reservation r;
        int64_t wait = 0;
        auto v =
            t % 2 ? s->reserve_retry(l, "up", i, &r, &wait) : s->reserve(l, "up", "", i, &r, &wait);
        if (v == LimiterState::Verdict::kOk) {
          taken++;
          kept[t].push_back(std::move(r));
        }
      }
    });
  for (auto& t : threads) t.join();
  CHECK(taken.load() == 5);
  CHECK(s->queued()->load() == 5);
}

TEST_CASE("limits report every bad field, the first one in the message") {
  auto one = Limits::parse({{"rate_per_minute", -1}});
  CHECK(one.status().message() == "limits.rate_per_minute must be a number from 0 to 1000000");
  auto many = Limits::parse(
      {{"burst", "ten"}, {"rate_per_minute", 0.001}, {"max_queued", 2e6}, {"burst_size", 1}});
  REQUIRE_FALSE(many.ok());
  CHECK(many.status().message() == "limits.burst must be a number from 0 to 1000000 (and 3 more)");
  std::vector<std::string> fields;
  const Status status = many.status();  // status() answers a copy: keep it for the loop
  for (const auto& f : status.fields()) fields.push_back(f.field + " " + f.message);
  CHECK(fields == std::vector<std::string>{
                      "limits.burst must be a number from 0 to 1000000",
                      "limits.burst_size is not a limits field",
                      "limits.max_queued must be a number from 0 to 1000000",
                      "limits.rate_per_minute must be 0 (off) or at least 0.01",
                  });
  // Fractions stay fractions.
  auto frac = Limits::parse({{"rate_per_minute", 0.5}, {"cooldown_seconds", 1.5}});
  REQUIRE(frac.ok());
  CHECK(frac->rate_per_s == Approx(0.5 / 60));
  CHECK(frac->cooldown_ms == 1500);
}

TEST_CASE("trust 3: a released reservation gives back its token and its cooldown") {
  auto l = *Limits::parse({{"rate_per_minute", 1}, {"burst", 1}, {"cooldown_seconds", 60}});
  auto s = std::make_shared<LimiterState>();
  int64_t wait = 0;
  Reservation first;
  REQUIRE(s->reserve(l, "up", "", 1000, &first, &wait) == LimiterState::Verdict::kOk);
  first.release();  // the commit failed (503): the sender's retry must run
  Reservation retry;
  CHECK(s->reserve(l, "up", "", 1500, &retry, &wait) == LimiterState::Verdict::kOk);
  Reservation third;
  CHECK(s->reserve(l, "up", "", 2000, &third, &wait) == LimiterState::Verdict::kCoolingDown);
}

TEST_CASE("trust 9: limits rebuilt from committed executions hold after a restart") {
  auto l = *Limits::parse({{"rate_per_minute", 60}, {"burst", 2}, {"cooldown_seconds", 30}});
  auto s = std::make_shared<LimiterState>();
  // What the store returns for the last memory_ms(): two "up" at 100 s and 101 s.
  s->seed(l, {{100000, "up"}, {101000, "up"}});
  int64_t wait = 0;
  Reservation r;
  CHECK(s->reserve(l, "up", "", 102000, &r, &wait) == LimiterState::Verdict::kCoolingDown);
  CHECK(wait == 29000);
  Reservation down1, down2;
  // Two executions a second apart left one token of two; a fresh bucket would take two.
  CHECK(s->reserve(l, "down", "", 101000, &down1, &wait) == LimiterState::Verdict::kOk);
  CHECK(s->reserve(l, "set", "", 101000, &down2, &wait) == LimiterState::Verdict::kRateLimited);
  CHECK(l.memory_ms() == 30000);
}

TEST_CASE(
    "trust 4: a retry of a message whose first delivery is not committed yet is asked to retry, "
    "not ignored") {
  auto l = *Limits::parse({{"cooldown_seconds", 60}});
  auto s = std::make_shared<LimiterState>();
  int64_t wait = 0;
  Reservation first;
  REQUIRE(s->reserve(l, "up", "sw:msg_1", 1000, &first, &wait) == LimiterState::Verdict::kOk);
  Reservation retry;  // the sender gave up waiting for our answer and sent it again
  CHECK(s->reserve(l, "up", "sw:msg_1", 1100, &retry, &wait) == LimiterState::Verdict::kInFlight);
  Reservation other;  // another message inside the cooldown is simply ignored
  CHECK(s->reserve(l, "up", "sw:msg_2", 1100, &other, &wait) ==
        LimiterState::Verdict::kCoolingDown);
  first.settle();  // committed: from now on the store answers the retry (replayed)
  CHECK(s->reserve(l, "up", "sw:msg_1", 1200, &retry, &wait) ==
        LimiterState::Verdict::kCoolingDown);
}
