// The tests' own PostgreSQL 15 server (postgres_fixture.h, docs/postgres-testing.md).
#include "postgres_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace tripline::test {
namespace {

using Clock = std::chrono::steady_clock;

std::mutex g_mu;

// Debian's PostgreSQL 15; TRIPLINE_TEST_POSTGRES_BIN names another directory holding initdb
// and postgres (of version 15: the store's tests assume it).
std::string bin_dir() {
  const char* dir = std::getenv("TRIPLINE_TEST_POSTGRES_BIN");
  return dir && *dir ? dir : "/usr/lib/postgresql/15/bin";
}

// The end of a log from byte `from` on: what the last run wrote.
std::string tail_of(const std::string& path, std::uintmax_t from = 0, size_t max = 2000) {
  std::ifstream in(path);
  in.seekg(std::streamoff(from));
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  return text.size() > max ? "..." + text.substr(text.size() - max) : text;
}

}  // namespace

// postgres binds it a moment later; launch() retries with another if someone took it meanwhile.
uint16_t unused_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

namespace {

// Runs `argv` as uid/gid with its output appended to `log`, in `cwd`. `die_with_parent`: it gets
// SIGQUIT (PostgreSQL's immediate shutdown) when the thread that forked it ends, so a test
// process killed by a timeout leaves no server behind. Answers the child's pid, or -1.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& cwd,
            uid_t uid, gid_t gid, bool die_with_parent) {
  // Everything the child needs is prepared here: after fork() in a threaded process it may only
  // make async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || in < 0) {
    if (out >= 0) ::close(out);
    if (in >= 0) ::close(in);
    return -1;
  }
  const bool as_other = ::geteuid() == 0 && uid != 0;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    if (as_other && (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0))
      ::_exit(126);
    // After setuid: a change of credentials clears the parent-death signal.
    if (die_with_parent && (::prctl(PR_SET_PDEATHSIG, SIGQUIT) != 0 || ::getppid() != parent))
      ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(in);
  return pid;
}

std::string conninfo(uint16_t port, const std::string& dbname) {
  return "host=127.0.0.1 port=" + std::to_string(port) + " user=tripline dbname=" + dbname +
         " connect_timeout=5";
}

}  // namespace

PostgresServer* PostgresServer::instance(std::string* why) {
  static std::unique_ptr<PostgresServer> server;
  static std::string failure;  // a server that could not start is not tried again per test
  std::lock_guard lock(g_mu);
  if (server) return server.get();
  if (failure.empty()) {
    std::unique_ptr<PostgresServer> s(new PostgresServer());
    if (s->init(&failure))
      server = std::move(s);
    else if (failure.empty())
      failure = "unknown failure";
  }
  if (!server && why) *why = failure;
  return server.get();
}

bool PostgresServer::init(std::string* why) {
  owner_ = ::getpid();
  bin_ = bin_dir();
  for (const char* tool : {"initdb", "postgres"})
    if (::access((bin_ + "/" + tool).c_str(), X_OK) != 0) {
      *why = bin_ + "/" + tool +
             " not found: PostgreSQL 15 is not installed (`scripts/install-deps.sh test` installs "
             "postgresql-15)";
      return false;
    }
  uid_ = ::geteuid();
  gid_ = ::getegid();
  if (uid_ == 0) {
    // initdb refuses to run as root: the server runs as Debian's "postgres" user.
    struct passwd* pw = ::getpwnam("postgres");
    if (!pw) {
      *why = "the tests run as root and there is no \"postgres\" user to run PostgreSQL as";
      return false;
    }
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }
  char tmpl[] = "/tmp/tl-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    *why = std::string("mkdtemp: ") + std::strerror(errno);
    return false;
  }
  root_ = tmpl;
  if (::chown(root_.c_str(), uid_, gid_) != 0) {
    *why = "chown " + root_ + ": " + std::strerror(errno);
    return false;
  }
  if (!copy_template(why)) return false;
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint16_t port = unused_loopback_port();
    if (port == 0) continue;
    if (launch(port, why)) return true;
    if (why->find("Address already in use") == std::string::npos) return false;
  }
  return false;
}

// initdb costs some 3 s of a 2-core machine, and every test process (one per ctest entry) needs
// a cluster: the first builds a template cluster, once per machine and PostgreSQL directory
// (under a lock), and each process copies it (cp -a: a tenth of a second). A template not owned
// by the server's user, or open to others, is not trusted: this process then runs initdb itself.
bool PostgresServer::copy_template(std::string* why) {
  const std::string tmpl = "/tmp/tl-pg-template-" + std::to_string(uid_) + "-" +
                           std::to_string(std::hash<std::string>{}(bin_));
  const std::string lock_path = tmpl + ".lock";
  int lock = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
  struct stat st {};
  bool trusted = lock >= 0 && ::fstat(lock, &st) == 0 && st.st_uid == ::geteuid() &&
                 ::flock(lock, LOCK_EX) == 0;
  auto initdb = [&](const std::string& dir) {
    // --no-sync: a test cluster need not survive a power loss of its creation. Trust on
    // 127.0.0.1 and the socket, which only this server's user and root can reach (0700).
    const std::string log = root_ + "/initdb.log";
    pid_t pid = spawn({bin_ + "/initdb", "-D", dir, "-A", "trust", "-U", "tripline", "--no-sync",
                       "-E", "UTF8", "--locale=C"},
                      log, root_, uid_, gid_, false);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      *why = "initdb failed (" + log + "): " + tail_of(log);
      return false;
    }
    return true;
  };
  bool ok = false;
  if (trusted) {
    struct stat t {};
    bool usable = ::lstat(tmpl.c_str(), &t) == 0 && S_ISDIR(t.st_mode) && t.st_uid == uid_ &&
                  (t.st_mode & 077) == 0 && ::access((tmpl + "/complete").c_str(), F_OK) == 0;
    if (!usable) {
      std::filesystem::remove_all(tmpl);
      usable = ::mkdir(tmpl.c_str(), 0700) == 0 && ::chown(tmpl.c_str(), uid_, gid_) == 0 &&
               initdb(tmpl + "/data") && std::ofstream(tmpl + "/complete").good();
    }
    if (usable) {
      int rc = std::system(("cp -a " + tmpl + "/data " + root_ + "/data").c_str());
      ok = rc == 0;
      if (!ok) *why = "cannot copy the template cluster " + tmpl;
    }
  }
  if (lock >= 0) ::close(lock);  // releases the flock
  if (ok) return true;
  std::filesystem::remove_all(root_ + "/data");
  return initdb(root_ + "/data");
}

