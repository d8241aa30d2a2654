// The client commands (docs/cli.md) as a user runs them: the real `tripline` binary against a real
// server (`tripline serve` as a child process on a free loopback port, with its own SQLite file),
// a real webhook sink as the receivers' peer, and the swarm for scale-service's flags.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "../support/canned_peer.h"
#include "../support/webhook_sink.h"
#include "harness.h"

extern char** environ;

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const char* kWebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct CliResult {
  int rc = -1;
  std::string out, err;
};

// Runs `tripline ARGS` with a clean environment: no TRIPLINE_* of the test's, HOME in `home` (so
// no config file of the user's is read), plus `env`. stdin from `stdin_text`.
CliResult run_cli(const std::string& home, const std::vector<std::string>& args,
                  const std::vector<std::string>& env = {}, const std::string& stdin_text = "") {
  static int n = 0;
  std::string base = home + "/run" + std::to_string(++n);
  {
    std::ofstream in(base + ".in");
    in << stdin_text;
  }
  std::vector<std::string> argv_s = {TRIPLINE_BINARY};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e) {
    std::string v = *e;
    if (v.rfind("TRIPLINE_", 0) == 0 || v.rfind("HOME=", 0) == 0 ||
        v.rfind("XDG_CONFIG_HOME=", 0) == 0)
      continue;
    env_s.push_back(v);
  }
  env_s.push_back("HOME=" + home);
  env_s.insert(env_s.end(), env.begin(), env.end());
  std::vector<char*> argv, envp;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  int in = ::open((base + ".in").c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open((base + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int err = ::open((base + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE((in >= 0 && out >= 0 && err >= 0));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(in);
  ::close(out);
  ::close(err);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CliResult r;
  r.rc = WEXITSTATUS(status);
  r.out = slurp(base + ".out");
  r.err = slurp(base + ".err");
  return r;
}

// `tripline serve` on a free port with a fresh data directory; kAdminToken is its admin token.
struct CliServer {
  explicit CliServer(std::vector<std::string> extra = {}) {
    dir = make_temp_dir("tl-cli");
    url = "http://127.0.0.1:" + std::to_string(free_port());
    std::vector<std::string> args = {
        "--listen", url.substr(7), "--data-dir", dir + "/data", "--allow-local-webhook-targets",
        "true"};
    bool docker_host = false;
    for (const auto& a : extra) docker_host = docker_host || a == "--docker-host";
    if (!docker_host) {  // no swarm needed: readiness checks a socket that is not there
      args.push_back("--docker-host");
      args.push_back("unix://" + dir + "/no-docker.sock");
    }
    args.insert(args.end(), extra.begin(), extra.end());
    process.start(args, kAdminToken, dir + "/server.out", dir + "/server.err", url);
  }
  ~CliServer() { sh("rm -rf '" + dir + "'"); }

  // `tripline ARGS` against this server with its admin token in the environment.
  CliResult cli(std::vector<std::string> args, std::vector<std::string> env = {},
                const std::string& stdin_text = "") const {
    env.push_back("TRIPLINE_SERVER=" + url);
    env.push_back("TRIPLINE_ADMIN_TOKEN=" + kAdminToken);
    return run_cli(dir, args, env, stdin_text);
  }
  json cli_json(std::vector<std::string> args) const {
    args.push_back("--json");
    CliResult r = cli(args);
    INFO(r.err);
    REQUIRE(r.rc == 0);
    json j = json::parse(r.out, nullptr, false);
    REQUIRE(!j.is_discarded());
    return j;
  }

  std::string dir, url;
  ServerProcess process;
};

// The value on a `key  value` line of a command's output for people ("" when there is none).
std::string field(const std::string& out, const std::string& key) {
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(key + "  ", 0) != 0) continue;
    size_t v = line.find_first_not_of(' ', key.size());
    return v == std::string::npos ? "" : line.substr(v);
  }
  return "";
}

std::string write_file(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream f(path);
    f << text;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

}  // namespace

TEST_CASE("cli: receivers from JSON and from flags, listed, shown, changed, tested and deleted") {
  WebhookSink sink;
  CliServer server;

  // Created from the API's JSON, in a file and on stdin.
  json a = {{"name", "hook-a"},
            {"driver", "webhook"},
            {"config", {{"url", sink.url("/a")}, {"secret", kWebhookSecret}}}};
  std::string file = write_file(server.dir + "/a.json", a.dump());
  CliResult r = server.cli({"receivers", "create", "--file", file});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(field(r.out, "name") == "hook-a");
  CHECK(r.out.find("trigger_url") != std::string::npos);
  CHECK(r.out.find(kWebhookSecret) == std::string::npos);  // shown as ********
  json c = a;
  c["name"] = "hook-c";
  r = server.cli({"receivers", "create", "-f", "-", "--json"}, {}, c.dump());
  REQUIRE(r.rc == 0);
  CHECK(json::parse(r.out)["name"] == "hook-c");

  // From flags: --url, and --set for any other config field.
  r = server.cli({"receivers", "create", "--name", "hook-b", "--driver", "webhook", "--url",
                  sink.url("/b"), "--set", std::string("secret=") + kWebhookSecret, "--json"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  json b = json::parse(r.out);
  CHECK(b["config"]["url"] == sink.url("/b"));
  CHECK(b["enabled"] == true);
  std::string b_id = std::to_string(b["id"].get<int64_t>());

  // List: a table for people, the API's JSON for scripts.
  r = server.cli({"receivers", "list"});
  REQUIRE(r.rc == 0);
  CHECK(r.out.rfind("ID  NAME", 0) == 0);
  for (const char* n : {"hook-a", "hook-b", "hook-c"}) CHECK(r.out.find(n) != std::string::npos);
  json list = server.cli_json({"receivers", "list"});
  CHECK(list["total"] == 3);
  CHECK(list["items"].size() == 3);
  list = server.cli_json({"receivers", "list", "--limit", "1", "--offset", "2"});
  REQUIRE(list["items"].size() == 1);
  CHECK(list["items"][0]["name"] == "hook-b");  // by id: a, c, b
  list = server.cli_json({"receivers", "list", "--all", "--limit", "1"});
  CHECK(list["items"].size() == 3);

  // Get by id and by name.
  json got = server.cli_json({"receivers", "get", b_id});
  CHECK(got["name"] == "hook-b");
  CHECK(server.cli_json({"receivers", "get", "hook-b"})["id"] == b["id"]);
  r = server.cli({"receivers", "get", "hook-b"});
  CHECK(field(r.out, "trigger_url") == got["trigger_url"]);
  CHECK(field(r.out, "enabled") == "yes");

  // Update from flags: a dry run first, then saved; the URL survives a rename.
  r = server.cli({"receivers", "update", "hook-b", "--name", "hook-b2", "--dry-run"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(field(r.out, "valid") == "yes");
  CHECK(field(r.out, "url_revoked") == "no: saving keeps the trigger URL");
  CHECK(server.cli_json({"receivers", "get", b_id})["name"] == "hook-b");  // nothing saved
  json updated = server.cli_json({"receivers", "update", "hook-b", "--name", "hook-b2"});
  CHECK(updated["name"] == "hook-b2");
  CHECK(updated["url_revoked"] == false);
  CHECK(updated["trigger_url"] == got["trigger_url"]);
  CHECK(updated["config"]["secret"] == "********");  // kept, not replaced by the mask
  std::string url = updated["trigger_url"];

  // A trigger, and its execution listed and shown.
  r = server.cli({"trigger", url, "--data", "{\"hello\":1}", "--json"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  json accepted = json::parse(r.out);
  std::string exec_id = std::to_string(accepted["execution_id"].get<int64_t>());
  r = server.cli({"executions", "get", exec_id, "--wait"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(field(r.out, "status") == "succeeded");
  REQUIRE(sink.wait_for(1, std::chrono::seconds(5)));
  CHECK(sink.requests()[0].path == "/b");
  json execs = server.cli_json({"executions", "list", "--receiver", "hook-b2"});
  REQUIRE(execs["items"].size() == 1);
  CHECK(execs["items"][0]["id"] == accepted["execution_id"]);
  CHECK(server.cli_json({"executions", "list", "--receiver", "hook-a"})["items"].empty());
  r = server.cli({"executions", "list", "--status", "succeeded"});
  REQUIRE(r.rc == 0);
  CHECK(r.out.find(exec_id + "   " + b_id) != std::string::npos);
  CHECK(server.cli_json({"executions", "get", exec_id})["status"] == "succeeded");

  // A trigger by receiver name, body from stdin, waited for.
  r = server.cli({"trigger", "hook-b2", "--file", "-", "--wait"}, {}, "{\"from\":\"stdin\"}");
  INFO(r.err);
  REQUIRE(r.rc == 0);
  REQUIRE(sink.wait_for(2, std::chrono::seconds(5)));
  CHECK(sink.requests()[1].body.find("stdin") != std::string::npos);

  // Disable revokes the URL in use; enable lets the new one work.
  json disabled = server.cli_json({"receivers", "disable", b_id});
  CHECK(disabled["enabled"] == false);
  CHECK(disabled["url_revoked"] == true);
  r = server.cli({"trigger", url});
  CHECK(r.rc == 1);  // 401: the URL was revoked
  CHECK(r.err.find("HTTP 401") != std::string::npos);
  CHECK(r.err.find(url.substr(url.rfind('/') + 1)) == std::string::npos);  // the token is not shown
  json enabled = server.cli_json({"receivers", "enable", b_id});
  CHECK(enabled["enabled"] == true);
  CHECK(server.cli({"trigger", enabled["trigger_url"], "--wait"}).rc == 0);

  // Rotate: a new URL; the old one stops working.
  json rotated = server.cli_json({"receivers", "rotate", "hook-b2"});
  CHECK(rotated["trigger_url"] != enabled["trigger_url"]);
  CHECK(server.cli({"trigger", enabled["trigger_url"]}).rc == 1);
  CHECK(server.cli({"trigger", rotated["trigger_url"], "--wait"}).rc == 0);
  // --wait follows executions on --server only: another server's URL is refused unsent.
  std::string elsewhere = "http://127.0.0.1:" + std::to_string(free_port()) + "/_webhooks/x";
  r = server.cli({"trigger", elsewhere, "--wait"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("not on it") != std::string::npos);

  // Test: the plan, nothing sent.
  size_t sent = sink.requests().size();
  r = server.cli({"receivers", "test", "hook-a"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(field(r.out, "ok") == "yes");
  json plan = server.cli_json({"receivers", "test", "hook-a"});
  CHECK(plan["dry_run"] == true);
  CHECK(plan["ok"] == true);
  CHECK(sink.requests().size() == sent);

  // Delete: gone, and its id answers "not found" from then on.
  r = server.cli({"receivers", "delete", "hook-a"});
  CHECK(r.rc == 0);
  CHECK(r.out == "deleted receiver 1\n");
  r = server.cli({"receivers", "get", "1"});
  CHECK(r.rc == 4);
  CHECK(r.err.find("HTTP 404") != std::string::npos);
  CHECK(server.cli_json({"receivers", "list"})["total"] == 2);
}

TEST_CASE("cli: executions retry runs a failed execution again") {
  WebhookSink sink;
  sink.script({{500, "down"}});  // then 200
  CliServer server({"--max-attempts", "1"});
  CliResult r = server.cli({"receivers", "create", "--name", "hook", "--driver", "webhook", "--url",
                            sink.url(), "--set", std::string("secret=") + kWebhookSecret});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  r = server.cli({"trigger", "hook", "--data", "{\"n\":1}", "--wait"});
  CHECK(r.rc == 5);  // it failed
  CHECK(field(r.out, "status") == "failed");
  std::string failed = field(r.out, "id");
  r = server.cli({"executions", "retry", failed, "--wait"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(field(r.out, "status") == "succeeded");
  std::string again = field(r.out, "id");
  CHECK(again != failed);
  r = server.cli({"executions", "retry", failed});  // the same retry, not another
  CHECK(r.rc == 0);
  CHECK(r.out == "execution " + again + " made by an earlier retry (retry of " + failed + ")\n");
  r = server.cli({"executions", "retry", again});
  CHECK(r.rc == 1);  // 409: it succeeded
  CHECK(r.err.find("HTTP 409: only a failed execution can be retried") != std::string::npos);
  CHECK(server.cli({"executions", "retry", "999"}).rc == 4);
  CHECK(sink.requests().size() == 2);
}

TEST_CASE("cli: exit codes scripts can rely on") {
  CliServer server;
  std::string home = server.dir;
  std::vector<std::string> at_server = {"TRIPLINE_SERVER=" + server.url};

  SECTION("0: ok, with the global flags before or after the command") {
    CHECK(server.cli({"receivers", "list"}).rc == 0);
    CliResult r =
        run_cli(home, {"--server", server.url, "--json", "tokens", "list", "--token", kAdminToken});
    INFO(r.err);
    CHECK(r.rc == 0);
    CHECK(json::parse(r.out, nullptr, false).contains("items"));
    CHECK(run_cli(home, {"--server=" + server.url, "status"}).rc == 0);
  }
  SECTION("1: the API refused (bad token, invalid receiver), with the API's message") {
    CliResult r = run_cli(home, {"receivers", "list"},
                          {"TRIPLINE_SERVER=" + server.url, "TRIPLINE_ADMIN_TOKEN=wrong-token-x"});
    CHECK(r.rc == 1);
    CHECK(r.err.find("HTTP 401: send an admin token") != std::string::npos);
    CHECK(r.err.find("wrong-token-x") == std::string::npos);
    CHECK(r.out.empty());
    r = server.cli(
        {"receivers", "create", "--name", "x", "--driver", "webhook", "--url", "ftp://nowhere/"});
    CHECK(r.rc == 1);
    CHECK(r.err.find("HTTP 422") != std::string::npos);
    CHECK(r.err.find("  config.url: must be an http:// or https:// URL") != std::string::npos);
    CHECK(r.err.find("  config.secret: ") != std::string::npos);
  }
  SECTION("2: usage errors, and no token anywhere") {
    CHECK(server.cli({"receivers"}).rc == 2);                          // no subcommand
    CHECK(server.cli({"receivers", "frobnicate"}).rc == 2);            // unknown subcommand
    CHECK(server.cli({"receivers", "get"}).rc == 2);                   // missing argument
    CHECK(server.cli({"receivers", "list", "--limit", "0"}).rc == 2);  // out of range
    CHECK(server.cli({"executions", "get", "seven"}).rc == 2);         // not a number
    CHECK(server.cli({"receivers", "create", "--set", "=1"}).rc == 2);
    CHECK(server.cli({"receivers", "create", "--file", home + "/none.json"}).rc == 2);
    CHECK(server.cli({"trigger", "1", "--data", "x", "--file", "y"}).rc == 2);  // one body
    CHECK(server.cli({"trigger", "file:///etc/passwd"}).rc == 2);
    CHECK(run_cli(home, {"receivers", "list", "--server", "ftp://x"}).rc == 2);
    CliResult r = run_cli(home, {"receivers", "list"}, at_server);
    CHECK(r.rc == 2);
    CHECK(r.err.find("no admin token") != std::string::npos);
  }
  SECTION("3: no answer") {
    std::string closed = "http://127.0.0.1:" + std::to_string(free_port());
    CliResult r = server.cli({"receivers", "list", "--server", closed});
    CHECK(r.rc == 3);
    CHECK(r.err.find("no answer") != std::string::npos);
    CHECK(server.cli({"status", "--server", closed}).rc == 3);
  }
  SECTION("4: not found, by id or by name") {
    CHECK(server.cli({"receivers", "get", "999"}).rc == 4);
    CHECK(server.cli({"receivers", "delete", "no-such-name"}).rc == 4);
    CHECK(server.cli({"executions", "get", "999"}).rc == 4);
    CHECK(server.cli({"tokens", "revoke", "999"}).rc == 4);
  }
  SECTION("1: the last admin token cannot be revoked (409)") {
    json tokens = server.cli_json({"tokens", "list"});
    REQUIRE(tokens["items"].size() == 1);
    CliResult r =
        server.cli({"tokens", "revoke", std::to_string(tokens["items"][0]["id"].get<int64_t>())});
    CHECK(r.rc == 1);
    CHECK(r.err.find("HTTP 409") != std::string::npos);
  }
}

TEST_CASE("cli: odd, deep, huge, hung, 5xx and 429 answers exit 3; a server not ready exits 5") {
  CannedPeer peer;
  std::string home = make_temp_dir("tl-cli-peer");
  std::vector<std::string> env = {"TRIPLINE_SERVER=" + peer.url(),
                                  "TRIPLINE_ADMIN_TOKEN=" + kAdminToken};
  auto list = [&] { return run_cli(home, {"receivers", "list", "--timeout", "2"}, env); };

  peer.answer("/api/v1/receivers", 200, "application/json", R"({"items":5,"total":"x"})");
  CliResult r = list();
  CHECK(r.rc == 3);
  CHECK(r.err.find("not what tripline answers") != std::string::npos);
  peer.answer("/api/v1/receivers", 200, "application/json", "[1,2]");
  CHECK(list().rc == 3);
  peer.answer("/api/v1/receivers", 200, "application/json",
              std::string(100000, '[') + std::string(100000, ']'));
  r = list();
  CHECK(r.rc == 3);
  CHECK(r.err.find("nested deeper") != std::string::npos);
  peer.answer("/api/v1/receivers", 200, "text/html", "<html>a proxy's page</html>");
  CHECK(list().rc == 3);
  peer.answer("/api/v1/receivers", 302, "text/html", "");  // not followed: the token stays here
  CHECK(list().rc == 3);
  // Members left out print as "-"; a name with escape sequences cannot drive the terminal.
  peer.answer("/api/v1/receivers", 200, "application/json",
              R"({"items":[{"id":1,"name":"evil\u001b[2J"},{}],"total":2})");
  r = list();
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(r.out.find("evil?[2J") != std::string::npos);
  CHECK(r.out.find('\x1b') == std::string::npos);
  peer.answer("/api/v1/receivers", 200, "application/json", std::string(40 << 20, ' '), true);
  r = list();
  INFO(r.err);
  CHECK(r.rc == 3);
  // 5xx and 429: worth retrying (3), with the API's message; 503 from /readyz: not ready (5).
  peer.answer("/api/v1/receivers", 500, "application/json",
              R"({"error":"internal","message":"disk on fire"})");
  r = list();
  CHECK(r.rc == 3);
  CHECK(r.err.find("HTTP 500: disk on fire") != std::string::npos);
  peer.answer("/api/v1/receivers", 429, "application/json",
              R"({"error":"rate_limited","message":"slow down"})");
  CHECK(list().rc == 3);
  peer.answer("/healthz", 200, "application/json", R"({"status":"ok"})");
  peer.answer("/readyz", 503, "application/json", R"({"status":"not ready"})");
  r = run_cli(home, {"status"}, {"TRIPLINE_SERVER=" + peer.url()});
  CHECK(r.rc == 5);
  CHECK(field(r.out, "ready") == "not ready");
  peer.answer("/readyz", 200, "application/json", R"({"status":"ready"})");
  CHECK(run_cli(home, {"status"}, {"TRIPLINE_SERVER=" + peer.url()}).rc == 0);
  peer.hang(true);
  auto started = std::chrono::steady_clock::now();
  CHECK(list().rc == 3);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  peer.hang(false);
  sh("rm -rf '" + home + "'");
}

TEST_CASE("cli: what the CLI sends: the token to the API only, an update without `enabled`") {
  WebhookSink api;  // records what comes; answers from its script, in order
  std::string home = make_temp_dir("tl-cli-sent");
  json current = {{"id", 7},
                  {"name", "old"},
                  {"driver", "webhook"},
                  {"enabled", true},
                  {"config", {{"url", "http://x/"}, {"secret", "********"}}},
                  {"rules", nullptr},
                  {"auth", nullptr},
                  {"limits", {{"cooldown_seconds", 5}}}};
  json saved = current;
  saved["name"] = "new";
  api.script({{200, current.dump(), {{"Content-Type", "application/json"}}},
              {200, saved.dump(), {{"Content-Type", "application/json"}}},
              {202, R"({"execution_id":1,"receiver_id":7,"status":"queued"})"}});
  std::vector<std::string> env = {"TRIPLINE_SERVER=" + api.url(""),
                                  "TRIPLINE_ADMIN_TOKEN=" + kAdminToken};
  CliResult r = run_cli(home, {"receivers", "update", "7", "--name", "new", "--by", "3"}, env);
  INFO(r.err);
  REQUIRE(r.rc == 0);
  auto sent = api.requests();
  REQUIRE(sent.size() == 2);
  CHECK(sent[0].method == "GET");
  CHECK(sent[0].path == "/api/v1/receivers/7");
  CHECK(sent[0].header("authorization") == "Bearer " + kAdminToken);
  CHECK(sent[1].method == "PUT");
  CHECK(sent[1].header("content-type") == "application/json");
  json body = json::parse(sent[1].body);
  // The API keeps the enabled state it finds when the body leaves it out: a disable made
  // between this GET and PUT is not undone.
  CHECK_FALSE(body.contains("enabled"));
  CHECK(body["name"] == "new");
  CHECK(body["config"]["by"] == 3);
  CHECK(body["config"]["secret"] == "********");  // "keep the stored secret"
  CHECK(body["limits"] == current["limits"]);
  CHECK_FALSE(body.contains("rules"));  // null: left out, as the API reads it
  CHECK_FALSE(body.contains("id"));

  // A trigger URL gets the body and no admin token.
  r = run_cli(home,
              {"trigger", api.url("/_webhooks/abc"), "--data", "{\"a\":1}", "-H", "X-Custom: yes",
               "--idempotency-key", "k-1"},
              env);
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(r.out == "execution 1 queued (receiver 7)\n");
  sent = api.requests();
  REQUIRE(sent.size() == 3);
  CHECK(sent[2].path == "/_webhooks/abc");
  CHECK(sent[2].header("authorization").empty());
  CHECK(sent[2].body == "{\"a\":1}");
  CHECK(sent[2].header("x-custom") == "yes");
  CHECK(sent[2].header("idempotency-key") == "k-1");
  sh("rm -rf '" + home + "'");
}

TEST_CASE("cli: server and token from flags, environment or a private config file") {
  CliServer server;
  std::string home = server.dir + "/home";
  REQUIRE(::mkdir(home.c_str(), 0700) == 0);
  REQUIRE(::mkdir((home + "/.config").c_str(), 0700) == 0);
  REQUIRE(::mkdir((home + "/.config/tripline").c_str(), 0700) == 0);
  std::string config = home + "/.config/tripline/config";
  write_file(config,
             "# tripline CLI\nserver = " + server.url + "\ntoken = \"" + kAdminToken + "\"\n");

  CliResult r = run_cli(home, {"receivers", "list", "--json"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(json::parse(r.out, nullptr, false).contains("items"));

  // Flag over environment over file.
  std::string closed = "http://127.0.0.1:" + std::to_string(free_port());
  CHECK(run_cli(home, {"status"}, {"TRIPLINE_SERVER=" + closed}).rc == 3);
  CHECK(run_cli(home, {"status", "--server", server.url}, {"TRIPLINE_SERVER=" + closed}).rc == 0);
  CHECK(run_cli(home, {"tokens", "list"}, {"TRIPLINE_ADMIN_TOKEN=not-it"}).rc == 1);
  CHECK(run_cli(home, {"tokens", "list", "--token", kAdminToken}, {"TRIPLINE_ADMIN_TOKEN=not-it"})
            .rc == 0);

  // A token others can read is refused, as ssh refuses such a key; without a token, reading is
  // fine, but a file others can change never is: it could send the caller's token (from the
  // environment) to another server.
  REQUIRE(::chmod(config.c_str(), 0644) == 0);
  r = run_cli(home, {"receivers", "list"});
  CHECK(r.rc == 2);
  CHECK(r.err.find("chmod 600 " + config) != std::string::npos);
  CHECK(r.err.find(kAdminToken) == std::string::npos);
  write_file(config, "server = " + server.url + "\n", 0644);
  CHECK(run_cli(home, {"status"}).rc == 0);
  for (mode_t loose : {0666, 0620, 0602}) {
    write_file(config, "server = " + server.url + "\n", loose);
    r = run_cli(home, {"receivers", "list"}, {"TRIPLINE_ADMIN_TOKEN=" + kAdminToken});
    INFO(loose);
    CHECK(r.rc == 2);
    CHECK(r.err.find("let others change it") != std::string::npos);
  }
  write_file(config, "server = " + server.url + "\n", 0644);
  write_file(config, "sever = " + server.url + "\n");
  r = run_cli(home, {"status"});
  CHECK(r.rc == 2);
  CHECK(r.err.find(":1: unknown key \"sever\"") != std::string::npos);

  // --config and TRIPLINE_CONFIG name another file, which must then exist.
  std::string other = write_file(server.dir + "/other.conf", "token = " + kAdminToken + "\n");
  CHECK(run_cli(home, {"tokens", "list", "--server", server.url, "--config", other}).rc == 0);
  CHECK(
      run_cli(home, {"tokens", "list", "--server", server.url}, {"TRIPLINE_CONFIG=" + other}).rc ==
      0);
  CHECK(run_cli(home, {"status", "--config", server.dir + "/missing.conf"}).rc == 2);
}

TEST_CASE("cli: tokens create, list, revoke; status") {
  CliServer server;
  CliResult r = server.cli({"tokens", "create", "ci-job"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(r.err.find("not shown again") != std::string::npos);
  json created = server.cli_json({"tokens", "create", "ci-job-2"});
  std::string token = created["token"];
  std::string id = std::to_string(created["id"].get<int64_t>());
  r = server.cli({"tokens", "list"});
  CHECK(r.out.find("ci-job-2") != std::string::npos);
  CHECK(r.out.find(token) == std::string::npos);

  std::vector<std::string> with_new = {"TRIPLINE_SERVER=" + server.url,
                                       "TRIPLINE_ADMIN_TOKEN=" + token};
  r = run_cli(server.dir, {"status"}, with_new);
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(field(r.out, "ready") == "ready");
  CHECK(field(r.out, "workers") == "running");
  CHECK(field(r.out, "check database") == "ok");
  r = server.cli({"tokens", "revoke", id});
  CHECK(r.rc == 0);
  CHECK(r.out == "revoked token " + id + "\n");
  CHECK(run_cli(server.dir, {"tokens", "list"}, with_new).rc == 1);  // revoked: 401

  // Roles: a read-only token from the CLI is refused a change (exit 1, the API's 403 message).
  json ro = server.cli_json({"tokens", "create", "dash", "--role", "read-only"});
  CHECK(ro["role"] == "read-only");
  CHECK(server.cli({"tokens", "create", "x", "--role", "root"}).rc == 2);  // not a role
  std::vector<std::string> as_ro = {"TRIPLINE_SERVER=" + server.url,
                                    "TRIPLINE_ADMIN_TOKEN=" + ro["token"].get<std::string>()};
  r = run_cli(server.dir, {"tokens", "create", "escalate"}, as_ro);
  CHECK(r.rc == 1);
  CHECK(r.err.find("admin role") != std::string::npos);
  std::string ro_id = std::to_string(ro["id"].get<int64_t>());
  r = server.cli({"tokens", "role", ro_id, "operator"});
  CHECK(r.rc == 0);
  CHECK(r.out == "token " + ro_id + " is now operator\n");
  r = server.cli({"tokens", "list"});
  CHECK(r.out.find("operator") != std::string::npos);
  // The audit log names what was done, newest first.
  r = server.cli({"audit", "list", "--target", "token"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(r.out.find("token.role") < r.out.find("token.create"));
  CHECK(r.out.find("token.revoke") != std::string::npos);
  json page = server.cli_json({"audit", "list", "--limit", "1"});
  CHECK(page["items"].size() == 1);
  CHECK(page["items"][0]["action"] == "token.role");
  CHECK(server.cli({"audit", "list", "--target", "nonsense"}).rc == 1);

  // status without a token: health and readiness only.
  r = run_cli(server.dir, {"status", "--json"}, {"TRIPLINE_SERVER=" + server.url});
  CHECK(r.rc == 0);
  json s = json::parse(r.out);
  CHECK(s["readyz"]["status"] == "ready");
  CHECK_FALSE(s["readyz"].contains("checks"));
  CHECK(s["workers"].is_null());
}

TEST_CASE("cli: --help on every command exits 0 and states the exit codes") {
  std::string home = make_temp_dir("tl-cli-help");
  std::vector<std::vector<std::string>> commands = {{"receivers"},
                                                    {"receivers", "list"},
                                                    {"receivers", "get"},
                                                    {"receivers", "create"},
                                                    {"receivers", "update"},
                                                    {"receivers", "delete"},
                                                    {"receivers", "enable"},
                                                    {"receivers", "disable"},
                                                    {"receivers", "rotate"},
                                                    {"receivers", "test"},
                                                    {"executions"},
                                                    {"executions", "list"},
                                                    {"executions", "get"},
                                                    {"executions", "retry"},
                                                    {"tokens"},
                                                    {"tokens", "create"},
                                                    {"tokens", "list"},
                                                    {"tokens", "revoke"},
                                                    {"tokens", "role"},
                                                    {"audit"},
                                                    {"audit", "list"},
                                                    {"trigger"},
                                                    {"status"},
                                                    {"completion"},
                                                    {"completion", "bash"}};
  for (auto args : commands) {
    args.push_back("--help");
    CliResult r = run_cli(home, args);
    INFO(args[0] << " " << (args.size() > 2 ? args[1] : ""));
    CHECK(r.rc == 0);
    CHECK(r.out.find("Usage:") != std::string::npos);
    CHECK(r.out.find("Exit codes: 0 ok, 1 API refused") != std::string::npos);
  }
  CliResult r = run_cli(home, {"receivers", "create", "--help"});
  CHECK(r.out.find("--driver scale-service --service web --action up --by 2 --max 5") !=
        std::string::npos);
  for (const char* top : {"--help", "serve"}) {
    std::vector<std::string> args = {top};
    if (std::string(top) == "serve") args.push_back("--help");
    r = run_cli(home, args);
    CHECK(r.rc == 0);
    CHECK(r.out.find("Exit codes of the client commands") != std::string::npos);
  }
  sh("rm -rf '" + home + "'");
}

TEST_CASE("cli: bash completion completes commands, subcommands and flags") {
  if (!binary_or_skip("/bin/bash", "bash")) return;
  std::string home = make_temp_dir("tl-cli-completion");
  CliResult r = run_cli(home, {"completion", "bash"});
  REQUIRE(r.rc == 0);
  std::string script = write_file(home + "/tripline.bash", r.out);
  auto complete = [&](const std::string& line) {
    // COMP_WORDS as bash splits the line, the cursor on its last word.
    std::string cmd = "bash -c 'source " + script + " && COMP_WORDS=(" + line +
                      ") && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _tripline && "
                      "echo \"${COMPREPLY[*]}\"'";
    int rc = 0;
    std::string out = sh(cmd, &rc);
    REQUIRE(rc == 0);
    return out;
  };
  CHECK(complete("tripline rec") == "receivers");
  CHECK(complete("tripline s") == "serve status");
  CHECK(complete("tripline receivers cr") == "create");
  CHECK(complete("tripline receivers create --dr") == "--driver");
  CHECK(complete("tripline --server http://x:1 executions \"\"") ==
        "list get retry --help --server "
        "--token --config --json "
        "--timeout");
  CHECK(complete("tripline tokens re") == "revoke");
  CHECK(complete("tripline serve --h") == "--help");
  CHECK(complete("tripline executions r") == "retry");
  CHECK(complete("tripline receivers list --limit \"\"").empty());  // a value, not a word
  sh("rm -rf '" + home + "'");
}

TEST_CASE("cli: receivers create with scale-service flags scales a real swarm service") {
  if (!swarm_or_skip()) return;
  Swarm& swarm = Swarm::get();
  swarm.create_service("cli-web", 1);
  CliServer server({"--docker-host", swarm.docker_host()});
  // The issue's one-liner, unnamed: the receiver is named after what it does.
  CliResult r = server.cli({"receivers", "create", "--driver", "scale-service", "--service",
                            "cli-web", "--action", "up", "--by", "2", "--max", "5"});
  INFO(r.err);
  REQUIRE(r.rc == 0);
  CHECK(field(r.out, "name") == "cli-web-up");
  CHECK(field(r.out, "target") == "swarm:cli-web");
  json plan = server.cli_json({"receivers", "test", "cli-web-up"});
  CHECK(plan["ok"] == true);
  CHECK(plan["plan"]["replicas"] == 3);
  CHECK(swarm.replicas("cli-web") == 1);  // a dry run
  r = server.cli({"trigger", "cli-web-up", "--wait"});
  INFO(r.err);
  CHECK(r.rc == 0);
  CHECK(swarm.replicas("cli-web") == 3);
  // Bounds from flags are validated by the API: 422, exit 1, the field named.
  r = server.cli({"receivers", "update", "cli-web-up", "--min", "7"});
  CHECK(r.rc == 1);
  CHECK(r.err.find("config.min") != std::string::npos);

  // A dry run whose plan fails (the service is gone): exit 5, and why.
  swarm.docker("service rm cli-web");
  r = server.cli({"receivers", "test", "cli-web-up"});
  CHECK(r.rc == 5);
  CHECK(field(r.out, "ok") == "no");
  CHECK(field(r.out, "error").find("cli-web") != std::string::npos);
}
