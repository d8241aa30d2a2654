// Scale-out (docs/scale-out.md): three real `tripline` processes share one real PostgreSQL 15
// (tests/support/postgres_fixture.h) and one real Swarm, each with its own data directory and
// port, the secrets key shared as an operator would (the same DATA_DIR/secrets.key).
//
//   1. A receiver created through one replica is triggerable through the others at once (its
//      change reaches their caches by LISTEN/NOTIFY), with the URL the first one issued (the
//      signing keys are shared through the database).
//   2. Triggers spread over all three, with one of them killed (-9) mid-load, each execute
//      exactly once: every 202 is an execution that succeeds, the dead replica's included
//      (taken over by another when its lease runs out), and the service ends at its initial
//      replicas plus the number of executions, each plan one step (initial+1 .. initial+n): no
//      two replicas ever planned over each other on the one target, and no recorded plan was
//      re-applied after another replica had moved the target.
//   3. A receiver's rate limit holds across the replicas: its burst is the replicas' together.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/postgres_fixture.h"
#include "harness.h"
#include "processes.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

using SteadyClock = std::chrono::steady_clock;

// `url` with its scheme://host:port replaced by `base`.
std::string on(const std::string& base, const std::string& url) {
  auto path = url.find('/', url.find("://") + 3);
  REQUIRE(path != std::string::npos);
  return base + url.substr(path);
}

OutboundResponse post(const std::string& url) {
  OutboundRequest r;
  r.method = "POST";
  r.url = url;
  r.timeout = milliseconds(5000);
  return http_request(r);
}

}  // namespace

