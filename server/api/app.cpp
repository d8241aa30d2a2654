#include "app.h"

#include <charconv>
#include <unordered_map>
#include <chrono>

#include "crypto.h"
#include "decide.h"
#include "log.h"

namespace tripline {

using nlohmann::json;

namespace {

// The trigger layer reads requests through InboundRequest (trigger/request.h), which knows
// nothing of HTTP.
class InboundView final : public InboundRequest {
 public:
  explicit InboundView(const HttpRequest& r) : r_(r) {}
  std::string_view method() const override { return r_.method(); }
  std::string_view body() const override { return r_.body(); }
  std::optional<std::string> header(std::string_view name) const override { return r_.header(name); }
  std::optional<std::string> query(std::string_view name) const override { return r_.query(name); }

 private:
  const HttpRequest& r_;
};

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse from_status(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk: return json_response(200, json::object());
    case Status::Code::kInvalid: return error_response(422, "validation_failed", s.message(), s.fields());
    case Status::Code::kNotFound: return error_response(404, "not_found", s.message());
    case Status::Code::kConflict: return error_response(409, "conflict", s.message());
    case Status::Code::kUnavailable: return error_response(503, "unavailable", s.message());
    case Status::Code::kInternal: break;
  }
  log::error("internal error", {{"error", s.message()}});
  return error_response(500, "internal", "an internal error occurred; see the server log");
}

// 202 for an accepted trigger; `replayed`: an earlier request already made this execution.
HttpResponse accepted_response(int64_t execution_id, int64_t receiver_id, bool replayed) {
  HttpResponse r;
  r.status = 202;
  r.body = "{\"execution_id\":" + std::to_string(execution_id) +
           ",\"receiver_id\":" + std::to_string(receiver_id) + ",\"status\":\"queued\"" +
           (replayed ? ",\"replayed\":true}" : "}");
  return r;
}

HttpResponse method_not_allowed(std::string allow) {
  auto r = error_response(405, "method_not_allowed", "this path accepts only " + allow);
  r.headers.emplace_back("Allow", std::move(allow));
  return r;
}

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

std::optional<int64_t> parse_id(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

// Query integer in [lo, hi]; `fallback` when absent. nullopt when present but invalid.
std::optional<int64_t> query_int(const HttpRequest& req, std::string_view name, int64_t fallback,
                                 int64_t lo, int64_t hi) {
  auto v = req.query(name);
  if (!v) return fallback;
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < lo || n > hi) return std::nullopt;
  return n;
}

// Parses a JSON request body: 415 unless it is JSON, 400 when malformed.
std::optional<HttpResponse> parse_body(const HttpRequest& req, json* out) {
  auto ct = req.header("Content-Type");
  if (!ct || ct->rfind("application/json", 0) != 0)
    return error_response(415, "unsupported_media_type", "send the body as application/json");
  *out = parse_body_json(req.body());
  if (out->is_discarded())
    return error_response(400, "malformed_json", "the request body is not valid JSON (UTF-8, nested at most 64 deep)");
  if (!out->is_object())
    return error_response(400, "malformed_json", "the request body must be a JSON object");
  return std::nullopt;
}

json execution_json(const ExecutionRow& e) {
  auto t = [](const std::optional<int64_t>& ms) -> json {
    return ms ? json(log::format_time(*ms)) : json(nullptr);
  };
  return {{"id", e.id},
          {"receiver_id", e.receiver_id},
          {"driver", e.driver},
          {"status", to_string(e.status)},
          {"attempts", e.attempts},
          {"created_at", log::format_time(e.created_at)},
          {"started_at", t(e.started_at)},
          {"finished_at", t(e.finished_at)},
          {"next_attempt_at", t(e.next_attempt_at)},
          {"plan", e.plan},
          {"result", e.result},
          {"error", e.error.empty() ? json(nullptr) : json(e.error)}};
}

bool valid_name(const json& j) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return !s.empty() && s.size() <= 100 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

// The receiver fields a client may send, checked before the driver sees the config.
Status check_receiver_body(const json& body, bool require_driver) {
  std::vector<FieldError> errors;
  for (const auto& [k, _] : body.items())
    if (k != "name" && k != "driver" && k != "config" && k != "enabled" && k != "rules" &&
        k != "auth" && k != "limits")
      errors.push_back({k, "is not a receiver field"});
  if (!body.contains("name") || !valid_name(body["name"]))
    errors.push_back({"name", "is required: 1 to 100 printable characters"});
  if (require_driver && (!body.contains("driver") || !body["driver"].is_string()))
    errors.push_back({"driver", "is required (see GET /api/v1/drivers)"});
  if (!body.contains("config") || !body["config"].is_object())
    errors.push_back({"config", "is required and must be an object"});
  if (body.contains("enabled") && !body["enabled"].is_boolean())
    errors.push_back({"enabled", "must be true or false"});
  if (errors.empty()) return Status::Ok();
  return Status::Invalid(errors.front().field + " " + errors.front().message, errors);
}

}  // namespace

