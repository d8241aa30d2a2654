// Accountability (issue 15): admin-token roles and the audit log, against a real server
// in-process (real SQLite file, real sockets).
//   - every route of the route table (server/api/routes.cpp) is called with every role: a
//     read-only token changes nothing (every non-GET answers 403 naming the role needed, and
//     every table of the database is byte-for-byte the same after), an operator is refused
//     exactly the admin routes, and every role reaches the routes its role allows;
//   - the audit log records receiver create/update/enable/disable/rotate/delete, subscription,
//     token create/role/revoke and workers pause/resume, with who, from where, and before ->
//     after; no secret value is in its answer or anywhere in the database files;
//   - it survives a restart; a change that fails writes no row; retention bounds it.
#include <SQLiteCpp/SQLiteCpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "crypto.h"
#include "harness.h"
#include "pruner.h"
#include "routes.h"
#include "tests/support/externaldns_fake.h"
#include "tests/support/webhook_sink.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

ServiceOptions no_docker(ServiceOptions o = {}) {
  if (!o.drivers.is_set("docker-host")) o.drivers.set("docker-host", "http://127.0.0.1:1");
  return o;
}

OutboundResponse as(const TestServer& s, const std::string& token, const std::string& method,
                    const std::string& path, const json& body = nullptr) {
  return s.request(method, path, body, false, {{"Authorization", "Bearer " + token}});
}

json expect(const OutboundResponse& r, int status) {
  INFO(r.status << " " << r.body);
  REQUIRE(r.status == status);
  return r.body.empty() ? json() : json::parse(r.body);
}

