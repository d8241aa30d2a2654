// Target "rules": the rule compiler and evaluator (server/trigger/rules.h) as the trigger path uses
// them: the body parsed by parse_body_json, evaluate() on the trigger thread, the Alertmanager
// preset's payload check and dedupe key.
//
// Input: PREFIX NUL BODY, or one text that plays both parts (fuzz.h).
//  A. PREFIX parsed as JSON (as the management API parses a receiver) is compiled with
//     RuleSet::compile: it never throws, and refuses with Invalid and "rules..." field errors.
//     A rule set that compiles is evaluated over BODY and over fixed requests, twice (compiled
//     twice): the same answer both times.
//  B. BODY is the request to fixed rule sets (every operator, from_request "set" values, the
//     Alertmanager preset): evaluate() never throws, its Decision is coherent (rule index in
//     range, a "set" only on rules that run, an error only from a from_request value), a few
//     rules are checked against a plain model, and for an Alertmanager payload the dedupe key is
//     computed without throwing and does not depend on the order of the alerts.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "../support/fake_request.h"
#include "fuzz.h"
#include "registry_push.h"
#include "rules.h"
#include "split.h"

namespace tripline::fuzz {
namespace {

using nlohmann::json;

const char* const kFixedRules[] = {
    // 0: GitHub push filter, as in rules.h
    R"({"default":"ignore","rules":[
        {"name":"only critical","when":{"field":"body:/commonLabels/severity","op":"not_equals","value":"critical"},"then":"ignore"},
        {"when":{"all":[{"field":"header:X-GitHub-Event","op":"equals","value":"push"},
                        {"field":"body:ref","op":"regex","value":"^refs/heads/(main|release-.*)$"}]},
         "then":"run","set":{"by":{"from_request":"body:/commonAnnotations/scale_by"}}}]})",
    // 1: the Alertmanager preset
    R"({"preset":"alertmanager","on_resolved":"inverse","ignore_status":202,"rules":[
        {"when":{"field":"body:/commonLabels/severity","op":"not_equals","value":"critical"},"then":"ignore"},
        {"when":{"field":"body:alerts[0].labels.instance","op":"exists"},
         "set":{"value":{"from_request":"body:alerts[0].labels.instance"}}}]})",
    // 2: every operator and field kind; rule 0 is also checked against a model below
    R"({"default":"ignore","rules":[
        {"name":"count","when":{"field":"body:/count","op":"gt","value":5},"set":{"by":{"from_request":"body:/count"}}},
        {"when":{"field":"body:/n","op":"lte","value":-1.5}},
        {"when":{"field":"body:a.b[2].c","op":"in","value":[1,"x",null,{"k":[]}]}},
        {"when":{"field":"header:X-Fuzz","op":"cidr","value":["10.0.0.0/8","2001:db8::/32","::ffff:192.0.2.1"]}},
        {"when":{"field":"source","op":"cidr","value":"198.51.100.0/24"},"then":"ignore"},
        {"when":{"any":[{"field":"body:","op":"equals","value":{}},{"not":{"field":"body:/~0~1","op":"exists"}}]},"then":"ignore"},
        {"when":{"field":"body:/s","op":"regex","value":"(?i)^(a+)+b[\\x{100}-\\x{10ffff}]?$"}},
        {"when":{"field":"query:env","op":"gte","value":0}},
        {"when":{"not":{"not":{"field":"body:/0/1","op":"exists","value":false}}},
         "set":{"header":{"from_request":"header:X-Fuzz"},"fixed":[1,{"two":2}],"src":{"from_request":"source"}}},
        {"when":{"field":"method","value":"POST"},"set":{"value":{"from_request":"body:/ip"}}}]})",
};

std::shared_ptr<const RuleSet> compile_fixed(const char* text) {
  auto r = RuleSet::compile(json::parse(text));
  if (!r.ok()) throw std::logic_error("fixed rule set does not compile: " + r.status().message());
  return *r;
}

size_t rule_count(const json& rules) {
  if (!rules.is_object() || !rules.contains("rules")) return 0;
  return rules["rules"].size();
}

struct Fixed {
  std::shared_ptr<const RuleSet> rules;
  size_t count;
};

const std::vector<Fixed>& fixed_rule_sets() {
  static const auto sets = [] {
    std::vector<Fixed> v;
    for (const char* t : kFixedRules) v.push_back({compile_fixed(t), rule_count(json::parse(t))});
    return v;
  }();
  return sets;
}

void check_decision(const Decision& d, size_t rules) {
  FUZZ_CHECK(d.rule_index >= -1 && d.rule_index < static_cast<int>(rules),
             std::to_string(d.rule_index));
  if (d.rule_index == -1) {
    FUZZ_CHECK(d.set.is_null() && d.error.ok() && d.rule_name.empty(),
               "the default decided, with extras");
  }
  FUZZ_CHECK(d.set.is_null() || d.set.is_object(), d.set.dump());
  if (!d.run) FUZZ_CHECK(d.set.is_null() && d.error.ok(), "an ignoring rule set values");
  if (!d.error.ok()) {
    FUZZ_CHECK(d.error.code() == Status::Code::kInvalid && !d.error.fields().empty(),
               d.error.message());
    FUZZ_CHECK(d.error.fields()[0].field.rfind("rules.rules[", 0) == 0, d.error.fields()[0].field);
  }
}

bool same(const Decision& a, const Decision& b) {
  return a.run == b.run && a.rule_index == b.rule_index && a.rule_name == b.rule_name &&
         a.set == b.set && a.error.ok() == b.error.ok() && a.error.message() == b.error.message();
}

