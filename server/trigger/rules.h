// Receiver rules: what a request that hits a trigger URL decides.
//
// A receiver's "rules" object:
//   {"preset": "alertmanager",          optional: read Alertmanager v4 payloads (see below), or
//                                       "registry-push": container registry push notifications
//                                       (registry_push.h, docs/redeploy.md)
//    "on_resolved": "ignore",           with the preset: "ignore" (default), "inverse" or "run"
//    "default": "run",                  when no rule matches: "run" (default) or "ignore"
//    "ignore_status": 200,              status of an ignored request's answer (200-299 or 400-499)
//    "rules": [                         ordered; the first whose "when" matches decides
//      {"name": "only critical",
//       "when": {"field": "body:/commonLabels/severity", "op": "not_equals", "value": "critical"},
//       "then": "ignore"},
//      {"when": {"all": [{"field": "header:X-GitHub-Event", "op": "equals", "value": "push"},
//                        {"field": "body:ref", "op": "regex", "value":
//                        "^refs/heads/(main|release-.*)$"}]},
//       "then": "run",
//       "set": {"by": {"from_request": "body:/commonAnnotations/scale_by"}}}]}
//
// Fields: "body:/json/pointer" or "body:dotted.path[0].with.index", "header:Name", "query:name",
// "method", "source" (the caller's address). Operators: equals, not_equals, in, regex (RE2:
// linear time, no catastrophic patterns), exists, gt, gte, lt, lte, cidr. Conditions combine
// with {"all": [...]}, {"any": [...]}, {"not": {...}}, nested at most 16 deep.
//
// "set" overrides config fields for this execution; a value {"from_request": FIELD} is taken
// from the request. The driver validates the result like any config.
//
// Rules are compiled once when the receiver is loaded (regexes, CIDRs, pointers) and evaluated
// in memory on the trigger path. Thread safety: compiled rules are immutable.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "json_limits.h"
#include "request.h"
#include "status.h"

namespace tripline {

class Condition;
struct RuleTrace;

// What rules read from a request.
struct RuleInput {
  const InboundRequest& request;
  const nlohmann::json& body;  // the parsed JSON body; discarded (is_discarded()) when not JSON
  std::string_view source;     // the caller's address
  // Null on the trigger path. The rules tester (docs/api.md "Testing rules") passes one to see
  // what the very same evaluation compared; a null trace costs one test per condition.
  RuleTrace* trace = nullptr;
  // explain(): taken out of the compared values shown, before they are cut (the trigger token,
  // docs/requests-log.md). Empty: nothing.
  std::string_view redact = {};
};

struct Decision {
  bool run = true;
  int rule_index = -1;  // the rule that decided, -1 for the default
  std::string rule_name;
  nlohmann::json set;  // config overrides with request values resolved; null when none
  Status error;        // a "set" value the request did not provide (answered 422)
};

// What one evaluate() compared, rule by rule, in the order it ran: rules after the one that
// decided are not evaluated, and in an "all" / "any" the conditions after the first that settles
// it are not either (as on a trigger). Bounded: at most kMaxComparisons comparisons are kept, and
// a value read from the request is kept whole only up to kMaxValueBytes of JSON text.
struct RuleTrace {
  static constexpr size_t kMaxComparisons = 1000;
  static constexpr size_t kMaxValueBytes = 1024;
  struct Comparison {
    std::string field;  // as written in the rule: "body:/commonLabels/severity"
    std::string op;     // "equals", ...
    nlohmann::json expected;
    nlohmann::json actual;   // null when the request does not have the field
    bool truncated = false;  // actual is then a string: the start of its JSON text
    bool result = false;
  };
  struct Step {
    int index = 0;
    std::string name;
    bool matched = false;
    std::vector<Comparison> compared;
  };
  std::vector<Step> rules;
  size_t comparisons = 0;
  bool comparisons_cut = false;  // more than kMaxComparisons were made
  Decision decision;             // what evaluate() answered
  bool evaluated = false;        // evaluate() ran (decide() may stop before the rules)

  void record(const std::string& field, const char* op, const nlohmann::json& expected,
              const nlohmann::json& actual, bool result);
};

class RuleSet {
 public:
  // Compiles `rules` (null: no rules, run always). Invalid with "rules[i]..." field errors.
  static Result<std::shared_ptr<const RuleSet>> compile(const nlohmann::json& rules);
  ~RuleSet();

  Decision evaluate(const RuleInput& input) const;
  // What the rule at `rule_index` compared (every rule when -1), for the request log: an array
  // of {"rule", "field", "op", "value", "actual", "matched"}, at most 32, values bounded and
  // secret headers redacted. Off the hot path: only for requests that were not accepted.
  nlohmann::json explain(const RuleInput& input, int rule_index) const;

  bool needs_body() const { return needs_body_; }
  // No rules, no preset, default run: every request runs as configured.
  bool trivial() const {
    return rules_.empty() && default_run_ && !alertmanager_ && !registry_push_;
  }
  bool alertmanager() const { return alertmanager_; }
  bool registry_push() const { return registry_push_; }
  const std::string& on_resolved() const { return on_resolved_; }
  int ignore_status() const { return ignore_status_; }

 private:
  struct Rule {
    std::string name;
    std::unique_ptr<Condition> when;  // null: always
    bool run = true;
    nlohmann::json set;  // may hold {"from_request": FIELD} values
  };
  RuleSet() = default;
  Decision evaluate_rules(const RuleInput& input) const;
  std::vector<Rule> rules_;
  bool default_run_ = true;
  int ignore_status_ = 200;
  bool needs_body_ = false;
  bool alertmanager_ = false;
  bool registry_push_ = false;
  std::string on_resolved_ = "ignore";
};

// Reads a field ("body:...", "header:...", "query:...", "method", "source") from the request:
// null when absent. Exposed for drivers' request-bound values and for tests.
nlohmann::json read_field(const RuleInput& input, const std::string& compiled_field);

// parse_body_json, the bounded parser for request bodies, is in json_limits.h (included above).

}  // namespace tripline

namespace tripline {
// Alertmanager webhook payloads (version 4, PROTOCOLS.md §1).
bool is_alertmanager_payload(const nlohmann::json& body);
// The same group notification re-sent (repeat_interval, retries after a 5xx) yields the same key:
// groupKey, status, and every alert's fingerprint and startsAt.
std::string alertmanager_key(const nlohmann::json& body);
}  // namespace tripline
