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
//      Then a receiver's rate limit holds across the replicas: its burst is the replicas'
//      together.
//   3. A replica whose lease is taken over, or that cannot renew it (its database stopped, or
//      frozen so that nothing answers), aborts before the lease would have run out: one replica
//      alone, no peer, no Swarm.
//   4. A replica that cannot read everything again after its listening connection came back
//      tries again until it can: a change made in the gap reaches its cache all the same.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../support/postgres_fixture.h"
#include "../support/webhook_sink.h"
#include "harness.h"
#include "processes.h"
#include "store.h"

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

// One `tripline serve --database URL` replica, alone: no receivers, no peers, only its lease.
struct LoneReplica {
  std::string dir = make_temp_dir("tl-lease");
  int port = free_port();
  ServerProcess process;

  explicit LoneReplica(const std::string& database) {
    INFO("work dir (left behind if the test stops early): " << dir);
    process.start({"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", dir + "/data",
                   "--database", database, "--log-level", "info"},
                  kAdminToken, dir + "/stdout.log", log_path(),
                  "http://127.0.0.1:" + std::to_string(port));
  }
  ~LoneReplica() { sh("rm -rf " + dir); }
  std::string log_path() const { return dir + "/stderr.log"; }
  std::string log() const { return sh("cat " + log_path()); }
};

// How a process ended, for messages.
std::string describe(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  return "status " + std::to_string(status);
}

int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("replicas: a replica whose lease is taken over aborts at its next renewal") {
  PostgresServer* pg = postgres_or_skip();
  if (!pg) return;
  std::string database = fresh_database_url();
  LoneReplica replica(database);
  std::string why;
  REQUIRE(postgres_query(database, "SELECT count(*) FROM replicas", &why) == "1");

  // Another replica whose clock runs a minute ahead (docs/scale-out.md) sees the live lease as
  // run out and takes it over. Its SKIP LOCKED passes over a lease being renewed at that moment:
  // then it tries again.
  StoreOptions options;
  options.replica = "taker";
  auto taker = Store::open(database, options);
  REQUIRE(taker.ok());
  for (int attempt = 0; attempt < 10; ++attempt) {
    REQUIRE((*taker)->take_over_expired((*taker)->clock().now_ms() + 60000).ok());
    if (postgres_query(database, "SELECT count(*) FROM replicas", &why) == "0") break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  REQUIRE(postgres_query(database, "SELECT count(*) FROM replicas", &why) == "0");
  auto taken = SteadyClock::now();

  // Its next renewal (every 2.5 s) finds the lease gone: SIGABRT, with the reason logged. 5 s
  // leaves room for a loaded machine.
  auto status = replica.process.wait_exit(milliseconds(5000));
  INFO(replica.log());
  REQUIRE(status.has_value());
  INFO(describe(*status));
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGABRT);
  CHECK(replica.log().find("another replica took its executions over; stopping at once") !=
        std::string::npos);
  WARN("a replica taken over stopped "
       << std::chrono::duration_cast<milliseconds>(SteadyClock::now() - taken).count()
       << " ms after the take-over");
}

TEST_CASE("replicas: a replica that cannot renew its lease aborts before the lease runs out") {
  // docs/scale-out.md: it stops once it has not renewed for 3/4 of the lease (7.5 s of 10), so
  // it is gone before any other replica may take its executions over. The database is lost in
  // two ways: stopped (every call fails at once), or frozen (SIGSTOP: connections stay open and
  // nothing answers, so a renewal hangs rather than fails).
  PostgresServer* pg = postgres_or_skip();
  if (!pg) return;
  std::string database = fresh_database_url();
  LoneReplica replica(database);
  bool frozen = false;
  // The server comes back whatever happens: later tests use it.
  struct Restore {
    PostgresServer* pg;
    bool* frozen;
    ~Restore() {
      if (*frozen) pg->thaw();
      std::string why;
      if (!pg->running()) pg->start(&why);
    }
  } restore{pg, &frozen};

  int64_t cut_at = 0;
  std::string reason;  // what the log gives as the renewal's failure
  SECTION("the database stopped") {
    reason = "cannot connect to PostgreSQL";
    cut_at = wall_ms();
    pg->stop();
  }
  SECTION("the database frozen") {
    reason = "the database has not answered the renewal";
    cut_at = wall_ms();
    pg->freeze();
    frozen = true;
  }
  // 7.5 s after the last renewal, itself at most one 2.5 s tick before the cut; 1.5 s more for a
  // loaded machine.
  auto status = replica.process.wait_exit(milliseconds(9000));
  int64_t exited_at = wall_ms();
  if (frozen) pg->thaw();
  frozen = false;
  std::string why;
  if (!pg->running()) REQUIRE(pg->start(&why));
  INFO(why);
  INFO(replica.log());
  REQUIRE(status.has_value());
  INFO(describe(*status));
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGABRT);
  CHECK(replica.log().find("cannot renew this replica's lease before it runs out; stopping at "
                           "once") != std::string::npos);
  CHECK(replica.log().find(reason) != std::string::npos);
  // The lease as the database holds it: the replica was gone before it ran out.
  auto until = postgres_query(database, "SELECT lease_until FROM replicas", &why);
  REQUIRE(until.has_value());
  CHECK(exited_at < std::stoll(*until));
  WARN("a replica that lost its database stopped " << exited_at - cut_at << " ms after the cut, "
                                                   << std::stoll(*until) - exited_at
                                                   << " ms before its lease ran out");
}

