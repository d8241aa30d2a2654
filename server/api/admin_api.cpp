// The management API's entry (admin token check, /api/v1 dispatch) and its smaller routes:
// executions, tokens, workers, drivers, /readyz. Receivers: receivers_api.cpp.
#include <future>

#include "app.h"
#include "crypto.h"
#include "json_limits.h"
#include "log.h"
#include "responses.h"
#include "schema.h"
#include "secrets.h"

namespace tripline {

using nlohmann::json;

// --- management API ----------------------------------------------------------------------

HttpResponse App::api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  if (!ctx_.admin.check(req.header("Authorization").value_or(""))) {
    auto r = error_response(401, "unauthorized",
                            "send an admin token as 'Authorization: Bearer <token>'");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tripline\"");
    return r;
  }
  if (seg.size() < 3 || seg[1] != "v1") return error_response(404, "not_found", "no such API path");
  std::vector<std::string_view> rest(seg.begin() + 2, seg.end());
  if (rest[0] == "receivers") return receivers_api(req, rest);
  if (rest[0] == "executions") return executions_api(req, rest);
  if (rest[0] == "tokens") return tokens_api(req, rest);
  if (rest[0] == "workers") return workers_api(req, rest);
  if (rest[0] == "drivers" && rest.size() == 1) {
    if (req.method() != "GET") return method_not_allowed("GET");
    return drivers_api(req);
  }
  return error_response(404, "not_found", "no such API path");
}

// Every receiver change is committed, read back and published to the cache under one lock, so
// the cache sees changes in commit order and only ever moves forward (ReceiverCache::put also
// refuses older versions). Reads never write the cache.
HttpResponse App::executions_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  if (seg.size() == 3 && (seg[2] == "retry" || seg[2] == "cancel")) {
    auto id = parse_id(seg[1]);
    if (!id) return error_response(404, "not_found", "no such execution");
    if (req.method() != "POST") return method_not_allowed("POST");
    return seg[2] == "retry" ? retry_execution(*id) : cancel_execution(*id);
  }
  if (seg.size() > 2) return error_response(404, "not_found", "no such API path");
  if (req.method() != "GET") return method_not_allowed("GET");
  if (seg.size() == 2) {
    auto id = parse_id(seg[1]);
    if (!id) return error_response(404, "not_found", "no such execution");
    auto e = ctx_.store.get_execution(*id);
    if (!e.ok()) return from_status(e.status());
    return json_response(200, execution_json(*e));
  }
  if (seg.size() != 1) return error_response(404, "not_found", "no such API path");
  ExecutionFilter f;
  auto limit = query_int(req, "limit", 50, 1, 500);
  auto before = query_int(req, "before", 0, 0, INT64_MAX);
  auto rid = query_int(req, "receiver_id", 0, 0, INT64_MAX);
  if (!limit || !before || !rid)
    return error_response(400, "bad_query", "limit must be 1..500; before and receiver_id are ids");
  f.limit = int(*limit);
  f.before_id = *before;
  if (*rid > 0) f.receiver_id = *rid;
  if (auto st = req.query("status")) {
    f.status = parse_execution_status(*st);
    if (!f.status)
      return error_response(400, "bad_query",
                            "status must be queued, running, succeeded or failed");
  }
  json items = json::array();
  auto rows = ctx_.store.list_executions(f);
  if (!rows.ok()) return from_status(rows.status());
  for (const auto& e : *rows) items.push_back(execution_json(e));
  json next = rows->size() == size_t(f.limit) ? json(rows->back().id) : json(nullptr);
  return json_response(200, {{"items", items}, {"next_before", next}});
}