// Every row of every table, in a stable order: what "the state is unchanged" compares.
std::string dump_database(const std::string& data_dir) {
  SQLite::Database db(data_dir + "/tripline.db", SQLite::OPEN_READONLY);
  std::ostringstream out;
  SQLite::Statement tables(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  while (tables.executeStep()) {
    std::string t = tables.getColumn(0).getString();
    out << "== " << t << "\n";
    SQLite::Statement rows(db, "SELECT * FROM \"" + t + "\" ORDER BY rowid");
    while (rows.executeStep()) {
      for (int i = 0; i < rows.getColumnCount(); ++i) {
        const auto& c = rows.getColumn(i);
        out << (c.isNull() ? "NULL"
                           : crypto::hex(std::string_view(static_cast<const char*>(c.getBlob()),
                                                          c.getBytes())))
            << "|";
      }
      out << "\n";
    }
  }
  return out.str();
}

// The bytes of the database and its WAL.
std::string database_bytes(const std::string& data_dir) {
  std::string all;
  for (const char* f : {"/tripline.db", "/tripline.db-wal"}) {
    std::ifstream in(data_dir + f, std::ios::binary);
    all += std::string(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

std::string std_base64(const std::string& raw) {
  // Standard Webhooks secrets are standard base64; base64url of 32 bytes may hold - or _.
  std::string b = crypto::base64url_encode(raw);
  for (char& c : b) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b.size() % 4) b += '=';
  return b;
}

std::string whsec() { return "whsec_" + std_base64(crypto::random_bytes(32)); }

struct Tokens {
  std::string op, ro;
  int64_t op_id = 0, ro_id = 0;
};

Tokens make_role_tokens(const TestServer& s) {
  Tokens t;
  json op =
      expect(s.request("POST", "/api/v1/tokens", {{"name", "ops"}, {"role", "operator"}}), 201);
  json ro =
      expect(s.request("POST", "/api/v1/tokens", {{"name", "dash"}, {"role", "read-only"}}), 201);
  CHECK(op["role"] == "operator");
  CHECK(ro["role"] == "read-only");
  t.op = op["token"];
  t.ro = ro["token"];
  t.op_id = op["id"];
  t.ro_id = ro["id"];
  return t;
}

json webhook_receiver(const std::string& name, const std::string& secret,
                      const std::string& authorization) {
  return {{"name", name},
          {"driver", "webhook"},
          {"config",
           {{"url", "https://hooks.invalid/in"},
            {"secret", secret},
            {"authorization", authorization}}}};
}

// A concrete path for a route's template.
std::string fill(std::string path, int64_t rid, int64_t sid, int64_t token_id) {
  auto put = [&](const std::string& name, int64_t v) {
    for (size_t at; (at = path.find(name)) != std::string::npos;)
      path.replace(at, name.size(), std::to_string(v));
  };
  bool tokens = path.rfind("/api/v1/tokens", 0) == 0;
  put("{sid}", sid);
  put("{did}", 999999);
  put("{id}", tokens ? token_id : (path.rfind("/api/v1/executions", 0) == 0 ? 999999 : rid));
  return path;
}

int rank(Role r) { return static_cast<int>(r); }

}  // namespace

TEST_CASE("roles: every route of the table, with every role") {
  TestServer s("", no_docker());
  Tokens t = make_role_tokens(s);
  json rec = s.create_receiver(webhook_receiver("roles-hook", whsec(), "Bearer peer-credential"));
  int64_t rid = rec["id"];
  json sub = expect(s.request("POST", "/api/v1/receivers/" + std::to_string(rid) + "/notifications",
                              {{"url", "https://notify.invalid/e"}, {"secret", whsec()}}),
                    201);
  int64_t sid = sub["id"];

  const auto& routes = api_routes();
  REQUIRE(routes.size() >= 30);
  const std::pair<Role, const std::string*> callers[] = {{Role::kReadOnly, &t.ro},
                                                         {Role::kOperator, &t.op}};

  SECTION("a role below the route's is refused with 403, and nothing changes") {
    for (const auto& [role, token] : callers) {
      std::string before = dump_database(s.data_dir());
      int refused = 0;
      for (const ApiRoute& r : routes) {
        if (rank(role) >= rank(r.role)) continue;
        std::string path = fill(r.path, rid, sid, t.ro_id);
        if (r.query) path += std::string("?") + r.query;
        // A body that would be valid, so only the role can be why it is refused.
        json body = std::string(r.method) == "GET" || std::string(r.method) == "DELETE"
                        ? json(nullptr)
                        : json{{"name", "x"}, {"role", "admin"}};
        auto resp = as(s, *token, r.method, path, body);
        INFO(to_string(role) << " " << r.method << " " << path << " -> " << resp.status << " "
                             << resp.body);
        REQUIRE(resp.status == 403);
        json err = json::parse(resp.body);
        CHECK(err["error"] == "forbidden");
        CHECK(err["message"].get<std::string>().find(std::string("the ") + to_string(r.role) +
                                                     " role") != std::string::npos);
        CHECK(err.size() == 2);  // the one error shape: error, message
        ++refused;
      }
      CHECK(dump_database(s.data_dir()) == before);
      // read-only: every non-GET route and the operator's reads; operator: the admin routes.
      if (role == Role::kReadOnly) {
        int non_get = 0;
        for (const ApiRoute& r : routes) non_get += std::string(r.method) != "GET";
        CHECK(refused >= non_get);
      } else {
        int admin_only = 0;
        for (const ApiRoute& r : routes) admin_only += r.role == Role::kAdmin;
        CHECK(refused == admin_only);
      }
    }
    // Every non-GET route needs more than read-only: a dashboard's token changes nothing.
    for (const ApiRoute& r : routes)
      if (std::string(r.method) != "GET") CHECK(rank(r.role) > rank(Role::kReadOnly));
  }

  SECTION("a role at or above the route's gets past the check") {
    // Changes last (DELETE last of all), so the fixtures exist while the reads run.
    std::vector<const ApiRoute*> ordered;
    for (const ApiRoute& r : routes) ordered.push_back(&r);
    std::stable_sort(ordered.begin(), ordered.end(), [](const ApiRoute* a, const ApiRoute* b) {
      auto weight = [](const ApiRoute* r) {
        std::string m = r->method;
        return m == "GET" ? 0 : m == "DELETE" ? 2 : 1;
      };
      return weight(a) < weight(b);
    });
    std::vector<std::pair<Role, const std::string*>> all = {
        {Role::kReadOnly, &t.ro}, {Role::kOperator, &t.op}, {Role::kAdmin, &kAdminToken}};
    for (const auto& [role, token] : all) {
      for (const ApiRoute* r : ordered) {
        if (rank(role) < rank(r->role)) continue;
        if (role != Role::kAdmin && std::string(r->method) == "DELETE") continue;
        std::string path = fill(r->path, rid, sid, t.op_id);
        if (r->query) path += std::string("?") + r->query;
        // Admin's own changes of tokens target the operator's token; its receiver DELETE the
        // fixture (last).
        json body = std::string(r->method) == "GET" || std::string(r->method) == "DELETE"
                        ? json(nullptr)
                        : json::object();
        auto resp = as(s, *token, r->method, path, body);
        INFO(to_string(role) << " " << r->method << " " << path << " -> " << resp.status << " "
                             << resp.body);
        CHECK(resp.status != 403);
        CHECK(resp.status != 401);
        CHECK(resp.status != 405);
        if (std::string(r->method) == "GET") CHECK((resp.status == 200 || resp.status == 404));
      }
    }
  }

  SECTION("the operator's acts, done for real") {
    std::string base = "/api/v1/receivers/" + std::to_string(rid);
    CHECK(expect(as(s, t.op, "POST", base + "/disable"), 200)["enabled"] == false);
    CHECK(expect(as(s, t.op, "POST", base + "/enable"), 200)["enabled"] == true);
    CHECK(expect(as(s, t.op, "POST", base + "/test"), 200)["dry_run"] == true);
    json edit = webhook_receiver("roles-hook", kRedacted, kRedacted);
    edit["config"]["url"] = "https://hooks.invalid/other";
    CHECK(expect(as(s, t.op, "PUT", base + "?dry_run=true", edit), 200)["dry_run"] == true);
    // The same PUT, not a dry run, is an admin's.
    CHECK(as(s, t.op, "PUT", base, edit).status == 403);
    CHECK(as(s, t.op, "PUT", base + "?dry_run=false", edit).status == 403);
    CHECK(expect(as(s, t.op, "POST", "/api/v1/workers/pause"), 200)["paused"] == true);
    CHECK(expect(as(s, t.op, "POST", "/api/v1/workers/resume"), 200)["paused"] == false);
    CHECK(as(s, t.op, "GET", "/api/v1/audit").status == 200);
    CHECK(as(s, t.ro, "GET", "/api/v1/audit").status == 403);
    CHECK(as(s, t.op, "POST", "/api/v1/tokens", {{"name", "escalate"}, {"role", "admin"}}).status ==
          403);
    CHECK(as(s, t.op, "PUT", "/api/v1/tokens/" + std::to_string(t.op_id), {{"role", "admin"}})
              .status == 403);
    // The read-only token sees what a dashboard needs.
    for (const std::string& p :
         std::vector<std::string>{"/api/v1/receivers", base, "/api/v1/executions",
                                  "/api/v1/workers", "/api/v1/drivers", base + "/deliveries"})
      CHECK(as(s, t.ro, "GET", p).status == 200);
    // No credential, or a wrong one, stays 401 whatever the route.
    CHECK(s.request("DELETE", base, nullptr, false).status == 401);
    CHECK(as(s, "tl_not-a-token", "GET", "/api/v1/receivers").status == 401);
  }

  SECTION("a demoted token loses its rights at once; the last admin stays an admin") {
    json demoted = expect(
        s.request("PUT", "/api/v1/tokens/" + std::to_string(t.op_id), {{"role", "read-only"}}),
        200);
    CHECK(demoted["role"] == "read-only");
    CHECK(as(s, t.op, "POST", "/api/v1/workers/pause").status == 403);
    expect(s.request("PUT", "/api/v1/tokens/" + std::to_string(t.op_id), {{"role", "admin"}}), 200);
    CHECK(as(s, t.op, "POST", "/api/v1/workers/pause").status == 200);
    expect(as(s, t.op, "POST", "/api/v1/workers/resume"), 200);
    // Two admins now (the env token, ops). The env token cannot be demoted; once ops is
    // demoted again, the env token is the last admin and cannot be revoked either.
    json items = expect(s.request("GET", "/api/v1/tokens"), 200)["items"];
    int64_t env_id = 0;
    for (const auto& i : items)
      if (i["from_env"] == true) env_id = i["id"];
    REQUIRE(env_id > 0);
    CHECK(s.request("PUT", "/api/v1/tokens/" + std::to_string(env_id), {{"role", "operator"}})
              .status == 409);
    expect(s.request("PUT", "/api/v1/tokens/" + std::to_string(t.op_id), {{"role", "operator"}}),
           200);
    CHECK(s.request("DELETE", "/api/v1/tokens/" + std::to_string(env_id)).status == 409);
    // A bad role is a 422 in the one shape.
    auto bad = s.request("POST", "/api/v1/tokens", {{"name", "x"}, {"role", "root"}});
    CHECK(bad.status == 422);
    CHECK(json::parse(bad.body)["fields"][0]["field"] == "role");
  }
}

TEST_CASE("audit: every management change is recorded, with before -> after, and no secret") {
  std::string dir = make_temp_dir("tl-audit");
  const std::string hook_secret = whsec(), hook_secret2 = whsec();
  const std::string hook_authz = "Bearer hook-authz-" + crypto::hex(crypto::random_bytes(8));
  const std::string bearer = "in-bearer-" + crypto::hex(crypto::random_bytes(12));
  const std::string basic_pw = "basic-pw-" + crypto::hex(crypto::random_bytes(12));
  const std::string gh = "gh-secret-" + crypto::hex(crypto::random_bytes(12));
  const std::string notify_secret = "whsec_" + std_base64(crypto::random_bytes(32));
  std::vector<std::string> secrets = {
      hook_secret, hook_secret2, hook_authz,    bearer,
      basic_pw,    gh,           notify_secret, notify_secret.substr(6)};
  json listed;
  int64_t rid = 0, op_id = 0;
  {
    TestServer s(dir, no_docker());
    json body = webhook_receiver("audited", hook_secret, hook_authz);
    body["auth"] = {{"bearer_token", bearer},
                    {"basic_username", "u"},
                    {"basic_password", basic_pw},
                    {"github_secret", gh}};
    json rec = s.create_receiver(body);
    rid = rec["id"];
    std::string base = "/api/v1/receivers/" + std::to_string(rid);
    json edit = body;
    edit["name"] = "audited-2";
    edit["config"]["url"] = "https://hooks.invalid/v2";
    edit["config"]["secret"] = hook_secret2;       // a new secret
    edit["config"]["authorization"] = hook_authz;  // sent again as it was: no change
    edit["auth"]["bearer_token"] = kRedacted;
    edit["auth"]["basic_password"] = kRedacted;
    edit["auth"]["github_secret"] = kRedacted;
    expect(s.request("PUT", base, edit), 200);
    expect(s.request("PUT", base + "?dry_run=true", edit), 200);  // no change: no row
    expect(s.request("POST", base + "/test"), 200);               // no change: no row
    expect(s.request("POST", base + "/disable"), 200);
    expect(s.request("POST", base + "/enable"), 200);
    expect(s.request("POST", base + "/rotate"), 200);
    json sub = expect(s.request("POST", base + "/notifications",
                                {{"url", "https://notify.invalid/e"}, {"secret", notify_secret}}),
                      201);
    std::string sub_path = base + "/notifications/" + std::to_string(sub["id"].get<int64_t>());
    expect(s.request("PUT", sub_path, {{"events", {"failed"}}}), 200);
    expect(s.request("DELETE", sub_path), 204);
    json op =
        expect(s.request("POST", "/api/v1/tokens", {{"name", "ops"}, {"role", "operator"}}), 201);
    op_id = op["id"];
    secrets.push_back(op["token"]);
    expect(s.request("PUT", "/api/v1/tokens/" + std::to_string(op_id), {{"role", "read-only"}}),
           200);
    // An operator's act names the operator.
    expect(s.request("PUT", "/api/v1/tokens/" + std::to_string(op_id), {{"role", "operator"}}),
           200);
    expect(as(s, op["token"].get<std::string>(), "POST", "/api/v1/workers/pause"), 200);
    expect(s.request("POST", "/api/v1/workers/resume"), 200);
    expect(s.request("DELETE", "/api/v1/tokens/" + std::to_string(op_id)), 204);
    expect(s.request("DELETE", base), 204);

    auto page = s.request("GET", "/api/v1/audit?limit=500");
    listed = expect(page, 200);
    for (const auto& secret : secrets) {
      INFO("secret " << secret.substr(0, 12) << "...");
      CHECK(page.body.find(secret) == std::string::npos);
    }
    // Paging: two at a time, newest first, the same rows.
    std::vector<int64_t> paged;
    std::string next = "/api/v1/audit?limit=2";
    for (int guard = 0; guard < 50; ++guard) {
      json p = expect(s.request("GET", next), 200);
      for (const auto& i : p["items"]) paged.push_back(i["id"]);
      if (p["next_before"].is_null()) break;
      next = "/api/v1/audit?limit=2&before=" + std::to_string(p["next_before"].get<int64_t>());
    }
    std::vector<int64_t> all;
    for (const auto& i : listed["items"]) all.push_back(i["id"]);
    CHECK(paged == all);
    CHECK(std::is_sorted(all.rbegin(), all.rend()));
    // target= narrows to one receiver's rows.
    json mine =
        expect(s.request("GET", "/api/v1/audit?target=receiver:" + std::to_string(rid)), 200);
    CHECK(mine["items"].size() == 6);  // create, update, disable, enable, rotate, delete
    for (const auto& i : mine["items"]) CHECK(i["target"]["id"] == rid);
    CHECK(s.request("GET", "/api/v1/audit?target=nonsense").status == 400);
    CHECK(s.request("GET", "/api/v1/audit?limit=0").status == 400);
  }

  // Oldest first, as done.
  std::vector<json> rows(listed["items"].rbegin(), listed["items"].rend());
  std::vector<std::string> actions;
  for (const auto& r : rows) actions.push_back(r["action"]);
  std::vector<std::string> expected = {
      "token.create",  // TRIPLINE_ADMIN_TOKEN at the first start
      "receiver.create", "receiver.update",     "receiver.disable",    "receiver.enable",
      "receiver.rotate", "subscription.create", "subscription.update", "subscription.delete",
      "token.create",    "token.role",          "token.role",          "workers.pause",
      "workers.resume",  "token.revoke",        "receiver.delete"};
  CHECK(actions == expected);
  REQUIRE(rows.size() == expected.size());
  CHECK(rows[0]["actor"]["name"] == "TRIPLINE_ADMIN_TOKEN at start-up");
  CHECK(rows[0]["actor"]["token_id"].is_null());
  // Receiver rows: who, from where, and the change.
  const json& create = rows[1];
  CHECK(create["actor"]["name"] == "from TRIPLINE_ADMIN_TOKEN");
  CHECK(create["actor"]["role"] == "admin");
  CHECK(create["actor"]["token_id"].is_number_integer());
  CHECK(create["source"] == "127.0.0.1");
  CHECK(create["target"] == json({{"type", "receiver"}, {"id", rid}, {"name", "audited"}}));
  CHECK(create["before"].is_null());
  CHECK(create["after"]["config"]["secret"] == kRedacted);
  CHECK(create["after"]["config"]["authorization"] == kRedacted);
  CHECK(create["after"]["config"]["url"] == "https://hooks.invalid/in");
  for (const char* f : {"bearer_token", "basic_password", "github_secret"})
    CHECK(create["after"]["auth"][f] == kRedacted);
  CHECK(create["after"]["auth"]["basic_username"] == "u");
  const json& update = rows[2];
  CHECK(update["before"]["name"] == "audited");
  CHECK(update["after"]["name"] == "audited-2");
  CHECK(update["before"]["config"]["url"] == "https://hooks.invalid/in");
  CHECK(update["after"]["config"]["url"] == "https://hooks.invalid/v2");
  CHECK(update["after"]["config"]["secret"] == kRedacted);
  // Redacted on both sides, a changed secret is still named (and only a changed one).
  CHECK(update["after"]["secrets_changed"] == json({"config.secret"}));
  CHECK_FALSE(rows[3]["after"].contains("secrets_changed"));
  CHECK(rows[3]["before"]["enabled"] == true);
  CHECK(rows[3]["after"]["enabled"] == false);
  CHECK(rows[4]["after"]["enabled"] == true);
  CHECK(rows[5]["after"]["generation"].get<int64_t>() ==
        rows[5]["before"]["generation"].get<int64_t>() + 1);
  CHECK(rows[6]["after"]["secret"] == kRedacted);
  CHECK(rows[7]["before"]["events"].size() == 4);
  CHECK(rows[7]["after"]["events"] == json({"failed"}));
  CHECK(rows[8]["after"].is_null());
  CHECK(rows[9]["target"] == json({{"type", "token"}, {"id", op_id}, {"name", "ops"}}));
  CHECK(rows[9]["after"] == json({{"name", "ops"}, {"role", "operator"}, {"from_env", false}}));
  CHECK(rows[10]["before"]["role"] == "operator");
  CHECK(rows[10]["after"]["role"] == "read-only");
  CHECK(rows[12]["actor"]["name"] == "ops");
  CHECK(rows[12]["actor"]["role"] == "operator");
  CHECK(rows[12]["after"] == json({{"paused", true}}));
  CHECK(rows[14]["before"]["role"] == "operator");
  CHECK(rows[14]["after"].is_null());
  CHECK(rows[15]["before"]["name"] == "audited-2");
  CHECK(rows[15]["before"]["config"]["secret"] == kRedacted);
  CHECK(rows[15]["after"].is_null());
  for (const auto& r : rows) CHECK(r["at"].get<std::string>().size() >= 20);

  // No secret in the database's bytes (nor in the WAL).
  std::string bytes = database_bytes(dir);
  REQUIRE(bytes.find("receiver.rotate") != std::string::npos);  // the log is in what is read
  for (const auto& secret : secrets) {
    INFO("secret " << secret.substr(0, 12) << "...");
    CHECK(bytes.find(secret) == std::string::npos);
  }

  // The log survives a restart, row for row.
  {
    TestServer again(dir, no_docker());
    json after = expect(again.request("GET", "/api/v1/audit?limit=500"), 200);
    CHECK(after["items"] == listed["items"]);
  }
  sh("rm -rf " + dir);
}

TEST_CASE(
    "audit: a receiver's delete lists the subscriptions it removed, secrets and URL passwords "
    "redacted") {
  TestServer s("", no_docker());
  json rec = s.create_receiver(webhook_receiver("with-subs", whsec(), "Bearer x"));
  std::string base = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  const std::string sub_secret = whsec();
  expect(s.request(
             "POST", base + "/notifications",
             {{"url", "https://alice:pw-in-url@notify.invalid/deleted"}, {"secret", sub_secret}}),
         201);
  expect(s.request("DELETE", base), 204);
  auto page = s.request("GET", "/api/v1/audit?limit=1");
  CHECK(page.body.find(sub_secret) == std::string::npos);
  CHECK(page.body.find("pw-in-url") == std::string::npos);
  json row = expect(page, 200)["items"][0];
  CHECK(row["action"] == "receiver.delete");
  REQUIRE(row["before"]["subscriptions"].size() == 1);
  CHECK(row["before"]["subscriptions"][0]["url"] ==
        std::string("https://alice:") + kRedacted + "@notify.invalid/deleted");
  CHECK(row["before"]["subscriptions"][0]["secret"] == kRedacted);
  CHECK(row["after"].is_null());
}

TEST_CASE("audit: a change that fails writes no row") {
  TestServer s("", no_docker());
  json rec = s.create_receiver(webhook_receiver("taken", whsec(), "Bearer x"));
  std::string base = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  auto count = [&] {
    return expect(s.request("GET", "/api/v1/audit?limit=500"), 200)["items"].size();
  };
  size_t before = count();
  std::string db_before = dump_database(s.data_dir());
  // Refused before the store: a body the receiver's checks reject.
  CHECK(s.request("POST", "/api/v1/receivers", {{"name", ""}, {"driver", "webhook"}}).status ==
        422);
  // Refused by the store inside the transaction: a name already taken (UNIQUE), so the audit row
  // written with it is rolled back too.
  CHECK(s.request("POST", "/api/v1/receivers", webhook_receiver("taken", whsec(), "Bearer y"))
            .status == 409);
  json other = s.create_receiver(webhook_receiver("other", whsec(), "Bearer z"));
  size_t with_other = count();
  CHECK(with_other == before + 1);
  db_before = dump_database(s.data_dir());
  json rename = webhook_receiver("taken", kRedacted, kRedacted);
  CHECK(s.request("PUT", "/api/v1/receivers/" + std::to_string(other["id"].get<int64_t>()), rename)
            .status == 409);
  CHECK(s.request("POST", "/api/v1/receivers/999999/enable").status == 404);
  CHECK(s.request("DELETE", "/api/v1/receivers/999999").status == 404);
  CHECK(s.request("DELETE", "/api/v1/tokens/999999").status == 404);
  CHECK(s.request("PUT", "/api/v1/tokens/999999", {{"role", "operator"}}).status == 404);
  json items = expect(s.request("GET", "/api/v1/tokens"), 200)["items"];
  REQUIRE(items.size() == 1);
  std::string last = "/api/v1/tokens/" + std::to_string(items[0]["id"].get<int64_t>());
  CHECK(s.request("DELETE", last).status == 409);                        // the last admin
  CHECK(s.request("PUT", last, {{"role", "read-only"}}).status == 409);  // from the environment
  CHECK(s.request("POST", base + "/notifications", {{"url", "gopher://x"}}).status == 422);
  CHECK(count() == with_other);
  CHECK(dump_database(s.data_dir()) == db_before);
}

TEST_CASE("audit: retention keeps the newest rows and none past the age") {
  std::string dir = make_temp_dir("tl-audit-prune");
  ManualClock clock(1'000'000'000'000);
  StoreOptions so;
  so.clock = &clock;
  auto opened = Store::open(dir + "/t.db", so);
  REQUIRE(opened.ok());
  std::unique_ptr<Store> store = std::move(opened).value();
  Store& st = *store;
  AuditEntry e;
  e.actor_name = "t";
  e.actor_role = "admin";
  e.action = "workers.pause";
  e.target_type = "workers";
  for (int i = 0; i < 10; ++i) {
    REQUIRE(st.record_audit(e).ok());
    clock.advance(std::chrono::hours(1));  // an hour apart
  }
  // Count: rows younger than the floor (30 days by default) stay whatever their number, so a
  // flood of fresh rows cannot push the record of recent changes out.
  Pruner::Options count_only;
  count_only.policy.max_age_ms = 0;
  count_only.policy.keep_per_receiver = 0;
  count_only.audit = {0, 6};
  count_only.batch = 3;  // several batches
  REQUIRE(Pruner(st, count_only).run_once().ok());
  AuditFilter all;
  all.limit = 100;
  auto left = st.list_audit(all);
  REQUIRE(left.ok());
  CHECK(left->size() == 10);
  // Past the floor: the newest 6 stay.
  count_only.audit.count_floor_ms = 3600 * 1000;
  REQUIRE(Pruner(st, count_only).run_once().ok());
  left = st.list_audit(all);
  REQUIRE(left.ok());
  REQUIRE(left->size() == 6);
  CHECK(left->front().id == 10);
  CHECK(left->back().id == 5);
  // Age: rows older than 4 h go (now is 10 h after the first).
  Pruner::Options age_only = count_only;
  age_only.audit = {4 * 3600 * 1000, 0};
  REQUIRE(Pruner(st, age_only).run_once().ok());
  left = st.list_audit(all);
  REQUIRE(left.ok());
  CHECK(left->size() == 4);
  CHECK(left->back().id == 7);
  // A side over 64 KiB is recorded as its size only.
  AuditEntry big = e;
  big.before = {{"rules", std::string(100 * 1024, 'x')}};
  big.after = {{"small", true}};
  REQUIRE(st.record_audit(big).ok());
  all.limit = 1;
  auto newest = st.list_audit(all);
  REQUIRE(newest.ok());
  CHECK(newest->front().before["truncated"] == true);
  CHECK(newest->front().before["bytes"].get<int64_t>() > 100 * 1024);
  CHECK(newest->front().after == json({{"small", true}}));
  // parse_audit_retention takes --retention's forms.
  AuditRetention r;
  REQUIRE(parse_audit_retention("400d,100000", &r).ok());
  CHECK(r.max_age_ms == 400LL * 24 * 3600 * 1000);
  CHECK(r.keep == 100000);
  CHECK_FALSE(parse_audit_retention("forever", &r).ok());
  store.reset();
  sh("rm -rf " + dir);
}

TEST_CASE("roles: concurrent demotions and revocations never leave no admin") {
  std::string dir = make_temp_dir("tl-roles-race");
  // Two stores on one file: what two processes would be; the check must hold in SQL.
  auto a = Store::open(dir + "/t.db");
  auto b = Store::open(dir + "/t.db");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  Store* stores[2] = {a->get(), b->get()};
  constexpr int kRounds = 100, kAdmins = 3;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<int64_t> ids;
    for (int i = 0; i < kAdmins; ++i) {
      auto row = stores[0]->insert_admin_token("t", crypto::random_bytes(32), Role::kAdmin);
      REQUIRE(row.ok());
      ids.push_back(row->id);
    }
    auto before = stores[0]->list_admin_tokens();
    REQUIRE(before.ok());
    for (const auto& t : *before)
      if (std::find(ids.begin(), ids.end(), t.id) == ids.end())
        REQUIRE(stores[0]->delete_admin_token(t.id).ok());
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int i = 0; i < kAdmins; ++i)
      threads.emplace_back([&, i] {
        while (!go) std::this_thread::yield();
        Store* s = stores[i % 2];
        // Half the rounds demote, half revoke; one of the three mixes them.
        if ((round + i) % 2)
          (void)s->set_admin_token_role(ids[i], Role::kOperator);
        else
          (void)s->delete_admin_token(ids[i]);
      });
    go = true;
    for (auto& t : threads) t.join();
    auto after = stores[0]->list_admin_tokens();
    REQUIRE(after.ok());
    int admins = 0;
    for (const auto& t : *after) admins += t.role == Role::kAdmin;
    INFO("round " << round);
    REQUIRE(admins == 1);
    // The operators left over are not admins and can go.
    for (const auto& t : *after)
      if (t.role != Role::kAdmin) REQUIRE(stores[0]->delete_admin_token(t.id).ok());
  }
  a = Status::Internal("closed");
  b = Status::Internal("closed");
  sh("rm -rf " + dir);
}