TEST_CASE(
    "replicas: three on one PostgreSQL: a receiver made on one triggers on all, and each "
    "trigger executes once, one replica killed -9 mid-load") {
  if (!swarm_or_skip()) return;
  PostgresServer* pg = postgres_or_skip();
  if (!pg) return;
  std::string why;
  std::string database = pg->fresh_database_url(&why);
  INFO(why);
  REQUIRE(!database.empty());
  auto& swarm = Swarm::get();
  constexpr int kInitial = 3;
  create_pending_service("rep-once", kInitial);
  std::string dir = make_temp_dir("tl-replicas");
  INFO("work dir (left behind if the test stops early): " << dir);

  std::vector<std::unique_ptr<Child>> replicas;
  for (const char* name : {"a", "b", "c"}) {
    std::string home = dir + "/" + name;
    REQUIRE(::mkdir(home.c_str(), 0700) == 0);
    replicas.push_back(std::make_unique<Child>(home + "/data", free_port(), swarm.docker_host(),
                                               home,
                                               std::vector<std::string>{"--database", database}));
  }
  Child& a = *replicas[0];
  Child& b = *replicas[1];
  Child& c = *replicas[2];
  a.start();
  // The secrets key is the operator's to share (docs/scale-out.md): the one `a` made.
  for (Child* r : {&b, &c}) {
    REQUIRE(::mkdir(r->data_dir().c_str(), 0700) == 0);
    sh("cp -p " + a.data_dir() + "/secrets.key " + r->data_dir() + "/secrets.key");
  }
  b.start();
  c.start();

  // A pause made on a holds every replica's workers (the first triggers wait: counted below).
  a.api_json("POST", "/api/v1/workers/pause", 200);
  for (Child* r : {&b, &c}) {
    auto started = SteadyClock::now();
    while (r->api_json("GET", "/api/v1/workers", 200)["paused"] != true &&
           SteadyClock::now() - started < milliseconds(3000))
      std::this_thread::sleep_for(milliseconds(20));
    CHECK(r->api_json("GET", "/api/v1/workers", 200)["paused"] == true);
    CHECK(SteadyClock::now() - started < milliseconds(1000));
  }

  // 1. Made on a, triggered on b and c at once, by the URL a issued.
  std::string url =
      a.api_json("POST", "/api/v1/receivers", 201, up_receiver("rep", "rep-once"))["trigger_url"];
  for (Child* r : {&b, &c}) {
    auto started = SteadyClock::now();
    OutboundResponse answer;
    while ((answer = post(on(r->url(), url))).status != 202 &&
           SteadyClock::now() - started < milliseconds(3000))
      std::this_thread::sleep_for(milliseconds(20));
    INFO(r->url() << " answered " << answer.status << " " << answer.body);
    CHECK(answer.status == 202);
    auto took = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started).count();
    WARN("a receiver made on a replica was triggerable on another after " << took << " ms");
    CHECK(took < 1000);
  }
  CHECK(swarm.replicas("rep-once") == kInitial);  // paused everywhere: nothing ran yet
  a.api_json("POST", "/api/v1/workers/resume", 200);

  // 2. Load on all three; b killed mid-load.
  constexpr int kThreads = 2, kPerThread = 60;
  {
    Load on_a(on(a.url(), url), kThreads, milliseconds(6), kPerThread);
    Load on_b(on(b.url(), url), kThreads, milliseconds(6), kPerThread);
    Load on_c(on(c.url(), url), kThreads, milliseconds(6), kPerThread);
    std::this_thread::sleep_for(milliseconds(400));
    // Killed while it holds unfinished executions, so another replica has to take them over.
    int64_t depth = 0;
    for (auto until = SteadyClock::now() + milliseconds(3000);
         SteadyClock::now() < until && depth == 0;)
      depth = b.api_json("GET", "/api/v1/workers", 200)["queue_depth"].get<int64_t>();
    b.kill9();
    WARN("b was killed with " << depth << " executions queued or running");
    on_a.join();
    on_b.join();
    on_c.join();
    json all = drain(a, milliseconds(60000));  // b's executions: after its lease runs out
    std::set<int64_t> listed;
    for (const auto& e : all) listed.insert(e["id"].get<int64_t>());
    size_t accepted = 2;  // the two 202s of part 1
    for (Load* load : {&on_a, &on_b, &on_c}) {
      CHECK(load->other_status.empty());
      accepted += load->accepted.size();
      for (int64_t id : load->accepted) CHECK(listed.count(id) == 1);  // none lost
    }
    CHECK(on_b.unanswered <= kThreads);
    CHECK(on_a.unanswered == 0);
    CHECK(on_c.unanswered == 0);
    // Executions without a 202: only requests b had read when it died.
    CHECK(all.size() >= accepted);
    CHECK(all.size() <= accepted + size_t(on_b.unanswered));
    REQUIRE(on_b.accepted.size() > 0);
    auto once = check_each_applied_once(all, kInitial, /*one_lane=*/false);
    if (depth > 0) {  // one of the others said it took b's over
      std::string took = sh("cat " + a.stderr_path() + " " + c.stderr_path() +
                            " | grep -c 'took over the executions of a replica' || true");
      CHECK(std::stoi(took) >= 1);
    }
    int now = swarm.replicas("rep-once");
    CHECK(now == kInitial + int(all.size()));
    WARN("replicas: " << all.size() << " executions through 3 replicas (" << on_a.accepted.size()
                      << ", " << on_b.accepted.size() << " before b was killed, "
                      << on_c.accepted.size() << "), service " << kInitial << " -> " << now << "; "
                      << once.applied_with_later << " applied with a later plan, "
                      << once.reapplied_unchanged << " re-applied unchanged");
  }

  // 3. A receiver's limits are the replicas' together: a burst of 4 allows 4 triggers in all,
  // not 4 on each (workers paused: nothing runs, only the accepts count).
  a.api_json("POST", "/api/v1/workers/pause", 200);
  json limited = up_receiver("rep-limited", "rep-once");
  limited["limits"] = {{"rate_per_minute", 1}, {"burst", 4}, {"max_queued", 0}};
  json made = a.api_json("POST", "/api/v1/receivers", 201, limited);
  std::string limited_url = made["trigger_url"];
  int64_t limited_id = made["id"];
  // In c's cache within a second (part 1 measured it).
  std::this_thread::sleep_for(milliseconds(1000));
  int accepted_limited = 0, refused_limited = 0;
  std::string retry_after;
  for (int i = 0; i < 10; ++i) {
    OutboundResponse r = post(on((i % 2 ? c : a).url(), limited_url));
    INFO(r.status << " " << r.body);
    if (r.status == 202) {
      ++accepted_limited;
    } else {
      CHECK(r.status == 429);
      CHECK(json::parse(r.body)["error"] == "rate_limited");
      ++refused_limited;
      for (const auto& [k, v] : r.headers)
        if (k == "retry-after") retry_after = v;
    }
  }
  CHECK(accepted_limited == 4);  // 4 + 4 with each replica's count alone
  CHECK(refused_limited == 6);
  CHECK(retry_after == "60");
  // Each replica's own count never refused (a refusal gives its token back), so every refusal
  // was the replicas' whole count's, and is logged as such.
  json refusals = a.api_json(
      "GET", "/api/v1/receivers/" + std::to_string(limited_id) + "/requests?outcome=rate_limited",
      200)["items"];
  int together = 0;
  for (const auto& e : refusals)
    if (e["detail"]["message"].get<std::string>().find("all replicas together") !=
        std::string::npos)
      ++together;
  CHECK(together == refused_limited);

  a.terminate();
  c.terminate();
  sh("rm -rf " + dir);
  swarm.docker("service rm rep-once");
}
