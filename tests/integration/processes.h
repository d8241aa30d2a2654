// What the tests that kill tripline processes share (durability_test.cpp, replicas_test.cpp): the
// real binary as a child process, client threads that record the executions they got a 202 for,
// and a Swarm service whose tasks never start, scaled by a receiver.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "harness.h"

namespace tripline::test {

using std::chrono::milliseconds;

// `tripline serve` as a child process: its own process, so it can be SIGKILLed. stdout and
// stderr are appended to files in `log_dir`. Dies with the test binary (PR_SET_PDEATHSIG).
class Child {
 public:
  // `extra`: more `serve` flags (e.g. --database URL).
  Child(std::string data_dir, int port, std::string docker_host, std::string log_dir,
        std::vector<std::string> extra = {})
      : data_dir_(std::move(data_dir)),
        port_(port),
        docker_host_(std::move(docker_host)),
        log_dir_(std::move(log_dir)),
        extra_(std::move(extra)) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  std::string db_path() const { return data_dir_ + "/tripline.db"; }
  std::string stderr_path() const { return log_dir_ + "/stderr.log"; }
  void set_docker_host(std::string h) { docker_host_ = std::move(h); }

  void start() {
    std::vector<std::string> args = {"--listen",        "127.0.0.1:" + std::to_string(port_),
                                     "--data-dir",      data_dir_,
                                     "--docker-host",   docker_host_,
                                     "--retry-base-ms", "100",
                                     "--retry-max-ms",  "1000",
                                     "--log-level",     "info"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    process_.start(args, kAdminToken, log_dir_ + "/stdout.log", stderr_path(), url());
  }
  void kill9() { process_.kill9(); }
  void terminate() { process_.terminate(false); }

  OutboundResponse api(const std::string& method, const std::string& path,
                       const nlohmann::json& body = nullptr) const {
    OutboundRequest r;
    r.method = method;
    r.url = url() + path;
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers.emplace_back("Content-Type", "application/json");
    }
    r.headers.emplace_back("Authorization", "Bearer " + kAdminToken);
    r.timeout = milliseconds(30000);
    return http_request(r);
  }
  nlohmann::json api_json(const std::string& method, const std::string& path, int want,
                          const nlohmann::json& body = nullptr) const {
    auto r = api(method, path, body);
    INFO(method << " " << path << " -> " << r.status << " " << r.body << r.error);
    REQUIRE(r.status == want);
    return r.body.empty() ? nlohmann::json() : nlohmann::json::parse(r.body);
  }

 private:
  std::string data_dir_;
  int port_;
  std::string docker_host_, log_dir_;
  std::vector<std::string> extra_;
  ServerProcess process_;
};

// Client threads POSTing to a trigger URL over keep-alive connections, each recording the
// execution ids it got a 202 for. A thread stops at its quota or at its first request without an
// HTTP answer (the server was killed): that request was "in flight" at the kill and may have been
// committed without its 202. So at most one unanswered request per thread.
class Load {
 public:
  Load(std::string url, int threads, milliseconds interval, int per_thread) : url_(std::move(url)) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this, interval, per_thread] { run(interval, per_thread); });
  }
  ~Load() {
    stop_ = true;  // when a failed REQUIRE unwinds past a live server
    join();
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::set<int64_t> accepted;  // read after join()
  size_t accepted_so_far() {   // while the threads run
    std::lock_guard lock(mu_);
    return accepted.size();
  }
  int sent = 0, unanswered = 0;
  std::map<int, int> other_status;  // anything but 202
  size_t threads() const { return threads_.size(); }

 private:
  static size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }
  void run(milliseconds interval, int per_thread) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
    CURL* c = curl.get();
    std::string body;
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    for (int i = 0; i < per_thread && !stop_; ++i) {
      body.clear();
      CURLcode rc = curl_easy_perform(c);
      long code = 0;
      if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
      std::lock_guard lock(mu_);
      ++sent;
      if (rc != CURLE_OK) {
        // No answer: the server died before or while handling it. Even "connection refused" may
        // follow a request the server read and committed: libcurl retries a request once on a
        // fresh connection when a reused one dies before any answer arrives.
        ++unanswered;
        return;
      }
      if (code == 202) {
        auto j = nlohmann::json::parse(body, nullptr, false);
        if (j.is_object() && j["execution_id"].is_number_integer())
          accepted.insert(j["execution_id"].get<int64_t>());
        else
          ++other_status[-1];
      } else {
        ++other_status[int(code)];
      }
      if (interval.count()) std::this_thread::sleep_for(interval);
    }
  }
  std::string url_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