std::string App::trigger_url(const Receiver& r) const {
  return ctx_.public_url + "/_webhooks/" + ctx_.keyring.sign(r.claims());
}

Result<json> App::receiver_json(const Receiver& r) const {
  ExecutionFilter last;
  last.receiver_id = r.row.id;
  last.limit = 1;
  auto rows = ctx_.store.list_executions(last);
  if (!rows.ok()) return rows.status();
  return json{{"id", r.row.id},
          {"last_execution", rows->empty() ? json(nullptr) : execution_json(rows->front())},
          {"name", r.row.name},
          {"driver", r.row.driver},
          {"config", redact_config(r.stored_config(), *r.secret_fields)},
          {"rules", r.row.rules},
          {"auth", InboundAuth::redact(r.row.auth)},
          {"limits", r.row.limits},
          {"enabled", r.row.enabled},
          {"generation", r.row.generation},
          {"description", r.description},
          {"target", r.target},
          {"action", r.action},
          {"trigger_url", trigger_url(r)},
          {"created_at", log::format_time(r.row.created_at)},
          {"updated_at", log::format_time(r.row.updated_at)}};
}

void App::handle(const HttpRequest& req, Responder respond) {
  std::string_view path = req.path();
  constexpr std::string_view kHooks = "/_webhooks/";
  if (path.rfind(kHooks, 0) == 0 && path.find('/', kHooks.size()) == std::string_view::npos) {
    std::string_view token = path.substr(kHooks.size());
    if (req.method() != "POST") {
      ctx_.metrics.request(Route::kTrigger, 405);
      return respond(method_not_allowed("POST"));
    }
    // `respond` is moved into the ingest callback only at the very end of trigger(), after
    // which nothing throws; before that, an exception leaves it here to answer with.
    try {
      if (token == "trigger") {
        std::string header = req.header("X-Tripline-Token").value_or("");
        return trigger(req, header, respond);
      }
      return trigger(req, token, respond);
    } catch (const std::exception& e) {
      log::error("unhandled exception on the trigger path", {{"error", e.what()}});
      ctx_.metrics.request(Route::kTrigger, 500);
      if (respond) respond(error_response(500, "internal", "an internal error occurred; see the server log"));
      return;
    }
  }

  auto segments = split_path(path);
  Route route = Route::kOther;
  if (!segments.empty()) {
    if (segments[0] == "_webhooks") route = Route::kTrigger;
    else if (segments[0] == "api") route = Route::kApi;
    else if (segments[0] == "healthz" || segments[0] == "readyz") route = Route::kHealth;
    else if (segments[0] == "metrics") route = Route::kMetrics;
  }

  auto started = std::chrono::steady_clock::now();
  std::string request_id = req.header("X-Request-Id").value_or("");
  if (request_id.empty() || request_id.size() > 64)
    request_id = crypto::hex(crypto::random_bytes(8));
  HttpResponse r;
  try {
    if (route == Route::kTrigger) {
      r = error_response(404, "not_found", "trigger URLs look like /_webhooks/<token>");
    } else if (route == Route::kApi) {
      r = api(req, segments);
    } else if (route == Route::kHealth || route == Route::kMetrics) {
      if (segments.size() != 1) {
        r = error_response(404, "not_found", "no such path");
      } else if (req.method() != "GET") {
        r = method_not_allowed("GET");
      } else if (segments[0] == "healthz") {
        r = json_response(200, {{"status", "ok"}});
      } else if (segments[0] == "readyz") {
        r = readyz(req);
      } else {
        r.body = ctx_.metrics.render();
        r.content_type = "text/plain; version=0.0.4";
      }
    } else if (auto file = (req.method() == "GET" || req.method() == "HEAD")
                               ? ui_.serve(path, req.header("If-None-Match"))
                               : std::nullopt) {
      route = Route::kUi;
      r = std::move(*file);
    } else {
      r = error_response(404, "not_found", "no such path");
    }
  } catch (const std::exception& e) {
    log::error("unhandled exception", {{"request_id", request_id}, {"error", e.what()}});
    r = error_response(500, "internal", "an internal error occurred; see the server log");
  }
  r.headers.emplace_back("X-Request-Id", request_id);
  ctx_.metrics.request(route, r.status);
  if (route == Route::kApi) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    log::info("request", {{"request_id", request_id},
                          {"method", req.method()},
                          {"path", req.path()},
                          {"status", r.status},
                          {"duration_ms", ms},
                          {"peer", req.peer_address()}});
  }
  respond(std::move(r));
}