struct Request {
  test::FakeRequest req;
  json body;
  std::string source;
};

Request make_request(std::string_view body, std::string_view source) {
  Request r;
  r.req.body_ = std::string(body);
  r.req.headers_ = {{"X-GitHub-Event", "push"}, {"X-Fuzz", std::string(body.substr(0, 256))}};
  r.req.query_ = {{"env", std::string(body.substr(0, 32))}};
  r.body = parse_body_json(body);
  r.source = std::string(source);
  return r;
}

Decision evaluate(const RuleSet& rs, const Request& r) {
  return rs.evaluate(RuleInput{r.req, r.body, r.source});
}

void check_alertmanager(const json& body) {
  if (!is_alertmanager_payload(body)) return;
  std::string key = alertmanager_key(body);
  FUZZ_CHECK(key.rfind("alertmanager:", 0) == 0 && key.size() == 13 + 40, key);
  json reversed = body;
  std::reverse(reversed["alerts"].begin(), reversed["alerts"].end());
  FUZZ_CHECK(alertmanager_key(reversed) == key, "the dedupe key depends on the order of alerts");
}

// The registry-push preset's reader (registry_push.h): never throws, keeps its bounds, and every
// push it answers names a valid repository and tag (what redeploy then looks up on a registry).
void check_registry_push(const json& body) {
  auto n = read_push_notification(body);
  if (!n) return;
  FUZZ_CHECK(n->pushes.size() <= kMaxPushes, "more pushes than kMaxPushes");
  FUZZ_CHECK(n->key.empty() || n->key.rfind("push:" + n->source + ":", 0) == 0, n->key);
  for (const auto& p : n->pushes) {
    FUZZ_CHECK(valid_repository_path(p.repository), p.repository);
    FUZZ_CHECK(valid_image_tag(p.tag), p.tag);
  }
  FUZZ_CHECK(read_push_notification(body)->key == n->key, "the delivery key is not stable");
}

// Rule 0 of fixed set 2, by hand, when the body gives it a plain answer.
void check_model(const Decision& d, const json& body) {
  if (!body.is_object() || !body.contains("count")) {
    FUZZ_CHECK(d.rule_index != 0, "rule 0 matched without a count");
    return;
  }
  const json& count = body["count"];
  if (count.is_number()) {
    bool gt = count.get<double>() > 5;
    FUZZ_CHECK((d.rule_index == 0) == gt, count.dump());
    if (gt) FUZZ_CHECK(d.run && d.error.ok() && d.set == json({{"by", count}}), d.set.dump());
  } else if (!count.is_string()) {
    FUZZ_CHECK(d.rule_index != 0, "rule 0 matched a count that is no number");
  }
}

const std::vector<std::string>& fixed_bodies() {
  static const std::vector<std::string> v = {
      "",
      "not json",
      R"({"ref":"refs/heads/main","commonAnnotations":{"scale_by":3},"count":7,"ip":"192.0.2.1"})",
      R"({"version":"4","status":"resolved","groupKey":"{}:{}","commonLabels":{"severity":"critical"},
          "alerts":[{"fingerprint":"a","startsAt":"2024-01-01T00:00:00Z","status":"resolved","labels":{"instance":"db1"}}]})",
  };
  return v;
}

void fuzz_compile(std::string_view text, std::string_view body) {
  json rules = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (rules.is_discarded()) return;
  auto compiled = RuleSet::compile(rules);
  if (!compiled.ok()) {
    const Status s = compiled.status();
    FUZZ_CHECK(s.code() == Status::Code::kInvalid && !s.message().empty(), s.message());
    for (const auto& f : s.fields()) FUZZ_CHECK(f.field.rfind("rules", 0) == 0, f.field);
    return;
  }
  auto again = RuleSet::compile(rules);
  FUZZ_CHECK(again.ok(), "compiles once but not twice");
  const RuleSet& rs = **compiled;
  FUZZ_CHECK(rs.ignore_status() >= 200 && rs.ignore_status() <= 499,
             std::to_string(rs.ignore_status()));
  if (rs.alertmanager()) FUZZ_CHECK(rs.needs_body(), "the Alertmanager preset reads the body");
  size_t n = rule_count(rules);
  std::vector<Request> requests;
  requests.push_back(make_request(body, "203.0.113.9"));
  for (const auto& b : fixed_bodies()) requests.push_back(make_request(b, "::1"));
  for (const auto& r : requests) {
    Decision d = evaluate(rs, r);
    check_decision(d, n);
    FUZZ_CHECK(same(d, evaluate(**again, r)), "two compilations of one rule set disagree");
    if (rs.trivial()) FUZZ_CHECK(d.run && d.rule_index == -1, "a trivial rule set decided");
  }
}

void fuzz_evaluate(std::string_view body, std::string_view source) {
  const auto& sets = fixed_rule_sets();
  for (std::string_view src : {std::string_view("198.51.100.7"), source}) {
    Request r = make_request(body, src);
    for (size_t i = 0; i < sets.size(); ++i) {
      Decision d = evaluate(*sets[i].rules, r);
      check_decision(d, sets[i].count);
      if (i == 2) check_model(d, r.body);
    }
    check_alertmanager(r.body);
    check_registry_push(r.body);
  }
}

}  // namespace

int fuzz_rules(const uint8_t* data, size_t size) {
  Split in = split_input(data, size);
  fuzz_compile(in.prefix, in.body);
  fuzz_evaluate(in.body, in.prefix.substr(0, 64));
  return 0;
}

}  // namespace tripline::fuzz
