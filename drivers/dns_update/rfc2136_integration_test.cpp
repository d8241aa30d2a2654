// dns-update's rfc2136 backend against real servers: BIND 9 named, Knot DNS knotd and PowerDNS
// pdns_server (tests/support/{named,knot,pdns}-harness.sh: own folder, free loopback port, fresh
// TSIG keys, zones that do and do not take the key's updates). Driven at the driver level,
// validate -> plan -> apply as the executor calls them; checked with dig. What each server
// answers, and how the diagnoses tell the answers apart: docs/dns.md.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <thread>

#include "../../tests/integration/harness.h"
#include "dns_update.h"
#include "rfc2136.h"

using namespace tripline;
using namespace tripline::test;
using nlohmann::json;

namespace {

const std::string kSupport = std::string(TRIPLINE_SOURCE_DIR) + "/tests/support/";

// The three servers the tests run against, each from its own harness script.
struct ServerKind {
  std::string harness;  // script in tests/support
  std::string binary;   // must be installed
  std::string var;      // the harness's line with the server's address
  std::string packages;
};
const ServerKind kBind{"named-harness.sh", "/usr/sbin/named", "NAMED",
                       "bind9 bind9-utils bind9-dnsutils"};
const ServerKind kKnot{"knot-harness.sh", "/usr/sbin/knotd", "KNOT", "knot knot-dnsutils"};
const ServerKind kPdns{"pdns-harness.sh", "/usr/sbin/pdns_server", "PDNS",
                       "pdns-server pdns-backend-sqlite3 sqlite3"};

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// One server instance (BIND's named by default), stopped (and its folder removed) by the
// destructor.
class Named {
 public:
  explicit Named(const ServerKind& kind = kBind) : kind_(kind) {
    harness_ = kSupport + kind.harness;
    if (::access(kind.binary.c_str(), X_OK) != 0) {
      why_unavailable_ = kind.binary + " is not installed (apt-get install " + kind.packages + ")";
      return;
    }
    dir_ = make_temp_dir("tl-dns");
    start("start");
  }
  ~Named() {
    if (!dir_.empty()) sh(harness_ + " stop " + dir_ + " 2>/dev/null");
    if (!dir_.empty()) sh("rm -f " + dir_ + ".log");
  }
  Named(const Named&) = delete;
  Named& operator=(const Named&) = delete;

  bool available() const { return why_unavailable_.empty(); }
  const std::string& why_unavailable() const { return why_unavailable_; }
  const std::string& get(const std::string& key) const { return vars_.at(key); }
  std::string server() const { return get(kind_.var); }
  std::string port() const { return server().substr(server().rfind(':') + 1); }

  void down() const {
    int rc = 0;
    sh(harness_ + " down " + dir_ + " 2>>" + dir_ + ".log", &rc);
    REQUIRE(rc == 0);
  }
  void restart() {
    start("restart");
    REQUIRE(available());
  }

  // The record set as dig sees it, sorted, one value per entry.
  std::vector<std::string> dig(const std::string& name, const std::string& type) const {
    std::string out = sh("/usr/bin/dig @127.0.0.1 -p " + port() + " +tcp +norec +short +time=2 " +
                         name + " " + type + " 2>&1");
    std::vector<std::string> lines;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) lines.push_back(l);
    std::sort(lines.begin(), lines.end());
    return lines;
  }
  // The TTL dig reports for the set.
  int ttl(const std::string& name, const std::string& type) const {
    std::string out = sh("/usr/bin/dig @127.0.0.1 -p " + port() + " +tcp +norec +noall +answer " +
                         name + " " + type + " | awk '{print $2; exit}'");
    return out.empty() ? -1 : std::stoi(out);
  }
  // The zone's SOA serial, as dig sees it.
  std::string soa_serial(const std::string& zone) const {
    return sh("/usr/bin/dig @127.0.0.1 -p " + port() + " +tcp +norec +short +time=2 " + zone +
              " SOA | awk '{print $3}'");
  }
  // Changes the zone behind the driver's back, with BIND's own client.
  void nsupdate(const std::string& commands) const {
    int rc = 0;
    std::string out = sh("printf 'server 127.0.0.1 " + port() + "\\n" + commands +
                             "send\\n' | /usr/bin/nsupdate -y " + get("TSIG_ALGORITHM") + ":" +
                             get("TSIG_KEY_NAME") + ":" + get("TSIG_SECRET") + " 2>&1",
                         &rc);
    INFO(out);
    REQUIRE(rc == 0);
  }