// --- trigger path ------------------------------------------------------------------------
// Token -> receiver cache -> durable insert -> 202. No database read, no driver, no peer.

void App::trigger(const HttpRequest& req, std::string_view token, Responder& respond) {
  auto reject = [&](RejectReason reason, int status, const char* code, const char* msg) {
    ctx_.metrics.trigger_rejected(reason);
    ctx_.metrics.request(Route::kTrigger, status);
    if (log::enabled(log::Level::kDebug))
      log::debug("trigger rejected", {{"reason", to_string(reason)},
                                      {"token", log::redact_token(token)},
                                      {"peer", req.peer_address()}});
    // Rejections are what a flood of forged tokens costs us: their bodies are built once.
    thread_local std::unordered_map<const char*, std::string> bodies;
    auto [it, fresh] = bodies.try_emplace(msg);
    if (fresh) it->second = error_response(status, code, msg).body;
    HttpResponse r;
    r.status = status;
    r.body = it->second;
    respond(std::move(r));
  };

  // Fast lane: the receiver's current token, issued by us with the newest key.
  std::shared_ptr<const Receiver> receiver = ctx_.receivers.find_by_token(token);
  if (!receiver) {
    // Everything else is verified in full: a token signed with an older key is still good when
    // its claims match the receiver's current generation; anything else says why it is not.
    TokenClaims claims;
    switch (ctx_.keyring.verify(token, &claims)) {
      case TokenError::kNone: break;
      case TokenError::kMalformed:
        return reject(RejectReason::kMalformedToken, 401, "invalid_token", "the trigger token is not valid");
      case TokenError::kUnknownKey:
        return reject(RejectReason::kUnknownKey, 401, "invalid_token", "the trigger token is not valid");
      case TokenError::kBadSignature:
        return reject(RejectReason::kBadSignature, 401, "invalid_token", "the trigger token is not valid");
    }
    receiver = ctx_.receivers.find(claims.receiver_id);
    if (!receiver)
      return reject(RejectReason::kUnknownReceiver, 401, "revoked_token",
                    "this trigger URL's receiver no longer exists");
    if (receiver->row.generation != claims.generation || receiver->row.nonce != claims.nonce ||
        receiver->row.driver != claims.driver || receiver->target != claims.target ||
        receiver->action != claims.action)
      return reject(RejectReason::kRevoked, 401, "revoked_token",
                    "this trigger URL was replaced; get the current one from the receiver");
  }
  if (!receiver->row.enabled)
    return reject(RejectReason::kDisabled, 403, "receiver_disabled", "this receiver is disabled");

  Ingest::Trigger t;
  if (auto k = req.header("Idempotency-Key")) {
    if (k->empty() || k->size() > 255)
      return reject(RejectReason::kBadRequest, 400, "bad_idempotency_key",
                    "Idempotency-Key must be 1 to 255 characters");
    t.idempotency_key = std::move(*k);
  }
  Reservation claim;  // what the request took from the receiver's limits
  if (!receiver->simple && !apply_receiver_logic(req, *receiver, t, respond)) return;
  if (!admit(*receiver, t, &claim, respond)) return;

  auto* metrics = &ctx_.metrics;
  int64_t rid = receiver->row.id;
  t.receiver = std::move(receiver);
  Ingest::Done done = [metrics, rid, claim = std::move(claim), respond = std::move(respond)](
                          const Status& s, const Accepted& a) mutable {
    // Limits count committed executions only: a failed commit or a replay gives back its claim.
    if (!s.ok() || a.replayed || a.revoked) claim.release(); else claim.settle();
    HttpResponse r;
    if (s.ok() && a.revoked) {
      metrics->trigger_rejected(RejectReason::kRevoked);
      r = error_response(401, "revoked_token", "this trigger URL was revoked while the request was being recorded");
    } else if (!s.ok()) {
      metrics->trigger_rejected(a.overloaded ? RejectReason::kOverloaded : RejectReason::kStorageFailed);
      r = error_response(503, a.overloaded ? "overloaded" : "unavailable",
                         a.overloaded ? "too many triggers are waiting to be recorded; retry"
                                      : "the execution could not be recorded; retry");
      r.headers.emplace_back("Retry-After", "1");
    } else {
      if (!a.replayed) metrics->trigger_accepted();
      r = accepted_response(a.execution_id, rid, a.replayed);
    }
    metrics->request(Route::kTrigger, r.status);
    respond(std::move(r));
  };
  ctx_.ingest.submit(std::move(t), std::move(done));
}