bool PostgresServer::launch(uint16_t port, std::string* why) {
  const std::string log = root_ + "/postgres.log";
  std::error_code absent;
  const std::uintmax_t size = std::filesystem::file_size(log, absent);
  const std::uintmax_t log_start = absent ? 0 : size;
  pid_ = spawn({bin_ + "/postgres", "-D", root_ + "/data", "-k", root_, "-p", std::to_string(port),
                "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=off"},
               log, root_, uid_, gid_, true);
  if (pid_ < 0) {
    pid_ = 0;
    *why = std::string("cannot start postgres: ") + std::strerror(errno);
    return false;
  }
  const std::string ping = conninfo(port, "postgres");
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      *why = "postgres exited at start-up (" + log + "): " + tail_of(log, log_start);
      return false;
    }
    if (PQping(ping.c_str()) == PQPING_OK) {
      port_ = port;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *why =
      "postgres did not accept connections within 30 s (" + log + "): " + tail_of(log, log_start);
  shutdown(SIGQUIT);
  return false;
}

void PostgresServer::shutdown(int signal) {
  if (pid_ <= 0 || ::getpid() != owner_) return;
  ::kill(pid_, signal);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = 0;
}

void PostgresServer::crash() {
  std::lock_guard lock(g_mu);
  shutdown(SIGQUIT);
}

void PostgresServer::stop() {
  std::lock_guard lock(g_mu);
  shutdown(SIGINT);
}

void PostgresServer::signal_all(int signal) {
  if (pid_ <= 0 || ::getpid() != owner_) return;
  // The postmaster first: stopped, it forks no new backend while its children are looked for.
  ::kill(pid_, signal);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid_) ::kill(pid_t(std::stol(name)), signal);
  }
}

void PostgresServer::freeze() {
  std::lock_guard lock(g_mu);
  signal_all(SIGSTOP);
}

void PostgresServer::thaw() {
  std::lock_guard lock(g_mu);
  signal_all(SIGCONT);
}

bool PostgresServer::start(std::string* why) {
  std::lock_guard lock(g_mu);
  if (pid_ > 0) return true;
  // The port was this server's a moment ago; another process may have taken it meanwhile.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (launch(port_, why)) return true;
    if (why->find("Address already in use") == std::string::npos) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string PostgresServer::fresh_database_url(std::string* why) {
  std::lock_guard lock(g_mu);
  const std::string name = "t_" + std::to_string(next_database_++);
  PGconn* c = PQconnectdb(conninfo(port_, "postgres").c_str());
  std::string url;
  if (PQstatus(c) != CONNECTION_OK) {
    *why = std::string("cannot connect to the test server: ") + PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
    if (PQresultStatus(r) == PGRES_COMMAND_OK)
      url = "postgres://tripline@127.0.0.1:" + std::to_string(port_) + "/" + name;
    else
      *why = "CREATE DATABASE " + name + ": " + PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  return url;
}

PostgresServer::~PostgresServer() {
  if (::getpid() != owner_) return;  // a forked child exiting: the server is its parent's
  shutdown(SIGINT);
  std::error_code ignored;
  if (!root_.empty()) std::filesystem::remove_all(root_, ignored);
}

namespace {

std::optional<std::string> query_on(PGconn* c, const std::string& sql, std::string* why) {
  std::optional<std::string> value;
  if (PQstatus(c) != CONNECTION_OK) {
    *why = std::string("cannot connect: ") + PQerrorMessage(c);
    return value;
  }
  PGresult* r = PQexec(c, sql.c_str());
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && PQnfields(r) > 0)
    value = PQgetvalue(r, 0, 0);
  else if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
    *why = "no rows";
  else
    *why = PQresultErrorMessage(r);
  PQclear(r);
  return value;
}

}  // namespace

std::optional<std::string> postgres_query(const std::string& url, const std::string& sql,
                                          std::string* why) {
  PGconn* c = PQconnectdb(url.c_str());
  auto value = query_on(c, sql, why);
  PQfinish(c);
  return value;
}

PostgresSession::PostgresSession(const std::string& url) : conn_(PQconnectdb(url.c_str())) {}
PostgresSession::~PostgresSession() { PQfinish(conn_); }
std::optional<std::string> PostgresSession::query(const std::string& sql, std::string* why) {
  return query_on(conn_, sql, why);
}

}  // namespace tripline::test