TEST_CASE("roles: tokens from before migration 016 are admins after it") {
  std::string dir = make_temp_dir("tl-roles-upgrade");
  std::string db = dir + "/t.db";
  {
    auto s = Store::open(db);
    REQUIRE(s.ok());
    REQUIRE((*s)->insert_admin_token("old-1", crypto::random_bytes(32)).ok());
    REQUIRE((*s)->insert_admin_token("old-2", crypto::random_bytes(32)).ok());
  }
  {
    // The database as migration 015 left it: no role column, no audit log, 016 not recorded.
    SQLite::Database raw(db, SQLite::OPEN_READWRITE);
    raw.exec("DROP TABLE audit_log");
    raw.exec("ALTER TABLE admin_tokens DROP COLUMN role");
    raw.exec("DELETE FROM schema_migrations WHERE version = 16");
  }
  auto s = Store::open(db);
  REQUIRE(s.ok());
  auto versions = (*s)->applied_migrations();
  CHECK(std::find(versions.begin(), versions.end(), 16) != versions.end());
  auto tokens = (*s)->list_admin_tokens();
  REQUIRE(tokens.ok());
  REQUIRE(tokens->size() == 2);
  for (const auto& t : *tokens) CHECK(t.role == Role::kAdmin);
  AuditFilter f;
  auto rows = (*s)->list_audit(f);
  REQUIRE(rows.ok());
  CHECK(rows->empty());
  s = Status::Internal("closed");
  sh("rm -rf " + dir);
}