// The decision is trigger/decide.h's; here it becomes a status code, a body and metrics.
bool App::apply_receiver_logic(const HttpRequest& req, const Receiver& r, Ingest::Trigger& t,
                               Responder& respond) {
  auto answer = [&](HttpResponse&& resp) {
    ctx_.metrics.request(Route::kTrigger, resp.status);
    respond(std::move(resp));
    return false;
  };
  const InboundView inbound(req);
  std::string caller = caller_address(req.peer_address(), req.header("X-Forwarded-For"), ctx_.trusted_proxies);
  TriggerDecision verdict =
      decide(TriggerInput{inbound, caller, now_ms(), std::move(t.idempotency_key)}, r, ctx_.secrets);

  if (auto* accept = std::get_if<Accept>(&verdict)) {
    t.idempotency_key = std::move(accept->idempotency_key);
    t.config = std::move(accept->config);
    t.config_text = std::move(accept->config_text);
    t.action = std::move(accept->action);
    return true;
  }
  if (auto* ignore = std::get_if<Ignore>(&verdict)) {
    ctx_.metrics.trigger_ignored(ignore->why);
    json body = {{"ignored", true}, {"reason", std::move(ignore->reason)}};
    if (ignore->rule_index >= 0) body["rule"] = ignore->rule_index;
    if (!ignore->rule_name.empty()) body["rule_name"] = ignore->rule_name;
    return answer(json_response(r.rules->ignore_status(), body));
  }
  const auto& reject = std::get<Reject>(verdict);
  if (reject.auth != AuthFailure::kNone) {
    ctx_.metrics.trigger_rejected(RejectReason::kUnauthorized);
    ctx_.metrics.auth_failed(static_cast<size_t>(reject.auth));
    bool forbidden = reject.auth == AuthFailure::kSourceNotAllowed;
    return answer(error_response(forbidden ? 403 : 401, forbidden ? "forbidden" : "unauthorized",
                                 auth_message(reject.auth)));
  }
  ctx_.metrics.trigger_rejected(RejectReason::kBadRequest);
  return answer(from_status(reject.status));
}

