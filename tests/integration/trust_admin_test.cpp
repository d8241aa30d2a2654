// Trust 10: the admin token from the environment, /readyz, the secrets key and its rotation, and
// the last admin token, against a real server in-process (real SQLite file, real sockets).
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "../support/canned_peer.h"
#include "crypto.h"
#include "harness.h"
#include "secret_keys.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr const char* kMediaType = "application/external.dns.webhook+json;version=1";
constexpr const char* kGithubSecret = "gh-secret-for-trust-10c";

// Sets (or unsets, with nullptr) an environment variable for the scope.
struct EnvVar {
  std::string name;
  EnvVar(std::string n, const char* value) : name(std::move(n)) {
    if (value)
      ::setenv(name.c_str(), value, 1);
    else
      ::unsetenv(name.c_str());
  }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

// Docker is not needed here: point the swarm driver at a closed port, so no dockerd is started.
ServiceOptions no_docker(ServiceOptions o = {}) {
  if (!o.drivers.is_set("docker-host")) o.drivers.set("docker-host", "http://127.0.0.1:1");
  return o;
}

OutboundResponse as(const TestServer& s, const std::string& token, const std::string& method,
                    const std::string& path) {
  return s.request(method, path, nullptr, false, {{"Authorization", "Bearer " + token}});
}

// An ExternalDNS provider that negotiates and has no records: enough to save dns-update receivers.
void provider_answers(CannedPeer& p) {
  p.answer("/", 200, kMediaType, R"({"include":["example.org"]})");
  p.answer("/records", 200, kMediaType, "[]");
}

json dns_receiver(const CannedPeer& provider, const std::string& name, bool with_github_secret) {
  json r = {{"name", name},
            {"driver", "dns-update"},
            {"config",
             {{"backend", "externaldns-webhook"},
              {"provider_url", provider.url()},
              {"record", {{"name", "www.example.org"}, {"type", "A"}, {"ttl", 120}}},
              {"action", "upsert"},
              {"value", "192.0.2.10"}}}};
  if (with_github_secret) r["auth"] = {{"github_secret", kGithubSecret}};
  return r;
}

// A trigger with a valid GitHub signature over the empty body: 202 only if the sealed secret
// opened. `url` may come from an earlier start (another port): only its path is used.
int signed_trigger(const TestServer& s, const std::string& url) {
  std::string sig = "sha256=" + crypto::hex(crypto::view(crypto::hmac_sha256(kGithubSecret, "")));
  std::string path = url.substr(url.find("/_webhooks/"));
  auto r = s.trigger(s.url() + path, {{"X-Hub-Signature-256", sig}});
  INFO(r.body);
  return r.status;
}

Status start_fails(const std::string& dir) {
  ServiceOptions o = no_docker();
  o.listen = "127.0.0.1:0";
  o.data_dir = dir;
  o.admin_token = kAdminToken;
  auto svc = Service::start(o);
  return svc.ok() ? Status::Ok() : svc.status();
}

std::string sealed_auth_secret(const std::string& dir) {
  // Read the stored value through the store, as the server would.
  auto store = Store::open(dir + "/tripline.db");
  REQUIRE(store.ok());
  auto texts = (*store)->sealed_texts(true);
  REQUIRE(texts.ok());
  for (const auto& t : texts.value())
    if (t.where == SealedText::Where::kReceiverAuth) return json::parse(t.text)["github_secret"];
  FAIL("no sealed receiver auth stored");
  return {};
}

}  // namespace

