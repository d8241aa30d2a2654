#include "app.h"

#include <cctype>
#include <charconv>
#include <chrono>
#include <unordered_map>

#include "crypto.h"
#include "decide.h"
#include "log.h"
#include "responses.h"

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
  std::optional<std::string> header(std::string_view name) const override {
    return r_.header(name);
  }
  std::optional<std::string> query(std::string_view name) const override { return r_.query(name); }
  std::vector<std::pair<std::string, std::string>> headers() const override { return r_.headers(); }
  void visit_headers(HeaderFn fn, void* ctx) const override { r_.visit_headers(fn, ctx); }

 private:
  const HttpRequest& r_;
};

// The credential of `Authorization: Bearer <credential>` (the scheme in any case, RFC 9110
// §11.1), or empty: another scheme, or no header.
std::string bearer_credential(const std::optional<std::string>& authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (!authorization || authorization->size() <= kScheme.size()) return {};
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>((*authorization)[i])) != kScheme[i]) return {};
  size_t start = authorization->find_first_not_of(' ', kScheme.size());
  return start == std::string::npos ? std::string() : authorization->substr(start);
}

// The answer to a trigger over one of its receiver's limits: the replica's own count's
// (App::admit), or every replica's together, when a shared store refused it at the commit.
// `cooling_down` is the reason a cooldown gives.
HttpResponse over_limit(Metrics& metrics, const Receiver& r, LimitRefusal why, int64_t wait,
                        const std::string& cooling_down) {
  switch (why) {
    case LimitRefusal::kRateLimited: {
      metrics.trigger_rejected(RejectReason::kRateLimited);
      auto resp = error_response(429, "rate_limited",
                                 "this receiver is being triggered too often; retry later");
      resp.headers.emplace_back("Retry-After", std::to_string(wait));
      return resp;
    }
    case LimitRefusal::kQueueFull: {
      metrics.trigger_rejected(RejectReason::kQueueFull);
      auto resp = error_response(
          429, "queue_full", "this receiver has too many executions waiting to run; retry later");
      resp.headers.emplace_back("Retry-After", std::to_string(wait));
      return resp;
    }
    case LimitRefusal::kCoolingDown:
    case LimitRefusal::kNone:
      break;
  }
  metrics.trigger_ignored(IgnoreReason::kCooldown);
  return json_response(r.rules->ignore_status(), {{"ignored", true}, {"reason", cooling_down}});
}

std::string cooldown_reason(const Receiver& r, const std::string& action) {
  return "cooling down: \"" + action + "\" ran less than " +
         std::to_string(r.limits.cooldown_ms / 1000) + " s ago";
}

}  // namespace