// Limits, for every receiver: the cooldown per action, the queue cap and the token bucket,
// claimed until the commit (the Done callback gives the claim back if nothing was recorded).
bool App::admit(const Receiver& r, Ingest::Trigger& t, Reservation* claim, Responder& respond) {
  auto answer = [&](HttpResponse&& resp) {
    ctx_.metrics.request(Route::kTrigger, resp.status);
    respond(std::move(resp));
    return false;
  };
  const std::string& action = t.action.empty() ? r.action : t.action;
  int64_t wait = 0;
  auto verdict = r.limiter->reserve(r.limits, action, t.idempotency_key, now_ms(), claim, &wait);
  if (verdict == LimiterState::Verdict::kOk) return true;
  // A sender retrying a delivery we accepted (its answer was lost) must hear about that
  // execution, not a refusal: only here, off the hot path, is its key looked up.
  if (!t.idempotency_key.empty() && verdict != LimiterState::Verdict::kInFlight) {
    auto earlier = ctx_.store.find_execution_by_key(r.row.id, t.idempotency_key);
    if (!earlier.ok()) verdict = LimiterState::Verdict::kInFlight;  // cannot tell: ask to retry
    else if (*earlier) return answer(accepted_response(**earlier, r.row.id, true));
  }
  switch (verdict) {
    case LimiterState::Verdict::kOk: return true;
    case LimiterState::Verdict::kInFlight: {
      auto resp = error_response(503, "unavailable", "an earlier delivery of this message is still being recorded; retry");
      resp.headers.emplace_back("Retry-After", "1");
      return answer(std::move(resp));
    }
    case LimiterState::Verdict::kRateLimited: {
      ctx_.metrics.trigger_rejected(RejectReason::kRateLimited);
      auto resp = error_response(429, "rate_limited", "this receiver is being triggered too often; retry later");
      resp.headers.emplace_back("Retry-After", std::to_string(wait));
      return answer(std::move(resp));
    }
    case LimiterState::Verdict::kQueueFull: {
      ctx_.metrics.trigger_rejected(RejectReason::kQueueFull);
      auto resp = error_response(429, "queue_full",
                                 "this receiver has too many executions waiting to run; retry later");
      resp.headers.emplace_back("Retry-After", std::to_string(wait));
      return answer(std::move(resp));
    }
    case LimiterState::Verdict::kCoolingDown: break;
  }
  ctx_.metrics.trigger_ignored(IgnoreReason::kCooldown);
  json body = {{"ignored", true},
               {"reason", "cooling down: \"" + action + "\" ran less than " +
                              std::to_string(r.limits.cooldown_ms / 1000) + " s ago"}};
  return answer(json_response(r.rules->ignore_status(), body));
}

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
HttpResponse App::commit_receiver(int status, const std::function<Result<ReceiverRow>()>& write,
                                  std::optional<bool> url_revoked) {
  std::shared_ptr<const Receiver> published;
  {
    std::lock_guard lock(receiver_writes_);
    auto row = write();
    if (!row.ok()) return from_status(row.status());
    auto r = make_receiver(*row, ctx_.drivers, ctx_.secrets, /*check_peer=*/false, ctx_.default_limits);
    if (!r.ok()) {
      // Committed but unusable (e.g. its sealed secrets do not open): no older version may go on
      // answering for it.
      ctx_.receivers.erase(row->id, /*deleted=*/false);
      return from_status(r.status());
    }
    if (auto old = ctx_.receivers.find(row->id))  // cooldowns and rate limits outlive an edit
      std::const_pointer_cast<Receiver>(*r)->limiter = old->limiter;
    else
      seed_limiter(**r, /*existing=*/row->version > 1);
    ctx_.receivers.put(*r);
    published = *r;
  }
  auto body = receiver_json(*published);
  if (!body.ok()) return from_status(body.status());
  if (url_revoked) body.value()["url_revoked"] = *url_revoked;
  return json_response(status, *body);
}

void App::seed_limiter(const Receiver& r, bool existing) {
  if (existing) {  // e.g. a receiver that could not be loaded before: its backlog still counts
    auto queued = ctx_.store.unfinished_count(r.row.id);
    if (queued.ok()) r.limiter->queued()->store(*queued, std::memory_order_relaxed);
  }
  auto recent = ctx_.store.recent_executions(r.row.id, now_ms() - r.limits.memory_ms());
  if (recent.ok())
    r.limiter->seed(r.limits, *recent);
  else
    log::error("could not read recent executions for limits",
               {{"receiver_id", r.row.id}, {"error", recent.status().message()}});
}

// The receiver as committed: the cached one when it is that version, else built for the view.
Result<std::shared_ptr<const Receiver>> App::view_of(const ReceiverRow& row) {
  auto cached = ctx_.receivers.find(row.id);
  if (cached && cached->row.version == row.version) return cached;
  return make_receiver(row, ctx_.drivers, ctx_.secrets, /*check_peer=*/false, ctx_.default_limits);
}