  // A receiver config for `name` in the dynamic zone.
  json config(const std::string& name, json value, const std::string& type = "A",
              const std::string& action = "upsert") const {
    json c = {{"backend", "rfc2136"},
              {"server", server()},
              {"zone", get("ZONE")},
              {"tsig_key_name", get("TSIG_KEY_NAME")},
              {"tsig_algorithm", get("TSIG_ALGORITHM")},
              {"tsig_secret", get("TSIG_SECRET")},
              {"record", {{"name", name}, {"type", type}, {"ttl", 60}}},
              {"action", action}};
    if (!value.is_null()) c["value"] = std::move(value);
    return c;
  }

 private:
  void start(const std::string& command) {
    int rc = 0;
    std::string out = sh(harness_ + " " + command + " " + dir_ + " 2>>" + dir_ + ".log", &rc);
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
      if (auto eq = l.find('='); eq != std::string::npos) vars_[l.substr(0, eq)] = l.substr(eq + 1);
    if (rc != 0 || !vars_.count(kind_.var) || !vars_.count("TSIG_SECRET"))
      why_unavailable_ = kind_.harness + " failed: " + sh("tail -20 " + dir_ + ".log");
    else
      why_unavailable_.clear();
  }

  ServerKind kind_;
  std::string harness_, dir_, why_unavailable_;
  std::map<std::string, std::string> vars_;
};

Named& shared_named() {
  static Named named;
  return named;
}
Named& shared_knot() {
  static Named knot(kKnot);
  return knot;
}
Named& shared_pdns() {
  static Named pdns(kPdns);
  return pdns;
}

// A client for `config` (with check_peer off: the tests look at the client's own answers).
dns_update::Rfc2136Client client(const json& config) {
  auto parsed = dns_update::parse_config(config);
  REQUIRE(parsed.ok());
  return dns_update::Rfc2136Client(parsed.value());
}

const std::string kWrongSecret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

// Call first in a test that needs named; false (after WARN, or FAIL under CI=true) when absent.
bool named_or_skip(const Named& n) {
  if (n.available()) return true;
  if (in_ci()) FAIL("CI=true but the DNS server could not start: " << n.why_unavailable());
  WARN("SKIPPED (no DNS server here): " << n.why_unavailable());
  return false;
}

bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}

std::shared_ptr<const DriverConfig> valid(const DnsUpdateDriver& d, const json& c,
                                          bool check_peer = true) {
  auto v = d.validate(c, check_peer);
  INFO(v.status().message());
  REQUIRE(v.ok());
  return *v;
}

// plan + apply, as one execution.
Outcome run(const DnsUpdateDriver& d, const DriverConfig& c, json* plan_out = nullptr) {
  Plan p = d.plan(c);
  INFO(p.failure.reason);
  REQUIRE(p.ok());
  if (plan_out) *plan_out = p.desired;
  return d.apply(c, p.desired);
}

using Strings = std::vector<std::string>;

// plan() of a config validated without the peer: its failure, or the apply's outcome.
Outcome run_or_plan_failure(const DnsUpdateDriver& d, const json& config) {
  auto c = valid(d, config, false);
  Plan p = d.plan(*c);
  if (!p.ok()) return p.failure;
  return d.apply(*c, p.desired);
}

// upsert, replace and delete against `server`, checked with dig.
void upsert_and_delete(const Named& server, const std::string& label) {
  DnsUpdateDriver d;
  const std::string name = label + "." + server.get("ZONE");
  Outcome o = run(d, *valid(d, server.config(name, "192.0.2.1")));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["changed"] == true);
  CHECK(server.dig(name, "A") == std::vector<std::string>{"192.0.2.1"});
  json plan;
  o = run(d, *valid(d, server.config(name, "192.0.2.2")), &plan);
  REQUIRE(o.ok());
  CHECK(plan["before"] == json::array({"192.0.2.1"}));
  CHECK(server.dig(name, "A") == std::vector<std::string>{"192.0.2.2"});
  o = run(d, *valid(d, server.config(name, nullptr, "A", "delete")));
  REQUIRE(o.ok());
  CHECK(server.dig(name, "A").empty());
}

}  // namespace