TEST_CASE("roles: trigger URLs are an admin's to see, and an operator's dry run asks no peer") {
  FakeExternalDns provider;
  TestServer s("", no_docker());
  Tokens t = make_role_tokens(s);
  json dns = {{"name", "dyn"},
              {"driver", "dns-update"},
              {"config",
               {{"backend", "externaldns-webhook"},
                {"provider_url", provider.url()},
                {"record", {{"name", "home.example.org"}, {"type", "A"}, {"ttl", 60}}},
                {"action", "upsert"},
                {"value", "192.0.2.7"}}}};
  json created = s.create_receiver(dns);
  const std::string base = "/api/v1/receivers/" + created["id"].dump();
  REQUIRE(created["trigger_url"].is_string());
  // The admin sees the URL; an operator or a read-only token sees null, in every answer that
  // carries a receiver (a trigger URL runs the action: docs/security.md "Roles").
  CHECK(expect(s.request("GET", base), 200)["trigger_url"].get<std::string>().find("/_webhooks/") !=
        std::string::npos);
  std::vector<std::pair<std::string, OutboundResponse>> answers = {
      {"ro list", as(s, t.ro, "GET", "/api/v1/receivers")},
      {"ro get", as(s, t.ro, "GET", base)},
      {"op list", as(s, t.op, "GET", "/api/v1/receivers")},
      {"op get", as(s, t.op, "GET", base)},
      {"op disable", as(s, t.op, "POST", base + "/disable")},
      {"op enable", as(s, t.op, "POST", base + "/enable")}};
  for (const auto& [what, r] : answers) {
    INFO(what << ": " << r.body);
    CHECK(r.status == 200);
    CHECK(r.body.find("/_webhooks/") == std::string::npos);
  }
  CHECK(json::parse(answers[1].second.body)["trigger_url"].is_null());
  CHECK(json::parse(answers[5].second.body)["trigger_url"].is_null());

  // A dry-run edit pointing the receiver at another provider: the admin's is checked against
  // that peer (nothing listens there: 422); the operator's asks no peer at all.
  json edit = dns;
  edit["config"]["provider_url"] = "http://127.0.0.1:9/";  // discard: nothing answers
  size_t asked = provider.requests().size();
  auto by_admin = s.request("PUT", base + "?dry_run=true", edit);
  INFO(by_admin.body);
  CHECK(by_admin.status == 422);
  auto by_operator = as(s, t.op, "PUT", base + "?dry_run=true", edit);
  INFO(by_operator.body);
  CHECK(by_operator.status == 200);
  CHECK(json::parse(by_operator.body)["valid"] == true);
  CHECK(provider.requests().size() == asked);
}