HttpResponse App::receivers_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  if (seg.size() == 1) {
    if (req.method() == "POST") return create_receiver(req);
    if (req.method() != "GET") return method_not_allowed("GET, POST");
    auto limit = query_int(req, "limit", 50, 1, 500);
    auto offset = query_int(req, "offset", 0, 0, INT64_MAX);
    if (!limit || !offset)
      return error_response(400, "bad_query", "limit must be 1..500 and offset 0 or more");
    int64_t total = 0;
    auto rows = ctx_.store.list_receivers(int(*limit), *offset, &total);
    if (!rows.ok()) return from_status(rows.status());
    json items = json::array();
    for (const auto& row : *rows) {
      // A receiver that cannot be loaded is still listed, with why, so `total` and the page agree.
      auto r = view_of(row);
      if (!r.ok()) {
        items.push_back({{"id", row.id}, {"name", row.name}, {"driver", row.driver},
                         {"enabled", row.enabled}, {"error", r.status().message()}});
        continue;
      }
      auto view = receiver_json(**r);
      if (!view.ok()) return from_status(view.status());
      items.push_back(std::move(view).value());
    }
    return json_response(200, {{"items", items}, {"total", total}, {"limit", *limit}, {"offset", *offset}});
  }
  auto id = parse_id(seg[1]);
  if (!id) return error_response(404, "not_found", "no such receiver");
  if (seg.size() == 2) {
    if (req.method() == "GET") {
      auto row = ctx_.store.get_receiver(*id);
      if (!row.ok()) return from_status(row.status());
      auto r = view_of(*row);
      if (!r.ok()) return from_status(r.status());
      auto view = receiver_json(**r);
      if (!view.ok()) return from_status(view.status());
      return json_response(200, *view);
    }
    if (req.method() == "PUT") return update_receiver(req, *id);
    if (req.method() == "DELETE") {
      std::lock_guard lock(receiver_writes_);
      Status s = ctx_.store.delete_receiver(*id);
      if (!s.ok()) return from_status(s);
      ctx_.receivers.erase(*id, /*deleted=*/true);
      HttpResponse r;
      r.status = 204;
      return r;
    }
    return method_not_allowed("GET, PUT, DELETE");
  }
  if (seg.size() != 3) return error_response(404, "not_found", "no such API path");
  std::string_view verb = seg[2];
  if (verb != "enable" && verb != "disable" && verb != "rotate" && verb != "test")
    return error_response(404, "not_found", "no such API path");
  if (req.method() != "POST") return method_not_allowed("POST");
  Store& store = ctx_.store;
  int64_t rid = *id;
  if (verb == "enable") return commit_receiver(200, [&] { return store.set_enabled(rid, true); });
  if (verb == "disable")
    return commit_receiver(200, [&] { return store.set_enabled(rid, false); }, true);
  if (verb == "rotate") return commit_receiver(200, [&] { return store.bump_generation(rid); }, true);
  // test: a dry run, the driver's plan without apply.
  auto receiver = ctx_.receivers.find(*id);
  if (!receiver) return error_response(404, "not_found", "no such receiver");
  Plan plan = receiver->driver->plan(*receiver->config);
  if (!plan.ok())
    return json_response(200, {{"dry_run", true},
                               {"ok", false},
                               {"retryable", plan.failure.kind == Outcome::Kind::kRetryable},
                               {"error", plan.failure.reason}});
  return json_response(200, {{"dry_run", true}, {"ok", true}, {"plan", plan.desired},
                             {"description", receiver->description}});
}

HttpResponse App::create_receiver(const HttpRequest& req) {
  json body;
  if (auto bad = parse_body(req, &body)) return *bad;
  if (Status s = check_receiver_body(body, true); !s.ok()) return from_status(s);
  ReceiverRow row;
  row.name = body["name"];
  row.driver = body["driver"];
  row.config = body["config"];
  row.rules = body.value("rules", json(nullptr));
  row.auth = body.value("auth", json(nullptr));
  row.limits = body.value("limits", json(nullptr));
  row.enabled = body.value("enabled", true);
  row.nonce = crypto::base64url_encode(crypto::random_bytes(16));
  auto checked = check_receiver(row, std::nullopt);
  if (!checked.ok()) return from_status(checked.status());
  const ReceiverRow stored = (*checked)->stored_row();
  return commit_receiver(201, [&] { return ctx_.store.insert_receiver(stored); });
}

