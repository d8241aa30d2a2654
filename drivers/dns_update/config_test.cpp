#include "config.h"

#include <catch2/catch.hpp>

#include "dns_update.h"
#include "externaldns.h"

using namespace tripline;
using namespace tripline::dns_update;
using nlohmann::json;

namespace {
json rfc2136() {
  return json::parse(R"({
    "backend": "rfc2136",
    "server": "127.0.0.1:5353",
    "zone": "example.com",
    "tsig_key_name": "tripline",
    "tsig_secret": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",
    "record": {"name": "api.example.com", "type": "A", "ttl": 60},
    "action": "upsert",
    "value": {"from": "caller-ip"}
  })");
}
json webhook() {
  return json::parse(R"({
    "backend": "externaldns-webhook",
    "provider_url": "http://127.0.0.1:8888",
    "record": {"name": "www.example.org", "type": "CNAME"},
    "action": "upsert",
    "value": "lb.example.net."
  })");
}
bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}
std::string fields(const Status& s) {
  std::string out;
  for (const auto& f : s.fields()) out += f.field + ": " + f.message + "\n";
  return out;
}
void check_invalid(const json& j, const std::string& field) {
  auto c = parse_config(j);
  INFO(j.dump());
  REQUIRE_FALSE(c.ok());
  INFO(fields(c.status()));
  CHECK(c.status().code() == Status::Code::kInvalid);
  CHECK(has_field(c.status(), field));
}
std::string canonical(RecordType t, const std::string& v) {
  std::string why;
  auto c = canonical_value(t, v, &why);
  return c ? *c : "invalid: " + why;
}
}  // namespace

TEST_CASE("dns-update config: the documented examples parse") {
  auto c = parse_config(rfc2136());
  REQUIRE(c.ok());
  CHECK(c->backend == Backend::kRfc2136);
  CHECK(c->server_host == "127.0.0.1");
  CHECK(c->server_port == 5353);
  CHECK(c->zone == "example.com");
  CHECK(c->tsig_key_name == "tripline");
  CHECK(c->tsig_algorithm == "hmac-sha256");
  CHECK(c->name == "api.example.com");
  CHECK(c->type == RecordType::kA);
  CHECK(c->ttl == 60);
  CHECK(c->action == Action::kUpsert);
  CHECK(c->source == ValueSource::kCallerIp);

  auto w = parse_config(webhook());
  REQUIRE(w.ok());
  CHECK(w->backend == Backend::kExternalDns);
  CHECK(w->provider_url == "http://127.0.0.1:8888");
  CHECK(w->type == RecordType::kCNAME);
  CHECK(w->ttl == 300);  // the default
  CHECK(w->source == ValueSource::kFixed);
  CHECK(w->value == "lb.example.net");  // canonical: no final dot

  auto j = rfc2136();
  j["value"] = {{"from", "body"}, {"pointer", "/alerts/0/labels/ip"}};
  auto b = parse_config(j);
  REQUIRE(b.ok());
  CHECK(b->source == ValueSource::kBody);
  CHECK(b->pointer == "/alerts/0/labels/ip");

  j = rfc2136();
  j["action"] = "delete";
  j.erase("value");
  auto d = parse_config(j);
  REQUIRE(d.ok());
  CHECK(d->source == ValueSource::kNone);
}

TEST_CASE("dns-update config: names, servers and keys are normalized") {
  auto j = rfc2136();
  j["zone"] = "Example.COM.";
  j["record"]["name"] = "API.example.com.";
  j["tsig_key_name"] = "Tripline-Key.";
  j["tsig_algorithm"] = "HMAC-SHA512";
  j["server"] = "[::1]:53";
  auto c = parse_config(j);
  REQUIRE(c.ok());
  CHECK(c->zone == "example.com");
  CHECK(c->name == "api.example.com");
  CHECK(c->tsig_key_name == "tripline-key");
  CHECK(c->tsig_algorithm == "hmac-sha512");
  CHECK(c->server_host == "::1");
  CHECK(c->server_port == 53);
  for (std::string s : {"ns1.example.com", "ns1.example.com:5300", "192.0.2.1", "2001:db8::53"}) {
    auto k = rfc2136();
    k["server"] = s;
    CHECK(parse_config(k).ok());
  }
  j = rfc2136();
  j["record"]["name"] = "example.com";  // the apex is inside the zone
  CHECK(parse_config(j).ok());
  j["record"]["name"] = "*.example.com";
  CHECK(parse_config(j).ok());
  j = webhook();
  j["provider_url"] = "http://127.0.0.1:8888/";
  CHECK(parse_config(j)->provider_url == "http://127.0.0.1:8888");
}

