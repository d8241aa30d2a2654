// The management API's entry (admin token check, /api/v1 dispatch) and its smaller routes:
// executions, tokens, workers, drivers, /readyz. Receivers: receivers_api.cpp.
#include <algorithm>
#include <future>

#include "app.h"
#include "crypto.h"
#include "json_limits.h"
#include "log.h"
#include "responses.h"
#include "routes.h"
#include "schema.h"
#include "secrets.h"

namespace tripline {

using nlohmann::json;

// --- management API ----------------------------------------------------------------------

HttpResponse App::api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  auto who = ctx_.admin.check(req.header("Authorization").value_or(""));
  if (!who) {
    auto r = error_response(401, "unauthorized",
                            "send an admin token as 'Authorization: Bearer <token>'");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tripline\"");
    return r;
  }
  if (seg.size() < 3 || seg[1] != "v1") return error_response(404, "not_found", "no such API path");
  // The route table (routes.cpp) decides first: no handler runs for a route it does not list,
  // nor for a token whose role is below the route's.
  auto match =
      match_route(req.method(), seg, [&](std::string_view name) { return req.query(name); });
  if (!match.route) {
    if (match.allow.empty()) return error_response(404, "not_found", "no such API path");
    return method_not_allowed(match.allow);
  }
  if (who->role < match.route->role)
    return error_response(403, "forbidden",
                          std::string("this needs an admin token with the ") +
                              to_string(match.route->role) + " role" +
                              (match.route->role == Role::kAdmin ? "" : " or above") + "; \"" +
                              who->name + "\" is " + to_string(who->role));
  AuditEntry actor;
  actor.actor_id = who->id;
  actor.actor_name = who->name;
  actor.actor_role = to_string(who->role);
  actor.source =
      caller_address(req.peer_address(), req.header("X-Forwarded-For"), ctx_.trusted_proxies);
  std::vector<std::string_view> rest(seg.begin() + 2, seg.end());
  if (rest[0] == "receivers") return receivers_api(req, rest, actor);
  if (rest[0] == "executions") return executions_api(req, rest, actor);
  if (rest[0] == "tokens") return tokens_api(req, rest, actor);
  if (rest[0] == "workers") return workers_api(req, rest, actor);
  if (rest[0] == "audit" && rest.size() == 1) return audit_api(req);
  if (rest[0] == "rules" && rest.size() == 2 && rest[1] == "test")
    return rules_test_api(req, std::nullopt, actor);
  if (rest[0] == "drivers" && rest.size() == 1) {
    if (req.method() != "GET") return method_not_allowed("GET");
    return drivers_api(req);
  }
  if (rest[0] == "drivers" && rest.size() == 3 && rest[2] == "targets")
    return targets_api(req, rest[1]);
  // Who the token is: the UI shows or hides what its role may not do (docs/api.md).
  if (rest[0] == "whoami" && rest.size() == 1)
    return json_response(200,
                         {{"id", who->id}, {"name", who->name}, {"role", to_string(who->role)}});
  if (rest[0] == "peers" && rest.size() == 1) return peers_api(actor);
  return error_response(404, "not_found", "no such API path");
}