TEST_CASE(
    "dns-update rfc2136: upsert creates, a second upsert replaces, a re-run changes nothing") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "api." + named.get("ZONE");

  auto create = valid(d, named.config(name, "192.0.2.1"));
  json plan;
  Outcome o = run(d, *create, &plan);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(plan["before"] == json::array());
  CHECK(plan["ttl_before"].is_null());
  CHECK(plan["after"] == json::array({"192.0.2.1"}));
  CHECK(o.result["before"] == json::array());
  CHECK(o.result["after"] == json::array({"192.0.2.1"}));
  CHECK(o.result["changed"] == true);
  CHECK(named.dig(name, "A") == Strings{"192.0.2.1"});
  CHECK(named.ttl(name, "A") == 60);

  // The same recorded plan again (a retry after a crash): same end state.
  Outcome again = d.apply(*create, plan);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);
  CHECK(named.dig(name, "A") == Strings{"192.0.2.1"});

  auto change = valid(d, named.config(name, "192.0.2.2"));
  json plan2;
  o = run(d, *change, &plan2);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(plan2["before"] == json::array({"192.0.2.1"}));
  CHECK(plan2["ttl_before"] == 60);
  CHECK(o.result["after"] == json::array({"192.0.2.2"}));
  CHECK(named.dig(name, "A") == Strings{"192.0.2.2"});  // replaced, not added
  REQUIRE(d.apply(*change, plan2).ok());
  CHECK(named.dig(name, "A") == Strings{"192.0.2.2"});
}

TEST_CASE("dns-update rfc2136: upsert replaces a whole record set in one update") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "multi." + named.get("ZONE");
  named.nsupdate("update add " + name + " 300 A 198.51.100.1\\nupdate add " + name +
                 " 300 A 198.51.100.2\\n");
  REQUIRE(named.dig(name, "A") == Strings{"198.51.100.1", "198.51.100.2"});
  json plan;
  Outcome o = run(d, *valid(d, named.config(name, "192.0.2.9")), &plan);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["before"] == json::array({"198.51.100.1", "198.51.100.2"}));
  CHECK(o.result["ttl_before"] == 300);
  CHECK(named.dig(name, "A") == Strings{"192.0.2.9"});
}

TEST_CASE("dns-update rfc2136: delete removes the record set, and deleting again is a no-op") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "old." + named.get("ZONE");
  named.nsupdate("update add " + name + " 300 A 198.51.100.7\\nupdate add " + name +
                 " 300 A 198.51.100.8\\nupdate add " + name + " 300 TXT keep-me\\n");
  auto del = valid(d, named.config(name, nullptr, "A", "delete"));
  json plan;
  Outcome o = run(d, *del, &plan);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(plan["before"] == json::array({"198.51.100.7", "198.51.100.8"}));
  CHECK(plan["after"] == json::array());
  CHECK(o.result["changed"] == true);
  CHECK(named.dig(name, "A").empty());
  CHECK(named.dig(name, "TXT") == Strings{"\"keep-me\""});  // only the A set goes

  Outcome again = d.apply(*del, plan);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);
  CHECK(named.dig(name, "A").empty());
}

TEST_CASE("dns-update rfc2136: caller-ip and body values are bound from the trigger request") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "home." + named.get("ZONE");
  json stored = named.config(name, {{"from", "caller-ip"}});
  auto receiver = valid(d, stored);
  REQUIRE(d.binds_request(*receiver));
  CHECK(d.describe(*receiver) ==
        "Point " + name + " (A) at the caller's address via " + named.server());

  auto bound = d.bind(stored, {"203.0.113.7", ""});
  REQUIRE(bound.ok());
  Outcome o = run(d, *valid(d, *bound, false));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(named.dig(name, "A") == Strings{"203.0.113.7"});

  // An IPv6 caller cannot go into an A record: rejected before anything is sent.
  bound = d.bind(stored, {"2001:db8::7", ""});
  REQUIRE(bound.ok());
  auto rejected = d.validate(*bound, false);
  REQUIRE_FALSE(rejected.ok());
  CHECK(has_field(rejected.status(), "config.value"));
  CHECK(named.dig(name, "A") == Strings{"203.0.113.7"});

  // AAAA from the body, by JSON pointer.
  json from_body =
      named.config(name, {{"from", "body"}, {"pointer", "/alerts/0/labels/ipv6"}}, "AAAA");
  valid(d, from_body);
  bound = d.bind(from_body, {"127.0.0.1", R"({"alerts":[{"labels":{"ipv6":"2001:DB8::42"}}]})"});
  REQUIRE(bound.ok());
  o = run(d, *valid(d, *bound, false));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(o.result["after"] == json::array({"2001:db8::42"}));
  CHECK(named.dig(name, "AAAA") == Strings{"2001:db8::42"});
}