TEST_CASE("dns-update config: each bad field is named") {
  auto j = rfc2136();
  j.erase("backend");
  check_invalid(j, "config.backend");
  j = rfc2136();
  j["backend"] = "route53";
  check_invalid(j, "config.backend");
  j = rfc2136();
  j["colour"] = "red";
  check_invalid(j, "config.colour");
  j = rfc2136();
  j.erase("server");
  check_invalid(j, "config.server");
  j = rfc2136();
  j["server"] = "127.0.0.1:0";
  check_invalid(j, "config.server");
  j = rfc2136();
  j["server"] = "127.0.0.1:99999";
  check_invalid(j, "config.server");
  j = rfc2136();
  j["server"] = "bad host!";
  check_invalid(j, "config.server");
  j = rfc2136();
  j["server"] = "[::1";
  check_invalid(j, "config.server");
  j = rfc2136();
  j["server"] = "127.0.0.1:";
  check_invalid(j, "config.server");
  j = rfc2136();
  j.erase("zone");
  check_invalid(j, "config.zone");
  j = rfc2136();
  j["zone"] = "bad..zone";
  check_invalid(j, "config.zone");
  j = rfc2136();
  j.erase("tsig_key_name");
  check_invalid(j, "config.tsig_key_name");
  j = rfc2136();
  j.erase("tsig_secret");
  check_invalid(j, "config.tsig_secret");
  j = rfc2136();
  j["tsig_secret"] = "not base64!";
  check_invalid(j, "config.tsig_secret");
  j = rfc2136();
  j["tsig_secret"] = "abc";
  check_invalid(j, "config.tsig_secret");
  j = rfc2136();
  j["tsig_algorithm"] = "hmac-sha3";
  check_invalid(j, "config.tsig_algorithm");
  j = rfc2136();
  j["provider_url"] = "http://x";
  check_invalid(j, "config.provider_url");
  // Credentials in the provider URL would be readable in every trigger URL (the target is signed
  // into the token): refused. An @ in the path is not userinfo.
  j = webhook();
  j["provider_url"] = "http://user:pass@127.0.0.1:8888";
  check_invalid(j, "config.provider_url");
  j = webhook();
  j["provider_url"] = "http://127.0.0.1:8888/at@path";
  CHECK(parse_config(j).ok());
  j = rfc2136();
  j.erase("record");
  check_invalid(j, "config.record");
  j = rfc2136();
  j["record"]["weight"] = 3;
  check_invalid(j, "config.record.weight");
  j = rfc2136();
  j["record"]["type"] = "MX";
  check_invalid(j, "config.record.type");
  j = rfc2136();
  j["record"]["ttl"] = -1;
  check_invalid(j, "config.record.ttl");
  j = rfc2136();
  j["record"]["ttl"] = 1.5;
  check_invalid(j, "config.record.ttl");
  j = rfc2136();
  j["record"]["name"] = "api";
  check_invalid(j, "config.record.name");
  j = rfc2136();
  j["record"]["name"] = "a b.example.com";
  check_invalid(j, "config.record.name");
  j = rfc2136();
  j.erase("action");
  check_invalid(j, "config.action");
  j = rfc2136();
  j["action"] = "create";
  check_invalid(j, "config.action");
  j = rfc2136();
  j.erase("value");
  check_invalid(j, "config.value");
  j = rfc2136();
  j["value"] = 42;
  check_invalid(j, "config.value");
  j = rfc2136();
  j["value"] = {{"from", "header"}};
  check_invalid(j, "config.value.from");
  j = rfc2136();
  j["value"] = json::object();
  check_invalid(j, "config.value.from");
  j = rfc2136();
  j["value"] = {{"from", "body"}};
  check_invalid(j, "config.value.pointer");
  j = rfc2136();
  j["value"] = {{"from", "body"}, {"pointer", "ip"}};
  check_invalid(j, "config.value.pointer");
  j = rfc2136();
  j["value"] = {{"from", "body"}, {"pointer", "/a~2"}};
  check_invalid(j, "config.value.pointer");
  j = rfc2136();
  j["value"] = {{"from", "caller-ip"}, {"pointer", "/ip"}};
  check_invalid(j, "config.value.pointer");
  j = rfc2136();
  j["value"] = {{"from", "caller-ip"}, {"x", 1}};
  check_invalid(j, "config.value.x");
  j = webhook();
  j.erase("provider_url");
  check_invalid(j, "config.provider_url");
  j = webhook();
  j["provider_url"] = "ftp://127.0.0.1";
  check_invalid(j, "config.provider_url");
  j = webhook();
  j["zone"] = "example.org";
  check_invalid(j, "config.zone");
  j = webhook();
  j["tsig_secret"] = "c2VjcmV0";
  check_invalid(j, "config.tsig_secret");
  check_invalid(json::array(), "config");
}