Result<std::shared_ptr<const Receiver>> App::check_receiver(ReceiverRow row,
                                                           const std::optional<ReceiverRow>& previous) {
  const Driver* driver = ctx_.drivers.find(row.driver);
  if (driver) {
    auto secrets = secret_fields(*driver);
    row.config = seal_config(row.config, secrets, ctx_.secrets, previous ? previous->config : json(nullptr));
    // A rule's "set" may change only what the driver declares per request: never the target or
    // the action the URL grants, nor a secret (rules are stored and shown as written).
    auto allowed = request_fields(*driver);
    if (row.rules.is_object() && row.rules.contains("rules") && row.rules["rules"].is_array()) {
      const auto& rules = row.rules["rules"];
      for (size_t i = 0; i < rules.size(); ++i) {
        if (!rules[i].is_object() || !rules[i].contains("set") || !rules[i]["set"].is_object()) continue;
        for (const auto& [k, v] : rules[i]["set"].items()) {
          if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
          std::string field = "rules.rules[" + std::to_string(i) + "].set." + k;
          std::string why = std::find(secrets.begin(), secrets.end(), k) != secrets.end()
                                ? "is a secret: set it in config, where it is stored sealed"
                                : "cannot be set per request: the trigger URL grants config." + k +
                                      " as saved";
          why += " (" + row.driver + " lets rules set:";
          for (const auto& a : allowed) why += " " + a;
          why += allowed.empty() ? " nothing)" : ")";
          return Status::Invalid(field + " " + why, {{field, why}});
        }
      }
    }
  }
  auto auth = InboundAuth::prepare_for_storage(row.auth, previous ? previous->auth : json(nullptr), ctx_.secrets);
  if (!auth.ok()) return auth.status();
  row.auth = std::move(auth).value();
  // Validated against the driver and its live peer before anything is stored.
  return make_receiver(std::move(row), ctx_.drivers, ctx_.secrets, /*check_peer=*/true, ctx_.default_limits);
}

HttpResponse App::update_receiver(const HttpRequest& req, int64_t id) {
  json body;
  if (auto bad = parse_body(req, &body)) return *bad;
  if (Status s = check_receiver_body(body, false); !s.ok()) return from_status(s);
  auto dry = req.query("dry_run");
  if (dry && *dry != "true" && *dry != "false")
    return error_response(400, "bad_query", "dry_run must be true or false");
  bool dry_run = dry && *dry == "true";
  auto current = ctx_.store.get_receiver(id);
  if (!current.ok()) return from_status(current.status());
  if (body.contains("driver") && body["driver"] != current->driver)
    return from_status(Status::Invalid("driver cannot change; create a new receiver",
                                       {{"driver", "cannot change; create a new receiver"}}));
  ReceiverRow row = *current;
  row.name = body["name"];
  row.config = body["config"];
  // PUT replaces: rules, auth and limits left out are removed.
  row.rules = body.value("rules", json(nullptr));
  row.auth = body.value("auth", json(nullptr));
  row.limits = body.value("limits", json(nullptr));
  row.enabled = body.value("enabled", current->enabled);
  auto checked = check_receiver(row, *current);
  if (!checked.ok()) return from_status(checked.status());
  // The URL is revoked only when what it grants changes (or the receiver is disabled): edits of
  // bounds, rules, limits or the name keep it, so an alerting config keeps working.
  auto before = view_of(*current);
  bool revoke = !before.ok() || (*before)->target != (*checked)->target ||
                (*before)->action != (*checked)->action || (current->enabled && !row.enabled);
  if (dry_run)
    return json_response(200, {{"dry_run", true}, {"valid", true}, {"url_revoked", revoke},
                               {"description", (*checked)->description}});
  const ReceiverRow stored = (*checked)->stored_row();
  int64_t version = current->version;
  return commit_receiver(
      200, [&] { return ctx_.store.update_receiver(id, stored, version, revoke); }, revoke);
}

HttpResponse App::executions_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
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
      return error_response(400, "bad_query", "status must be queued, running, succeeded or failed");
  }
  json items = json::array();
  auto rows = ctx_.store.list_executions(f);
  if (!rows.ok()) return from_status(rows.status());
  for (const auto& e : *rows) items.push_back(execution_json(e));
  json next = rows->size() == size_t(f.limit) ? json(rows->back().id) : json(nullptr);
  return json_response(200, {{"items", items}, {"next_before", next}});
}

HttpResponse App::tokens_api(const HttpRequest& req, const std::vector<std::string_view>& seg) {
  if (seg.size() == 1 && req.method() == "GET") {
    json items = json::array();
    auto tokens = ctx_.store.list_admin_tokens();
    if (!tokens.ok()) return from_status(tokens.status());
    for (const auto& t : *tokens)
      items.push_back({{"id", t.id}, {"name", t.name}, {"created_at", log::format_time(t.created_at)}});
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
    return json_response(200, {{"paused", ctx_.executor.paused()}, {"queue_depth", ctx_.executor.depth()}, {"in_memory", ctx_.executor.held()}});
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
  if (pause) ctx_.executor.pause(); else ctx_.executor.resume();
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
