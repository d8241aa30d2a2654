// Target "body": values taken from a trigger request's body, as rules and drivers read them.
//  - parse_body_json (rules.h) against the plain parser: it agrees on every body nested at most
//    64 deep and refuses (discarded) exactly the deeper ones.
//  - read_field (rules.h) for body, header, query, method and source fields, checked against a
//    JSON-pointer walker written here (RFC 6901: ~0 ~1, array indexes without leading zeros).
//  - the dns-update driver's bind() with stored configs whose value comes from the body (JSON
//    pointers, A/AAAA/CNAME/TXT) or from the caller's address: never throws, binds exactly the
//    string the walker finds, changes nothing but "value", refuses with request.* field errors,
//    and what it binds validates (or fails on config.value only) without changing the target or
//    the action that the trigger token was signed for.
// Input: PREFIX NUL BODY (fuzz.h). PREFIX is also used as a field path, as the caller's
// address, and, when it is a JSON object, as a stored dns-update config that is validated
// (check_peer = false: no I/O), bound to the body, and inverted.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../support/fake_request.h"
#include "drivers/dns_update/config.h"
#include "drivers/dns_update/dns_update.h"
#include "fuzz.h"
#include "net.h"
#include "rules.h"
#include "split.h"

namespace tripline::fuzz {
namespace {

using nlohmann::json;

int depth_of(const json& root) {
  int max = 0;
  std::vector<std::pair<const json*, int>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [j, d] = stack.back();
    stack.pop_back();
    if (!j->is_structured()) continue;
    max = std::max(max, d + 1);
    for (const auto& child : *j) stack.emplace_back(&child, d + 1);
  }
  return max;
}

// RFC 6901, written from the RFC rather than from nlohmann: the value at `pointer`, or nullopt
// (also for a pointer that is not well formed).
std::optional<json> walk(const json& root, std::string_view pointer) {
  if (pointer.empty()) return root;
  if (pointer[0] != '/') return std::nullopt;
  const json* at = &root;
  size_t pos = 1;
  while (true) {
    size_t end = pointer.find('/', pos);
    std::string_view raw = pointer.substr(pos, end == std::string_view::npos ? end : end - pos);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token += raw[i];
        continue;
      }
      if (i + 1 == raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return std::nullopt;
      token += raw[++i] == '0' ? '~' : '/';
    }
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return std::nullopt;
      at = &*it;
    } else if (at->is_array()) {
      if (token.empty() || token.size() > 18 || (token.size() > 1 && token[0] == '0'))
        return std::nullopt;
      size_t index = 0;
      for (char c : token) {
        if (c < '0' || c > '9') return std::nullopt;
        index = index * 10 + size_t(c - '0');
      }
      if (index >= at->size()) return std::nullopt;
      at = &(*at)[index];
    } else {
      return std::nullopt;
    }
    if (end == std::string_view::npos) return *at;
    pos = end + 1;
  }
}

bool well_formed_pointer(std::string_view p) {
  if (!p.empty() && p[0] != '/') return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] == '~' && (i + 1 == p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) return false;
  return true;
}

// ---- parse_body_json ----------------------------------------------------------------------

// nlohmann's lexer takes a NUL byte for the end of the input, so json::parse reads
// `{"a":1}<NUL>anything` as {"a":1}. A raw NUL is never valid JSON (RFC 8259: not even inside a
// string), so a body that holds one is not JSON: the reference parse below refuses it.
json reference_parse(std::string_view body) {
  if (body.find('\0') != std::string_view::npos) return json(json::value_t::discarded);
  return json::parse(body, nullptr, /*allow_exceptions=*/false);
}

json check_parse(std::string_view body) {
  json guarded = parse_body_json(body);
  json plain = reference_parse(body);
  if (plain.is_discarded()) {
    FUZZ_CHECK(guarded.is_discarded(), "parse_body_json accepted a body that is not JSON");
  } else if (depth_of(plain) > 64) {
    FUZZ_CHECK(guarded.is_discarded(), "parse_body_json accepted a body nested deeper than 64");
  } else {
    FUZZ_CHECK(!guarded.is_discarded(), "parse_body_json refused JSON nested at most 64 deep");
    FUZZ_CHECK(guarded == plain, "parse_body_json changed the document");
    // simdjson builds the values (json_limits.cpp): number types must be nlohmann's too.
    FUZZ_CHECK(guarded.dump() == plain.dump(), "parse_body_json changed a value's type");
  }
  return plain;
}