TEST_CASE("dns-update rfc2136: TXT and CNAME records") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string zone = named.get("ZONE");
  std::string long_txt(300, 'x');  // over one 255-byte character-string
  json plan;
  Outcome o = run(d, *valid(d, named.config("_acme-challenge." + zone, long_txt, "TXT")), &plan);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(named.dig("_acme-challenge." + zone, "TXT") ==
        Strings{"\"" + std::string(255, 'x') + "\" \"" + std::string(45, 'x') + "\""});
  Outcome again =
      d.apply(*valid(d, named.config("_acme-challenge." + zone, long_txt, "TXT")), plan);
  REQUIRE(again.ok());
  CHECK(again.result["changed"] == false);  // read back and compared whole

  o = run(d, *valid(d, named.config("www." + zone, "LB.Example.NET.", "CNAME")));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(named.dig("www." + zone, "CNAME") == Strings{"lb.example.net."});

  // BIND answers NOERROR but ignores an A record beside a CNAME: reported, not claimed done.
  o = run(d, *valid(d, named.config("www." + zone, "192.0.2.3", "A")));
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("CNAME") != std::string::npos);
}

TEST_CASE("dns-update rfc2136: a wrong key fails for good, with a message that names the key") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "key." + named.get("ZONE");
  json good = named.config(name, "192.0.2.50");
  json wrong = good;
  wrong["tsig_secret"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

  // At creation: a field error on the secret.
  auto v = d.validate(wrong, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_secret"));
  CHECK(v.status().message().find("BADSIG") != std::string::npos);

  // Stored before the key changed on the server: plan and apply fail, final.
  auto c = valid(d, wrong, false);
  Plan p = d.plan(*c);
  REQUIRE_FALSE(p.ok());
  CHECK(p.failure.kind == Outcome::Kind::kFinal);
  CHECK(p.failure.reason.find("BADSIG") != std::string::npos);
  CHECK(p.failure.reason.find("tsig_secret") != std::string::npos);
  json plan = {{"name", name},
               {"type", "A"},
               {"ttl", 60},
               {"before", json::array()},
               {"ttl_before", nullptr},
               {"after", {"192.0.2.50"}}};
  Outcome o = d.apply(*c, plan);
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("BADSIG") != std::string::npos);
  CHECK(named.dig(name, "A").empty());

  // A key name the server does not know.
  json unknown = good;
  unknown["tsig_key_name"] = "nobody";
  v = d.validate(unknown, true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("BADKEY") != std::string::npos);
}

TEST_CASE("dns-update rfc2136: a zone that takes no updates is refused at creation, and final") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  json c = named.config("api." + named.get("STATIC_ZONE"), "192.0.2.1");
  c["zone"] = named.get("STATIC_ZONE");
  auto v = d.validate(c, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("REFUSED") != std::string::npos);
  // Stored before the policy changed: the execution fails for good.
  Outcome o = run(d, *valid(d, c, false));
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("REFUSED") != std::string::npos);
  CHECK(o.reason.find("update-policy") != std::string::npos);
}

TEST_CASE(
    "dns-update rfc2136: BIND: creation checks the update-policy for the record, changing "
    "nothing") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string zone = named.get("NARROW_ZONE");  // grant KEY name allowed.ZONE A
  const std::string serial = named.soa_serial(zone);
  json allowed = named.config("allowed." + zone, "192.0.2.1");
  allowed["zone"] = zone;
  valid(d, allowed);
  json other = allowed;
  other["record"]["name"] = "other." + zone;
  auto v = d.validate(other, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("may not change other." + zone + " A") != std::string::npos);
  json txt = allowed;
  txt["record"]["type"] = "TXT";
  txt["value"] = "hello";
  CHECK_FALSE(d.validate(txt, true).ok());
  CHECK(named.soa_serial(zone) == serial);  // the checks changed nothing
  Outcome o = run(d, *valid(d, allowed));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(named.soa_serial(zone) != serial);
}