TEST_CASE("roles: a read-only token never sees the credentials in a subscription's URL") {
  TestServer s("", no_docker());
  Tokens t = make_role_tokens(s);
  json rec = s.create_receiver(webhook_receiver("sub-creds", whsec(), "Bearer x"));
  const std::string base = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  const std::string password = "hook-pass-5f1c9a7e", bare_token = "tok3n-a9d0c2e4b6f8";
  const std::string with_password = "https://hook-user:" + password + "@notify.invalid/in?x=1";
  const std::string with_token = "https://" + bare_token + "@notify.invalid/t";
  json a = expect(
      s.request("POST", base + "/notifications", {{"url", with_password}, {"secret", whsec()}}),
      201);
  json b = expect(
      s.request("POST", base + "/notifications", {{"url", with_token}, {"secret", whsec()}}), 201);
  const std::string one_a = base + "/notifications/" + std::to_string(a["id"].get<int64_t>());
  const std::string one_b = base + "/notifications/" + std::to_string(b["id"].get<int64_t>());

  // The read-only token: the list and each subscription, the user kept, the secret part gone.
  for (const auto& path : {base + "/notifications", one_a, one_b}) {
    auto r = as(s, t.ro, "GET", path);
    INFO(path << ": " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.body.find(password) == std::string::npos);
    CHECK(r.body.find(bare_token) == std::string::npos);
  }
  CHECK(expect(as(s, t.ro, "GET", one_a), 200)["url"] ==
        "https://hook-user:********@notify.invalid/in?x=1");
  CHECK(expect(as(s, t.ro, "GET", one_b), 200)["url"] == "https://********@notify.invalid/t");
  json listed = expect(as(s, t.ro, "GET", base + "/notifications"), 200);
  REQUIRE(listed["items"].size() == 2);
  // Its deliveries carry no URL either.
  CHECK(as(s, t.ro, "GET", base + "/deliveries").body.find(password) == std::string::npos);

  // Operators and admins see the URL as saved, to check and edit it.
  for (const auto& token : {t.op, std::string()}) {
    auto r = token.empty() ? s.request("GET", one_a) : as(s, token, "GET", one_a);
    CHECK(expect(r, 200)["url"] == with_password);
    auto list = token.empty() ? s.request("GET", base + "/notifications")
                              : as(s, token, "GET", base + "/notifications");
    CHECK(list.body.find(password) != std::string::npos);
    CHECK(list.body.find(bare_token) != std::string::npos);
  }
}

