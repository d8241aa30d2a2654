// --database and TRIPLINE_DATABASE (docs/configuration.md): the real binary puts its store where
// it is told, keeps its keys in --data-dir, and never prints a database URL's password.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "../support/store_fixture.h"
#include "harness.h"

#ifndef TRIPLINE_BINARY
#error TRIPLINE_BINARY must be defined (the tripline executable; see tests/CMakeLists.txt)
#endif

using namespace tripline;
using namespace tripline::test;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

// `tripline serve ARGS` until it answers, then SIGTERM; answers its stderr (the log).
std::string serve_once(const std::vector<std::string>& args, const std::string& dir) {
  const int port = free_port();
  std::vector<std::string> all = {"--listen", "127.0.0.1:" + std::to_string(port)};
  all.insert(all.end(), args.begin(), args.end());
  ServerProcess server;
  server.start(all, kAdminToken, dir + "/stdout", dir + "/stderr",
               "http://127.0.0.1:" + std::to_string(port));
  server.terminate(/*expect_exit_0=*/true);
  return read_file(dir + "/stderr");
}

}  // namespace

TEST_CASE(
    "database option: --database puts the store in the file named, the keys stay in --data-dir, "
    "rotate-secret-key opens the same store") {
  const std::string dir = make_temp_dir("tl-database");
  const std::string data = dir + "/data", elsewhere = dir + "/elsewhere/other.db";
  REQUIRE(::mkdir((dir + "/elsewhere").c_str(), 0700) == 0);

  std::string log = serve_once({"--data-dir", data, "--database", elsewhere}, dir);
  INFO(log);
  CHECK(exists(elsewhere));
  CHECK_FALSE(exists(data + "/tripline.db"));  // not the default
  CHECK(exists(data + "/keys"));               // the keys are --data-dir's
  CHECK(exists(data + "/secrets.key"));
  CHECK(log.find("\"database\":\"" + elsewhere + "\"") != std::string::npos);
  {
    // What the server wrote is in that file: the admin token it was started with.
    auto store = Store::open(elsewhere);
    REQUIRE(store.ok());
    auto tokens = (*store)->list_admin_tokens();
    REQUIRE(tokens.ok());
    REQUIRE(tokens->size() == 1);
    CHECK(tokens->front().from_env);
  }

  // TRIPLINE_DATABASE, for the offline command: the same store, and still no default file.
  int rc = 0;
  std::string out =
      sh("env -u TRIPLINE_SECRET_KEY -u TRIPLINE_SECRET_KEY_PREVIOUS "
         "TRIPLINE_DATABASE=" +
             elsewhere + " " + TRIPLINE_BINARY + " rotate-secret-key --data-dir " + data + " 2>&1",
         &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("re-sealed 0 secrets in 0 rows") != std::string::npos);
  CHECK_FALSE(exists(data + "/tripline.db"));

  // Without --database: DATA_DIR/tripline.db, as before the flag existed.
  log = serve_once({"--data-dir", data}, dir);
  CHECK(exists(data + "/tripline.db"));
  CHECK(log.find("\"database\":\"" + data + "/tripline.db\"") != std::string::npos);
  sh("rm -rf " + dir);
}

TEST_CASE("database option: a database URL's password is never printed") {
  const std::string dir = make_temp_dir("tl-database");
  const std::string secret = "s3cret-pw-7f2a";
  // Nothing listens on port 1: the store cannot open, and says so without the password, from
  // serve and from rotate-secret-key. (Run from `dir`: until the PostgreSQL store is merged, the
  // URL is taken for a relative SQLite path, whose "postgres:" directory is not there.)
  for (const char* command : {"serve --listen 127.0.0.1:0", "rotate-secret-key"}) {
    int rc = 0;
    std::string out =
        sh("cd " + dir + " && env -u TRIPLINE_SECRET_KEY " + TRIPLINE_BINARY + " " + command +
               " --data-dir " + dir + "/data --database 'postgres://tripline:" + secret +
               "@127.0.0.1:1/nowhere?password=" + secret + "' 2>&1",
           &rc);
    INFO(command << ": " << out);
    CHECK(rc == 1);
    CHECK_FALSE(out.empty());
    CHECK(out.find(secret) == std::string::npos);
  }

  // A server that opens it: the start-up line names the database, password redacted. Needs the
  // PostgreSQL store and a PostgreSQL server (postgres_fixture.h), skipped loudly without them.
  auto db = fresh_database(Postgres::kName);
  if (!db) return;
  const std::string with_password = "postgres://tripline:" + secret + "@" +
                                    db->database.substr(std::string("postgres://tripline@").size());
  std::string log = serve_once({"--data-dir", dir + "/data", "--database", with_password}, dir);
  INFO(log);
  CHECK(log.find(secret) == std::string::npos);
  CHECK(log.find("\"database\":\"postgres://tripline:********@127.0.0.1:") != std::string::npos);
  sh("rm -rf " + dir);
}

