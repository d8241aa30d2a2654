// The rules tester (docs/api.md "Testing rules"): a sample request run through decide()
// (trigger/decide.h), the very function a trigger runs, with a RuleTrace that records what the
// rules compared. Nothing is recorded, queued or applied; the driver's plan is asked for only
// when the caller asks (plan: true), as a dry run (POST /receivers/{id}/test) asks it.
//
//   POST /api/v1/receivers/{id}/rules/test  the saved receiver, or its saved config with unsaved
//                                            "rules"
//   POST /api/v1/rules/test                  an unsaved receiver: "driver", "config", "rules"
//                                            (the create form)
//
// Not checked, and said so in every answer: inbound auth (signatures, bearer, source ranges),
// which would need the sender's secret, and the limits (cooldown, rate, queue), which depend on
// what ran before.
#include <algorithm>
#include <cctype>

#include "app.h"
#include "decide.h"
#include "field_reader.h"
#include "json_limits.h"
#include "responses.h"
#include "schema.h"
#include "secrets.h"

namespace tripline {

using nlohmann::json;

namespace {

// The sample request, as the trigger layer reads a request. Header names compare without
// regard to case, as HttpRequest's do; the first of a repeated name wins (a JSON object has none).
class SampleRequest final : public InboundRequest {
 public:
  std::string_view method() const override { return "POST"; }
  std::string_view body() const override { return body_; }
  std::optional<std::string> header(std::string_view name) const override {
    for (const auto& [k, v] : headers_)
      if (k.size() == name.size() &&
          std::equal(k.begin(), k.end(), name.begin(), [](unsigned char a, unsigned char b) {
            return std::tolower(a) == std::tolower(b);
          }))
        return v;
    return std::nullopt;
  }
  std::optional<std::string> query(std::string_view name) const override {
    for (const auto& [k, v] : query_)
      if (k == name) return v;
    return std::nullopt;
  }

