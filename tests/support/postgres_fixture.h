// A real PostgreSQL 15 (Debian's postgresql-15) for the tests, run by the test process itself:
// never a system cluster, never a port or socket someone else uses (docs/postgres-testing.md).
// One server per test process, started on first use: a fresh data directory under /tmp
// (initdb, trust authentication for the superuser "tripline" on 127.0.0.1 only), a free port,
// and each test its own empty database (fresh_database_url()). Stopped, and its directory
// removed, when the process exits; if the process dies first, the server follows it (it is
// started with PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

struct pg_conn;  // libpq's PGconn, kept out of this header

namespace tripline::test {

class PostgresServer {
 public:
  // The process's server, started by the first call (from the test's own thread: the server is
  // stopped when the thread that started it exits). Null when it cannot run here: *why says why
  // (binaries missing, no "postgres" user to run it as root, initdb or start-up failed).
  static PostgresServer* instance(std::string* why);

  uint16_t port() const { return port_; }
  bool running() const { return pid_ > 0; }
  // Where its data, socket and log are (the log: dir()/postgres.log).
  const std::string& dir() const { return root_; }

  // A new, empty database on it (CREATE DATABASE t_N), as the URL Store::open takes:
  // postgres://tripline@127.0.0.1:PORT/t_N. Empty when it cannot (*why).
  std::string fresh_database_url(std::string* why);

  // For tests of a store losing its database (Unavailable): the server goes away as in a crash
  // (SIGQUIT, PostgreSQL's immediate shutdown: every session cut, no checkpoint; start() then
  // recovers from the WAL)...
  void crash();
  // ...or cleanly (SIGINT, the fast shutdown: sessions are cut, then a checkpoint).
  void stop();
  // Starts it again on the same data directory and port. False (*why) when it does not come up.
  bool start(std::string* why);
  // For tests of a database that hangs rather than goes away (a frozen host, a network that drops
  // packets): every process of the server is stopped (SIGSTOP), so open connections stay open and
  // nothing answers on them, nor on new ones (the kernel still accepts those), until thaw()
  // (SIGCONT). A test that freezes it thaws it before it ends, even when it fails (a guard).
  void freeze();
  void thaw();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

 private:
  PostgresServer() = default;
  bool init(std::string* why);
  bool copy_template(std::string* why);  // root_/data: a copy of a cached initdb (or a new one)
  bool launch(uint16_t port, std::string* why);
  void shutdown(int signal);
  void signal_all(int signal);  // the postmaster, then its children

  std::string root_;  // /tmp/tl-pg-XXXXXX: data/, the socket, postgres.log
  std::string bin_;   // the directory of initdb and postgres
  uint16_t port_ = 0;
  pid_t pid_ = 0;    // the postmaster
  pid_t owner_ = 0;  // the process that started it: a forked child never stops it
  uid_t uid_ = 0;    // whom it runs as (the "postgres" user when the tests run as root)
  gid_t gid_ = 0;
  int next_database_ = 1;
};

// A loopback TCP port nobody listened on a moment ago (0 when none could be found).
uint16_t unused_loopback_port();

// The first value of the first row `sql` answers on the database `url` names (a libpq URL or
// key=value string), or nullopt with *why. For tests that look at what a store wrote.
std::optional<std::string> postgres_query(const std::string& url, const std::string& sql,
                                          std::string* why);

// A session of its own on the database `url` names, kept open until destroyed: for a test that
// holds a transaction (a lock) across its other steps.
class PostgresSession {
 public:
  explicit PostgresSession(const std::string& url);
  ~PostgresSession();
  PostgresSession(const PostgresSession&) = delete;
  PostgresSession& operator=(const PostgresSession&) = delete;
  // As postgres_query(), on this session.
  std::optional<std::string> query(const std::string& sql, std::string* why);

 private:
  pg_conn* conn_;
};

// The process's server for a test that needs one, or null after the test was FAILed (CI=true)
// or warned "SKIPPED" with the reason (a machine without PostgreSQL 15): the test returns then.
inline PostgresServer* postgres_or_skip() {
  std::string why;
  PostgresServer* server = PostgresServer::instance(&why);
  if (server) return server;
  why = "PostgreSQL cannot run here: " + why;
  if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL(why);
  WARN("SKIPPED: " << why);
  return nullptr;
}

// A new empty database's URL on the process's server; empty when the test was skipped (as
// postgres_or_skip()).
inline std::string fresh_database_url() {
  PostgresServer* server = postgres_or_skip();
  if (!server) return {};
  std::string why;
  std::string url = server->fresh_database_url(&why);
  INFO(why);
  REQUIRE_FALSE(url.empty());
  return url;
}

}  // namespace tripline::test
