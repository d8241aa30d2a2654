#include "rules.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>

#include "crypto.h"
#include "field_reader.h"
#include "net.h"
#include "request_record.h"

namespace tripline {

using nlohmann::json;

namespace {

constexpr int kMaxConditionDepth = 16;

struct FieldRef {
  enum class Kind { kBody, kHeader, kQuery, kMethod, kSource } kind = Kind::kBody;
  json::json_pointer pointer;
  std::string name;  // header or query name
  std::string text;  // as written in the rule
};

Result<FieldRef> parse_field(const json& j) {
  if (!j.is_string()) return Status::Invalid("field must be a string");
  const std::string s = j.get<std::string>();
  FieldRef f;
  f.text = s;
  auto after = [&](std::string_view prefix) { return s.substr(prefix.size()); };
  if (s == "method") {
    f.kind = FieldRef::Kind::kMethod;
  } else if (s == "source") {
    f.kind = FieldRef::Kind::kSource;
  } else if (s.rfind("header:", 0) == 0 && s.size() > 7) {
    f.kind = FieldRef::Kind::kHeader;
    f.name = after("header:");
  } else if (s.rfind("query:", 0) == 0 && s.size() > 6) {
    f.kind = FieldRef::Kind::kQuery;
    f.name = after("query:");
  } else if (s.rfind("body:", 0) == 0) {
    f.kind = FieldRef::Kind::kBody;
    auto pointer = dotted_to_pointer(after("body:"));
    if (!pointer) return Status::Invalid("\"" + s + "\" is not a valid body path");
    try {
      f.pointer = json::json_pointer(*pointer);
    } catch (const json::exception&) {
      return Status::Invalid("\"" + s + "\" is not a valid JSON pointer");
    }
  } else {
    return Status::Invalid("\"" + s +
                           "\" is not a field: use body:/pointer, body:dotted.path, header:Name, "
                           "query:name, method or source");
  }
  return f;
}

json read(const RuleInput& in, const FieldRef& f) {
  switch (f.kind) {
    case FieldRef::Kind::kMethod:
      return std::string(in.request.method());
    case FieldRef::Kind::kSource:
      return std::string(in.source);
    case FieldRef::Kind::kHeader: {
      auto v = in.request.header(f.name);
      return v ? json(*v) : json(nullptr);
    }
    case FieldRef::Kind::kQuery: {
      auto v = in.request.query(f.name);
      return v ? json(*v) : json(nullptr);
    }
    case FieldRef::Kind::kBody:
      if (in.body.is_discarded() || in.body.is_null()) return nullptr;
      try {
        if (f.pointer.empty()) return in.body;
        return in.body.contains(f.pointer) ? in.body.at(f.pointer) : json(nullptr);
      } catch (const json::exception&) {
        return nullptr;  // e.g. an array index into an object
      }
  }
  return nullptr;
}

std::optional<double> as_number(const json& j) {
  if (j.is_number()) return j.get<double>();
  if (!j.is_string()) return std::nullopt;
  const auto& s = j.get_ref<const std::string&>();
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

class Condition {
 public:
  virtual ~Condition() = default;
  virtual bool eval(const RuleInput& in) const = 0;
  // Appends each comparison it makes to `out` (RuleSet::explain), at most `room` more.
  virtual void explain(const RuleInput& in, json& out, size_t room) const = 0;
};

namespace {

enum class Op { kEquals, kNotEquals, kIn, kRegex, kExists, kGt, kGte, kLt, kLte, kCidr };
const char* const kOpNames[] = {"equals", "not_equals", "in", "regex", "exists",
                                "gt",     "gte",        "lt", "lte",   "cidr"};

// A compared value as the request log shows it: bounded, and never a credential. The query
// string is never kept (docs/requests-log.md): a sender may put a credential there, so a
// query value, sent or written in the rule, is shown "[redacted]" (null: it was absent; a
// boolean: what `exists` expects). `redact` (the trigger token) is taken out before a value is
// cut, so that no cut leaves a part of it.
json shown(const FieldRef& f, json v, std::string_view redact) {
  if (f.kind == FieldRef::Kind::kHeader && !v.is_null() && is_secret_header(f.name))
    return kRedactedHeader;
  if (f.kind == FieldRef::Kind::kQuery && !v.is_null() && !v.is_boolean()) return kRedactedHeader;
  redact_token(v, redact);
  if (v.is_string() && v.get_ref<const std::string&>().size() > 256)
    return std::string(utf8_prefix(v.get_ref<const std::string&>(), 256)) + "...";
  if (v.is_structured()) {
    std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 256) return std::string(utf8_prefix(text, 256)) + "...";
  }
  return v;
}

class Leaf : public Condition {
 public:
  FieldRef field;
  Op op = Op::kEquals;
  json value;
  std::unique_ptr<re2::RE2> re;
  std::vector<Cidr> cidrs;
  double number = 0;
  std::string field_text;         // as written, for a trace
  const char* op_name = nullptr;  // likewise

  bool eval(const RuleInput& in) const override {
    json subject = read(in, field);
    bool result = test(subject);
    if (in.trace) in.trace->record(field_text, op_name, value, subject, result);
    return result;
  }

  bool test(const json& subject) const {
    switch (op) {
      case Op::kExists:
        return subject.is_null() != value.get<bool>();
      case Op::kEquals:
        return subject == value;
      case Op::kNotEquals:
        return subject != value;
      case Op::kIn:
        for (const auto& v : value)
          if (subject == v) return true;
        return false;
      case Op::kRegex:
        return subject.is_string() &&
               re2::RE2::PartialMatch(subject.get_ref<const std::string&>(), *re);
      case Op::kGt:
      case Op::kGte:
      case Op::kLt:
      case Op::kLte: {
        auto n = as_number(subject);
        if (!n) return false;
        return op == Op::kGt    ? *n > number
               : op == Op::kGte ? *n >= number
               : op == Op::kLt  ? *n < number
                                : *n <= number;
      }
      case Op::kCidr:
        if (!subject.is_string()) return false;
        for (const auto& c : cidrs)
          if (c.contains(subject.get_ref<const std::string&>())) return true;
        return false;
    }
    return false;
  }
  void explain(const RuleInput& in, json& out, size_t room) const override {
    if (room == 0) return;
    out.push_back({{"field", field.text},
                   {"op", kOpNames[static_cast<int>(op)]},
                   {"value", shown(field, value, in.redact)},
                   {"actual", shown(field, read(in, field), in.redact)},
                   {"matched", eval(in)}});
  }
};

class Combined : public Condition {
 public:
  enum class Kind { kAll, kAny, kNot } kind = Kind::kAll;
  std::vector<std::unique_ptr<Condition>> parts;
  bool eval(const RuleInput& in) const override {
    switch (kind) {
      case Kind::kAll:
        for (const auto& p : parts)
          if (!p->eval(in)) return false;
        return true;
      case Kind::kAny:
        for (const auto& p : parts)
          if (p->eval(in)) return true;
        return false;
      case Kind::kNot:
        return !parts[0]->eval(in);
    }
    return false;
  }
  void explain(const RuleInput& in, json& out, size_t room) const override {
    for (const auto& p : parts) {
      if (out.size() >= room) return;
      p->explain(in, out, room);
    }
  }
};

Result<std::unique_ptr<Condition>> compile_condition(const json& j, const std::string& where,
                                                     int depth, bool* needs_body) {
  auto bad = [&](const std::string& why) -> Status {
    return Status::Invalid(where + " " + why, {{where, why}});
  };
  if (depth > kMaxConditionDepth) return bad("nests conditions more than 16 deep");
  if (!j.is_object()) return bad("must be an object");
  for (const char* k : {"all", "any"}) {
    if (!j.contains(k)) continue;
    if (j.size() != 1) return bad(std::string("\"") + k + "\" must be the only key of its object");
    if (!j[k].is_array() || j[k].empty())
      return bad(std::string("\"") + k + "\" must be a non-empty array");
    auto c = std::make_unique<Combined>();
    c->kind = std::string(k) == "all" ? Combined::Kind::kAll : Combined::Kind::kAny;
    for (size_t i = 0; i < j[k].size(); ++i) {
      auto part = compile_condition(j[k][i], where + "." + k + "[" + std::to_string(i) + "]",
                                    depth + 1, needs_body);
      if (!part.ok()) return part.status();
      c->parts.push_back(std::move(part).value());
    }
    return std::unique_ptr<Condition>(std::move(c));
  }
  if (j.contains("not")) {
    if (j.size() != 1) return bad("\"not\" must be the only key of its object");
    auto part = compile_condition(j["not"], where + ".not", depth + 1, needs_body);
    if (!part.ok()) return part.status();
    auto c = std::make_unique<Combined>();
    c->kind = Combined::Kind::kNot;
    c->parts.push_back(std::move(part).value());
    return std::unique_ptr<Condition>(std::move(c));
  }
  for (const auto& [k, _] : j.items())
    if (k != "field" && k != "op" && k != "value") return bad("has an unknown key \"" + k + "\"");
  auto leaf = std::make_unique<Leaf>();
  if (!j.contains("field")) return bad("needs a \"field\" (or all / any / not)");
  auto field = parse_field(j["field"]);
  if (!field.ok()) return bad(field.status().message());
  leaf->field = std::move(field).value();
  leaf->field_text = j["field"].get<std::string>();
  if (leaf->field.kind == FieldRef::Kind::kBody) *needs_body = true;
  static const std::pair<const char*, Op> kOps[] = {
      {"equals", Op::kEquals}, {"not_equals", Op::kNotEquals},
      {"in", Op::kIn},         {"regex", Op::kRegex},
      {"exists", Op::kExists}, {"gt", Op::kGt},
      {"gte", Op::kGte},       {"lt", Op::kLt},
      {"lte", Op::kLte},       {"cidr", Op::kCidr}};
  const json op = j.value("op", json("equals"));
  bool known = false;
  for (const auto& [name, o] : kOps)
    if (op == name) leaf->op = o, leaf->op_name = name, known = true;
  if (!known)
    return bad("op must be one of equals, not_equals, in, regex, exists, gt, gte, lt, lte, cidr");
  leaf->value = j.value("value", json(nullptr));
  switch (leaf->op) {
    case Op::kExists:
      if (leaf->value.is_null()) leaf->value = true;
      if (!leaf->value.is_boolean()) return bad("exists takes true or false");
      break;
    case Op::kEquals:
    case Op::kNotEquals:
      if (!j.contains("value")) return bad("needs a value");
      break;
    case Op::kIn:
      if (!leaf->value.is_array() || leaf->value.empty()) return bad("in takes a non-empty array");
      break;
    case Op::kRegex: {
      if (!leaf->value.is_string()) return bad("regex takes a string");
      re2::RE2::Options o;
      o.set_log_errors(false);
      o.set_max_mem(1 << 20);
      leaf->re = std::make_unique<re2::RE2>(leaf->value.get<std::string>(), o);
      if (!leaf->re->ok()) return bad("is not a valid regular expression: " + leaf->re->error());
      break;
    }
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte:
      if (!leaf->value.is_number()) return bad("numeric comparisons take a number");
      leaf->number = leaf->value.get<double>();
      break;
    case Op::kCidr: {
      json list = leaf->value.is_string() ? json::array({leaf->value}) : leaf->value;
      if (!list.is_array() || list.empty()) return bad("cidr takes a range or a list of ranges");
      for (const auto& item : list) {
        auto c = item.is_string() ? Cidr::parse(item.get<std::string>()) : std::nullopt;
        if (!c) return bad("\"" + item.dump() + "\" is not an address or CIDR range");
        leaf->cidrs.push_back(*c);
      }
      break;
    }
  }
  return std::unique_ptr<Condition>(std::move(leaf));
}

// Checks a "set" object: plain values, or {"from_request": FIELD}.
Status check_set(const json& set, const std::string& where, bool* needs_body) {
  if (!set.is_object())
    return Status::Invalid(where + " must be an object", {{where, "must be an object"}});
  for (const auto& [k, v] : set.items()) {
    if (v.is_object() && v.contains("from_request")) {
      if (v.size() != 1)
        return Status::Invalid(where + "." + k + " from_request must be the only key",
                               {{where + "." + k, "from_request must be the only key"}});
      auto f = parse_field(v["from_request"]);
      if (!f.ok())
        return Status::Invalid(where + "." + k + " " + f.status().message(),
                               {{where + "." + k, f.status().message()}});
      if (f->kind == FieldRef::Kind::kBody) *needs_body = true;
    }
  }
  return Status::Ok();
}

}  // namespace

RuleSet::~RuleSet() = default;

Result<std::shared_ptr<const RuleSet>> RuleSet::compile(const json& j) {
  std::shared_ptr<RuleSet> rs(new RuleSet());
  if (j.is_null()) return std::shared_ptr<const RuleSet>(rs);
  using Need = FieldReader::Need;
  if (!j.is_object())
    return Status::Invalid("rules must be an object", {{"rules", "must be an object"}});
  // Every problem is reported at once (the first one in the message), like a driver's config.
  FieldReader r(j, "rules.");
  r.reject_unknown({"preset", "on_resolved", "default", "ignore_status", "rules"},
                   "is not a rules field");
  if (auto preset = r.one_of("preset", Need::kOptional, {"alertmanager", "registry-push"},
                             "must be \"alertmanager\" or \"registry-push\"")) {
    (*preset == "alertmanager" ? rs->alertmanager_ : rs->registry_push_) = true;
    rs->needs_body_ = true;
  }
  if (r.has("on_resolved")) {
    if (!rs->alertmanager_)
      r.error("on_resolved", "needs \"preset\": \"alertmanager\"");
    else if (auto v = r.one_of("on_resolved", Need::kOptional, {"ignore", "inverse", "run"},
                               "must be ignore, inverse or run"))
      rs->on_resolved_ = *v;
  }
  if (auto d = r.one_of("default", Need::kOptional, {"run", "ignore"}, "must be run or ignore"))
    rs->default_run_ = *d == "run";
  constexpr const char* kBadStatus = "must be a status from 200-299 or 400-499";
  if (auto status = r.integer("ignore_status", Need::kOptional, 200, 499, kBadStatus)) {
    if (*status >= 300 && *status <= 399)
      r.error("ignore_status", kBadStatus);
    else
      rs->ignore_status_ = static_cast<int>(*status);
  }
  if (const json* list = r.find("rules")) {
    if (!list->is_array()) {
      r.error("rules", "must be an array");
    } else if (list->size() > 100) {
      r.error("rules", "holds at most 100 rules");
    } else {
      for (size_t i = 0; i < list->size(); ++i) {
        const std::string key = "rules[" + std::to_string(i) + "]", where = "rules." + key;
        const json& item = (*list)[i];
        if (!item.is_object()) {
          r.error(key, "must be an object");
          continue;
        }
        FieldReader rule_reader(r, item, key);
        rule_reader.reject_unknown({"name", "when", "then", "set"}, "is not a rule field");
        Rule rule;
        if (auto name = rule_reader.string("name", Need::kOptional, "must be a string"))
          rule.name = *name;
        auto then =
            rule_reader.one_of("then", Need::kOptional, {"run", "ignore"}, "must be run or ignore");
        rule.run = !then || *then == "run";
        if (const json* when = rule_reader.find("when")) {
          auto c = compile_condition(*when, where + ".when", 1, &rs->needs_body_);
          if (c.ok())
            rule.when = std::move(c).value();
          else
            r.add(c.status());
        }
        if (const json* set = rule_reader.find("set")) {
          if (!rule.run)
            rule_reader.error("set", "only applies to rules that run");
          else
            r.add(check_set(*set, where + ".set", &rs->needs_body_));
          rule.set = *set;
        }
        rs->rules_.push_back(std::move(rule));
      }
    }
  }
  if (!r.ok()) return r.status();
  return std::shared_ptr<const RuleSet>(rs);
}

json RuleSet::explain(const RuleInput& in, int rule_index) const {
  constexpr size_t kMaxComparisons = 32;
  json out = json::array();
  for (size_t i = 0; i < rules_.size() && out.size() < kMaxComparisons; ++i) {
    if (rule_index >= 0 && static_cast<size_t>(rule_index) != i) continue;
    if (!rules_[i].when) continue;
    json part = json::array();
    rules_[i].when->explain(in, part, kMaxComparisons - out.size());
    for (auto& c : part) {
      c["rule"] = i;
      out.push_back(std::move(c));
    }
  }
  return out;
}

Decision RuleSet::evaluate(const RuleInput& in) const {
  Decision d = evaluate_rules(in);
  if (in.trace) {
    in.trace->decision = d;
    in.trace->evaluated = true;
  }
  return d;
}

Decision RuleSet::evaluate_rules(const RuleInput& in) const {
  Decision d;
  d.run = default_run_;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (in.trace) in.trace->rules.push_back({static_cast<int>(i), r.name, false, {}});
    if (r.when && !r.when->eval(in)) continue;
    if (in.trace) in.trace->rules.back().matched = true;
    d.run = r.run;
    d.rule_index = static_cast<int>(i);
    d.rule_name = r.name;
    if (!r.set.is_null()) {
      d.set = json::object();
      for (const auto& [k, v] : r.set.items()) {
        if (v.is_object() && v.contains("from_request")) {
          json value = read(in, *parse_field(v["from_request"]));
          if (value.is_null()) {
            std::string field = "rules.rules[" + std::to_string(i) + "].set." + k;
            d.error = Status::Invalid(
                "the request has no " + v["from_request"].get<std::string>() + " for " + k,
                {{field, "the request has no " + v["from_request"].get<std::string>()}});
            return d;
          }
          d.set[k] = std::move(value);
        } else {
          d.set[k] = v;
        }
      }
    }
    return d;
  }
  return d;
}

namespace {
// `out` gets the JSON text of `v`; false as soon as it would pass `limit` bytes (then `out` holds
// its start). Walks no more of `v` than it writes: a 1 MB body read whole costs 1 KB here.
bool dump_bounded(const json& v, std::string& out, size_t limit) {
  if (out.size() > limit) return false;
  if (v.is_object() || v.is_array()) {
    const bool object = v.is_object();
    out += object ? '{' : '[';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (!first) out += ',';
      first = false;
      if (object) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ':';
      if (!dump_bounded(*it, out, limit)) return false;
    }
    out += object ? '}' : ']';
  } else if (v.is_string() && v.get_ref<const std::string&>().size() > limit) {
    out += json(v.get_ref<const std::string&>().substr(0, limit + 1))
               .dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return out.size() <= limit;
}
}  // namespace

void RuleTrace::record(const std::string& field, const char* op, const json& expected,
                       const json& actual, bool result) {
  if (rules.empty()) return;
  if (++comparisons > kMaxComparisons) {
    comparisons_cut = true;
    return;
  }
  Comparison c{field, op ? op : "", expected, nullptr, false, result};
  std::string text;
  if (dump_bounded(actual, text, kMaxValueBytes)) {
    c.actual = actual;
  } else {
    c.truncated = true;
    c.actual = utf8_text(text, kMaxValueBytes);
  }
  rules.back().compared.push_back(std::move(c));
}

namespace {
// A string member, or "" when absent or of another type (json::value would throw on the latter).
std::string string_at(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}
}  // namespace

bool is_alertmanager_payload(const json& b) {
  if (!b.is_object() || string_at(b, "version") != "4") return false;
  std::string status = string_at(b, "status");
  auto alerts = b.find("alerts");
  return (status == "firing" || status == "resolved") && alerts != b.end() && alerts->is_array() &&
         b.contains("groupKey") && b["groupKey"].is_string();
}

std::string alertmanager_key(const json& b) {
  std::vector<std::string> alerts;
  for (const auto& a : b["alerts"])
    if (a.is_object())
      alerts.push_back(string_at(a, "fingerprint") + "@" + string_at(a, "startsAt") + "@" +
                       string_at(a, "status"));
  std::sort(alerts.begin(), alerts.end());
  std::string input = b["groupKey"].get<std::string>() + "\n" + b["status"].get<std::string>();
  for (const auto& a : alerts) input += "\n" + a;
  return "alertmanager:" + crypto::hex(crypto::view(crypto::sha256(input))).substr(0, 40);
}

json read_field(const RuleInput& input, const std::string& field) {
  auto f = parse_field(field);
  return f.ok() ? read(input, *f) : json(nullptr);
}

}  // namespace tripline
