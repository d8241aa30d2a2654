// kill -9 durability: the real `tripline` binary as a child process, SIGKILLed in the middle of a
// trigger load and while its executor is applying, then restarted on the same data dir.
//
//   1. Nothing acknowledged is lost: every execution id a client got a 202 for is in the SQLite
//      file the killed process left behind (read before any restart) and through the API after
//      the restart. The file may hold more executions than 202s, but only as many more as the
//      requests that had no answer when the process died (at most one per client thread).
//   2. Each execution is applied exactly once: a receiver scales a Swarm service up by 1; after
//      several kills mid-execution and a final drain, the service's replicas equal the initial
//      count plus the number of executions in the database, and the recorded plans are exactly
//      initial+1 .. initial+count, each once.
//
// The Swarm services carry a placement constraint no node satisfies: the replica count is real
// Swarm state (spec, version, tasks), but its tasks stay pending, so no container starts.
#include <SQLiteCpp/SQLiteCpp.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "harness.h"
#include "processes.h"

#ifndef TRIPLINE_BINARY
#error TRIPLINE_BINARY must be defined (the tripline executable; see tests/CMakeLists.txt)
#endif

extern char** environ;

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The executions in the SQLite file, read-only (nothing is checkpointed or changed).
struct DbExecution {
  int64_t id;
  std::string status;
  int attempts;
  bool has_plan;
};
std::map<int64_t, DbExecution> read_executions(const std::string& db_path) {
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement q(db,
                      "SELECT id, status, attempts, plan IS NOT NULL FROM executions ORDER BY id");
  std::map<int64_t, DbExecution> out;
  while (q.executeStep())
    out[q.getColumn(0).getInt64()] = {q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                                      q.getColumn(2).getInt(), q.getColumn(3).getInt() != 0};
  return out;
}

// Every id of a 202 is in `db`; returns how many executions in `db` (among ids > after) have no
// 202, which must be at most the requests unanswered at the kill.
void check_acknowledged(const Load& load, const std::map<int64_t, DbExecution>& db, int64_t after,
                        const std::string& what) {
  std::vector<int64_t> lost;
  for (int64_t id : load.accepted)
    if (!db.count(id)) lost.push_back(id);
  int64_t extra = 0;
  for (const auto& [id, _] : db)
    if (id > after && !load.accepted.count(id)) ++extra;
  INFO(what << ": " << load.sent << " requests, " << load.accepted.size() << " answered 202, "
            << load.unanswered << " unanswered at the kill; " << db.size()
            << " executions in the file, " << extra << " of them without a 202");
  CHECK(load.other_status.empty());
  for (const auto& [code, n] : load.other_status) WARN(what << ": " << n << " answers " << code);
  CHECK(lost.empty());  // an acknowledged trigger is never lost
  if (!lost.empty())
    WARN("lost after a 202: execution " << lost.front() << " and " << lost.size() - 1 << " more");
  CHECK(extra <= load.unanswered);
  CHECK(load.unanswered <= int(load.threads()));
  WARN(what << ": " << load.sent << " requests (" << load.threads() << " threads), "
            << load.accepted.size() << " answered 202, " << load.unanswered
            << " unanswered at the kill; the killed process's file holds " << extra
            << " execution(s) more than the 202s (bound: " << load.unanswered << ")");
}

}  // namespace

