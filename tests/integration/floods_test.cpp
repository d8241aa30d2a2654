// Floods: a trigger URL is public by nature. Against a real server and a real swarm: a flood on
// one receiver is refused cheaply past its limits, builds no unbounded backlog, and does not
// starve another receiver's triggers or executions.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "../support/timing.h"
#include "harness.h"
#include "log.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

json scale(const std::string& name, const std::string& service, json limits = nullptr) {
  json r = {
      {"name", name},
      {"driver", "scale-service"},
      {"config", {{"service", service}, {"action", "up"}, {"by", 1}, {"min", 0}, {"max", 3}}}};
  if (!limits.is_null()) r["limits"] = limits;
  return r;
}

int64_t parse_ms(const std::string& iso) {
  // "2026-11-29T15:29:48.983Z"
  std::tm tm{};
  int ms = 0;
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
              &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return int64_t(timegm(&tm)) * 1000 + ms;
}

}  // namespace

TEST_CASE(
    "floods: past its queue cap a receiver answers 429 with Retry-After, and accepts again as it "
    "drains") {
  if (!swarm_or_skip()) return;
  Swarm::get().create_service("fq", 1);
  TestServer s;
  REQUIRE(s.request("POST", "/api/v1/workers/pause").status == 200);
  std::string url = s.create_receiver(scale("fq", "fq", {{"max_queued", 5}}))["trigger_url"];
  for (int i = 0; i < 5; ++i) REQUIRE(s.trigger(url).status == 202);
  auto full = s.trigger(url);
  CHECK(full.status == 429);
  CHECK(json::parse(full.body)["error"] == "queue_full");
  bool retry_after = false;
  for (const auto& [k, v] : full.headers) retry_after |= k == "retry-after" && !v.empty();
  CHECK(retry_after);
  CHECK(s.execution_count() == 5);
  REQUIRE(s.request("POST", "/api/v1/workers/resume").status == 200);
  // As the backlog drains, the receiver takes triggers again.
  bool accepted = false;
  for (int i = 0; i < 100 && !accepted; ++i) {
    accepted = s.trigger(url).status == 202;
    if (!accepted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(accepted);
  Swarm::get().docker("service rm fq");
}

TEST_CASE("floods: every receiver has a default rate limit; its limits can raise it") {
  if (!swarm_or_skip()) return;
  Swarm::get().create_service("fr", 1);
  ServiceOptions o;
  o.default_limits.rate_per_s = 1;  // the server's default, lowered for the test: 60/min, burst 3
  o.default_limits.burst = 3;
  TestServer s("", o);
  REQUIRE(s.request("POST", "/api/v1/workers/pause").status == 200);
  std::string plain = s.create_receiver(scale("fr-default", "fr"))["trigger_url"];
  std::string raised = s.create_receiver(scale("fr-raised", "fr", {{"burst", 50}}))["trigger_url"];
  int ok_plain = 0, limited = 0, ok_raised = 0;
  for (int i = 0; i < 10; ++i) {
    int code = s.trigger(plain).status;
    ok_plain += code == 202;
    limited += code == 429;
    ok_raised += s.trigger(raised).status == 202;
  }
  CHECK(ok_plain >= 3);
  CHECK(ok_plain <= 4);  // the burst, and perhaps one token refilled meanwhile
  CHECK(limited == 10 - ok_plain);
  CHECK(ok_raised == 10);
}

TEST_CASE("floods: a flood on one receiver does not starve another's triggers or executions") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  swarm.create_service("flood-a", 1);
  swarm.create_service("flood-b", 1);
  TestServer s;
  // A keeps its default limits: most of the flood is refused cheaply (429).
  std::string a = s.create_receiver(scale("flood-a", "flood-a"))["trigger_url"];
  std::string b = s.create_receiver(scale("flood-b", "flood-b"))["trigger_url"];

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, refused{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 4; ++t)
    flood.emplace_back([&] {
      while (!stop) {
        int code = s.trigger(a).status;
        ++sent;
        refused += code == 429;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // B, once every 400 ms while A is flooded.
  std::vector<double> latencies;
  std::vector<int64_t> ids;
  for (int i = 0; i < 10; ++i) {
    auto t0 = SteadyClock::now();
    auto r = s.trigger(b);
    latencies.push_back(std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
    REQUIRE(r.status == 202);
    ids.push_back(json::parse(r.body)["execution_id"]);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  stop = true;
  for (auto& t : flood) t.join();
  std::sort(latencies.begin(), latencies.end());
  double worst_delay_ms = 0;
  for (int64_t id : ids) {
    auto e = s.wait_finished(id);
    CHECK(e["status"] == "succeeded");
    worst_delay_ms =
        std::max<double>(worst_delay_ms, parse_ms(e["started_at"]) - parse_ms(e["created_at"]));
  }
  INFO("flood: " << sent << " requests to A, " << refused << " refused; B's trigger latency p50 "
                 << latencies[5] << " ms, max " << latencies.back()
                 << " ms; B's executions started within " << worst_delay_ms << " ms");
  WARN("floods: B trigger max " << latencies.back() << " ms, execution start delay max "
                                << worst_delay_ms << " ms, A sent " << sent << " (" << refused
                                << " refused)");
  CHECK(refused > 0);
  // Not starved: every trigger of B answered, and each of its executions started within 2 s of
  // acceptance. The latency figures (under 50 ms on an otherwise idle 2-core VM) are reported
  // above, not asserted tightly: a test must not fail because the machine is busy.
  CHECK(latencies.back() < 1000 * kTimeScale);
  CHECK(worst_delay_ms < 2000 * kTimeScale);
  swarm.docker("service rm flood-a");
  swarm.docker("service rm flood-b");
}