// Every receiver change is committed, read back and published to the cache under one lock, so
// the cache sees changes in commit order and only ever moves forward (ReceiverCache::put also
// refuses older versions). Reads never write the cache.
HttpResponse App::executions_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                                 const AuditEntry& actor) {
  if (seg.size() == 3 && (seg[2] == "retry" || seg[2] == "cancel")) {
    auto id = parse_id(seg[1]);
    if (!id) return error_response(404, "not_found", "no such execution");
    if (req.method() != "POST") return method_not_allowed("POST");
    return seg[2] == "retry" ? retry_execution(*id, actor) : cancel_execution(*id, actor);
  }
  if (seg.size() > 2) return error_response(404, "not_found", "no such API path");
  if (req.method() != "GET") return method_not_allowed("GET");
  if (seg.size() == 2) {
    auto id = parse_id(seg[1]);
    if (!id) return error_response(404, "not_found", "no such execution");
    auto e = ctx_.store.get_execution(*id);
    if (!e.ok()) return from_status(e.status());
    auto names = ctx_.store.receiver_names({e->receiver_id});
    if (!names.ok()) return from_status(names.status());
    auto name = names->find(e->receiver_id);
    return json_response(
        200,
        view_for(role_of(actor), execution_json(*e, ctx_.executor.max_attempts(),
                                                name == names->end() ? nullptr : &name->second)));
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
  std::vector<int64_t> ids;
  for (const auto& e : *rows) ids.push_back(e.receiver_id);
  auto names = ctx_.store.receiver_names(ids);  // a deleted receiver's too (migration 017)
  if (!names.ok()) return from_status(names.status());
  for (const auto& e : *rows) {
    auto name = names->find(e.receiver_id);
    items.push_back(
        view_for(role_of(actor), execution_json(e, ctx_.executor.max_attempts(),
                                                name == names->end() ? nullptr : &name->second)));
  }
  json next = rows->size() == size_t(f.limit) ? json(rows->back().id) : json(nullptr);
  return json_response(200, {{"items", items}, {"next_before", next}});
}

// A retry is a new execution with the failed one's recorded config and action, committed and run
// like a trigger's. It runs under the grant the failed one was accepted under, so only while that
// still holds: the receiver enabled and at the same generation (no rotate, disable or change of
// target or action since). An admin's act, it is not held to the rate limit or the cooldown, but
// it takes a slot of the receiver's queue cap and claims the cooldown as a trigger's execution
// does (LimiterState::reserve_retry). Its idempotency key names the execution retried,
// so retrying the same one twice (a double click, a script's own retry) answers the first retry.
HttpResponse App::retry_execution(int64_t id, const AuditEntry& actor) {
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

  // The slot is taken before the commit, as a trigger's is: the executor gives it back when the
  // new execution finishes, which may be before submit's answer comes.
  Reservation claim;
  int64_t wait = 0;
  if (r.limiter->reserve_retry(r.limits, e->action, ctx_.store.clock().now_ms(), &claim, &wait) !=
      LimiterState::Verdict::kOk) {
    auto resp = error_response(429, "queue_full",
                               "this receiver has too many executions waiting to run; retry later");
    resp.headers.emplace_back("Retry-After", std::to_string(wait));
    return resp;
  }
  Ingest::Trigger t;
  t.receiver = receiver;
  t.config = *config;
  t.config_text = e->config;  // as recorded: secrets sealed
  t.action = e->action;
  t.idempotency_key = "retry-of:" + std::to_string(id);
  t.limits = LimitsCheck::Kind::kRetry;
  // Shared with the callback: it may still be inside set_value when this thread wakes up.
  auto committed = std::make_shared<std::promise<std::pair<Status, Accepted>>>();
  auto answer = committed->get_future();
  ctx_.ingest.submit(std::move(t), [committed](const Status& s, const Accepted& a) {
    committed->set_value({s, a});
  });
  auto [s, a] = answer.get();  // one group commit: the trigger path's own wait
  if (!s.ok() || !a.recorded())
    claim.release();
  else
    claim.settle();
  if (s.ok() && a.revoked)
    return from_status(Status::Conflict("its receiver's trigger URL was revoked meanwhile"));
  if (s.ok() && a.limited != LimitRefusal::kNone) {  // every replica's queue cap, together
    auto resp = error_response(429, "queue_full",
                               "this receiver has too many executions waiting to run; retry later");
    resp.headers.emplace_back("Retry-After", std::to_string(a.limit_wait));
    return resp;
  }
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
  // The new execution was committed by the ingest's group commit (the trigger path, which takes
  // no audit entry), so its row is recorded just after: a crash in between loses the row, not
  // the retry, whose execution names what it retried (idempotency key "retry-of:<id>";
  // docs/security.md says so). A replay made no change and records nothing.
  if (!a.replayed) {
    AuditEntry entry = actor;
    entry.action = "execution.retry";
    entry.target_type = "execution";
    entry.target_id = id;
    entry.target_name = r.row.name;
    entry.before = {{"status", to_string(e->status)}};
    entry.after = {{"retry_execution_id", a.execution_id}};
    if (Status s = ctx_.store.record_audit(entry); !s.ok())
      log::error(
          "the audit row of a retry could not be recorded",
          {{"execution_id", id}, {"retry_execution_id", a.execution_id}, {"error", s.message()}});
  }
  HttpResponse resp = accepted_response(a.execution_id, r.row.id, a.replayed);
  json body = json::parse(resp.body);
  body["retry_of"] = id;
  return json_response(202, body);
}

namespace {

json token_json(const AdminTokenRow& t) {
  return {{"id", t.id},
          {"name", t.name},
          {"role", to_string(t.role)},
          {"from_env", t.from_env},
          {"created_at", log::format_time(t.created_at)}};
}

// A token as the audit log shows it: never its value or hash.
json token_audit_view(const AdminTokenRow& t) {
  return {{"name", t.name}, {"role", to_string(t.role)}, {"from_env", t.from_env}};
}

constexpr const char* kRoleMessage = "must be admin, operator or read-only";

}  // namespace

HttpResponse App::tokens_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                             const AuditEntry& actor) {
  if (seg.size() == 1 && req.method() == "GET") {
    json items = json::array();
    auto tokens = ctx_.store.list_admin_tokens();
    if (!tokens.ok()) return from_status(tokens.status());
    for (const auto& t : *tokens) items.push_back(token_json(t));
    return json_response(200, {{"items", items}});
  }
  if (seg.size() == 1 && req.method() == "POST") {
    json body;
    if (auto bad = parse_body(req, &body)) return *bad;
    std::vector<FieldError> errors;
    for (const auto& item : body.items())
      if (item.key() != "name" && item.key() != "role")
        errors.push_back({item.key(), "is not a token field"});
    if (!body.contains("name") || !valid_name(body["name"]))
      errors.push_back({"name", "is required: 1 to 100 printable characters"});
    // No role given: admin, as every token was before roles.
    std::optional<Role> role = Role::kAdmin;
    if (body.contains("role"))
      role = body["role"].is_string() ? parse_role(body["role"].get<std::string>()) : std::nullopt;
    if (!role) errors.push_back({"role", kRoleMessage});
    if (!errors.empty())
      return from_status(
          Status::Invalid(errors.front().field + " " + errors.front().message, errors));
    AuditEntry entry = actor;
    entry.action = "token.create";
    entry.target_type = "token";
    entry.target_name = body["name"];
    entry.after = {{"name", body["name"]}, {"role", to_string(*role)}, {"from_env", false}};
    auto created = ctx_.admin.create(body["name"], *role, &entry);
    if (!created.ok()) return from_status(created.status());
    const auto& [row, token] = *created;
    json out = token_json(row);
    out["token"] = token;
    out["note"] = "store this token now: it is not shown again";
    return json_response(201, out);
  }
  if (seg.size() == 1) return method_not_allowed("GET, POST");
  if (seg.size() != 2) return error_response(404, "not_found", "no such API path");
  auto id = parse_id(seg[1]);
  if (!id) return error_response(404, "not_found", "no such token");
  if (req.method() != "DELETE" && req.method() != "PUT") return method_not_allowed("PUT, DELETE");
  auto tokens = ctx_.store.list_admin_tokens();
  if (!tokens.ok()) return from_status(tokens.status());
  const AdminTokenRow* current = nullptr;
  for (const auto& t : *tokens)
    if (t.id == *id) current = &t;
  if (req.method() == "PUT") {
    json body;
    if (auto bad = parse_body(req, &body)) return *bad;
    std::optional<Role> role;
    if (body.size() == 1 && body.contains("role") && body["role"].is_string())
      role = parse_role(body["role"].get<std::string>());
    if (!role)
      return from_status(Status::Invalid(
          std::string("role ") + kRoleMessage + " (the only field a token's PUT takes)",
          {{"role", kRoleMessage}}));
    if (!current)
      return from_status(Status::NotFound("no admin token with id " + std::to_string(*id)));
    AuditEntry entry = actor;
    entry.action = "token.role";
    entry.target_type = "token";
    entry.target_id = *id;
    entry.target_name = current->name;
    entry.before = token_audit_view(*current);
    AdminTokenRow changed = *current;
    changed.role = *role;
    entry.after = token_audit_view(changed);
    // Conflict (409) for the last admin and for the token from TRIPLINE_ADMIN_TOKEN.
    auto saved = ctx_.store.set_admin_token_role(*id, *role, &entry);
    if (!saved.ok()) return from_status(saved.status());
    // A demoted token loses its rights now: the reload is what check() reads. Fail closed when
    // it cannot be reloaded: the token is forgotten until the next successful reload.
    if (Status r = ctx_.admin.reload(); !r.ok()) {
      ctx_.admin.forget(current->token_hash);
      log::error("admin tokens could not be reloaded", {{"error", r.message()}});
    }
    return json_response(200, token_json(*saved));
  }
  if (!current)
    return from_status(Status::NotFound("no admin token with id " + std::to_string(*id)));
  AuditEntry entry = actor;
  entry.action = "token.revoke";
  entry.target_type = "token";
  entry.target_id = *id;
  entry.target_name = current->name;
  entry.before = token_audit_view(*current);
  Status s = ctx_.store.delete_admin_token(*id, &entry);  // Conflict (409) for the last admin
  if (!s.ok()) return from_status(s);
  // Fail closed: the revoked token stops working now, even if the reload below fails.
  ctx_.admin.forget(current->token_hash);
  if (Status r = ctx_.admin.reload(); !r.ok())
    log::error("admin tokens could not be reloaded", {{"error", r.message()}});
  HttpResponse r;
  r.status = 204;
  return r;
}