TEST_CASE("durability: kill -9 under full trigger load loses no acknowledged execution") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  create_pending_service("dur-acks", 0);
  std::string dir = make_temp_dir("tl-dur-acks");
  INFO("work dir (left behind if the test stops early): " << dir);
  // The request log's cap, explicit: the receiver's log reaches it before the kill (below).
  constexpr int64_t kLogCap = 1000;
  Child server(dir + "/data", free_port(), swarm.docker_host(), dir,
               {"--request-log", std::to_string(kLogCap)});
  server.start();
  std::string url = server.api_json("POST", "/api/v1/receivers", 201,
                                    up_receiver("acks", "dur-acks"))["trigger_url"];
  // Held: the executions pile up queued, so the whole run measures ingest (writer thread, group
  // commit, fsync) and nothing reaches the swarm.
  server.api_json("POST", "/api/v1/workers/pause", 200);

  constexpr int kThreads = 4;
  Load load(url, kThreads, milliseconds(0), 1000000);
  std::this_thread::sleep_for(milliseconds(1500));
  // A slow machine (a sanitizer build) waits longer, until the log is well past its cap.
  for (int i = 0; i < 200 && load.accepted_so_far() < 2 * kLogCap; ++i)
    std::this_thread::sleep_for(milliseconds(100));
  server.kill9();  // mid-load: every thread is in a request loop
  load.join();
  REQUIRE(load.unanswered == kThreads);  // all threads were still sending when it died

  auto db = read_executions(server.db_path());
  check_acknowledged(load, db, 0, "full load, workers paused");
  REQUIRE(load.accepted.size() > 100);
  // The request log's entries of accepted requests are written just after their commit
  // (StoreOptions::defer_accepted_log): the kill left the newest unwritten, and the restart
  // rebuilds them from their executions. `upto`: how far the killed process wrote them (a
  // request id).
  auto unlogged = [&](int64_t after) {
    SQLite::Database file(server.db_path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(file,
                        "SELECT count(*) FROM executions e WHERE e.request_id > ? AND NOT EXISTS "
                        "(SELECT 1 FROM requests_log l WHERE l.id = e.request_id)");
    q.bind(1, after);
    REQUIRE(q.executeStep());
    return q.getColumn(0).getInt64();
  };
  int64_t upto = 0;
  {
    SQLite::Database file(server.db_path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(file,
                        "SELECT CAST(value AS INTEGER) FROM settings WHERE name = "
                        "'request_log_deferred_upto'");
    REQUIRE(q.executeStep());
    upto = q.getColumn(0).getInt64();
  }
  const int64_t unwritten = unlogged(upto);
  // Under this load the writer had entries waiting (it writes them every 250 ms at most).
  CHECK(unwritten > 0);
  WARN("request log: " << unwritten << " accepted entries unwritten at the kill");
  auto logged = [&] {
    SQLite::Database file(server.db_path(), SQLite::OPEN_READONLY);
    SQLite::Statement q(file, "SELECT count(*) FROM requests_log");
    REQUIRE(q.executeStep());
    return q.getColumn(0).getInt64();
  };
  // The receiver's log was at its cap when the process died: the entries rebuilt at the
  // restart take it past, until the cap is applied again.
  const int64_t written = logged();
  REQUIRE(written + unwritten > kLogCap);

  // Restarted on the same data dir (with a Docker host that does not exist, so the recovered
  // executions wait in retry instead of scaling anything): the API shows every one.
  server.set_docker_host("unix://" + dir + "/no-docker.sock");
  server.start();
  std::set<int64_t> listed;
  int64_t before = 0;
  for (;;) {
    std::string q =
        "/api/v1/executions?limit=500" + (before ? "&before=" + std::to_string(before) : "");
    auto page = server.api_json("GET", q, 200);
    for (const auto& e : page["items"]) listed.insert(e["id"].get<int64_t>());
    if (page["next_before"].is_null()) break;
    before = page["next_before"];
  }
  CHECK(listed.size() == db.size());
  CHECK(std::includes(listed.begin(), listed.end(), load.accepted.begin(), load.accepted.end()));
  // Every one of them has its entry again, under the id its execution names, marked as rebuilt.
  CHECK(unlogged(upto) == 0);
  // The rebuild does not leave the receiver's log past its cap until its next request: the
  // serving process applies the cap to every receiver whose entries it rebuilt.
  int64_t after_restart = logged();
  for (int i = 0; i < 100 && after_restart > kLogCap; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
    after_restart = logged();
  }
  INFO(written << " entries written before the kill, " << unwritten << " rebuilt");
  CHECK(after_restart == kLogCap);
  {
    auto newest = server.api_json("GET", "/api/v1/executions?limit=1", 200)["items"][0];
    REQUIRE(newest["request_id"].is_number_integer());
    auto entry = server.api_json("GET",
                                 "/api/v1/receivers/" + newest["receiver_id"].dump() +
                                     "/requests/" + newest["request_id"].dump(),
                                 200);
    CHECK(entry["outcome"] == "accepted");
    CHECK(entry["execution_id"] == newest["id"]);
    REQUIRE(newest["request_id"].get<int64_t>() > upto);  // the kill left it unwritten
    CHECK(entry["detail"].contains("excerpt_lost"));
    // Nothing to send again: its headers and body were never written.
    server.api_json("POST",
                    "/api/v1/receivers/" + newest["receiver_id"].dump() + "/requests/" +
                        newest["request_id"].dump() + "/redeliver",
                    409);
  }
  // And it goes on accepting, with ids after the ones already used.
  OutboundRequest again;
  again.method = "POST";
  again.url = url;
  auto r = http_request(again);
  INFO(r.body);
  REQUIRE(r.status == 202);
  CHECK(json::parse(r.body)["execution_id"].get<int64_t>() > db.rbegin()->first);
  server.terminate();
  sh("rm -rf " + dir);
  swarm.docker("service rm dur-acks");
}

TEST_CASE("durability: kill -9 while executing applies every execution exactly once") {
  if (!swarm_or_skip()) return;
  auto& swarm = Swarm::get();
  constexpr int kInitial = 3;
  create_pending_service("dur-once", kInitial);
  std::string dir = make_temp_dir("tl-dur-once");
  INFO("work dir (left behind if the test stops early): " << dir);
  Child server(dir + "/data", free_port(), swarm.docker_host(), dir);
  server.start();
  std::string url = server.api_json("POST", "/api/v1/receivers", 201,
                                    up_receiver("once", "dur-once"))["trigger_url"];

  // Each round: triggers arrive faster than the one lane of this target executes them, and the
  // server is killed while it works through the backlog; the next round starts on the restarted
  // server, which resumes the unfinished executions first.
  // The kill lands at a different point of the backlog each round. A kill can still come just
  // after the lane drained (the executor plans a whole backlog together, so it drains in bursts):
  // such a round proves nothing about a kill mid-work, so up to kSpare more rounds are run until
  // kRounds kills have landed with executions pending.
  constexpr int kRounds = 4, kSpare = 3, kThreads = 3, kPerThread = 40;
  int busy_kills = 0, interrupted_running = 0;
  int64_t last_id = 0;
  for (int round = 1; busy_kills < kRounds && round <= kRounds + kSpare; ++round) {
    if (round > 1) server.start();
    Load load(url, kThreads, milliseconds(8), kPerThread);
    std::this_thread::sleep_for(milliseconds(170 + 41 * round));
    // Kill only once the backlog is real (at least two executions not yet finished), so the
    // kill lands mid-work however fast this machine drains the lane.
    for (auto until = SteadyClock::now() + milliseconds(3000); SteadyClock::now() < until;) {
      auto w = server.api("GET", "/api/v1/workers");
      if (w.status == 200 && json::parse(w.body)["queue_depth"].get<int>() >= 2) break;
      std::this_thread::sleep_for(milliseconds(2));
    }
    server.kill9();
    load.join();
    auto db = read_executions(server.db_path());
    std::map<std::string, int> by_status;
    int running_with_plan = 0;
    for (const auto& [id, e] : db) {
      ++by_status[e.status];
      running_with_plan += e.status == "running" && e.has_plan;
    }
    check_acknowledged(load, db, last_id, "round " + std::to_string(round));
    last_id = db.empty() ? 0 : db.rbegin()->first;
    int unfinished = by_status["queued"] + by_status["running"];
    busy_kills += unfinished > 0;
    interrupted_running += by_status["running"];
    WARN("round " << round << " killed with " << db.size() << " executions in the file: "
                  << by_status["succeeded"] << " succeeded, " << by_status["running"]
                  << " running (" << running_with_plan << " with a recorded plan), "
                  << by_status["queued"] << " queued, " << by_status["failed"] << " failed");
  }
  CHECK(busy_kills == kRounds);  // kRounds kills landed while executions were pending

  // Final restart: drain and compare with the swarm.
  server.start();
  json all = drain(server, milliseconds(60000));
  server.terminate();
  int64_t count = int64_t(all.size());
  OnceReport once = check_each_applied_once(all, kInitial);
  int reapplied_unchanged = once.reapplied_unchanged, retried = once.retried,
      applied_with_later = once.applied_with_later;
  int replicas = swarm.replicas("dur-once");
  CHECK(replicas == kInitial + count);
  WARN("exactly once: " << count << " executions over " << kRounds << " kills, replicas "
                        << kInitial << " -> " << replicas << " (expected " << kInitial + count
                        << "); " << interrupted_running << " were running at a kill, " << retried
                        << " took more than one attempt, " << reapplied_unchanged
                        << " re-applied a plan the swarm already had (changed: false), "
                        << applied_with_later << " were applied with a later one planned together");
  sh("rm -rf " + dir);
  swarm.docker("service rm dur-once");
}