TEST_CASE("dns-update config: the record name must lie inside the zone") {
  auto j = rfc2136();
  j["record"]["name"] = "api.example.org";
  check_invalid(j, "config.record.name");
  j["record"]["name"] = "notexample.com";  // a suffix, but not a subdomain
  check_invalid(j, "config.record.name");
  j = rfc2136();
  j["record"] = {{"name", "example.com"}, {"type", "CNAME"}};
  j["value"] = "target.example.net";
  check_invalid(j, "config.record.name");  // no CNAME at the apex
}

TEST_CASE("dns-update config: delete takes no value, upsert needs one") {
  auto j = rfc2136();
  j["action"] = "delete";
  check_invalid(j, "config.value");
  j = rfc2136();
  j.erase("value");
  check_invalid(j, "config.value");
}

TEST_CASE("dns-update config: a value is checked against its record type") {
  CHECK(canonical(RecordType::kA, "192.0.2.1") == "192.0.2.1");
  CHECK(canonical(RecordType::kA, "::1").rfind("invalid: must be an IPv4 address", 0) == 0);
  CHECK(canonical(RecordType::kA, "example.com").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kA, "192.0.2").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kA, "192.0.2.1 ").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kA, "192.0.2.01").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kA, "").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kAAAA, "2001:DB8:0:0::1") == "2001:db8::1");
  CHECK(canonical(RecordType::kAAAA, "192.0.2.1").rfind("invalid: must be an IPv6", 0) == 0);
  CHECK(canonical(RecordType::kCNAME, "LB.Example.NET.") == "lb.example.net");
  CHECK(canonical(RecordType::kCNAME, "192.0.2.1 x").rfind("invalid", 0) == 0);
  CHECK(canonical(RecordType::kTXT, "v=spf1 -all") == "v=spf1 -all");
  CHECK(canonical(RecordType::kTXT, std::string(3000, 'x')).rfind("invalid", 0) == 0);

  auto j = rfc2136();
  j["value"] = "2001:db8::1";  // an A record gets an IPv4 address, nothing else
  check_invalid(j, "config.value");
  j["record"]["type"] = "AAAA";
  CHECK(parse_config(j).ok());
  j["record"]["type"] = "CNAME";
  j["value"] = {{"from", "caller-ip"}};  // an address is no host name
  check_invalid(j, "config.value");
  j["record"]["type"] = "TXT";
  CHECK(parse_config(j).ok());
}

TEST_CASE("dns-update bind: caller-ip fills in the request's address") {
  DnsUpdateDriver driver;
  auto stored = rfc2136();
  auto config = driver.validate(stored, false);
  REQUIRE(config.ok());
  CHECK(driver.binds_request(**config));

  auto bound = driver.bind(stored, {"203.0.113.7", ""});
  REQUIRE(bound.ok());
  CHECK((*bound)["value"] == "203.0.113.7");
  CHECK((*bound)["tsig_secret"] == stored["tsig_secret"]);  // everything else as stored
  CHECK((*bound)["record"] == stored["record"]);
  auto concrete = driver.validate(*bound, false);
  REQUIRE(concrete.ok());
  CHECK_FALSE(driver.binds_request(**concrete));
  CHECK(driver.target(**concrete) == driver.target(**config));
  CHECK(driver.action(**concrete) == driver.action(**config));

  // An IPv4 client on a dual-stack socket.
  bound = driver.bind(stored, {"::ffff:203.0.113.8", ""});
  REQUIRE(bound.ok());
  CHECK((*bound)["value"] == "203.0.113.8");

  // An IPv6 caller cannot go into an A record: bind gives it, validation says no.
  bound = driver.bind(stored, {"2001:db8::7", ""});
  REQUIRE(bound.ok());
  auto rejected = driver.validate(*bound, false);
  REQUIRE_FALSE(rejected.ok());
  CHECK(has_field(rejected.status(), "config.value"));

  auto unknown = driver.bind(stored, {"", ""});
  REQUIRE_FALSE(unknown.ok());
  CHECK(has_field(unknown.status(), "request.caller_ip"));
}

