#include "decide.h"

#include <algorithm>

#include "log.h"
#include "registry_push.h"
#include "rules.h"

namespace tripline {

using nlohmann::json;

const char* auth_message(AuthFailure f) {
  switch (f) {
    case AuthFailure::kSourceNotAllowed:
      return "this receiver does not accept requests from your address";
    case AuthFailure::kMissingCredential:
      return "this receiver requires a signature or credential the request does not carry";
    case AuthFailure::kStaleTimestamp:
      return "the signed timestamp is outside the accepted window";
    default:
      return "the request's signature or credential is not valid";
  }
}

TriggerDecision decide(const TriggerInput& in, const Receiver& r, const SecretBox& secrets) {
  auto invalid = [](Status s) { return Reject{AuthFailure::kNone, std::move(s)}; };
  Accept accept;
  accept.idempotency_key = in.idempotency_key;
  if (r.simple) return accept;  // token only: nothing in the request changes anything

  // 1. Inbound authentication, beyond the token. A signed message's key (from signed content
  //    only) replaces any unsigned Idempotency-Key: a replay finds the first execution.
  std::string message_key;
  if (!in.replay) {
    if (AuthFailure f = r.auth->check(in.request, in.caller, in.now_ms / 1000, &message_key);
        f != AuthFailure::kNone)
      return Reject{f, Status::Ok()};
  }
  if (!message_key.empty()) accept.idempotency_key = std::move(message_key);

  // 2. Rules decide whether and how the action runs. The body is parsed at most once, when the
  //    rules or the driver's bind() first read it, and the parse is shared (json_limits.h).
  TriggerRequest request{in.caller, in.request.body()};
  static const json kNoBody(json::value_t::discarded);
  const json& body = r.rules->needs_body() ? request.body.parsed().value : kNoBody;
  Decision d = r.rules->evaluate(RuleInput{in.request, body, in.caller, in.trace});
  if (!d.error.ok()) return invalid(d.error);
  if (!d.run) {
    Ignore ignore{IgnoreReason::kRule,
                  d.rule_index < 0 ? "no rule matched, and the rules' default ignores the request"
                  : d.rule_name.empty()
                      ? "rules[" + std::to_string(d.rule_index) + "] ignored the request"
                      : "rule \"" + d.rule_name + "\" ignored the request",
                  d.rule_index,
                  d.rule_name,
                  {}};
    if (in.explain)
      ignore.compared = r.rules->explain(RuleInput{in.request, body, in.caller, nullptr, in.redact},
                                         d.rule_index);
    return ignore;
  }
  if (d.rule_index >= 0) accept.rule = {{"index", d.rule_index}, {"name", d.rule_name}};
  // The config is materialized only for a request that changes it (most change nothing).
  json config;
  auto plain = [&]() -> json& {
    if (config.is_null()) config = r.plain_config();
    return config;
  };
  bool changed = false, inverted = false;
  if (d.set.is_object()) {
    for (const auto& [k, v] : d.set.items()) {
      // Checked when the receiver was saved; checked again here because this is the promise.
      if (std::find(r.request_fields->begin(), r.request_fields->end(), k) ==
          r.request_fields->end())
        return invalid(Status::Invalid("config." + k + " cannot be set per request",
                                       {{"config." + k, "cannot be set per request"}}));
      if (v.is_object() || v.is_array())  // a value, never a value source or a structure
        return invalid(Status::Invalid("config." + k + " from the request must be a single value",
                                       {{"config." + k, "must be a single value"}}));
      plain()[k] = v;
      changed = true;
    }
  }

  // 3. Alertmanager: firing runs, resolved runs the inverse or nothing; re-sends dedupe.
  if (r.rules->alertmanager()) {
    if (!is_alertmanager_payload(body))
      return invalid(
          Status::Invalid("the body is not an Alertmanager webhook payload (version 4)"));
    if (body["status"] == "resolved") {
      if (r.rules->on_resolved() == "ignore")
        return Ignore{IgnoreReason::kResolved, "the alert resolved", -1, {}, {}};
      if (r.rules->on_resolved() == "inverse") {
        auto inverse = r.driver->inverse(plain());
        if (!inverse.ok()) return invalid(inverse.status());
        config = std::move(inverse).value();
        changed = inverted = true;
      }
    }
    if (accept.idempotency_key.empty() && !in.replay)
      accept.idempotency_key = alertmanager_key(body);
  }

  // 3b. Registry push notifications (docs/redeploy.md): only a push of a tag runs; pulls, blob
  //     uploads and deletes are ignored, not refused (a registry re-sends what it was refused).
  //     A re-sent delivery is recognised by its event ids, where the payload has any.
  if (r.rules->registry_push()) {
    auto push = read_push_notification(body);
    if (!push)
      return invalid(Status::Invalid(
          "the body is not a registry push notification (distribution, Docker Hub, GitHub "
          "Packages, Harbor or Quay)"));
    if (push->pushes.empty())
      return Ignore{IgnoreReason::kNoPush,
                    "the " + push->source + " notification holds no push of a tag",
                    -1,
                    {},
                    {}};
    if (accept.idempotency_key.empty() && !in.replay) accept.idempotency_key = push->key;
  }

  // 4. Values taken from the request (e.g. the caller's address for a DNS record). A driver
  //    answering NotFound found nothing in the request for its action: ignored, not refused.
  if (r.binds_request) {
    auto bound = r.driver->bind(plain(), request);
    if (!bound.ok() && bound.status().code() == Status::Code::kNotFound)
      return Ignore{IgnoreReason::kUnmatched, bound.status().message(), -1, {}, {}};
    if (!bound.ok()) return invalid(bound.status());
    config = std::move(bound).value();
    changed = true;
  }
  if (changed) {
    auto typed = r.driver->validate(config, /*check_peer=*/false);
    if (!typed.ok()) return invalid(typed.status());
    // The URL grants its signed target, and its action (or, for a receiver configured to undo
    // on resolve, the inverse): nothing a request carries may change them.
    std::string action = r.driver->action(**typed);
    if (r.driver->target(**typed) != r.target || (action != r.action && !inverted)) {
      log::error("a request-bound config changed the receiver's target or action; refused",
                 {{"receiver_id", r.row.id}, {"driver", r.row.driver}});
      return invalid(Status::Invalid("this request would change what the trigger URL grants"));
    }
    accept.config = *typed;
    accept.config_text = seal_config(config, *r.secret_fields, secrets, r.stored_config()).dump();
    if (action != r.action) accept.action = std::move(action);
  }
  return accept;
}

}  // namespace tripline