  std::string body_;
  std::vector<std::pair<std::string, std::string>> headers_, query_;
  std::string source_;
};

constexpr const char* kNotChecked[] = {
    "inbound auth (signatures, bearer credentials, allowed source ranges): a trigger checks it "
    "before the rules",
    "limits (cooldown, rate limit, queue cap): they depend on what ran before",
};

// Reads "request" into `out`; field errors go to `r`.
void read_sample(FieldReader& top, const json* sample, SampleRequest* out) {
  if (!sample) return;
  FieldReader r(top, *sample, "request");
  r.reject_unknown({"method", "headers", "query", "body", "source"}, "is not a request field");
  r.one_of("method", FieldReader::Need::kOptional, {"POST"},
           "must be POST: trigger URLs accept only POST");
  for (const char* part : {"headers", "query"}) {
    const json* map = r.object(part, FieldReader::Need::kOptional, "must be an object of strings");
    if (!map) continue;
    auto& into = std::string(part) == "headers" ? out->headers_ : out->query_;
    for (const auto& [k, v] : map->items()) {
      if (!v.is_string() || k.empty()) {
        r.error(std::string(part) + "." + k, "must be a string");
        continue;
      }
      into.emplace_back(k, v.get<std::string>());
    }
  }
  if (const json* body = r.find("body")) {
    // A string is the body's text as sent; anything else is JSON, sent as its text.
    out->body_ = body->is_string() ? body->get<std::string>()
                 : body->is_null() ? std::string()
                                   : body->dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (auto source = r.string("source", FieldReader::Need::kOptional,
                             "must be an IP address (the caller a rule's \"source\" reads)",
                             [](const std::string& s) { return Cidr::parse(s).has_value(); }))
    out->source_ = *source;
}

json comparison_json(const RuleTrace::Comparison& c) {
  json j = {{"path", c.field},
            {"op", c.op},
            {"expected", c.expected},
            {"actual", c.actual},
            {"result", c.result}};
  if (c.truncated) j["actual_truncated"] = true;
  return j;
}

}  // namespace

HttpResponse App::rules_test_api(const HttpRequest& req, std::optional<int64_t> receiver_id,
                                 const AuditEntry& actor) {
  json body;
  if (auto bad = parse_body(req, &body)) return *bad;
  FieldReader r(body, "");
  if (receiver_id)
    r.reject_unknown({"request", "rules", "plan"}, "is not a rules test field");
  else
    r.reject_unknown({"request", "driver", "config", "rules", "plan"}, "is not a rules test field");
  const json* sample =
      r.object("request", FieldReader::Need::kRequired,
               "must be an object: {\"headers\": {...}, \"query\": {...}, \"body\": ...}");
  SampleRequest request;
  read_sample(r, sample, &request);
  bool want_plan = r.boolean("plan", FieldReader::Need::kOptional).value_or(false);
  if (!receiver_id) {
    r.string("driver", FieldReader::Need::kRequired, "is required (see GET /api/v1/drivers)");
    r.object("config", FieldReader::Need::kRequired, "is required and must be an object");
  }
  if (!r.ok()) return from_status(r.status());
  // The same bound as a trigger's body (json_limits.h): a sample a trigger could not take is
  // refused, not tested.
  if (request.body_.size() > kMaxJsonBytes)
    return error_response(413, "payload_too_large",
                          "request.body is larger than " + std::to_string(kMaxJsonBytes) +
                              " bytes, the most a trigger accepts");

  // The receiver to test: saved, saved with unsaved rules, or unsaved. Unsaved rules and configs
  // go through check_receiver(), the save's own checks, without the peer: a 422 here is the 422
  // the save would answer.
  std::shared_ptr<const Receiver> tested;
  bool unsaved_config = false;
  if (receiver_id) {
    tested = ctx_.receivers.find(*receiver_id);
    if (!tested) return error_response(404, "not_found", "no such receiver");
    if (body.contains("rules")) {
      // The saved receiver as a client sends it back (secrets redacted, which keeps the stored
      // ones): check_receiver() takes every value it is given as plaintext, to be sealed.
      const ReceiverRow saved = tested->stored_row();
      ReceiverRow row = saved;
      row.config = redact_config(saved.config, *tested->secret_fields);
      row.auth = InboundAuth::redact(saved.auth);
      row.rules = body["rules"];
      auto checked = check_receiver(row, saved, /*check_peer=*/false);
      if (!checked.ok()) return from_status(checked.status());
      tested = *checked;
    }
  } else {
    ReceiverRow row;
    row.name = "rules test";
    row.driver = body["driver"];
    row.config = body["config"];
    row.rules = body.value("rules", json(nullptr));
    auto checked = check_receiver(row, std::nullopt, /*check_peer=*/false);
    if (!checked.ok()) return from_status(checked.status());
    tested = *checked;
    unsaved_config = true;
  }

  // decide() on a copy without inbound auth (not checked: see above) and never on the
  // token-only shortcut, so the rules run even when they are trivial.
  static const auto kNoAuth = *InboundAuth::compile(nullptr, ctx_.secrets);
  Receiver copy = *tested;
  copy.auth = kNoAuth;
  copy.simple = false;
  if (request.source_.empty())
    request.source_ =
        caller_address(req.peer_address(), req.header("X-Forwarded-For"), ctx_.trusted_proxies);
  RuleTrace trace;
  TriggerDecision verdict =
      decide(TriggerInput{request, request.source_, ctx_.store.clock().now_ms(),
                          request.header("Idempotency-Key").value_or(""), &trace},
             copy, ctx_.secrets);

  json out = {{"not_checked", kNotChecked}, {"source", request.source_}};
  if (!tested->row.enabled)
    out["warning"] = "this receiver is disabled: a trigger is refused (403) before its rules";

  // Every rule, in order, with what it compared; rules after the one that decided did not run.
  json rules = json::array();
  const json& listed =
      copy.row.rules.is_object() ? copy.row.rules.value("rules", json::array()) : json::array();
  for (size_t i = 0; i < listed.size(); ++i) {
    const json& rule = listed[i];
    json entry = {{"index", i},
                  {"name", rule.is_object() ? rule.value("name", json(nullptr)) : json(nullptr)},
                  {"then", rule.is_object() ? rule.value("then", json("run")) : json("run")},
                  {"evaluated", false},
                  {"matched", false},
                  {"compared", json::array()}};
    if (i < trace.rules.size()) {
      entry["evaluated"] = true;
      entry["matched"] = trace.rules[i].matched;
      for (const auto& c : trace.rules[i].compared) entry["compared"].push_back(comparison_json(c));
    }
    rules.push_back(std::move(entry));
  }
  out["rules"] = std::move(rules);
  if (trace.comparisons_cut) out["compared_truncated"] = true;
  out["matched"] =
      trace.evaluated && trace.decision.rule_index >= 0
          ? json{{"index", trace.decision.rule_index},
                 {"name", trace.decision.rule_name.empty() ? json(nullptr)
                                                           : json(trace.decision.rule_name)}}
          : json(nullptr);
  out["set"] = trace.evaluated ? trace.decision.set : json(nullptr);
  out["config"] = nullptr;
  out["plan"] = nullptr;

  auto view = [&](const json& stored) {
    return redact_sealed(redact_config(stored, *copy.secret_fields));
  };
  if (!tested->row.enabled) {
    // What a trigger answers: refused before its rules (app.cpp). The trace above still shows
    // what the rules would decide once it is enabled.
    out["outcome"] = "rejected";
    out["status"] = 403;
    out["error"] =
        json::parse(error_response(403, "receiver_disabled", "this receiver is disabled").body);
  } else if (auto* accept = std::get_if<Accept>(&verdict)) {
    out["outcome"] = "accepted";
    out["status"] = 202;
    out["config"] =
        view(accept->config_text.empty() ? copy.stored_config() : json::parse(accept->config_text));
    const DriverConfig& config = accept->config ? *accept->config : *copy.config;
    out["action"] = accept->action.empty() ? copy.action : accept->action;
    out["description"] = copy.driver->describe(config);
    out["idempotency_key"] =
        accept->idempotency_key.empty() ? json(nullptr) : json(accept->idempotency_key);
    if (want_plan) {
      // An unsaved config may name any peer: only an admin may have it asked (as only an
      // admin's save checks the peer).
      if (unsaved_config && !is_admin(actor)) {
        out["plan"] = {{"ok", false},
                       {"retryable", false},
                       {"error", "a plan for an unsaved config needs an admin token"}};
      } else {
        Plan plan = copy.driver->plan(config);
        out["plan"] = plan.ok()
                          ? json{{"ok", true}, {"plan", plan.desired}}
                          : json{{"ok", false},
                                 {"retryable", plan.failure.kind == Outcome::Kind::kRetryable},
                                 {"error", plan.failure.reason}};
      }
    }
  } else if (auto* ignore = std::get_if<Ignore>(&verdict)) {
    out["outcome"] = "ignored";
    out["status"] = copy.rules->ignore_status();
    out["reason"] = ignore->reason;
  } else {
    // Refused as a trigger would refuse it (a "set" value the request lacks, a preset's payload
    // it is not): the answer it would get, in the one error shape.
    const auto& reject = std::get<Reject>(verdict);
    HttpResponse would = from_status(reject.status);
    out["outcome"] = "rejected";
    out["status"] = would.status;
    out["error"] = json::parse(would.body);
  }
  return json_response(200, out);
}

}  // namespace tripline