// A retry is a new execution with the failed one's recorded config and action, committed and run
// like a trigger's. It runs under the grant the failed one was accepted under, so only while that
// still holds: the receiver enabled and at the same generation (no rotate, disable or change of
// target or action since). An admin's act, it is not held to the rate limit or the cooldown, but
// it takes a slot of the receiver's queue cap. Its idempotency key names the execution retried,
// so retrying the same one twice (a double click, a script's own retry) answers the first retry.
HttpResponse App::retry_execution(int64_t id) {
  auto e = ctx_.store.get_execution(id);
  if (!e.ok()) return from_status(e.status());
  if (e->status != ExecutionStatus::kFailed)
    return from_status(
        Status::Conflict(std::string("only a failed execution can be retried; this one is ") +
                         to_string(e->status)));
  auto receiver = ctx_.receivers.find(e->receiver_id);
  if (!receiver) return from_status(Status::Conflict("its receiver no longer exists"));
  const Receiver& r = *receiver;
  if (!r.row.enabled)
    return from_status(Status::Conflict("its receiver is disabled: enable it and trigger it anew"));
  if (r.row.generation != e->generation || r.row.driver != e->driver)
    return from_status(
        Status::Conflict("its receiver's trigger URL was revoked since it ran (rotated, disabled, "
                         "or given another target or action): trigger it anew"));
  // The recorded config is the receiver's as it was: an edit since (new credentials, lower
  // bounds) must not be undone by running the old one again.
  if (r.row.updated_at > e->created_at)
    return from_status(Status::Conflict(
        "its receiver was changed since it ran, and a retry runs the recorded config: trigger "
        "it anew"));
  auto stored = parse_json_bounded(e->config);
  Result<json> plain = Status::Internal("the recorded config is not JSON");
  if (stored.ok()) plain = open_config(stored.value, secret_fields(*r.driver), ctx_.secrets);
  if (!plain.ok()) return from_status(plain.status());
  auto config = r.driver->validate(*plain, /*check_peer=*/false);
  if (!config.ok())
    return from_status(
        Status::Conflict("its recorded config is no longer valid: " + config.status().message()));

  std::shared_ptr<std::atomic<int64_t>> queued = r.limiter->queued();
  if (r.limits.max_queued > 0 && queued->load() >= r.limits.max_queued) {
    auto resp = error_response(429, "queue_full",
                               "this receiver has too many executions waiting to run; retry later");
    resp.headers.emplace_back("Retry-After", "1");
    return resp;
  }
  Ingest::Trigger t;
  t.receiver = receiver;
  t.config = *config;
  t.config_text = e->config;  // as recorded: secrets sealed
  t.action = e->action;
  t.idempotency_key = "retry-of:" + std::to_string(id);
  // Taken before the commit, as a trigger's claim is: the executor gives the slot back when the
  // new execution finishes, which may be before submit's answer comes.
  queued->fetch_add(1, std::memory_order_relaxed);
  // Shared with the callback: it may still be inside set_value when this thread wakes up.
  auto committed = std::make_shared<std::promise<std::pair<Status, Accepted>>>();
  auto answer = committed->get_future();
  ctx_.ingest.submit(std::move(t), [committed](const Status& s, const Accepted& a) {
    committed->set_value({s, a});
  });
  auto [s, a] = answer.get();  // one group commit: the trigger path's own wait
  if (!s.ok() || a.replayed || a.revoked) queued->fetch_sub(1, std::memory_order_relaxed);
  if (a.revoked)
    return from_status(Status::Conflict("its receiver's trigger URL was revoked meanwhile"));
  if (!s.ok()) {
    auto resp = error_response(503, a.overloaded ? "overloaded" : "unavailable",
                               "the retry could not be recorded; retry");
    resp.headers.emplace_back("Retry-After", "1");
    return resp;
  }
  if (a.replayed) {
    // The key is in the namespace of senders' Idempotency-Key: one who holds the URL could have
    // used it first. Only a real retry (the same recorded request) answers for this one.
    auto earlier = ctx_.store.get_execution(a.execution_id);
    if (!earlier.ok()) return from_status(earlier.status());
    if (earlier->config != e->config || earlier->action != e->action)
      return from_status(Status::Conflict("execution " + std::to_string(a.execution_id) +
                                          " holds this retry's idempotency key but is not a "
                                          "retry of this execution"));
  }
  HttpResponse resp = accepted_response(a.execution_id, r.row.id, a.replayed);
  json body = json::parse(resp.body);
  body["retry_of"] = id;
  return json_response(202, body);
}