TEST_CASE(
    "dns-update rfc2136: a name outside the zone, or a zone not served, is rejected at creation") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  auto v = d.validate(named.config("api.example.com", "192.0.2.1"), true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.record.name"));

  json elsewhere = named.config("api.nothere.test", "192.0.2.1");
  elsewhere["zone"] = "nothere.test";
  v = d.validate(elsewhere, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.zone"));

  json sub = named.config("a.sub." + named.get("ZONE"), "192.0.2.1");
  sub["zone"] = "sub." + named.get("ZONE");  // inside the zone, but no zone apex
  v = d.validate(sub, true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.zone"));
}

TEST_CASE("dns-update rfc2136: a server that is down is retryable, and the retry succeeds") {
  Named named;  // its own instance: this test stops it
  if (!named_or_skip(named)) return;
  DnsUpdateDriver d;
  const std::string name = "flaky." + named.get("ZONE");
  auto c = valid(d, named.config(name, "192.0.2.77"));
  Plan p = d.plan(*c);
  REQUIRE(p.ok());

  named.down();
  auto t0 = std::chrono::steady_clock::now();
  Outcome o = d.apply(*c, p.desired);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(o.kind == Outcome::Kind::kRetryable);
  CHECK(o.reason.find("connection refused by " + named.server()) != std::string::npos);
  CHECK(o.reason.find("within") == std::string::npos);  // not reported as a timeout
  CHECK(took < std::chrono::seconds(1));                // a refused connection is known at once
  Plan down = d.plan(*c);
  REQUIRE_FALSE(down.ok());
  CHECK(down.failure.kind == Outcome::Kind::kRetryable);
  auto v = d.validate(named.config(name, "192.0.2.77"), true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.server"));

  named.restart();
  o = d.apply(*c, p.desired);
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(named.dig(name, "A") == Strings{"192.0.2.77"});
}

TEST_CASE(
    "dns-update rfc2136: end to end, a refused connection is retried, and its error stays in the "
    "execution after the retry succeeds") {
  Named named;  // its own instance: this test stops it
  if (!named_or_skip(named)) return;
  ServiceOptions o;
  o.retry.max_attempts = 40;  // room for a slow restart of named on a loaded machine
  TestServer s("", o);
  const std::string name = "retried." + named.get("ZONE");
  json receiver = s.create_receiver(
      {{"name", "retried"}, {"driver", "dns-update"}, {"config", named.config(name, "192.0.2.8")}});
  named.down();
  auto r = s.trigger(receiver["trigger_url"]);
  REQUIRE(r.status == 202);
  const int64_t id = json::parse(r.body)["execution_id"].get<int64_t>();
  const std::string path = "/api/v1/executions/" + std::to_string(id);
  json e;
  for (int i = 0; i < 200; ++i) {  // until the first attempt has failed
    e = json::parse(s.request("GET", path).body);
    if (!e["attempt_errors"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  INFO(e.dump());
  REQUIRE(e["attempt_errors"].size() >= 1);
  named.restart();
  e = s.wait_finished(id, 30000);
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["error"].is_null());
  REQUIRE(e["attempt_errors"].size() >= 1);
  CHECK(e["attempt_errors"][0]["attempt"] == 1);
  CHECK(e["attempt_errors"][0]["at"].is_string());
  const std::string first = e["attempt_errors"][0]["error"];
  CHECK(first.find("connection refused by " + named.server()) != std::string::npos);
  CHECK(e["attempts"].get<int>() == static_cast<int>(e["attempt_errors"].size()) + 1);
  CHECK(named.dig(name, "A") == Strings{"192.0.2.8"});
}

TEST_CASE("dns-update rfc2136: end to end, a trigger points the record at its caller") {
  Named& named = shared_named();
  if (!named_or_skip(named)) return;
  TestServer s;
  const std::string name = "e2e." + named.get("ZONE");
  json body = {{"name", "home-ip"},
               {"driver", "dns-update"},
               {"config", named.config(name, {{"from", "caller-ip"}})}};
  json receiver = s.create_receiver(body);
  CHECK(receiver["description"] ==
        "Point " + name + " (A) at the caller's address via " + named.server());
  CHECK(receiver["config"]["tsig_secret"] != named.get("TSIG_SECRET"));  // never answered

  auto r = s.trigger(receiver["trigger_url"]);
  INFO(r.body);
  REQUIRE(r.status == 202);
  json e = s.wait_finished(json::parse(r.body)["execution_id"].get<int64_t>());
  INFO(e.dump());
  CHECK(e["status"] == "succeeded");
  CHECK(e["result"]["after"] == json::array({"127.0.0.1"}));
  CHECK(named.dig(name, "A") == Strings{"127.0.0.1"});

  // The value from the body, by JSON pointer; a body without it is answered 422.
  body["name"] = "from-body";
  body["config"] = named.config(name, {{"from", "body"}, {"pointer", "/ip"}});
  receiver = s.create_receiver(body);
  r = s.request("POST", receiver["trigger_url"], json{{"ip", "192.0.2.123"}}, false);
  INFO(r.body);
  REQUIRE(r.status == 202);
  e = s.wait_finished(json::parse(r.body)["execution_id"].get<int64_t>());
  CHECK(e["status"] == "succeeded");
  CHECK(named.dig(name, "A") == Strings{"192.0.2.123"});
  r = s.request("POST", receiver["trigger_url"], json{{"ip", "not-an-address"}}, false);
  CHECK(r.status == 422);
  r = s.request("POST", receiver["trigger_url"], json{{"other", 1}}, false);
  CHECK(r.status == 422);
  CHECK(named.dig(name, "A") == Strings{"192.0.2.123"});

  // Outside the zone: rejected when the receiver is created.
  body["config"] = named.config("api.example.com", "192.0.2.1");
  auto bad = s.request("POST", "/api/v1/receivers", body);
  INFO(bad.body);
  CHECK(bad.status == 422);
  CHECK(bad.body.find("config.record.name") != std::string::npos);
}

// Knot DNS 3.2 (tests/support/knot-harness.sh). Knot answers an update its ACL does not allow
// with NOTAUTH/BADKEY, the same as for a key it does not know (docs/dns.md).

TEST_CASE("dns-update rfc2136 Knot: upsert, replace and delete, an A beside a CNAME is reported") {
  Named& knot = shared_knot();
  if (!named_or_skip(knot)) return;
  upsert_and_delete(knot, "api");
  // Knot, like BIND, answers NOERROR and ignores the A: the read-back reports it.
  DnsUpdateDriver d;
  const std::string name = "www." + knot.get("ZONE");
  REQUIRE(run(d, *valid(d, knot.config(name, "lb.example.net", "CNAME"))).ok());
  Outcome o = run(d, *valid(d, knot.config(name, "192.0.2.3")));
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("CNAME") != std::string::npos);
  CHECK(knot.dig(name, "CNAME") == Strings{"lb.example.net."});
}

TEST_CASE("dns-update rfc2136 Knot: a wrong secret is BADSIG, an unknown key BADKEY") {
  Named& knot = shared_knot();
  if (!named_or_skip(knot)) return;
  DnsUpdateDriver d;
  json wrong = knot.config("key." + knot.get("ZONE"), "192.0.2.50");
  wrong["tsig_secret"] = kWrongSecret;
  auto v = d.validate(wrong, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_secret"));
  CHECK(v.status().message().find("BADSIG") != std::string::npos);
  auto a = client(wrong).replace({"192.0.2.50"}, 60);
  CHECK(a.field == "tsig_secret");
  CHECK(a.tsig_error == 16);

  json unknown = knot.config("key." + knot.get("ZONE"), "192.0.2.50");
  unknown["tsig_key_name"] = "nobody";
  v = d.validate(unknown, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("does not know TSIG key \"nobody\"") != std::string::npos);
  a = client(unknown).replace({"192.0.2.50"}, 60);
  CHECK(a.tsig_error == 17);
  CHECK(a.message.find("does not know TSIG key") != std::string::npos);
  CHECK(knot.dig("key." + knot.get("ZONE"), "A").empty());
}

TEST_CASE(
    "dns-update rfc2136 Knot: a key its ACL does not allow is told apart from an unknown key") {
  Named& knot = shared_knot();
  if (!named_or_skip(knot)) return;
  DnsUpdateDriver d;
  const std::string zone = knot.get("LOCKED_ZONE");  // the key may update allowed.ZONE A only
  const std::string serial = knot.soa_serial(zone);
  json other = knot.config("other." + zone, "192.0.2.1");
  other["zone"] = zone;
  auto v = d.validate(other, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("BADKEY although it knows key") != std::string::npos);
  CHECK(v.status().message().find("ACL does not allow") != std::string::npos);
  CHECK(v.status().message().find("does not know") == std::string::npos);

  json txt = knot.config("allowed." + zone, "hello", "TXT");
  txt["zone"] = zone;
  CHECK_FALSE(d.validate(txt, true).ok());

  json stat = knot.config("api." + knot.get("STATIC_ZONE"), "192.0.2.1");
  stat["zone"] = knot.get("STATIC_ZONE");
  v = d.validate(stat, true);
  REQUIRE_FALSE(v.ok());
  // No ACL of the zone names the key: Knot answers BADKEY even to the SOA query.
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(v.status().message().find("no ACL of zone static.test names the key") != std::string::npos);
  CHECK(knot.soa_serial(zone) == serial);  // the checks changed nothing

  // The update itself, stored before the ACL changed: final, same diagnosis.
  Outcome o = run(d, *valid(d, other, false));
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("ACL does not allow") != std::string::npos);

  json allowed = knot.config("allowed." + zone, "192.0.2.1");
  allowed["zone"] = zone;
  o = run(d, *valid(d, allowed));
  INFO(o.reason);
  REQUIRE(o.ok());
  CHECK(knot.dig("allowed." + zone, "A") == Strings{"192.0.2.1"});
}

TEST_CASE("dns-update rfc2136 Knot: a zone it does not serve is reported on config.zone") {
  Named& knot = shared_knot();
  if (!named_or_skip(knot)) return;
  DnsUpdateDriver d;
  json elsewhere = knot.config("api.nothere.test", "192.0.2.1");
  elsewhere["zone"] = "nothere.test";
  // The query is answered REFUSED without TSIG: not a bad signature.
  auto v = d.validate(elsewhere, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.zone"));
  CHECK_FALSE(has_field(v.status(), "config.tsig_secret"));
  CHECK(v.status().message().find("does not serve zone nothere.test") != std::string::npos);
  // The update is answered with a bare NOTAUTH.
  auto a = client(elsewhere).replace({"192.0.2.1"}, 60);
  CHECK(a.rcode == 9);
  CHECK_FALSE(a.signed_reply);
  CHECK(a.field == "zone");
  CHECK(a.message.find("does not serve zone nothere.test") != std::string::npos);
}

// PowerDNS Authoritative 4.7 (tests/support/pdns-harness.sh). PowerDNS answers a rejected key
// without a TSIG record: a bare NOTAUTH to a query, a bare REFUSED to an update; and a CNAME
// conflict with REFUSED (docs/dns.md).

TEST_CASE("dns-update rfc2136 PowerDNS: upsert, replace and delete") {
  Named& pdns = shared_pdns();
  if (!named_or_skip(pdns)) return;
  upsert_and_delete(pdns, "api");
}

TEST_CASE(
    "dns-update rfc2136 PowerDNS: a rejected key (bare NOTAUTH/REFUSED, no TSIG) is blamed on "
    "the key, not on the zone") {
  Named& pdns = shared_pdns();
  if (!named_or_skip(pdns)) return;
  DnsUpdateDriver d;
  const std::string name = "key." + pdns.get("ZONE");
  json wrong = pdns.config(name, "192.0.2.50");
  wrong["tsig_secret"] = kWrongSecret;
  auto v = d.validate(wrong, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.tsig_secret"));
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK_FALSE(has_field(v.status(), "config.zone"));
  CHECK(v.status().message().find("rejected key") != std::string::npos);
  CHECK(v.status().message().find("not authoritative") == std::string::npos);

  auto q = client(wrong).check_zone();  // a query: bare NOTAUTH
  CHECK(q.rcode == 9);
  CHECK_FALSE(q.signed_reply);
  CHECK(q.field == "tsig_secret");
  auto u = client(wrong).replace({"192.0.2.50"}, 60);  // an update: bare REFUSED
  CHECK(u.rcode == 5);
  CHECK_FALSE(u.signed_reply);
  CHECK(u.field == "tsig_secret");
  CHECK(u.message.find("rejected key") != std::string::npos);

  json unknown = pdns.config(name, "192.0.2.50");
  unknown["tsig_key_name"] = "nobody";
  v = d.validate(unknown, true);
  REQUIRE_FALSE(v.ok());
  CHECK(has_field(v.status(), "config.tsig_key_name"));
  CHECK(pdns.dig(name, "A").empty());
}

TEST_CASE("dns-update rfc2136 PowerDNS: a key the zone does not allow is refused at creation") {
  Named& pdns = shared_pdns();
  if (!named_or_skip(pdns)) return;
  DnsUpdateDriver d;
  for (const std::string& zone : {pdns.get("LOCKED_ZONE"), pdns.get("STATIC_ZONE")}) {
    INFO(zone);
    const std::string serial = pdns.soa_serial(zone);
    json c = pdns.config("api." + zone, "192.0.2.1");
    c["zone"] = zone;
    auto v = d.validate(c, true);
    REQUIRE_FALSE(v.ok());
    INFO(v.status().message());
    CHECK(has_field(v.status(), "config.tsig_key_name"));
    CHECK(v.status().message().find("REFUSED") != std::string::npos);
    CHECK(v.status().message().find("TSIG-ALLOW-DNSUPDATE") != std::string::npos);
    CHECK(pdns.soa_serial(zone) == serial);
  }
}

TEST_CASE("dns-update rfc2136 PowerDNS: a CNAME conflict (REFUSED) is reported on the name") {
  Named& pdns = shared_pdns();
  if (!named_or_skip(pdns)) return;
  DnsUpdateDriver d;
  const std::string name = "www." + pdns.get("ZONE");
  pdns.nsupdate("update add " + name + " 300 CNAME lb.example.net.\\n");
  REQUIRE(pdns.dig(name, "CNAME") == Strings{"lb.example.net."});
  json c = pdns.config(name, "192.0.2.3");
  auto a = client(c).replace({"192.0.2.3"}, 60);
  CHECK(a.rcode == 5);
  CHECK(a.signed_reply);
  CHECK(a.field == "record.name");
  CHECK(a.message.find("holds a CNAME") != std::string::npos);
  CHECK(a.message.find("update policy") == std::string::npos);
  Outcome o = run(d, *valid(d, c, false));
  CHECK(o.kind == Outcome::Kind::kFinal);
  CHECK(o.reason.find("holds a CNAME") != std::string::npos);
  CHECK(pdns.dig(name, "CNAME") == Strings{"lb.example.net."});
}

TEST_CASE("dns-update rfc2136 PowerDNS: a zone it does not serve is reported on config.zone") {
  Named& pdns = shared_pdns();
  if (!named_or_skip(pdns)) return;
  DnsUpdateDriver d;
  json elsewhere = pdns.config("api.nothere.test", "192.0.2.1");
  elsewhere["zone"] = "nothere.test";
  auto v = d.validate(elsewhere, true);
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.zone"));
  // Signed REFUSED: PowerDNS checks the sender's address before the zone.
  auto a = client(elsewhere).replace({"192.0.2.1"}, 60);
  CHECK(a.rcode == 5);
  CHECK(a.signed_reply);
  CHECK(a.message.find("does not serve zone nothere.test") != std::string::npos);
  CHECK(a.field == "zone");
}

// Not a DNS server: a loopback listener that never answers, and one that closes at once. Each is
// told apart from a refused connection (the BIND test above) and from the other.
TEST_CASE(
    "dns-update rfc2136: a silent server is a timeout, a closing one says so, both retryable") {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(listener, 16) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const std::string server = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  json c = {{"backend", "rfc2136"},
            {"server", server},
            {"zone", "tripline.test"},
            {"tsig_key_name", "k"},
            {"tsig_secret", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
            {"record", {{"name", "a.tripline.test"}, {"type", "A"}}},
            {"action", "upsert"},
            {"value", "192.0.2.1"}};
  DnsUpdateDriver d(std::chrono::milliseconds(300));

  // Never accepted: the kernel completes the handshake, and nothing is ever answered.
  auto t0 = std::chrono::steady_clock::now();
  auto v = d.validate(c, true);
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE_FALSE(v.ok());
  INFO(v.status().message());
  CHECK(has_field(v.status(), "config.server"));
  CHECK(v.status().message().find("no answer from " + server + " over TCP within 300 ms") !=
        std::string::npos);
  CHECK(took >= std::chrono::milliseconds(250));
  CHECK(took < std::chrono::seconds(3));

  // Accepted and closed at once.
  std::atomic<bool> stop{false};
  std::thread closer([&] {
    while (!stop) {
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) {
        int fd = ::accept(listener, nullptr, nullptr);
        if (fd >= 0) ::close(fd);
      }
    }
  });
  Outcome o = run_or_plan_failure(d, c);
  stop = true;
  closer.join();
  ::close(listener);
  INFO(o.reason);
  CHECK(o.kind == Outcome::Kind::kRetryable);
  CHECK(o.reason.find(server + " closed the TCP connection") != std::string::npos);
}