TEST_CASE("trust 10a: a changed TRIPLINE_ADMIN_TOKEN revokes the old value") {
  const std::string a = "admin-token-A-0123456789", b = "admin-token-B-0123456789";
  std::string dir = make_temp_dir("tl-admin-env");
  std::string api_token;
  {
    ServiceOptions o = no_docker();
    o.admin_token = a;
    TestServer s(dir, o);
    CHECK(as(s, a, "GET", "/api/v1/tokens").status == 200);
    // A token made through the API is not the managed one and must survive the change.
    auto created = s.request("POST", "/api/v1/tokens", json{{"name", "ci"}}, false,
                             {{"Authorization", "Bearer " + a}});
    REQUIRE(created.status == 201);
    api_token = json::parse(created.body)["token"];
  }
  {
    ServiceOptions o = no_docker();
    o.admin_token = b;
    TestServer s(dir, o);
    auto old = as(s, a, "GET", "/api/v1/tokens");
    CHECK(old.status == 401);
    CHECK(json::parse(old.body)["error"] == "unauthorized");
    auto now = as(s, b, "GET", "/api/v1/tokens");
    REQUIRE(now.status == 200);
    CHECK(as(s, api_token, "GET", "/api/v1/tokens").status == 200);
    int from_env = 0;
    json listed = json::parse(now.body);
    for (const auto& t : listed["items"]) from_env += t["name"] == "from TRIPLINE_ADMIN_TOKEN";
    INFO(now.body);
    CHECK(from_env == 1);  // one managed row, not one per value the variable ever had
  }
  {
    ServiceOptions o = no_docker();
    o.admin_token = b;  // the same value again: nothing revoked
    TestServer s(dir, o);
    CHECK(as(s, b, "GET", "/api/v1/tokens").status == 200);
  }
  sh("rm -rf " + dir);
}

TEST_CASE(
    "trust 10b: a hung driver peer stalls neither /readyz nor triggers, and details need auth") {
  CannedPeer docker;
  docker.hang(true);  // accepts, never answers: the Docker ping waits for its full timeout
  CannedPeer provider;
  provider_answers(provider);
  ServiceOptions o;
  o.drivers.set("docker-host", docker.url());
  o.http_threads = 1;  // one event loop: a synchronous probe would hold everything behind it
  TestServer s("", o);
  auto receiver = s.create_receiver(dns_receiver(provider, "ddns", false));
  s.request("POST", "/api/v1/workers/pause");  // the executions are not what is measured

  // "At once": well inside the probe's 3 s wait that a stalled loop would add, with room for a
  // loaded machine (one run here took 236 ms while a sanitizer build shared the 2 cores).
  const auto at_once = milliseconds(1500);
  auto timed = [](auto&& call) {
    auto start = SteadyClock::now();
    auto r = call();
    return std::make_pair(r, std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start));
  };
  // Several readyz requests at once, then a trigger: each answers at once.
  std::vector<std::thread> callers;
  std::atomic<int> slow{0}, not_ok{0};
  for (int i = 0; i < 4; ++i)
    callers.emplace_back([&] {
      auto [r, took] = timed([&] { return s.request("GET", "/readyz", nullptr, false); });
      if (took > at_once) ++slow;
      if (r.status != 200) ++not_ok;
    });
  auto [t, took] = timed([&] { return s.trigger(receiver["trigger_url"]); });
  for (auto& c : callers) c.join();
  CHECK(t.status == 202);
  CHECK(took < at_once);
  CHECK(slow == 0);
  CHECK(not_ok == 0);

  auto anonymous = s.request("GET", "/readyz", nullptr, false);
  CHECK(json::parse(anonymous.body) == json{{"status", "ready"}});
  CHECK(anonymous.body.find("127.0.0.1") == std::string::npos);
  auto wrong =
      s.request("GET", "/readyz", nullptr, false, {{"Authorization", "Bearer not-a-token-at-all"}});
  CHECK(json::parse(wrong.body) == json{{"status", "ready"}});

  // An admin sees the checks; the swarm probe times out (3 s) and then says where it looked.
  json checks;
  auto deadline = SteadyClock::now() + std::chrono::seconds(8);
  do {
    auto [admin, admin_took] = timed([&] { return s.request("GET", "/readyz"); });
    CHECK(admin_took < at_once);
    checks = json::parse(admin.body)["checks"];
    if (checks["scale-service"] != "not probed yet") break;
    std::this_thread::sleep_for(milliseconds(200));
  } while (SteadyClock::now() < deadline);
  CHECK(checks["database"] == "ok");
  CHECK(checks["scale-service"].get<std::string>().find(docker.url()) != std::string::npos);
  docker.hang(false);
}