TEST_CASE("roles: a read-only token never sees the credentials in a receiver's URL") {
  TestServer s("", no_docker());
  Tokens t = make_role_tokens(s);
  const std::string password = "rcv-pass-7c2e9b14",
                    url_with_password = "https://hook-user:" + password + "@hooks.invalid/in";
  json body = webhook_receiver("url-creds", whsec(), "Bearer x");
  body["config"]["url"] = url_with_password;
  json rec = s.create_receiver(body);
  const std::string one = "/api/v1/receivers/" + std::to_string(rec["id"].get<int64_t>());
  for (const auto& path : {std::string("/api/v1/receivers"), one}) {
    auto r = as(s, t.ro, "GET", path);
    INFO(path << ": " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.body.find(password) == std::string::npos);
  }
  json ro = expect(as(s, t.ro, "GET", one), 200);
  CHECK(ro["config"]["url"] == "https://hook-user:********@hooks.invalid/in");
  CHECK(ro["target"] == "https://hook-user:********@hooks.invalid/in");
  // Operators and admins see the URL as saved, to check and edit it.
  for (const auto& token : {t.op, std::string()}) {
    auto r = token.empty() ? s.request("GET", one) : as(s, token, "GET", one);
    CHECK(expect(r, 200)["config"]["url"] == url_with_password);
  }
}

