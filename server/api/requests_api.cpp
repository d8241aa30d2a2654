// /api/v1/receivers/{id}/requests[/{rid}[/redeliver]]: the request log, "why didn't it fire?"
// (docs/requests-log.md), and POST /api/v1/executions/{id}/cancel.
#include <strings.h>

#include <algorithm>
#include <future>

#include "app.h"
#include "decide.h"
#include "log.h"
#include "responses.h"

namespace tripline {

using nlohmann::json;

namespace {

constexpr const char* kOutcomes[] = {"accepted",     "ignored",    "refused",   "rate_limited",
                                     "cooling_down", "queue_full", "malformed", "unavailable"};

// Text stored as sent may not be UTF-8 (a binary body): shown with U+FFFD for what is not.
json text_json(const std::string& s) {
  json j = s;
  try {
    (void)j.dump();
    return j;
  } catch (const json::exception&) {
    return json::parse(j.dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

json request_json(const RequestLogRow& r, bool full) {
  json out = {{"id", r.id},
              {"receiver_id", r.receiver_id},
              {"received_at", log::format_time(r.received_at)},
              {"outcome", r.outcome},
              {"status", r.status},
              {"error", r.error.empty() ? json(nullptr) : json(r.error)},
              {"detail", r.detail},
              {"source", r.source},
              {"method", r.method},
              {"body_size", r.body_size},
              {"body_truncated", r.body_truncated},
              {"token_redacted", r.token_redacted},
              {"execution_id", r.execution_id ? json(r.execution_id) : json(nullptr)},
              {"replay_of", r.replay_of ? json(r.replay_of) : json(nullptr)}};
  if (full) {
    json headers = json::parse(r.headers, nullptr, false);
    out["headers"] = headers.is_array() ? headers : json::array();
    out["body"] = text_json(r.body);
  }
  return out;
}

// A logged request, replayed: what the rules read (method, headers as logged, body). Secret
// headers read "[redacted]"; the query string was not kept.
class LoggedRequest final : public InboundRequest {
 public:
  explicit LoggedRequest(const RequestLogRow& r) : r_(r) {
    json headers = json::parse(r.headers, nullptr, false);
    if (headers.is_array())
      for (const auto& h : headers)
        if (h.is_array() && h.size() == 2 && h[0].is_string() && h[1].is_string())
          headers_.emplace_back(h[0].get<std::string>(), h[1].get<std::string>());
  }
  std::string_view method() const override { return r_.method; }
  std::string_view body() const override { return r_.body; }
  std::optional<std::string> header(std::string_view name) const override {
    for (const auto& [n, v] : headers_)
      if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
    return std::nullopt;
  }
  std::optional<std::string> query(std::string_view) const override { return std::nullopt; }
  std::vector<std::pair<std::string, std::string>> headers() const override { return headers_; }

 private:
  const RequestLogRow& r_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

// Whether the logged request passed every check a replay skips (inbound auth: signature,
// credential, allowed sources; the token still granting the receiver). A request refused by any
// check, or turned away before inbound auth was checked (a bad Idempotency-Key is answered
// first, app.cpp), did not: replaying it would run an attacker's payload on an admin's click.
bool passed_inbound_checks(const RequestLogRow& r) {
  if (r.outcome == "refused") return false;
  if (r.outcome == "malformed" && r.error == "bad_idempotency_key") return false;
  return true;
}

}  // namespace

HttpResponse App::requests_api(const HttpRequest& req, int64_t receiver_id,
                               const std::vector<std::string_view>& seg, const AuditEntry& actor) {
  if (!ctx_.receivers.find(receiver_id)) {
    auto row = ctx_.store.get_receiver(receiver_id);
    if (!row.ok()) return from_status(row.status());
  }
  if (seg.size() == 3) {
    if (req.method() != "GET") return method_not_allowed("GET");
    auto limit = query_int(req, "limit", 50, 1, 200);
    auto before = query_int(req, "before", 0, 0, INT64_MAX);
    if (!limit || !before)
      return error_response(400, "bad_query", "limit must be 1..200; before is an id");
    std::string outcome = req.query("outcome").value_or("");
    if (!outcome.empty() &&
        std::find(std::begin(kOutcomes), std::end(kOutcomes), outcome) == std::end(kOutcomes))
      return error_response(400, "bad_query",
                            "outcome must be accepted, ignored, refused, rate_limited, "
                            "cooling_down, queue_full, malformed or unavailable");
    sync_request_log();
    auto rows = ctx_.store.list_request_logs(receiver_id, outcome, int(*limit), *before);
    if (!rows.ok()) return from_status(rows.status());
    json items = json::array();
    const Role role = role_of(actor);  // a logged body may name a URL with its credentials
    for (const auto& r : *rows) items.push_back(view_for(role, request_json(r, false)));
    json next = rows->size() == size_t(*limit) ? json(rows->back().id) : json(nullptr);
    return json_response(200, {{"items", items},
                               {"next_before", next},
                               {"enabled", ctx_.request_log && ctx_.request_log->enabled()}});
  }
  auto rid = parse_id(seg[3]);
  if (!rid) return error_response(404, "not_found", "no such request in the log");
  if (seg.size() == 4) {
    if (req.method() != "GET") return method_not_allowed("GET");
    sync_request_log();
    auto row = ctx_.store.get_request_log(receiver_id, *rid);
    if (!row.ok()) return from_status(row.status());
    return json_response(200, view_for(role_of(actor), request_json(*row, true)));
  }
  if (seg.size() == 5 && seg[4] == "redeliver") {
    if (req.method() != "POST") return method_not_allowed("POST");
    return redeliver_request(receiver_id, *rid, actor);
  }
  return error_response(404, "not_found", "no such API path");
}

// A logged request replayed through the receiver's current rules and config, as a new entry
// marked replay_of. Its credentials were redacted from the log, so inbound auth (signatures,
// credentials, allowed sources) cannot be checked again: the admin token authorises the replay
// instead (docs/requests-log.md); so a request that did not pass those checks is never replayed
// (passed_inbound_checks). Like a retry (admin_api.cpp), an admin's act is not held to
// the rate limit or the cooldown, but takes a slot of the receiver's queue cap; and it is never
// deduplicated against the original (no idempotency key): it runs again.
HttpResponse App::redeliver_request(int64_t receiver_id, int64_t request_id,
                                    const AuditEntry& actor) {
  if (!ctx_.request_log || !ctx_.request_log->enabled())
    return from_status(Status::Conflict("the request log is off (--request-log 0)"));
  sync_request_log();
  auto original = ctx_.store.get_request_log(receiver_id, request_id);
  if (!original.ok()) return from_status(original.status());
  if (!passed_inbound_checks(*original))
    return from_status(Status::Conflict(
        "this request was refused (or turned away before inbound authentication was checked): "
        "a replay skips those checks, so it cannot be redelivered"));
  if (original->token_redacted)
    return from_status(Status::Conflict(
        "the trigger token was taken out of this request's body or headers: what the log kept "
        "is not what was sent, so it cannot be replayed"));
  if (original->detail.contains("excerpt_lost"))
    return from_status(Status::Conflict(
        "tripline stopped before this request's headers and body were written (its entry was "
        "rebuilt from its execution): there is nothing to send again"));
  if (original->body_truncated)
    return from_status(Status::Conflict(
        "the log kept only the first " + std::to_string(kRequestLogBodyBytes) + " of its " +
        std::to_string(original->body_size) + " bytes: it cannot be replayed as it was sent"));
  auto receiver = ctx_.receivers.find(receiver_id);
  if (!receiver) return from_status(Status::Conflict("the receiver is not loaded"));
  const Receiver& r = *receiver;
  if (!r.row.enabled) return from_status(Status::Conflict("the receiver is disabled"));

  const int64_t now = ctx_.store.clock().now_ms();
  // Claimed over the log's budget if need be: one entry per admin call.
  RequestLogEntry entry = ctx_.request_log->admit(*original, /*force=*/true);
  entry->id = 0;
  entry->received_at = now;
  entry->execution_id = 0;
  entry->replay_of = request_id;
  entry->error.clear();  // the original's (rate_limited...) is not the replay's
  entry->detail = json::object();
  // The replay's entry is written by the log or the ingest's group commit (the trigger path,
  // which takes no audit entry), so its audit row is recorded just after, as a retry's is
  // (admin_api.cpp; docs/security.md "Audit log").
  auto audit = [&](const RequestLogRow& made) {
    AuditEntry a = actor;
    a.action = "request.redeliver";
    a.target_type = "request";
    a.target_id = request_id;
    a.target_name = r.row.name;
    a.before = {{"outcome", original->outcome}};
    a.after = {{"request_id", made.id},
               {"outcome", made.outcome},
               {"execution_id", made.execution_id ? json(made.execution_id) : json(nullptr)}};
    if (Status s = ctx_.store.record_audit(a); !s.ok())
      log::error("the audit row of a redelivery could not be recorded",
                 {{"request_id", request_id}, {"replay_id", made.id}, {"error", s.message()}});
  };
  // Written at once (not through the background writer): the answer names the new entry.
  auto write_now = [&](const char* outcome, int status, std::string error,
                       json detail) -> HttpResponse {
    entry->outcome = outcome;
    entry->status = status;
    entry->error = std::move(error);
    entry->detail = fit_detail(std::move(detail), kRequestLogDetailBytes);
    std::vector<RequestLogRow> rows{std::move(*entry)};
    Status s = ctx_.store.insert_request_logs(rows, {}, ctx_.request_log->keep_per_receiver());
    if (!s.ok()) return from_status(s);
    audit(rows[0]);
    ctx_.request_log->touch(receiver_id);  // its cap, by the writer, in bounded steps
    return json_response(200, request_json(rows[0], true));
  };

  const LoggedRequest inbound(*original);
  Ingest::Trigger t;
  if (!r.simple) {
    TriggerInput input{inbound, original->source, now, ""};
    input.explain = true;
    input.replay = true;
    TriggerDecision verdict = decide(input, r, ctx_.secrets);
    if (auto* ignore = std::get_if<Ignore>(&verdict)) {
      json detail = {{"reason", to_string(ignore->why)}, {"message", ignore->reason}};
      if (ignore->rule_index >= 0)
        detail["rule"] = {{"index", ignore->rule_index}, {"name", ignore->rule_name}};
      if (!ignore->compared.is_null()) detail["compared"] = std::move(ignore->compared);
      return write_now("ignored", r.rules->ignore_status(), "", std::move(detail));
    }
    if (auto* reject = std::get_if<Reject>(&verdict)) {
      // Inbound auth is not checked on a replay: only a request the rules or the driver
      // refuse gets here.
      HttpResponse resp = from_status(reject->status);
      json answered = json::parse(resp.body, nullptr, false);
      return write_now("malformed", resp.status,
                       answered.is_object() ? answered.value("error", "") : "",
                       {{"message", reject->status.message()}});
    }
    auto& accept = std::get<Accept>(verdict);
    t.config = std::move(accept.config);
    t.config_text = std::move(accept.config_text);
    t.action = std::move(accept.action);
    t.rule = std::move(accept.rule);
  }
  std::shared_ptr<std::atomic<int64_t>> queued = r.limiter->queued();
  if (r.limits.max_queued > 0 && queued->load() >= r.limits.max_queued)
    return write_now("queue_full", 429, "queue_full",
                     {{"message",
                       "the receiver's executions waiting to run reached its "
                       "max_queued"},
                      {"max_queued", r.limits.max_queued}});
  entry->outcome = "accepted";
  entry->status = 202;
  if (!t.rule.is_null()) entry->detail["rule"] = t.rule;
  // The answer when it is recorded: the entry as it goes in. A store that defers it writes it
  // after the commit, where a flood's newer entries may already have pushed it past the cap.
  RequestLogRow recorded = *entry;
  t.request = std::move(entry);
  t.receiver = receiver;
  t.limits = LimitsCheck::Kind::kRedeliver;
  // Taken before the commit, as a trigger's claim is: the executor gives the slot back when the
  // new execution finishes, which may be before submit's answer comes.
  queued->fetch_add(1, std::memory_order_relaxed);
  auto committed = std::make_shared<std::promise<std::pair<Status, Accepted>>>();
  auto answer = committed->get_future();
  ctx_.ingest.submit(std::move(t), [committed](const Status& s, const Accepted& a) {
    committed->set_value({s, a});
  });
  auto [s, a] = answer.get();  // one group commit
  if (!s.ok() || !a.recorded()) queued->fetch_sub(1, std::memory_order_relaxed);
  if (!s.ok()) {
    auto resp = error_response(503, a.overloaded ? "overloaded" : "unavailable",
                               "the redelivery could not be recorded; retry");
    resp.headers.emplace_back("Retry-After", "1");
    return resp;
  }
  if (a.recorded()) {
    recorded.id = a.request_id;
    recorded.execution_id = a.execution_id;
  }
  Result<RequestLogRow> row = std::move(recorded);
  if (!a.recorded()) {
    // Refused at the commit (revoked, or every replica's queue cap): its entry, written in the
    // commit, says which.
    row = ctx_.store.get_request_log(receiver_id, a.request_id);
    if (!row.ok()) return from_status(row.status());
  }
  audit(*row);
  // Its log entry says what came of it: a revoke or every replica's queue cap refused it (200),
  // or it was recorded (202).
  return json_response(a.revoked || a.limited != LimitRefusal::kNone ? 200 : 202,
                       request_json(*row, true));
}

HttpResponse App::cancel_execution(int64_t id, const AuditEntry& actor) {
  auto before = ctx_.store.get_execution(id);
  if (!before.ok()) return from_status(before.status());
  auto names = ctx_.store.receiver_names({before->receiver_id});
  if (!names.ok()) return from_status(names.status());
  auto name = names->find(before->receiver_id);
  // Written in the cancel's own transaction (Store::cancel_execution).
  AuditEntry entry = actor;
  entry.action = "execution.cancel";
  entry.target_type = "execution";
  entry.target_id = id;
  if (name != names->end()) entry.target_name = name->second.name;
  entry.before = {{"status", to_string(before->status)}, {"attempts", before->attempts}};
  entry.after = {{"status", "failed"}, {"error", "cancelled"}};
  bool held = false;
  Status s = ctx_.executor.cancel(id, &held, &entry);
  if (!s.ok()) return from_status(s);
  auto e = ctx_.store.get_execution(id);
  if (!e.ok()) return from_status(e.status());
  // Only the store held it: its receiver's queue slot is given back here.
  if (!held)
    if (auto r = ctx_.receivers.find(e->receiver_id))
      r->limiter->queued()->fetch_sub(1, std::memory_order_relaxed);
  log::info("execution cancelled", {{"execution_id", id}, {"receiver_id", e->receiver_id}});
  return json_response(200, execution_json(*e, ctx_.executor.max_attempts(),
                                           name == names->end() ? nullptr : &name->second));
}

}  // namespace tripline