TEST_CASE("trust 10c: a wrong TRIPLINE_SECRET_KEY refuses to start; rotation keeps secrets open") {
  const std::string k1 = crypto::hex(std::string(32, '1')), k2 = crypto::hex(std::string(32, '2'));
  CannedPeer provider;
  provider_answers(provider);
  std::string dir = make_temp_dir("tl-secret-env");
  std::string url;
  {
    EnvVar key("TRIPLINE_SECRET_KEY", k1.c_str());
    TestServer s(dir, no_docker());
    url = s.create_receiver(dns_receiver(provider, "signed", true))["trigger_url"];
    s.request("POST", "/api/v1/workers/pause");
    CHECK(signed_trigger(s, url) == 202);
  }
  CHECK(SecretBox::key_id_of(sealed_auth_secret(dir)) == SecretBox::key_id(std::string(32, '1')));
  {
    EnvVar key("TRIPLINE_SECRET_KEY", k2.c_str());
    Status s = start_fails(dir);
    REQUIRE_FALSE(s.ok());
    INFO(s.message());
    CHECK(s.message().rfind(
              "1 sealed secret in the database does not open with the configured secrets key", 0) ==
          0);
    CHECK(s.message().find("receiver auth 1 (github_secret)") != std::string::npos);
    CHECK(s.message().find(SecretBox::key_id(std::string(32, '1'))) != std::string::npos);
    CHECK(s.message().find("TRIPLINE_SECRET_KEY_PREVIOUS") != std::string::npos);
    CHECK(s.message().find(kGithubSecret) == std::string::npos);
    CHECK(s.message().find(k1) == std::string::npos);
  }
  {  // The new key with the old one as previous: everything opens.
    EnvVar key("TRIPLINE_SECRET_KEY", k2.c_str());
    EnvVar previous("TRIPLINE_SECRET_KEY_PREVIOUS", k1.c_str());
    TestServer s(dir, no_docker());
    s.request("POST", "/api/v1/workers/pause");
    auto list = json::parse(s.request("GET", "/api/v1/receivers").body);
    CHECK(list["total"] == 1);
    CHECK(list["items"].size() == 1);
    CHECK(signed_trigger(s, url) == 202);
  }
  {  // Re-seal under the new key (server stopped).
    auto done = rotate_secret_key(dir, DriverEnv().set("docker-host", "http://127.0.0.1:1"),
                                  k2.c_str(), k1.c_str());
    INFO(done.status().message());
    REQUIRE(done.ok());
    CHECK(done->find("re-sealed 1 secrets") != std::string::npos);
  }
  CHECK(SecretBox::key_id_of(sealed_auth_secret(dir)) == SecretBox::key_id(std::string(32, '2')));
  {  // The old key is no longer needed...
    EnvVar key("TRIPLINE_SECRET_KEY", k2.c_str());
    TestServer s(dir, no_docker());
    s.request("POST", "/api/v1/workers/pause");
    CHECK(signed_trigger(s, url) == 202);
  }
  {  // ...and no longer enough.
    EnvVar key("TRIPLINE_SECRET_KEY", k1.c_str());
    CHECK_FALSE(start_fails(dir).ok());
  }
  sh("rm -rf " + dir);
}