TEST_CASE(
    "roles: a read-only token never sees URL credentials in an execution's plan, a receiver's "
    "last run, a delivery's payload or a logged body") {
  WebhookSink action, subscriber;
  ServiceOptions o;
  o.drivers.set("allow-local-webhook-targets", "true");  // the sinks are on 127.0.0.1
  TestServer s("", no_docker(o));
  Tokens t = make_role_tokens(s);
  const std::string password = "plan-pass-3b8e1d6a", in_body = "body-pass-9f2c4e71";
  std::string url = action.url("/action");  // http://127.0.0.1:PORT/action
  url.insert(url.find("://") + 3, "hook-user:" + password + "@");
  json body = webhook_receiver("plan-creds", whsec(), "Bearer x");
  body["config"]["url"] = url;
  json rec = s.create_receiver(body);
  const int64_t rid = rec["id"];
  const std::string base = "/api/v1/receivers/" + std::to_string(rid);
  expect(s.request("POST", base + "/notifications",
                   {{"url", subscriber.url("/events")}, {"secret", whsec()}}),
         201);
  // Two URLs in prose, one with a password: both a plan's body and the log may hold such text.
  auto sent = s.request(
      "POST", rec["trigger_url"].get<std::string>(),
      {{"note", "see http://x.invalid/a and https://u:" + in_body + "@y.invalid/b now"}}, false);
  INFO(sent.body);
  REQUIRE(sent.status == 202);
  const int64_t id = json::parse(sent.body)["execution_id"];
  json done = s.wait_finished(id);
  REQUIRE(done["status"] == "succeeded");
  REQUIRE(done["plan"]["url"] == url);  // the admin sees the plan as it ran
  REQUIRE(action.wait_for(1, std::chrono::seconds(10)));
  REQUIRE(subscriber.wait_for(1, std::chrono::seconds(15)));

  json items;
  for (int i = 0; i < 100; ++i) {  // the delivery row, once its first attempt is recorded
    items = expect(s.request("GET", base + "/deliveries"), 200)["items"];
    if (!items.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE_FALSE(items.empty());
  json requests = expect(s.request("GET", base + "/requests?outcome=accepted"), 200)["items"];
  REQUIRE(requests.size() == 1);
  const std::string one_request = base + "/requests/" + requests[0]["id"].dump();
  const std::vector<std::string> paths = {"/api/v1/executions/" + std::to_string(id),
                                          "/api/v1/executions",
                                          "/api/v1/executions?receiver_id=" + std::to_string(rid),
                                          base,
                                          "/api/v1/receivers",
                                          base + "/deliveries",
                                          base + "/deliveries/" + items[0]["id"].dump(),
                                          base + "/requests",
                                          one_request};
  for (const auto& path : paths) {
    auto r = as(s, t.ro, "GET", path);
    INFO(path << ": " << r.body);
    REQUIRE(r.status == 200);
    CHECK(r.body.find(password) == std::string::npos);
    CHECK(r.body.find(in_body) == std::string::npos);
  }
  json ro = expect(as(s, t.ro, "GET", "/api/v1/executions/" + std::to_string(id)), 200);
  std::string redacted = url;
  redacted.replace(redacted.find(password), password.size(), "********");
  CHECK(ro["plan"]["url"] == redacted);
  CHECK(expect(as(s, t.ro, "GET", base), 200)["last_execution"]["plan"]["url"] == redacted);
  // The URL without credentials in the same text is left as it was.
  CHECK(as(s, t.ro, "GET", one_request).body.find("http://x.invalid/a") != std::string::npos);
  // Operators and admins see what ran, to check it.
  for (const auto& token : {t.op, std::string()}) {
    for (const auto& path : {"/api/v1/executions/" + std::to_string(id), one_request}) {
      auto r = token.empty() ? s.request("GET", path) : as(s, token, "GET", path);
      INFO(path << ": " << r.body);
      CHECK(r.status == 200);
      CHECK(r.body.find(path == one_request ? in_body : password) != std::string::npos);
    }
  }
}