// ---- read_field ---------------------------------------------------------------------------

void check_read_field(std::string_view prefix, std::string_view body, const json& parsed) {
  test::FakeRequest req;
  req.body_ = std::string(body);
  req.headers_ = {{"X-Fuzz", std::string(prefix)}};
  req.query_ = {{"q", std::string(prefix)}};
  json guarded = parse_body_json(body);
  std::string source(prefix.substr(0, 64));
  RuleInput in{req, guarded, source};

  FUZZ_CHECK(read_field(in, "method") == "POST", "method");
  FUZZ_CHECK(read_field(in, "source") == source, "source");
  FUZZ_CHECK(read_field(in, "header:x-fuzz") == std::string(prefix), "header");
  FUZZ_CHECK(read_field(in, "header:X-Absent").is_null(), "absent header");
  FUZZ_CHECK(read_field(in, "query:q") == std::string(prefix), "query");

  std::vector<std::string> pointers = {
      "",    "/",  "/ip",    "/alerts/0/labels/instance", "/a~1b/~0", "/0",
      "/00", "/-", "/1/2/3", "/18446744073709551616"};
  if (prefix.size() <= 256) pointers.emplace_back(prefix);
  for (const auto& p : pointers) {
    json got = read_field(in, "body:" + p);                             // never throws
    if (p.empty() || p[0] != '/' || !well_formed_pointer(p)) continue;  // dotted or refused
    std::optional<json> want = guarded.is_discarded() ? std::nullopt : walk(parsed, p);
    if (!want || want->is_null())
      FUZZ_CHECK(got.is_null(), "body:" + p + " read " + got.dump() + " where there is nothing");
    else
      FUZZ_CHECK(got == *want, "body:" + p + " read " + got.dump() + ", not " + want->dump());
  }
  // A plain dotted path a.b.c reads what /a/b/c does.
  if (!prefix.empty() && prefix.size() <= 64 && prefix.front() != '.' && prefix.back() != '.' &&
      prefix.find("..") == std::string_view::npos &&
      prefix.find_first_not_of(
          "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") ==
          std::string_view::npos) {
    std::string pointer = "/" + std::string(prefix);
    for (char& c : pointer)
      if (c == '.') c = '/';
    FUZZ_CHECK(read_field(in, "body:" + std::string(prefix)) == read_field(in, "body:" + pointer),
               std::string(prefix));
  }
  read_field(in, std::string(prefix));  // whatever it is: never throws
}

// ---- addresses: rules' cidr operator, trusted proxies, caller-ip -------------------------

void check_address(std::string_view text) {
  auto canonical = canonical_ip(text);
  if (!canonical) {
    FUZZ_CHECK(!Cidr::parse("0.0.0.0/0")->contains(text) && !Cidr::parse("::/0")->contains(text),
               "a range contains text that is no address");
    return;
  }
  FUZZ_CHECK(text.find('\0') == std::string_view::npos,
             "text with a NUL byte taken as the address " + *canonical);
  FUZZ_CHECK(canonical_ip(*canonical) == canonical,
             "canonical_ip is not idempotent: " + *canonical);
  auto exact = Cidr::parse(*canonical);
  FUZZ_CHECK(exact && exact->contains(text) && exact->contains(*canonical), *canonical);
}

void check_caller_address(std::string_view forwarded_for) {
  static const std::vector<Cidr> trusted = {*Cidr::parse("10.0.0.0/8"),
                                            *Cidr::parse("2001:db8::/32")};
  std::string caller = caller_address("10.0.0.2", std::string(forwarded_for), trusted);
  FUZZ_CHECK(canonical_ip(caller) == caller, "caller is not a canonical address: " + caller);
  if (caller == "10.0.0.2") return;
  // Otherwise it is one of the forwarded entries, and every entry to its right is trusted.
  bool found = false;
  std::string_view rest = forwarded_for;
  while (!found) {
    size_t comma = rest.rfind(',');
    std::string_view entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    auto ip = canonical_ip(entry);
    FUZZ_CHECK(ip.has_value(), "an unparsable hop was passed over to reach " + caller);
    if (*ip == caller)
      found = true;
    else
      FUZZ_CHECK(trusted[0].contains(*ip) || trusted[1].contains(*ip),
                 "skipped an untrusted hop " + *ip);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
  }
  FUZZ_CHECK(found, "the caller " + caller + " is not in X-Forwarded-For");
}