TEST_CASE(
    "trust 10c: tripline rotate-secret-key replaces DATA_DIR/secrets.key and re-seals everything") {
  CannedPeer provider;
  provider_answers(provider);
  std::string dir = make_temp_dir("tl-secret-file");
  std::string url;
  {
    TestServer s(dir, no_docker());
    url = s.create_receiver(dns_receiver(provider, "signed", true))["trigger_url"];
  }
  std::string before = sealed_auth_secret(dir);
  // Run the real binary, as an operator would.
  int rc = 0;
  std::string out = sh(std::string("env -u TRIPLINE_SECRET_KEY -u TRIPLINE_SECRET_KEY_PREVIOUS ") +
                           TRIPLINE_BINARY + " rotate-secret-key --data-dir " + dir + " 2>&1",
                       &rc);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("re-sealed 1 secrets") != std::string::npos);
  CHECK(::access((dir + "/secrets.key.previous").c_str(), F_OK) != 0);  // not needed any more
  struct stat st {};
  REQUIRE(::stat((dir + "/secrets.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string after = sealed_auth_secret(dir);
  CHECK(SecretBox::key_id_of(after) != SecretBox::key_id_of(before));
  {
    TestServer s(dir, no_docker());
    s.request("POST", "/api/v1/workers/pause");
    CHECK(signed_trigger(s, url) == 202);
  }
  // A key file that does not open the data refuses to start, saying why.
  std::ofstream(dir + "/secrets.key", std::ios::trunc) << crypto::hex(std::string(32, '9')) << "\n";
  Status s = start_fails(dir);
  REQUIRE_FALSE(s.ok());
  CHECK(s.message().rfind(
            "1 sealed secret in the database does not open with the configured secrets key", 0) ==
        0);
  sh("rm -rf " + dir);
}

TEST_CASE("trust 10e: concurrent DELETEs of the last two admin tokens leave one") {
  TestServer s("", no_docker());
  std::string survivor = kAdminToken;
  for (int round = 0; round < 20; ++round) {
    // Two fresh tokens, then the previous survivor deleted: exactly these two remain.
    std::string secret[2], id[2];
    for (int i = 0; i < 2; ++i) {
      auto r = s.request("POST", "/api/v1/tokens", json{{"name", "t" + std::to_string(i)}}, false,
                         {{"Authorization", "Bearer " + survivor}});
      REQUIRE(r.status == 201);
      secret[i] = json::parse(r.body)["token"];
      id[i] = std::to_string(json::parse(r.body)["id"].get<int64_t>());
    }
    json listed = json::parse(as(s, secret[0], "GET", "/api/v1/tokens").body);
    for (const auto& t : listed["items"]) {
      std::string tid = std::to_string(t["id"].get<int64_t>());
      if (tid != id[0] && tid != id[1])
        REQUIRE(as(s, secret[0], "DELETE", "/api/v1/tokens/" + tid).status == 204);
    }
    // Each deletes the other's token at the same moment.
    std::atomic<bool> go{false};
    int status[2] = {0, 0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i)
      threads.emplace_back([&, i] {
        while (!go) std::this_thread::yield();
        status[i] = as(s, secret[i], "DELETE", "/api/v1/tokens/" + id[1 - i]).status;
      });
    go = true;
    for (auto& t : threads) t.join();
    INFO("round " << round << ": " << status[0] << " " << status[1]);
    CHECK((status[0] == 204) + (status[1] == 204) == 1);
    // The other was refused: 409 (last token) or 401 (its own token was just deleted).
    for (int st : status) CHECK((st == 204 || st == 409 || st == 401));
    survivor = status[0] == 204 ? secret[0] : secret[1];
    auto list = as(s, survivor, "GET", "/api/v1/tokens");
    REQUIRE(list.status == 200);
    REQUIRE(json::parse(list.body)["items"].size() == 1);
  }
  auto items = json::parse(as(s, survivor, "GET", "/api/v1/tokens").body)["items"];
  auto last =
      as(s, survivor, "DELETE", "/api/v1/tokens/" + std::to_string(items[0]["id"].get<int64_t>()));
  CHECK(last.status == 409);
  CHECK(json::parse(last.body)["error"] == "conflict");
}