TEST_CASE("dns-update bind: a JSON pointer reads the value from the body") {
  DnsUpdateDriver driver;
  auto stored = rfc2136();
  stored["value"] = {{"from", "body"}, {"pointer", "/alerts/0/labels/ip"}};
  REQUIRE(driver.validate(stored, false).ok());

  auto bound = driver.bind(
      stored, {"198.51.100.1", R"({"alerts":[{"labels":{"ip":"192.0.2.44"}}],"status":"firing"})"});
  REQUIRE(bound.ok());
  CHECK((*bound)["value"] == "192.0.2.44");
  CHECK(driver.validate(*bound, false).ok());

  auto field_of = [&](std::string_view body) {
    auto r = driver.bind(stored, {"198.51.100.1", body});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kInvalid);
    INFO(r.status().message());
    return r.status().fields().empty() ? std::string() : r.status().fields()[0].field;
  };
  CHECK(field_of(R"({"alerts":[]})") == "request.body");                     // absent
  CHECK(field_of(R"({"alerts":[{"labels":{"ip":7}}]})") == "request.body");  // wrong type
  CHECK(field_of(R"({"alerts":[{"labels":{"ip":null}}]})") == "request.body");
  CHECK(field_of("not json") == "request.body");
  CHECK(field_of("") == "request.body");
  CHECK(field_of(std::string(100, '[') + std::string(100, ']')) == "request.body");  // too deep
  CHECK(field_of(std::string(kMaxJsonBytes + 1, ' ')) == "request.body");            // too big

  // A body value of the wrong kind for the record binds, then fails validation.
  bound = driver.bind(stored, {"", R"({"alerts":[{"labels":{"ip":"db.internal"}}]})"});
  REQUIRE(bound.ok());
  CHECK(has_field(driver.validate(*bound, false).status(), "config.value"));

  // Escaped pointer tokens (RFC 6901): "~1" is "/", "~0" is "~".
  stored["value"]["pointer"] = "/a~1b/c~0d";
  bound = driver.bind(stored, {"", R"({"a/b":{"c~d":"192.0.2.9"}})"});
  REQUIRE(bound.ok());
  CHECK((*bound)["value"] == "192.0.2.9");
}

TEST_CASE("dns-update bind: a fixed value binds nothing") {
  DnsUpdateDriver driver;
  auto stored = webhook();
  auto config = driver.validate(stored, false);
  REQUIRE(config.ok());
  CHECK_FALSE(driver.binds_request(**config));
  auto bound = driver.bind(stored, {"203.0.113.7", "{}"});
  REQUIRE(bound.ok());
  CHECK(*bound == stored);
}

TEST_CASE("dns-update driver: describe, target and action") {
  DnsUpdateDriver driver;
  auto c = driver.validate(rfc2136(), false);
  REQUIRE(c.ok());
  CHECK(driver.describe(**c) ==
        "Point api.example.com (A) at the caller's address via 127.0.0.1:5353");
  CHECK(driver.target(**c) == "rfc2136:example.com/api.example.com/A");
  CHECK(driver.action(**c) == "upsert");

  auto w = driver.validate(webhook(), false);
  REQUIRE(w.ok());
  CHECK(driver.describe(**w) ==
        "Point www.example.org (CNAME) at lb.example.net via http://127.0.0.1:8888");
  CHECK(driver.target(**w) == "externaldns:http://127.0.0.1:8888/www.example.org/CNAME");

  auto j = rfc2136();
  j["action"] = "delete";
  j.erase("value");
  auto d = driver.validate(j, false);
  REQUIRE(d.ok());
  CHECK(driver.describe(**d) == "Delete api.example.com (A) via 127.0.0.1:5353");
  CHECK(driver.action(**d) == "delete");
  CHECK_FALSE(driver.binds_request(**d));

  j = rfc2136();
  j["record"]["type"] = "TXT";
  j["value"] = {{"from", "body"}, {"pointer", "/token"}};
  CHECK(driver.describe(**driver.validate(j, false)) ==
        "Set api.example.com (TXT) to the value at /token in the request body via 127.0.0.1:5353");
}