// ---- dns-update bind() --------------------------------------------------------------------

struct StoredConfig {
  json config;
  std::string pointer;         // empty: caller-ip
  std::string target, action;  // of the stored config, as signed into the token
};

const char* const kConfigs[] = {
    R"({"backend":"rfc2136","server":"127.0.0.1:5353","zone":"example.com","tsig_key_name":"tripline-key",
        "tsig_secret":"8yo92ZPTmzZ5q8xOmYR8MMguAXO51ZxRQ/Fyj/lWN+0=","record":{"name":"home.example.com","type":"A","ttl":60},
        "action":"upsert","value":{"from":"body","pointer":"/ip"}})",
    R"({"backend":"rfc2136","server":"[::1]:53","zone":"example.com","tsig_key_name":"k",
        "tsig_secret":"8yo92ZPTmzZ5q8xOmYR8MMguAXO51ZxRQ/Fyj/lWN+0=","record":{"name":"v6.example.com","type":"AAAA"},
        "action":"upsert","value":{"from":"body","pointer":"/alerts/0/labels/instance_ip"}})",
    R"({"backend":"externaldns-webhook","provider_url":"http://127.0.0.1:8888","record":{"name":"api.example.org","type":"CNAME"},
        "action":"upsert","value":{"from":"body","pointer":"/a~1b/~0/1"}})",
    R"({"backend":"externaldns-webhook","provider_url":"http://127.0.0.1:8888","record":{"name":"_txt.example.org","type":"TXT","ttl":0},
        "action":"upsert","value":{"from":"body","pointer":""}})",
    R"({"backend":"rfc2136","server":"ns1.example.com","zone":"example.com","tsig_key_name":"k",
        "tsig_secret":"8yo92ZPTmzZ5q8xOmYR8MMguAXO51ZxRQ/Fyj/lWN+0=","record":{"name":"home.example.com","type":"a"},
        "action":"upsert","value":{"from":"caller-ip"}})",
    R"({"backend":"externaldns-webhook","provider_url":"https://dns.example.net/hook/","record":{"name":"*.example.org","type":"AAAA"},
        "action":"upsert","value":{"from":"caller-ip"}})",
};

const DnsUpdateDriver& driver() {
  static const DnsUpdateDriver d;
  return d;
}

const std::vector<StoredConfig>& stored_configs() {
  static const auto v = [] {
    std::vector<StoredConfig> out;
    for (const char* text : kConfigs) {
      StoredConfig s;
      s.config = json::parse(text);
      auto typed = driver().validate(s.config, false);
      if (!typed.ok())
        throw std::logic_error("fixed config is invalid: " + typed.status().message());
      if (!driver().binds_request(**typed)) throw std::logic_error("fixed config binds nothing");
      s.pointer = s.config["value"].value("pointer", "");
      s.target = driver().target(**typed);
      s.action = driver().action(**typed);
      out.push_back(std::move(s));
    }
    return out;
  }();
  return v;
}

json without_value(json j) {
  j.erase("value");
  return j;
}

bool body_within_limits(std::string_view body, const json& parsed) {
  return body.size() <= kMaxJsonBytes && !parsed.is_discarded() &&
         depth_of(parsed) <= kMaxJsonDepth;
}

