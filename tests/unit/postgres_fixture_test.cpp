// The tests' PostgreSQL server itself (tests/support/postgres_fixture.h): what the store's
// PostgreSQL variants stand on, checked with libpq alone.
#include "../support/postgres_fixture.h"

#include <catch2/catch.hpp>
#include <chrono>

using tripline::test::postgres_or_skip;
using tripline::test::postgres_query;
using tripline::test::PostgresServer;

TEST_CASE("postgres fixture: a PostgreSQL 15 of the test process's own, a new database per call") {
  PostgresServer* server = postgres_or_skip();
  if (!server) return;
  std::string why;
  std::string a = server->fresh_database_url(&why), b = server->fresh_database_url(&why);
  INFO(why);
  REQUIRE_FALSE(a.empty());
  REQUIRE_FALSE(b.empty());
  CHECK(a != b);
  CHECK(a.rfind("postgres://tripline@127.0.0.1:" + std::to_string(server->port()) + "/t_", 0) == 0);
  CHECK(server->port() != 5432);  // never the system cluster's

  auto version = postgres_query(a, "SELECT version()", &why);
  INFO(why);
  REQUIRE(version);
  CHECK(version->rfind("PostgreSQL 15", 0) == 0);
  // Its own data directory, under the fixture's temporary one: not a system cluster.
  auto data = postgres_query(a, "SHOW data_directory", &why);
  REQUIRE(data);
  CHECK(*data == server->dir() + "/data");
  CHECK(server->dir().rfind("/tmp/tl-pg-", 0) == 0);
  // Each URL names its own empty database.
  REQUIRE(postgres_query(a, "CREATE TABLE only_in_a (x int)", &why) == std::nullopt);
  CHECK(why == "no rows");
  CHECK(postgres_query(a, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", &why) ==
        "1");
  CHECK(postgres_query(b, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", &why) ==
        "0");
  CHECK(postgres_query(b, "SELECT current_database()", &why) == b.substr(b.rfind('/') + 1));
}

TEST_CASE(
    "postgres fixture: the server crashes, stops and starts again, keeping what was committed") {
  PostgresServer* server = postgres_or_skip();
  if (!server) return;
  std::string why;
  std::string url = server->fresh_database_url(&why);
  REQUIRE_FALSE(url.empty());
  postgres_query(url, "CREATE TABLE kept (x int)", &why);
  postgres_query(url, "INSERT INTO kept VALUES (7)", &why);
  const uint16_t port = server->port();

  server->crash();  // SIGQUIT: no checkpoint, sessions cut
  CHECK_FALSE(server->running());
  CHECK_FALSE(postgres_query(url, "SELECT 1", &why));
  CHECK(why.find("cannot connect") == 0);
  REQUIRE(server->start(&why));
  INFO(why);
  CHECK(server->port() == port);                                  // the same URLs reach it
  CHECK(postgres_query(url, "SELECT x FROM kept", &why) == "7");  // recovered from the WAL

  server->stop();
  CHECK_FALSE(postgres_query(url, "SELECT 1", &why));
  REQUIRE(server->start(&why));
  CHECK(postgres_query(url, "SELECT x FROM kept", &why) == "7");
  CHECK_FALSE(server->fresh_database_url(&why).empty());
}

TEST_CASE("postgres fixture: a frozen server answers nothing until it is thawed") {
  PostgresServer* server = postgres_or_skip();
  if (!server) return;
  std::string why;
  std::string url = server->fresh_database_url(&why);
  REQUIRE_FALSE(url.empty());
  REQUIRE(postgres_query(url, "SELECT 1", &why) == "1");
  server->freeze();
  // The kernel still takes the connection; nothing answers it: libpq gives up at its timeout.
  auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(postgres_query(url + "?connect_timeout=2", "SELECT 1", &why));
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(1500));
  CHECK(server->running());
  server->thaw();
  CHECK(postgres_query(url, "SELECT 1", &why) == "1");
}