TEST_CASE("dns-update driver: plan refuses a config whose value was never bound") {
  DnsUpdateDriver driver;
  auto c = driver.validate(rfc2136(), false);
  REQUIRE(c.ok());
  Plan p = driver.plan(**c);
  REQUIRE_FALSE(p.ok());
  CHECK(p.failure.kind == Outcome::Kind::kFinal);
}

TEST_CASE("dns-update config: the JSON schema lists every field and marks the secret writeOnly") {
  auto schema = config_schema();
  for (const char* f : {"backend", "server", "zone", "tsig_key_name", "tsig_algorithm",
                        "tsig_secret", "provider_url", "record", "action", "value"})
    CHECK(schema["properties"].contains(f));
  CHECK(schema["additionalProperties"] == false);
  CHECK(schema["properties"]["tsig_secret"]["writeOnly"] == true);
  int write_only = 0;
  for (const auto& [_, p] : schema["properties"].items()) write_only += p.value("writeOnly", false);
  CHECK(write_only == 1);
}

TEST_CASE("dns-update domain filter: include and exclude match like external-dns") {
  auto f = DomainFilter::parse(
      json::parse(R"({"include":["Example.com."],"exclude":["internal.example.com"]})"));
  REQUIRE(f.ok());
  CHECK(f->matches("example.com"));
  CHECK(f->matches("api.example.com"));
  CHECK(f->matches("API.Example.com."));
  CHECK_FALSE(f->matches("notexample.com"));
  CHECK_FALSE(f->matches("example.org"));
  CHECK_FALSE(f->matches("internal.example.com"));
  CHECK_FALSE(f->matches("db.internal.example.com"));

  // A filter starting with a dot matches subdomains only.
  f = DomainFilter::parse(json::parse(R"({"include":[".example.com"]})"));
  REQUIRE(f.ok());
  CHECK(f->matches("api.example.com"));
  CHECK_FALSE(f->matches("example.com"));

  // Empty: everything.
  f = DomainFilter::parse(json::object());
  REQUIRE(f.ok());
  CHECK(f->matches("anything.example"));
  CHECK(f->to_string() == "no filter (everything)");
}