void check_bind(const StoredConfig& s, std::string_view caller, std::string_view body,
                const json& parsed) {
  Result<json> bound = driver().bind(s.config, TriggerRequest{caller, body});
  bool from_body = s.config["value"]["from"] == "body";
  std::optional<json> want;
  if (from_body && body_within_limits(body, parsed)) want = walk(parsed, s.pointer);
  if (!bound.ok()) {
    const Status st = bound.status();
    FUZZ_CHECK(st.code() == Status::Code::kInvalid && !st.fields().empty(), st.message());
    FUZZ_CHECK(st.message().find("could not be read") == std::string::npos,
               "bind() caught an exception: " + st.message());
    for (const auto& f : st.fields())
      FUZZ_CHECK(f.field == (from_body ? "request.body" : "request.caller_ip"), f.field);
    if (from_body)
      FUZZ_CHECK(!want || !want->is_string(), "refused a body that holds a string there");
    else
      FUZZ_CHECK(caller.empty(), "refused a caller address: " + st.message());
    return;
  }
  const json& out = *bound;
  FUZZ_CHECK(out.is_object() && out.contains("value") && out["value"].is_string(), out.dump());
  FUZZ_CHECK(without_value(out) == without_value(s.config), "bind() changed more than the value");
  const std::string& value = out["value"].get_ref<const std::string&>();
  if (from_body) {
    FUZZ_CHECK(want.has_value(),
               "bound \"" + value + "\" from a body that is not JSON, or is too large or deep");
    FUZZ_CHECK(want->is_string() && *want == value, "bound \"" + value + "\", not " + want->dump());
  } else {
    std::string c(caller);
    bool is_a = s.config["record"]["type"] == "a" || s.config["record"]["type"] == "A";
    FUZZ_CHECK(value == c || (is_a && c.rfind("::ffff:", 0) == 0 && value == c.substr(7)), value);
  }
  auto typed = driver().validate(out, false);
  if (!typed.ok()) {
    const Status st = typed.status();  // status() returns a copy: keep it alive for the loop
    for (const auto& f : st.fields())
      FUZZ_CHECK(f.field == "config.value", "a bound value broke " + f.field);
    return;
  }
  FUZZ_CHECK(driver().target(**typed) == s.target, "the bound value changed the target");
  FUZZ_CHECK(driver().action(**typed) == s.action, "the bound value changed the action");
  FUZZ_CHECK(!driver().describe(**typed).empty(), "describe");
  FUZZ_CHECK(!driver().binds_request(**typed), "a bound config still binds");
}

// PREFIX as a whole stored config: validated, bound, inverted; nothing throws.
void check_config(std::string_view text, std::string_view body) {
  json config = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return;
  auto typed = driver().validate(config, false);
  if (!typed.ok()) {
    const Status st = typed.status();
    FUZZ_CHECK(st.code() == Status::Code::kInvalid && !st.fields().empty(), st.message());
    for (const auto& f : st.fields()) FUZZ_CHECK(f.field.rfind("config", 0) == 0, f.field);
    return;
  }
  std::string target = driver().target(**typed), action = driver().action(**typed);
  driver().describe(**typed);
  if (driver().binds_request(**typed)) {
    for (std::string_view caller : {"203.0.113.7", "::ffff:198.51.100.4", "2001:db8::1", ""}) {
      auto bound = driver().bind(config, TriggerRequest{caller, body});
      if (!bound.ok()) continue;
      auto again = driver().validate(*bound, false);
      if (!again.ok()) continue;
      FUZZ_CHECK(driver().target(**again) == target, "a bound value changed the target");
      FUZZ_CHECK(driver().action(**again) == action, "a bound value changed the action");
    }
  }
  auto inverse = driver().inverse(config);
  if (inverse.ok()) {
    auto inv = driver().validate(*inverse, false);
    FUZZ_CHECK(inv.ok(), "the inverse of a valid config is invalid: " + inv.status().message());
    FUZZ_CHECK(driver().target(**inv) == target, "the inverse acts on another record");
  }
}

}  // namespace

int fuzz_body(const uint8_t* data, size_t size) {
  Split in = split_input(data, size);
  json parsed = check_parse(in.body);
  check_read_field(in.prefix, in.body, parsed);
  std::string_view caller = in.had_separator ? in.prefix : std::string_view("203.0.113.7");
  for (const auto& s : stored_configs()) {
    check_bind(s, caller, in.body, parsed);
    check_bind(s, "::ffff:198.51.100.4", in.body, parsed);
  }
  if (in.had_separator) check_config(in.prefix, in.body);
  if (in.prefix.size() <= 512) {
    check_address(in.prefix);
    check_caller_address(in.prefix);
  }
  if (parsed.is_object() && parsed.contains("ip") && parsed["ip"].is_string())
    check_address(parsed["ip"].get_ref<const std::string&>());
  return 0;
}

}  // namespace tripline::fuzz
