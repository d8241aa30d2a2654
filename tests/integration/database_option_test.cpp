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