TEST_CASE("dns-update domain filter: regexes, and the casings providers have sent") {
  auto f = DomainFilter::parse(
      json::parse(R"({"regexInclude":"\\.example\\.com$","regexExclude":"^internal\\."})"));
  REQUIRE(f.ok());
  CHECK(f->matches("api.example.com"));
  CHECK_FALSE(f->matches("internal.example.com"));
  CHECK_FALSE(f->matches("api.example.org"));

  f = DomainFilter::parse(json::parse(R"({"regexExclude":"^internal\\."})"));
  REQUIRE(f.ok());
  CHECK(f->matches("api.example.org"));
  CHECK_FALSE(f->matches("internal.example.org"));

  // Go's regexp syntax (RE2): \A and (?i) are not ECMAScript.
  f = DomainFilter::parse(json::parse(R"({"regexInclude":"(?i)\\AWWW\\."})"));
  REQUIRE(f.ok());
  CHECK(f->matches("www.example.org"));
  CHECK_FALSE(f->matches("api.www.example.org"));

  CHECK_FALSE(DomainFilter::parse(json::parse(R"({"include":["a.com"],"regexInclude":"b"})")).ok());
  CHECK_FALSE(DomainFilter::parse(json::parse(R"({"regexInclude":"("})")).ok());
  CHECK_FALSE(DomainFilter::parse(json::parse(R"({"include":"example.com"})")).ok());

  // Go's decoder matches keys case-insensitively; v0.14.0 sent the struct's "Filters".
  f = DomainFilter::parse(
      json::parse(R"({"Include":["example.com"],"Exclude":["x.example.com"]})"));
  REQUIRE(f.ok());
  CHECK(f->matches("api.example.com"));
  CHECK_FALSE(f->matches("x.example.com"));
  f = DomainFilter::parse(json::parse(R"({"Filters":["example.com"]})"));
  REQUIRE(f.ok());
  CHECK_FALSE(f->matches("example.org"));
}

TEST_CASE("dns-update endpoints: keys are read in either casing and written in camelCase") {
  auto e = normalize_endpoint(json::parse(
      R"({"DNSName":"a.example.com","Targets":["192.0.2.1"],"RecordType":"A","RecordTTL":60,"Labels":{"owner":"x"},"extra":1})"));
  CHECK(e["dnsName"] == "a.example.com");
  CHECK(e["targets"] == json::array({"192.0.2.1"}));
  CHECK(e["recordType"] == "A");
  CHECK(e["recordTTL"] == 60);
  CHECK(e["labels"]["owner"] == "x");
  CHECK(e["extra"] == 1);
  CHECK_FALSE(e.contains("DNSName"));
  json obj = {{"UpdateOld", 1}, {"updateNew", 2}};
  REQUIRE(go_field(obj, "updateOld"));
  CHECK(*go_field(obj, "updateOld") == 1);
  CHECK(*go_field(obj, "updateNew") == 2);
  CHECK(go_field(obj, "create") == nullptr);
}

TEST_CASE("dns-update bind: a malformed stored config is answered, never thrown") {
  DnsUpdateDriver driver;
  for (const char* text : {R"({"value":{"from":5}})", R"({"value":{"from":"body","pointer":7}})",
                           R"({"value":{"from":"body","pointer":"no-slash"}})",
                           R"({"value":{"from":"caller-ip"},"record":{"type":7}})",
                           R"({"value":{"from":"caller-ip"},"record":[]})", R"([1,2])"}) {
    INFO(text);
    Result<json> r = json();
    CHECK_NOTHROW(r = driver.bind(json::parse(text), {"192.0.2.1", R"({"ip":"192.0.2.2"})"}));
  }
}

TEST_CASE("dns-update driver: the inverse of upsert deletes the same record set") {
  DnsUpdateDriver driver;
  auto inv = driver.inverse(rfc2136());
  REQUIRE(inv.ok());
  CHECK((*inv)["action"] == "delete");
  CHECK_FALSE(inv->contains("value"));
  auto c = driver.validate(*inv, false);
  REQUIRE(c.ok());
  auto original = driver.validate(rfc2136(), false);
  CHECK(driver.target(**c) == driver.target(**original));
  CHECK(driver.action(**c) == "delete");
  CHECK_FALSE(driver.inverse(*inv).ok());  // nothing to put back
  CHECK_FALSE(driver.inverse(json::array()).ok());
}

TEST_CASE("dns-update: plan_after takes the plan before as the record's current state") {
  DnsUpdateDriver driver;
  auto config = driver.validate(webhook(), /*check_peer=*/false);  // a fixed value
  REQUIRE(config.ok());
  json previous = {{"after", {"192.0.2.1"}}, {"ttl", 300}, {"before", json::array()}};
  auto next = driver.plan_after(**config, previous);
  REQUIRE(next);
  CHECK((*next)["before"] == json{"192.0.2.1"});
  CHECK((*next)["ttl_before"] == 300);
  CHECK((*next)["after"] == json{"lb.example.net"});  // as plan() writes it: normalized
  CHECK((*next)["provider"] == "http://127.0.0.1:8888");
  // A value the request supplies is bound per execution: each is planned against the peer.
  auto bound = driver.validate(rfc2136(), /*check_peer=*/false);
  REQUIRE(bound.ok());
  CHECK_FALSE(driver.plan_after(**bound, previous));
  CHECK_FALSE(driver.plan_after(**config, json{{"ttl", 60}}));  // no "after": cannot say
}

// The schema's allOf if/then states what each backend and action requires (the web UI marks
// those fields required while shown): each field it names is one parse_config refuses without.
TEST_CASE("dns-update config: the schema's per-backend requirements are what parse_config needs") {
  auto schema = config_schema();
  REQUIRE(schema["allOf"].is_array());
  int checked = 0;
  for (const json& branch : schema["allOf"]) {
    const json& props = branch["if"]["properties"];
    REQUIRE(props.size() == 1);
    const std::string key = props.begin().key();
    const json& cond = props.begin().value();
    CHECK(branch["if"]["required"] == json::array({key}));  // an absent key matches no branch
    json base = rfc2136();
    if (cond["const"] == "externaldns-webhook") base = webhook();
    REQUIRE(base[key] == cond["const"]);
    REQUIRE(parse_config(base).ok());
    for (const json& f : branch["then"]["required"]) {
      json without = base;
      without.erase(f.get<std::string>());
      check_invalid(without, "config." + f.get<std::string>());
      ++checked;
    }
  }
  CHECK(checked == 6);  // server, zone, tsig_key_name, tsig_secret; provider_url; value
}