// A replicated service whose tasks can never be scheduled (no node has the label).
inline void create_pending_service(const std::string& name, int replicas) {
  int rc = 0;
  std::string out = Swarm::get().docker(
      "service create --detach --quiet --name " + name + " --replicas " + std::to_string(replicas) +
          " --constraint node.labels.tripline-never==1 --no-resolve-image "
          "--stop-grace-period 1s tripline-test/busybox:latest sleep 3600",
      &rc);
  INFO(out);
  REQUIRE(rc == 0);
}

inline nlohmann::json up_receiver(const std::string& name, const std::string& service) {
  return {{"name", name},
          {"driver", "scale-service"},
          {"config",
           {{"backend", "swarm"},
            {"service", service},
            {"action", "up"},
            {"by", 1},
            {"min", 0},
            {"max", 10000}}},
          // A load test: the default rate limit and queue cap would refuse most of it.
          {"limits", {{"rate_per_minute", 1000000}, {"burst", 1000000}, {"max_queued", 1000000}}}};
}

// Every execution the API lists, newest first, once none is queued or running (REQUIREs that
// within `limit`).
inline nlohmann::json drain(const Child& server, milliseconds limit) {
  using nlohmann::json;
  auto deadline = std::chrono::steady_clock::now() + limit;
  json all;
  for (;;) {
    all = json::array();
    int64_t before = 0;
    for (;;) {
      std::string q =
          "/api/v1/executions?limit=500" + (before ? "&before=" + std::to_string(before) : "");
      auto page = server.api_json("GET", q, 200);
      for (auto& e : page["items"]) all.push_back(e);
      if (page["next_before"].is_null()) break;
      before = page["next_before"];
    }
    bool done = std::all_of(all.begin(), all.end(), [](const json& e) {
      return e["status"] == "succeeded" || e["status"] == "failed";
    });
    if (done) return all;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Executions of up_receiver() receivers on one service that started at `initial` replicas: each
// succeeded, and their plans are initial+1 .. initial+count, each once (none skipped, none
// applied twice, none planned over another's move). What they came to.
struct OnceReport {
  int reapplied_unchanged = 0, retried = 0, applied_with_later = 0;
};
// `one_lane`: all ran in one process's lane, in id order, so a chain's last has the highest id
// (replicas each run their own lane, and executions taken over join the back of one).
inline OnceReport check_each_applied_once(const nlohmann::json& all, int64_t initial,
                                          bool one_lane = true) {
  using nlohmann::json;
  OnceReport out;
  int64_t count = int64_t(all.size());
  std::vector<int64_t> planned;
  int failed = 0;
  for (const auto& e : all) {
    INFO(e.dump());
    if (e["status"] != "succeeded") {
      ++failed;
      continue;
    }
    planned.push_back(e["plan"]["replicas"].get<int64_t>());
    if (e["result"].contains("applied_with")) {
      // Planned together with the executions after it (server/engine/executor.h): the one named
      // applied a later state of the same chain, which passed through this plan's.
      ++out.applied_with_later;
      auto with = std::find_if(all.begin(), all.end(), [&](const json& o) {
        return o["id"] == e["result"]["applied_with"];
      });
      REQUIRE(with != all.end());
      CHECK((*with)["status"] == "succeeded");
      if (one_lane) CHECK((*with)["id"].get<int64_t>() > e["id"].get<int64_t>());
      CHECK((*with)["plan"]["replicas"].get<int64_t>() > e["plan"]["replicas"].get<int64_t>());
    } else {
      CHECK(e["result"]["replicas_after"] == e["plan"]["replicas"]);
    }
    out.reapplied_unchanged += e["result"].value("changed", true) == false;
    out.retried += e["attempts"].get<int>() > 1;
  }
  CHECK(failed == 0);
  std::sort(planned.begin(), planned.end());
  std::vector<int64_t> expected(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) expected[size_t(i)] = initial + 1 + i;
  CHECK(planned == expected);  // one step each: none skipped, none applied twice
  return out;
}

}  // namespace tripline::test