HttpResponse App::workers_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                              const AuditEntry& actor) {
  auto state = [&] {
    // One read under the executor's lock: queue_depth is queued + running + retrying.
    auto counts = ctx_.executor.counts();
    bool paused = counts.paused;
    json body = {{"paused", paused},          {"queue_depth", counts.total},
                 {"in_memory", counts.held},  {"queued", counts.queued},
                 {"running", counts.running}, {"retrying", counts.retrying},
                 {"paused_at", nullptr},      {"paused_by", nullptr}};
    // Since when and by whom: the newest workers row of the audit log (one indexed row, read
    // only while paused). Who is for operators and admins, as the audit log is.
    if (paused) {
      AuditFilter f;
      f.limit = 1;
      f.target_type = "workers";
      auto rows = ctx_.store.list_audit(f);
      if (rows.ok() && !rows->empty() && rows->front().action == "workers.pause") {
        body["paused_at"] = log::format_time(rows->front().at);
        if (role_of(actor) >= Role::kOperator) body["paused_by"] = rows->front().actor_name;
      }
    }
    return json_response(200, body);
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
  std::lock_guard lock(workers_writes_);
  // Already so: nothing changes and nothing is written, so paused_at and paused_by keep saying
  // who paused first and when (docs/api.md).
  if (ctx_.executor.paused() == pause) return state();
  AuditEntry entry = actor;
  entry.action = pause ? "workers.pause" : "workers.resume";
  entry.target_type = "workers";
  entry.before = {{"paused", ctx_.executor.paused()}};
  entry.after = {{"paused", pause}};
  if (Status s = ctx_.store.set_setting(kWorkersPausedSetting, pause ? "true" : "false", &entry);
      !s.ok())
    return from_status(s);
  if (pause)
    ctx_.executor.pause();
  else
    ctx_.executor.resume();
  log::info(seg[1] == "pause" ? "workers paused" : "workers resumed");
  return state();
}

Status App::refresh_setting(const std::string& name) {
  if (name != kWorkersPausedSetting) return Status::Ok();
  std::lock_guard lock(workers_writes_);
  auto value = ctx_.store.get_setting(kWorkersPausedSetting);
  if (!value.ok()) return value.status();
  bool pause = *value == std::optional<std::string>("true");
  if (ctx_.executor.paused() == pause) return Status::Ok();
  if (pause)
    ctx_.executor.pause();
  else
    ctx_.executor.resume();
  log::info(pause ? "workers paused (by another replica)" : "workers resumed (by another replica)");
  return Status::Ok();
}

HttpResponse App::drivers_api(const HttpRequest&) {
  json items = json::array();
  for (const Driver* d : ctx_.drivers.all())
    items.push_back({{"name", d->name()}, {"config_schema", d->config_schema()}});
  return json_response(200, {{"items", items}});
}

HttpResponse App::targets_api(const HttpRequest& req, std::string_view name) {
  const Driver* driver = ctx_.drivers.find(name);
  if (!driver) return error_response(404, "not_found", "no such driver");
  auto limit = query_int(req, "limit", 200, 1, 500);
  std::string backend = req.query("backend").value_or("");
  if (!limit || backend.size() > 64)
    return error_response(400, "bad_query", "limit must be 1..500; backend a backend's name");
  // The peer is asked on this thread, which triggers also use: every call of one listing ends
  // within ctx_.targets_deadline (a Kubernetes listing is several pages), and one listing's
  // answer serves every request for the same key while it runs and for ctx_.targets_cache_ttl
  // after (docs/api.md "Driver targets").
  std::string key = std::string(driver->name()) + '\n' + backend + '\n' + std::to_string(*limit);
  std::promise<HttpResponse> mine;
  std::shared_future<HttpResponse> shared;
  bool cached = false;
  {
    std::lock_guard lock(targets_mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto it = target_lists_.begin(); it != target_lists_.end();)
      it = it->second.expires <= now ? target_lists_.erase(it) : std::next(it);
    if (auto it = target_lists_.find(key); it != target_lists_.end()) {
      shared = it->second.answer;
    } else if (target_lists_.size() < kMaxTargetLists) {
      shared = mine.get_future().share();
      target_lists_[key] = {std::chrono::steady_clock::time_point::max(), shared};
      cached = true;
    }
  }
  if (shared.valid() && !cached) return shared.get();  // another request's listing
  // Ours: listed now (when the table is full of other keys, listed without sharing).
  auto list_now = [&]() -> HttpResponse {
    auto list = driver->list_targets(backend, size_t(*limit),
                                     std::chrono::steady_clock::now() + ctx_.targets_deadline);
    if (!list.ok()) {
      const Status& s = list.status();
      if (s.code() == Status::Code::kInvalid) return error_response(400, "bad_query", s.message());
      if (s.code() == Status::Code::kNotFound)
        return error_response(404, "not_supported", s.message());
      if (s.code() == Status::Code::kUnavailable)
        return error_response(502, "peer_unavailable", s.message());
      return from_status(s);
    }
    json items = json::array();
    for (const TargetInfo& t : list->items)
      items.push_back({{"name", t.name},
                       {"config", t.config},
                       {"replicas", t.replicas ? json(*t.replicas) : json(nullptr)}});
    return json_response(200, {{"driver", driver->name()},
                               {"backend", backend},
                               {"items", items},
                               {"truncated", list->truncated}});
  };
  if (!cached) return list_now();
  HttpResponse answer;
  try {
    answer = list_now();
  } catch (...) {
    // Those waiting get the same failure; the key is listed afresh next time.
    mine.set_exception(std::current_exception());
    std::lock_guard lock(targets_mu_);
    target_lists_.erase(key);
    throw;
  }
  mine.set_value(answer);
  std::lock_guard lock(targets_mu_);
  if (auto it = target_lists_.find(key); it != target_lists_.end())
    it->second.expires = std::chrono::steady_clock::now() + ctx_.targets_cache_ttl;
  return answer;
}

HttpResponse App::peers_api(const AuditEntry& actor) {
  Readiness::Snapshot snap;
  if (ctx_.readiness) snap = ctx_.readiness->snapshot();
  // Addresses and errors name internal hosts, sockets and paths: operators and admins only.
  bool detail = role_of(actor) >= Role::kOperator;
  json items = json::array();
  for (const Readiness::Peer& p : snap.peers) {
    json row = {
        {"peer", p.peer},
        {"used_by", p.used_by},
        {"state", p.state},
        {"checked_at", p.checked_at ? json(log::format_time(p.checked_at)) : json(nullptr)}};
    if (detail) {
      row["address"] = p.address.empty() ? json(nullptr) : json(p.address);
      row["detail"] = p.detail.empty() ? json(nullptr) : json(p.detail);
    }
    items.push_back(std::move(row));
  }
  return json_response(200, {{"ready", snap.ready}, {"items", items}});
}

HttpResponse App::audit_api(const HttpRequest& req) {
  AuditFilter f;
  auto limit = query_int(req, "limit", 50, 1, 500);
  auto before = query_int(req, "before", 0, 0, INT64_MAX);
  if (!limit || !before)
    return error_response(400, "bad_query", "limit must be 1..500 and before an audit row id");
  f.limit = int(*limit);
  f.before_id = *before;
  if (auto target = req.query("target")) {
    // "receiver", or "receiver:12": a kind of target, or one target.
    std::string_view t = *target;
    auto colon = t.find(':');
    std::string_view type = t.substr(0, colon);
    static const char* const kTypes[] = {"receiver",  "subscription", "delivery", "request",
                                         "execution", "token",        "workers"};
    bool known =
        std::any_of(std::begin(kTypes), std::end(kTypes), [&](const char* k) { return type == k; });
    std::optional<int64_t> tid;
    if (colon != std::string_view::npos) tid = parse_id(t.substr(colon + 1));
    if (!known || (colon != std::string_view::npos && !tid))
      return error_response(
          400, "bad_query",
          "target must be receiver, subscription, delivery, request, execution, token "
          "or workers, optionally with :<id> (receiver:12)");
    f.target_type = std::string(type);
    f.target_id = tid;
  }
  auto rows = ctx_.store.list_audit(f);
  if (!rows.ok()) return from_status(rows.status());
  json items = json::array();
  for (const auto& e : *rows)
    items.push_back({{"id", e.id},
                     {"at", log::format_time(e.at)},
                     {"actor",
                      {{"token_id", e.actor_id ? json(*e.actor_id) : json(nullptr)},
                       {"name", e.actor_name},
                       {"role", e.actor_role}}},
                     {"source", e.source},
                     {"action", e.action},
                     {"target",
                      {{"type", e.target_type},
                       {"id", e.target_id ? json(*e.target_id) : json(nullptr)},
                       {"name", e.target_name}}},
                     {"before", e.before},
                     {"after", e.after}});
  json next = rows->size() == size_t(f.limit) ? json(rows->back().id) : json(nullptr);
  return json_response(200, {{"items", items}, {"next_before", next}});
}

// The cached answer of the background prober: a hung peer never holds an HTTP thread. Internal
// addresses and errors are shown only to an operator or admin token (as GET /api/v1/peers);
// everyone else, a read-only token too, learns ready or not.
HttpResponse App::readyz(const HttpRequest& req) {
  Readiness::Snapshot snap;
  if (ctx_.readiness) snap = ctx_.readiness->snapshot();
  json body = {{"status", snap.ready ? "ready" : "not ready"}};
  auto who = ctx_.admin.check(req.header("Authorization").value_or(""));
  if (who && who->role >= Role::kOperator) body["checks"] = snap.checks;
  return json_response(snap.ready ? 200 : 503, body);
}

}  // namespace tripline