TEST_CASE("replicas: a read of everything that fails after a gap is tried again until it holds") {
  // Two replicas in this process (their caches are what is looked at), on one database. b edits
  // a receiver while no replica listens; when a listens again its read of everything finds the
  // receivers table locked (past its 300 ms lock timeout) for 3 s: the edit must reach a's cache
  // once the lock is gone, not at the next gap.
  PostgresServer* pg = postgres_or_skip();
  if (!pg) return;
  std::string database = fresh_database_url();
  const std::string db = database.substr(database.rfind('/') + 1);
  const std::string admin = database.substr(0, database.rfind('/') + 1) + "postgres";
  std::string why;
  WebhookSink sink;
  ServiceOptions o;
  o.database = database;
  o.store_busy_timeout_ms = 300;
  o.drivers.set("docker-host", "unix:///nonexistent/docker.sock");  // no Swarm: webhooks only
  o.drivers.set("allow-local-webhook-targets", "true");
  std::string dir_a = make_temp_dir("tl-follow-a"), dir_b = make_temp_dir("tl-follow-b");
  auto a = std::make_unique<TestServer>(dir_a, o);
  sh("cp -p " + dir_a + "/secrets.key " + dir_b + "/secrets.key");  // the operator's to share
  auto b = std::make_unique<TestServer>(dir_b, o);
  REQUIRE(a->request("POST", "/api/v1/workers/pause").status == 200);  // nothing runs here

  json body = {{"name", "followed"},
               {"driver", "webhook"},
               {"config",
                {{"url", sink.url("/action")},
                 {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                 {"payload", {{"text", "{}"}}}}}};
  json made = b->create_receiver(body);
  const std::string id = std::to_string(made["id"].get<int64_t>());
  const std::string url = made["trigger_url"];
  auto trigger_on = [&](const TestServer& s) { return s.trigger(on(s.url(), url)); };
  auto until = SteadyClock::now() + milliseconds(3000);
  while (trigger_on(*a).status != 202 && SteadyClock::now() < until)
    std::this_thread::sleep_for(milliseconds(20));
  REQUIRE(trigger_on(*a).status == 202);

  // The gap: no replica listens (the database takes no new session), and b edits the receiver:
  // every request ignored from now on, by a rule; the URL stays the same.
  PostgresSession locker(database);
  REQUIRE(postgres_query(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS false", &why) ==
          std::nullopt);
  const std::string listening =
      "FROM pg_stat_activity WHERE datname = '" + db + "' AND application_name = 'tripline-watch'";
  REQUIRE(postgres_query(admin, "SELECT count(pg_terminate_backend(pid)) " + listening, &why) ==
          "2");
  until = SteadyClock::now() + milliseconds(5000);
  while (postgres_query(admin, "SELECT count(*) " + listening, &why) != "0" &&
         SteadyClock::now() < until)
    std::this_thread::sleep_for(milliseconds(10));
  REQUIRE(postgres_query(admin, "SELECT count(*) " + listening, &why) == "0");
  body["rules"] = {{"rules",
                    {{{"name", "closed"},
                      {"when", {{"field", "method"}, {"op", "equals"}, {"value", "POST"}}},
                      {"then", "ignore"}}}}};
  auto edited = b->request("PUT", "/api/v1/receivers/" + id, body);
  INFO(edited.status << " " << edited.body);
  REQUIRE(edited.status == 200);
  CHECK(json::parse(edited.body)["trigger_url"] == url);

  // a listens again, and its read of everything waits on the lock, and fails.
  REQUIRE(locker.query("BEGIN", &why) == std::nullopt);
  REQUIRE(locker.query("LOCK TABLE receivers IN ACCESS EXCLUSIVE MODE", &why) == std::nullopt);
  CHECK(why == "no rows");
  REQUIRE(postgres_query(admin, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS true", &why) ==
          std::nullopt);
  std::this_thread::sleep_for(milliseconds(3000));
  REQUIRE(locker.query("ROLLBACK", &why) == std::nullopt);

  // The edit reaches a's cache: its answer is b's. The read is tried again at most 3.2 s after
  // the last failure.
  OutboundResponse answer;
  until = SteadyClock::now() + milliseconds(8000);
  while ((answer = trigger_on(*a)).status != 200 && SteadyClock::now() < until)
    std::this_thread::sleep_for(milliseconds(50));
  INFO(answer.status << " " << answer.body);
  CHECK(answer.status == 200);
  CHECK(answer.body.find("\"ignored\":true") != std::string::npos);
  CHECK(trigger_on(*b).status == 200);
  a.reset();
  b.reset();
  sh("rm -rf " + dir_a + " " + dir_b);
}

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
  // Each replica's fifth and sixth... triggers: the first two past the burst passed the
  // replica's own count (2 of its 4 tokens left) and were refused by the whole count, in the
  // commit, logged as such; those refusals keep the replica's tokens taken, so its own count
  // refuses what follows, before the database (5 requests each: 2 accepted, 2 refused by the
  // whole count, 1 by its own). Were the tokens given back, all 6 would reach the database.
  json refusals = a.api_json(
      "GET", "/api/v1/receivers/" + std::to_string(limited_id) + "/requests?outcome=rate_limited",
      200)["items"];
  int together = 0;
  for (const auto& e : refusals)
    if (e["detail"]["message"].get<std::string>().find("all replicas together") !=
        std::string::npos)
      ++together;
  CHECK(together == 4);

  a.terminate();
  c.terminate();
  sh("rm -rf " + dir);
  swarm.docker("service rm rep-once");
}