TEST_CASE(
    "migrate-data: the real binary copies what a SQLite server wrote into PostgreSQL, and a server "
    "on it answers the old trigger URL") {
  auto db = fresh_database(Postgres::kName);  // FAILs under CI=true without PostgreSQL
  if (!db) return;
  const std::string dir = make_temp_dir("tl-migrate");
  const std::string data = dir + "/data";
  const std::string secret = "s3cret-pw-9c1d";
  // The fixture's server trusts its user on loopback: the password is there to be hidden.
  const std::string url = "postgres://tripline:" + secret + "@" +
                          db->database.substr(std::string("postgres://tripline@").size());
  auto api = [](const std::string& base, const std::string& method, const std::string& path,
                const nlohmann::json& body) {
    OutboundRequest r;
    r.method = method;
    r.url = base + path;
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers.emplace_back("Content-Type", "application/json");
    }
    r.headers.emplace_back("Authorization", "Bearer " + kAdminToken);
    return http_request(r);
  };
  auto trigger = [](const std::string& trigger_url) {
    OutboundRequest r;
    r.method = "POST";
    r.url = trigger_url;
    r.body = "{}";
    r.headers.emplace_back("Content-Type", "application/json");
    return http_request(r);
  };

  // A SQLite server: a receiver, and one trigger of it.
  std::string trigger_url;
  int64_t receiver_id = 0, first_execution = 0;
  {
    const int port = free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    ServerProcess server;
    server.start({"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", data}, kAdminToken,
                 dir + "/stdout1", dir + "/stderr1", base);
    auto made = api(base, "POST", "/api/v1/receivers",
                    {{"name", "deploy"},
                     {"driver", "webhook"},
                     {"config",
                      {{"url", "https://hooks.example.com/action"},
                       {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                       {"payload", {{"text", "{}"}}}}}});
    INFO(made.status << " " << made.body);
    REQUIRE(made.status == 201);
    auto j = nlohmann::json::parse(made.body);
    trigger_url = j["trigger_url"];
    receiver_id = j["id"];
    auto fired = trigger(trigger_url);
    INFO(fired.body);
    REQUIRE(fired.status == 202);
    first_execution = nlohmann::json::parse(fired.body)["execution_id"];
    server.terminate(/*expect_exit_0=*/true);
  }

  int rc = 0;
  std::string out = sh(std::string(TRIPLINE_BINARY) + " migrate-data --from " + data +
                           "/tripline.db --to '" + url + "' 2>&1",
                       &rc);
  INFO(out);
  CHECK(rc == 0);
  CHECK(out.find("receivers: 1 row") != std::string::npos);
  CHECK(out.find("executions: 1 row") != std::string::npos);
  CHECK(out.find("postgres://tripline:********@") != std::string::npos);
  CHECK(out.find(secret) == std::string::npos);

  // Again into the same database: refused, non-zero, still no password.
  std::string again = sh(std::string(TRIPLINE_BINARY) + " migrate-data --from " + data +
                             "/tripline.db --to '" + url + "' 2>&1",
                         &rc);
  INFO(again);
  CHECK(rc != 0);
  CHECK(again.find("already has rows") != std::string::npos);
  CHECK(again.find(secret) == std::string::npos);

  // A server on PostgreSQL with the same data dir (its keys): the old URL still triggers, and
  // the new execution's id follows the copied one's.
  {
    const int port = free_port();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    ServerProcess server;
    server.start(
        {"--listen", "127.0.0.1:" + std::to_string(port), "--data-dir", data, "--database", url},
        kAdminToken, dir + "/stdout2", dir + "/stderr2", base);
    auto got = api(base, "GET", "/api/v1/receivers/" + std::to_string(receiver_id), nullptr);
    INFO(got.body);
    CHECK(got.status == 200);
    // The token is the old URL's; the address is the new server's (another free port).
    const std::string path = trigger_url.substr(trigger_url.find("/_webhooks/"));
    auto fired = trigger(base + path);
    INFO(fired.status << " " << fired.body << fired.error);
    CHECK(fired.status == 202);
    if (fired.status == 202)
      CHECK(nlohmann::json::parse(fired.body)["execution_id"].get<int64_t>() > first_execution);
    server.terminate(/*expect_exit_0=*/true);
  }
  sh("rm -rf " + dir);
}