std::string App::trigger_url(const Receiver& r) const {
  return ctx_.public_url + "/_webhooks/" + ctx_.keyring.sign(r.claims());
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
        // The token out of the URL (and so out of access logs): X-Tripline-Token, or
        // `Authorization: Bearer`, the one header senders such as Alertmanager can set
        // (docs/security.md). The Bearer form then is the trigger's credential: a receiver that
        // also wants its own auth.bearer_token cannot get both in one header and refuses.
        std::string header = req.header("X-Tripline-Token").value_or("");
        if (header.empty()) header = bearer_credential(req.header("Authorization"));
        return trigger(req, header, respond);
      }
      return trigger(req, token, respond);
    } catch (const std::exception& e) {
      log::error("unhandled exception on the trigger path", {{"error", e.what()}});
      ctx_.metrics.request(Route::kTrigger, 500);
      if (respond)
        respond(error_response(500, "internal", "an internal error occurred; see the server log"));
      return;
    }
  }

  auto segments = split_path(path);
  Route route = Route::kOther;
  if (!segments.empty()) {
    if (segments[0] == "_webhooks")
      route = Route::kTrigger;
    else if (segments[0] == "api")
      route = Route::kApi;
    else if (segments[0] == "healthz" || segments[0] == "readyz")
      route = Route::kHealth;
    else if (segments[0] == "metrics")
      route = Route::kMetrics;
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
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
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
      case TokenError::kNone:
        break;
      case TokenError::kMalformed:
        return reject(RejectReason::kMalformedToken, 401, "invalid_token",
                      "the trigger token is not valid");
      case TokenError::kUnknownKey:
        return reject(RejectReason::kUnknownKey, 401, "invalid_token",
                      "the trigger token is not valid");
      case TokenError::kBadSignature:
        return reject(RejectReason::kBadSignature, 401, "invalid_token",
                      "the trigger token is not valid");
    }
    receiver = ctx_.receivers.find(claims.receiver_id);
    if (!receiver)
      return reject(RejectReason::kUnknownReceiver, 401, "revoked_token",
                    "this trigger URL's receiver no longer exists");
    if (receiver->row.generation != claims.generation || receiver->row.nonce != claims.nonce ||
        receiver->row.driver != claims.driver || receiver->target != claims.target ||
        receiver->action != claims.action) {
      // Signed by us for this receiver, once: an old URL still in a sender's config is a
      // common answer to "why didn't it fire?", so it is logged (bounded by the cap).
      if (ctx_.request_log && ctx_.request_log->enabled()) {
        const InboundView inbound(req);
        auto entry = ctx_.request_log->admit(capture_request(
            inbound,
            caller_address(req.peer_address(), req.header("X-Forwarded-For"), ctx_.trusted_proxies),
            receiver->row.id, ctx_.store.clock().now_ms(), token));
        log_request(entry, "refused", 401, "revoked_token",
                    {{"check", "revoked"},
                     {"message",
                      "the trigger URL was replaced (rotated, disabled, or given "
                      "another target or action)"}});
      }
      return reject(RejectReason::kRevoked, 401, "revoked_token",
                    "this trigger URL was replaced; get the current one from the receiver");
    }
  }
  Ingest::Trigger t;
  // The request log (docs/requests-log.md): from here on the token named a real receiver.
  if (ctx_.request_log && ctx_.request_log->enabled()) {
    const InboundView inbound(req);
    // Over the log's byte budget (or this receiver's share of it) the entry is dropped and
    // counted; the trigger goes on without it (engine/request_log.h).
    t.request = ctx_.request_log->admit(capture_request(
        inbound,
        caller_address(req.peer_address(), req.header("X-Forwarded-For"), ctx_.trusted_proxies),
        receiver->row.id, ctx_.store.clock().now_ms(), token));
  }
  if (!receiver->row.enabled) {
    log_request(t.request, "refused", 403, "receiver_disabled",
                {{"check", "disabled"}, {"message", "this receiver is disabled"}});
    return reject(RejectReason::kDisabled, 403, "receiver_disabled", "this receiver is disabled");
  }

  if (auto k = req.header("Idempotency-Key")) {
    if (k->empty() || k->size() > 255) {
      log_request(t.request, "malformed", 400, "bad_idempotency_key",
                  {{"message", "Idempotency-Key must be 1 to 255 characters"}});
      return reject(RejectReason::kBadRequest, 400, "bad_idempotency_key",
                    "Idempotency-Key must be 1 to 255 characters");
    }
    t.idempotency_key = std::move(*k);
  }
  Reservation claim;  // what the request took from the receiver's limits
  if (!receiver->simple && !apply_receiver_logic(req, token, *receiver, t, respond)) return;
  if (!admit(*receiver, t, &claim, respond)) return;

  auto* metrics = &ctx_.metrics;
  int64_t rid = receiver->row.id;
  if (t.request) {
    t.request->outcome = "accepted";
    t.request->status = 202;
    if (!t.rule.is_null()) t.request->detail["rule"] = t.rule;
  }
  // Held by the trigger until `done` has run (ingest.h).
  const Receiver* held = receiver.get();
  t.receiver = std::move(receiver);
  Ingest::Done done = [metrics, rid, held, claim = std::move(claim), respond = std::move(respond)](
                          const Status& s, const Accepted& a) mutable {
    // Limits count committed executions only: a failed commit or a replay gives back its claim.
    // A refusal by every replica's count keeps what it took of the rate and the cooldown (this
    // replica's count then refuses the flood itself), and gives back its queue slot.
    if (s.ok() && a.limited != LimitRefusal::kNone)
      claim.keep_limits();
    else if (!s.ok() || !a.recorded())
      claim.release();
    else
      claim.settle();
    HttpResponse r;
    if (s.ok() && a.limited != LimitRefusal::kNone) {
      r = over_limit(*metrics, *held, a.limited, a.limit_wait,
                     "cooling down: this action ran less than " +
                         std::to_string(held->limits.cooldown_ms / 1000) +
                         " s ago (all replicas together)");
    } else if (s.ok() && a.revoked) {
      metrics->trigger_rejected(RejectReason::kRevoked);
      r = error_response(401, "revoked_token",
                         "this trigger URL was revoked while the request was being recorded");
    } else if (!s.ok()) {
      metrics->trigger_rejected(a.overloaded ? RejectReason::kOverloaded
                                             : RejectReason::kStorageFailed);
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
bool App::apply_receiver_logic(const HttpRequest& req, std::string_view token, const Receiver& r,
                               Ingest::Trigger& t, Responder& respond) {
  auto answer = [&](HttpResponse&& resp) {
    ctx_.metrics.request(Route::kTrigger, resp.status);
    respond(std::move(resp));
    return false;
  };
  const InboundView inbound(req);
  std::string caller = t.request ? t.request->source  // worked out once, for the log
                                 : caller_address(req.peer_address(), req.header("X-Forwarded-For"),
                                                  ctx_.trusted_proxies);
  TriggerInput input{inbound, caller, ctx_.store.clock().now_ms(), std::move(t.idempotency_key)};
  input.explain = t.request != nullptr;
  input.redact = token;
  TriggerDecision verdict = decide(input, r, ctx_.secrets);

  if (auto* accept = std::get_if<Accept>(&verdict)) {
    t.idempotency_key = std::move(accept->idempotency_key);
    t.config = std::move(accept->config);
    t.config_text = std::move(accept->config_text);
    t.action = std::move(accept->action);
    t.rule = std::move(accept->rule);
    return true;
  }
  if (auto* ignore = std::get_if<Ignore>(&verdict)) {
    ctx_.metrics.trigger_ignored(ignore->why);
    json body = {{"ignored", true}, {"reason", ignore->reason}};
    if (ignore->rule_index >= 0) body["rule"] = ignore->rule_index;
    if (!ignore->rule_name.empty()) body["rule_name"] = ignore->rule_name;
    if (t.request) {
      json detail = {{"reason", to_string(ignore->why)}, {"message", std::move(ignore->reason)}};
      if (ignore->rule_index >= 0)
        detail["rule"] = {{"index", ignore->rule_index}, {"name", ignore->rule_name}};
      if (!ignore->compared.is_null()) detail["compared"] = std::move(ignore->compared);
      log_request(t.request, "ignored", r.rules->ignore_status(), "", std::move(detail), token);
    }
    return answer(json_response(r.rules->ignore_status(), body));
  }
  const auto& reject = std::get<Reject>(verdict);
  if (reject.auth != AuthFailure::kNone) {
    ctx_.metrics.trigger_rejected(RejectReason::kUnauthorized);
    ctx_.metrics.auth_failed(static_cast<size_t>(reject.auth));
    bool forbidden = reject.auth == AuthFailure::kSourceNotAllowed;
    if (t.request) {
      const char* check = reject.auth == AuthFailure::kSourceNotAllowed ? "source"
                          : reject.auth == AuthFailure::kBadSignature   ? "signature"
                          : reject.auth == AuthFailure::kStaleTimestamp ? "replay"
                                                                        : "credential";
      log_request(t.request, "refused", forbidden ? 403 : 401,
                  forbidden ? "forbidden" : "unauthorized",
                  {{"check", check},
                   {"failure", to_string(reject.auth)},
                   {"message", auth_message(reject.auth)}});
    }
    return answer(error_response(forbidden ? 403 : 401, forbidden ? "forbidden" : "unauthorized",
                                 auth_message(reject.auth)));
  }
  ctx_.metrics.trigger_rejected(RejectReason::kBadRequest);
  HttpResponse resp = from_status(reject.status);
  if (t.request) {
    json detail = {{"message", reject.status.message()}};
    if (!reject.status.fields().empty()) {
      json fields = json::array();
      for (const auto& f : reject.status.fields())
        fields.push_back({{"field", f.field}, {"message", f.message}});
      detail["fields"] = std::move(fields);
    }
    json answered = json::parse(resp.body, nullptr, false);
    log_request(t.request, "malformed", resp.status,
                answered.is_object() ? answered.value("error", "") : "", std::move(detail), token);
  }
  return answer(std::move(resp));
}

void App::log_request(RequestLogEntry& entry, const char* outcome, int status,
                      std::string_view error, json detail, std::string_view token) {
  if (!entry || !ctx_.request_log) return;
  if (redact_token(detail, token)) entry->token_redacted = true;
  entry->outcome = outcome;
  entry->status = status;
  entry->error = std::string(error);
  entry->detail = fit_detail(std::move(detail), kRequestLogDetailBytes);
  ctx_.request_log->record(std::move(entry));
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
  auto verdict = r.limiter->reserve(r.limits, action, t.idempotency_key,
                                    ctx_.store.clock().now_ms(), claim, &wait);
  if (verdict == LimiterState::Verdict::kOk) return true;
  // A sender retrying a delivery we accepted (its answer was lost) must hear about that
  // execution, not a refusal: only here, off the hot path, is its key looked up.
  if (!t.idempotency_key.empty() && verdict != LimiterState::Verdict::kInFlight) {
    auto earlier = ctx_.store.find_execution_by_key(r.row.id, t.idempotency_key);
    if (!earlier.ok()) {
      verdict = LimiterState::Verdict::kInFlight;  // cannot tell: ask to retry
    } else if (*earlier) {
      if (t.request) {
        t.request->execution_id = **earlier;
        log_request(t.request, "accepted", 202, "",
                    {{"duplicate", true},
                     {"message", "an earlier delivery of this message made the execution"}});
      }
      return answer(accepted_response(**earlier, r.row.id, true));
    }
  }
  switch (verdict) {
    case LimiterState::Verdict::kOk:
      return true;
    case LimiterState::Verdict::kInFlight: {
      auto resp = error_response(
          503, "unavailable", "an earlier delivery of this message is still being recorded; retry");
      resp.headers.emplace_back("Retry-After", "1");
      log_request(t.request, "unavailable", 503, "unavailable",
                  {{"message", "an earlier delivery of this message was still being recorded"}});
      return answer(std::move(resp));
    }
    case LimiterState::Verdict::kRateLimited:
      log_request(t.request, "rate_limited", 429, "rate_limited",
                  {{"message", "the receiver's rate limit was reached"},
                   {"rate_per_minute", r.limits.rate_per_s * 60},
                   {"burst", r.limits.burst},
                   {"retry_after_s", wait}});
      return answer(over_limit(ctx_.metrics, r, LimitRefusal::kRateLimited, wait, ""));
    case LimiterState::Verdict::kQueueFull:
      log_request(t.request, "queue_full", 429, "queue_full",
                  {{"message", "the receiver's executions waiting to run reached its max_queued"},
                   {"max_queued", r.limits.max_queued}});
      return answer(over_limit(ctx_.metrics, r, LimitRefusal::kQueueFull, wait, ""));
    case LimiterState::Verdict::kCoolingDown:
      break;
  }
  std::string reason = cooldown_reason(r, action);
  log_request(
      t.request, "cooling_down", r.rules->ignore_status(), "",
      {{"message", reason}, {"action", action}, {"cooldown_s", r.limits.cooldown_ms / 1000}});
  return answer(over_limit(ctx_.metrics, r, LimitRefusal::kCoolingDown, wait, reason));
}

}  // namespace tripline