HttpResponse App::tokens_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  if (seg.size() == 1 && req.method() == "GET") {
    json items = json::array();
    auto tokens = ctx_.store.list_admin_tokens();
    if (!tokens.ok()) return from_status(tokens.status());
    for (const auto& t : *tokens)
      items.push_back(
          {{"id", t.id}, {"name", t.name}, {"created_at", log::format_time(t.created_at)}});
    return json_response(200, {{"items", items}});
  }
  if (seg.size() == 1 && req.method() == "POST") {
    json body;
    if (auto bad = parse_body(req, &body)) return *bad;
    if (!body.contains("name") || !valid_name(body["name"]) || body.size() != 1)
      return from_status(Status::Invalid("name is required: 1 to 100 printable characters",
                                         {{"name", "is required: 1 to 100 printable characters"}}));
    auto created = ctx_.admin.create(body["name"]);
    if (!created.ok()) return from_status(created.status());
    const auto& [row, token] = *created;
    return json_response(201, {{"id", row.id},
                               {"name", row.name},
                               {"token", token},
                               {"created_at", log::format_time(row.created_at)},
                               {"note", "store this token now: it is not shown again"}});
  }
  if (seg.size() == 1) return method_not_allowed("GET, POST");
  if (seg.size() != 2) return error_response(404, "not_found", "no such API path");
  auto id = parse_id(seg[1]);
  if (!id) return error_response(404, "not_found", "no such token");
  if (req.method() != "DELETE") return method_not_allowed("DELETE");
  auto tokens = ctx_.store.list_admin_tokens();
  if (!tokens.ok()) return from_status(tokens.status());
  Status s = ctx_.store.delete_admin_token(*id);  // Conflict (409) for the last one
  if (!s.ok()) return from_status(s);
  // Fail closed: the revoked token stops working now, even if the reload below fails.
  for (const auto& t : *tokens)
    if (t.id == *id) ctx_.admin.forget(t.token_hash);
  if (Status r = ctx_.admin.reload(); !r.ok())
    log::error("admin tokens could not be reloaded", {{"error", r.message()}});
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse App::workers_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  auto state = [&] {
    return json_response(200, {{"paused", ctx_.executor.paused()},
                               {"queue_depth", ctx_.executor.depth()},
                               {"in_memory", ctx_.executor.held()}});
  };
  if (seg.size() == 1) {
    if (req.method() != "GET") return method_not_allowed("GET");
    return state();
  }
  if (seg.size() != 2 || (seg[1] != "pause" && seg[1] != "resume"))
    return error_response(404, "not_found", "no such API path");
  if (req.method() != "POST") return method_not_allowed("POST");
  // Recorded first: a pause that a restart forgot would let held work run.
  bool pause = seg[1] == "pause";
  if (Status s = ctx_.store.set_setting(kWorkersPausedSetting, pause ? "true" : "false"); !s.ok())
    return from_status(s);
  if (pause)
    ctx_.executor.pause();
  else
    ctx_.executor.resume();
  log::info(seg[1] == "pause" ? "workers paused" : "workers resumed");
  return state();
}

HttpResponse App::drivers_api(const HttpRequest&) {
  json items = json::array();
  for (const Driver* d : ctx_.drivers.all())
    items.push_back({{"name", d->name()}, {"config_schema", d->config_schema()}});
  return json_response(200, {{"items", items}});
}

// The cached answer of the background prober: a hung peer never holds an HTTP thread. Internal
// addresses and errors are shown only to an admin; everyone else learns ready or not.
HttpResponse App::readyz(const HttpRequest& req) {
  Readiness::Snapshot snap;
  if (ctx_.readiness) snap = ctx_.readiness->snapshot();
  json body = {{"status", snap.ready ? "ready" : "not ready"}};
  if (ctx_.admin.check(req.header("Authorization").value_or(""))) body["checks"] = snap.checks;
  return json_response(snap.ready ? 200 : 503, body);
}

}  // namespace tripline
