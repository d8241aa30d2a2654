// /api/v1/receivers/{id}/notifications and /api/v1/receivers/{id}/deliveries: a receiver's
// notification subscriptions, their deliveries with every attempt, and re-sending by hand
// (docs/api.md, docs/webhooks.md).
#include <algorithm>

#include "app.h"
#include "http_client.h"
#include "log.h"
#include "responses.h"
#include "webhook_signing.h"

namespace tripline {

using nlohmann::json;

namespace {

json time_or_null(std::optional<int64_t> ms) {
  return ms ? json(log::format_time(*ms)) : json(nullptr);
}

constexpr size_t kMaxSubscriptionsPerReceiver = 10;
const std::vector<std::string> kSubscriptionSecrets = {"secret", "previous_secret"};

json subscription_json(const SubscriptionRow& s) {
  json secrets = redact_config(s.secrets, kSubscriptionSecrets);
  json out = {{"id", s.id},
              {"receiver_id", s.receiver_id},
              {"url", s.url},
              {"scheme", s.scheme},
              {"events", s.events},
              {"enabled", s.enabled},
              {"dropped", s.dropped},
              {"created_at", log::format_time(s.created_at)},
              {"updated_at", log::format_time(s.updated_at)}};
  for (const auto& f : kSubscriptionSecrets)
    if (secrets.contains(f)) out[f] = secrets[f];
  out["disabled_reason"] = s.disabled_reason.empty() ? json() : json(s.disabled_reason);
  return out;
}

// A subscription as GET answers it: a read-only token (a dashboard's) does not see credentials
// in its URL (https://user:password@host/), which may grant the subscriber's endpoint; operators
// and admins see the URL as saved, to check and edit it (docs/api.md "Notifications").
json subscription_view(const SubscriptionRow& s, Role role) {
  return view_for(role, subscription_json(s));  // its URL, and a disabled_reason naming it
}

json attempt_json(const DeliveryAttemptRow& a) {
  return {{"attempt", a.attempt},
          {"started_at", log::format_time(a.started_at)},
          {"latency_ms", a.latency_ms},
          {"status", a.status ? json(*a.status) : json()},
          {"error", a.error.empty() ? json() : json(a.error)},
          {"answer", a.answer}};
}

json delivery_json(const DeliveryRow& d, const std::vector<DeliveryAttemptRow>* attempts,
                   bool with_payload) {
  json out = {{"id", d.id},
              {"subscription_id", d.subscription_id},
              {"receiver_id", d.receiver_id},
              {"execution_id", d.execution_id},
              {"event", d.event},
              {"webhook_id", d.webhook_id},
              {"state", d.state},
              {"attempts", d.attempts},
              {"next_attempt_at", d.state == "pending" && d.next_attempt_at
                                      ? json(log::format_time(*d.next_attempt_at))
                                      : json()},
              {"last_status", d.last_status ? json(*d.last_status) : json()},
              {"last_error", d.last_error.empty() ? json() : json(d.last_error)},
              {"created_at", log::format_time(d.created_at)},
              {"finished_at", time_or_null(d.finished_at)}};
  if (with_payload) out["payload"] = json::parse(d.payload, nullptr, false);
  json list = json::array();
  if (attempts)
    for (const auto& a : *attempts) list.push_back(attempt_json(a));
  out["attempt_log"] = list;
  return out;
}

}  // namespace

json redact_url_credentials(json j) {
  if (j.is_object() || j.is_array()) {
    for (auto& v : j) v = redact_url_credentials(std::move(v));
    return j;
  }
  if (!j.is_string()) return j;
  const auto& text = j.get_ref<const std::string&>();
  // Every URL in the string: a plan's body or an error message may name several, in prose.
  std::string out;
  size_t copied = 0;
  for (size_t scheme = text.find("://"); scheme != std::string::npos;
       scheme = text.find("://", scheme + 3)) {
    size_t start = scheme + 3;
    // The authority ends where the path, query or fragment starts, or where the URL does (prose
    // around it, a quote of a JSON text).
    size_t end = text.find_first_of("/?#\"'<> \t\r\n", start);
    std::string_view authority = std::string_view(text).substr(
        start, end == std::string::npos ? std::string::npos : end - start);
    size_t at = authority.rfind('@');
    if (at == std::string_view::npos) continue;
    // user:password@ keeps the user; a lone user@ may be a token (https://TOKEN@host): both go.
    size_t colon = authority.substr(0, at).find(':');
    size_t from = colon == std::string_view::npos ? start : start + colon + 1;
    out.append(text, copied, from - copied);
    out += kRedacted;
    copied = start + at;
  }
  if (copied == 0) return j;
  out.append(text, copied);
  return out;
}

json view_for(Role role, json view) {
  return role >= Role::kOperator ? view : redact_url_credentials(std::move(view));
}

// A subscription as the audit log shows it (app.h): its secrets redacted, no counters or times.
json subscription_audit_view(const SubscriptionRow& s) {
  json out = redact_url_credentials(subscription_json(s));
  for (const char* k : {"id", "created_at", "updated_at", "dropped"}) out.erase(k);
  return out;
}

// Checks a client's subscription and fills `row` (secrets sealed; "********" or absent keeps
// the `previous` row's).
Status App::subscription_from(const json& body, const SubscriptionRow* previous,
                              SubscriptionRow* row) const {
  std::vector<FieldError> errors;
  if (!body.is_object()) return Status::Invalid("must be an object", {{"", "must be an object"}});
  for (const auto& item : body.items()) {
    const std::string& k = item.key();
    if (k != "url" && k != "secret" && k != "previous_secret" && k != "events" && k != "scheme" &&
        k != "enabled")
      errors.push_back({k, "is not a subscription field"});
  }
  // A PUT replaces only what it names: every field left out keeps the stored row's value (a
  // default there would switch a seed-002 subscription to standard under its raw secret, or
  // re-enable one the subscriber disabled with a 410).
  std::string scheme_text = previous ? previous->scheme : "standard";
  if (body.contains("scheme"))
    scheme_text = body["scheme"].is_string() ? body["scheme"].get<std::string>() : "";
  auto scheme = parse_signature_scheme(scheme_text);
  if (!scheme) errors.push_back({"scheme", "must be standard or seed-002"});
  row->scheme = scheme_text;

  const json* url = body.contains("url") ? &body["url"] : nullptr;
  if (!url && previous) {
    row->url = previous->url;
  } else if (!url || !url->is_string() || url->get<std::string>().size() > 2048) {
    errors.push_back({"url", "is required: an http:// or https:// URL"});
  } else {
    std::string u = url->get<std::string>();
    std::string lower = u.substr(0, 8);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    if (lower.rfind("http://", 0) != 0 && lower.rfind("https://", 0) != 0)
      errors.push_back({"url", "must be an http:// or https:// URL"});
    else if (u.find_first_of(" \r\n\t") != std::string::npos)
      errors.push_back({"url", "must not contain spaces or line breaks"});
    row->url = u;
  }

  const json* events = body.contains("events") ? &body["events"] : nullptr;
  if (!events) {
    row->events = previous ? previous->events
                           : std::vector<std::string>{"running", "succeeded", "failed", "retrying"};
  } else if (!events->is_array() || events->empty() || events->size() > 4) {
    errors.push_back(
        {"events", "must be a non-empty list of running, succeeded, failed, retrying"});
  } else {
    row->events.clear();
    for (const auto& e : *events) {
      bool known = e.is_string() &&
                   std::any_of(std::begin(kNotificationEvents), std::end(kNotificationEvents),
                               [&](const char* k) { return e == k; });
      if (!known) {
        errors.push_back({"events", "must hold only running, succeeded, failed, retrying"});
        break;
      }
      if (std::find(row->events.begin(), row->events.end(), e.get<std::string>()) ==
          row->events.end())
        row->events.push_back(e.get<std::string>());
    }
  }
  // Read only when it is a boolean: value() on another type throws (a 500, not a 422).
  row->enabled = previous ? previous->enabled : true;
  if (body.contains("enabled")) {
    if (body["enabled"].is_boolean())
      row->enabled = body["enabled"].get<bool>();
    else
      errors.push_back({"enabled", "must be true or false"});
  }

  // Secrets: a client's value is plaintext and is checked; "********" or absent keeps the stored.
  json given = json::object();
  for (const auto& f : kSubscriptionSecrets) {
    if (!body.contains(f) || body[f] == kRedacted) continue;
    if (f == "previous_secret" && body[f].is_null()) {
      given[f] = nullptr;  // the rotation is over
      continue;
    }
    if (!body[f].is_string()) {
      errors.push_back({f, "must be a string"});
      continue;
    }
    if (scheme)
      if (auto why = check_signing_secret(*scheme, body[f].get<std::string>()))
        errors.push_back({f, *why});
    given[f] = body[f];
  }
  if (scheme == SignatureScheme::kSeed002 && given.contains("previous_secret") &&
      !given["previous_secret"].is_null())
    errors.push_back({"previous_secret", "is for Standard Webhooks only"});
  json prev = previous ? previous->secrets : json();
  if (!given.contains("secret") && !(prev.is_object() && prev.contains("secret")))
    errors.push_back({"secret", "is required (whsec_ + base64 for standard)"});
  // A kept secret must fit the (possibly new) scheme: a seed-002 raw secret cannot sign under
  // Standard Webhooks, and notifications would go out unsigned.
  if (scheme && !given.contains("secret") && prev.is_object() && prev.contains("secret")) {
    auto opened = open_config(prev, {"secret"}, ctx_.secrets);
    if (!opened.ok() || !opened->contains("secret") || !(*opened)["secret"].is_string())
      errors.push_back({"secret", "the stored secret cannot be opened: give it again"});
    else if (auto why = check_signing_secret(*scheme, (*opened)["secret"].get<std::string>()))
      errors.push_back({"secret", "the stored secret does not fit the scheme " + scheme_text +
                                      " (" + *why + "): give a new secret"});
  }
  if (!errors.empty())
    return Status::Invalid(errors.front().field + " " + errors.front().message, errors);
  bool drop_previous = given.contains("previous_secret") && given["previous_secret"].is_null();
  if (drop_previous) given.erase("previous_secret");
  json sealed = seal_config(given, kSubscriptionSecrets, ctx_.secrets, prev);
  if (drop_previous || scheme == SignatureScheme::kSeed002) sealed.erase("previous_secret");
  row->secrets = sealed;
  return Status::Ok();
}

HttpResponse App::notifications_api(const HttpRequest& req, int64_t rid,
                                    const std::vector<std::string_view>& seg,
                                    const AuditEntry& actor) {
  auto audit = [&](const char* action, std::optional<int64_t> id, json before, json after) {
    AuditEntry e = actor;
    e.action = action;
    e.target_type = "subscription";
    e.target_id = id;
    e.before = std::move(before);
    e.after = std::move(after);
    return e;
  };
  // seg: receivers, {id}, notifications|deliveries, ...
  auto receiver = ctx_.store.get_receiver(rid);
  if (!receiver.ok()) return from_status(receiver.status());
  Store& store = ctx_.store;

  if (seg[2] == "notifications") {
    if (seg.size() == 3) {
      if (req.method() == "GET") {
        auto rows = store.list_subscriptions(rid);
        if (!rows.ok()) return from_status(rows.status());
        json items = json::array();
        for (const auto& s : *rows) items.push_back(subscription_view(s, role_of(actor)));
        return json_response(200, {{"items", items}});
      }
      if (req.method() != "POST") return method_not_allowed("GET, POST");
      json body;
      if (auto bad = parse_body(req, &body)) return *bad;
      std::lock_guard lock(receiver_writes_);
      auto existing = store.list_subscriptions(rid);
      if (!existing.ok()) return from_status(existing.status());
      if (existing->size() >= kMaxSubscriptionsPerReceiver)
        return from_status(Status::Conflict("a receiver has at most " +
                                            std::to_string(kMaxSubscriptionsPerReceiver) +
                                            " notification subscriptions"));
      SubscriptionRow row;
      row.receiver_id = rid;
      if (Status s = subscription_from(body, nullptr, &row); !s.ok()) return from_status(s);
      AuditEntry entry =
          audit("subscription.create", std::nullopt, nullptr, subscription_audit_view(row));
      entry.target_name = receiver->name;
      auto saved = store.insert_subscription(row, &entry);
      if (!saved.ok()) return from_status(saved.status());
      return json_response(201, subscription_json(*saved));
    }
    auto sid = parse_id(seg[3]);
    if (!sid || seg.size() != 4) return error_response(404, "not_found", "no such API path");
    if (req.method() == "GET") {
      auto row = store.get_subscription(rid, *sid);
      if (!row.ok()) return from_status(row.status());
      return json_response(200, subscription_view(*row, role_of(actor)));
    }
    if (req.method() == "DELETE") {
      std::lock_guard lock(receiver_writes_);
      auto previous = store.get_subscription(rid, *sid);
      if (!previous.ok()) return from_status(previous.status());
      AuditEntry entry =
          audit("subscription.delete", *sid, subscription_audit_view(*previous), nullptr);
      entry.target_name = receiver->name;
      Status s = store.delete_subscription(rid, *sid, &entry);
      if (!s.ok()) return from_status(s);
      HttpResponse r;
      r.status = 204;
      return r;
    }
    if (req.method() != "PUT") return method_not_allowed("GET, PUT, DELETE");
    json body;
    if (auto bad = parse_body(req, &body)) return *bad;
    std::lock_guard lock(receiver_writes_);
    auto previous = store.get_subscription(rid, *sid);
    if (!previous.ok()) return from_status(previous.status());
    SubscriptionRow row = *previous;
    if (Status s = subscription_from(body, &*previous, &row); !s.ok()) return from_status(s);
    AuditEntry entry = audit("subscription.update", *sid, subscription_audit_view(*previous),
                             subscription_audit_view(row));
    entry.target_name = receiver->name;
    auto saved = store.update_subscription(row, &entry);
    if (!saved.ok()) return from_status(saved.status());
    return json_response(200, subscription_json(*saved));
  }

  // deliveries
  if (seg.size() == 3) {
    if (req.method() != "GET") return method_not_allowed("GET");
    auto limit = query_int(req, "limit", 50, 1, 200);
    auto before = query_int(req, "before_id", 0, 0, INT64_MAX);
    if (!limit || !before)
      return error_response(400, "bad_query", "limit must be 1..200 and before_id 0 or more");
    std::string state(req.query("state").value_or(""));
    if (!state.empty() && state != "pending" && state != "delivered" && state != "failed")
      return error_response(400, "bad_query", "state must be pending, delivered or failed");
    auto rows = store.list_deliveries(rid, state, int(*limit), *before);
    if (!rows.ok()) return from_status(rows.status());
    std::vector<int64_t> ids;
    for (const auto& d : *rows) ids.push_back(d.id);
    auto attempts = store.delivery_attempts(ids, 20);
    if (!attempts.ok()) return from_status(attempts.status());
    auto by_delivery = std::move(attempts).value();
    json items = json::array();
    const Role role = role_of(actor);  // an attempt's error or answer may name a URL
    for (const auto& d : *rows)
      items.push_back(view_for(role, delivery_json(d, &by_delivery[d.id], false)));
    json out = {{"items", items}};
    if (int64_t(rows->size()) == *limit) out["next_before_id"] = rows->back().id;
    return json_response(200, out);
  }
  auto did = parse_id(seg[3]);
  if (!did) return error_response(404, "not_found", "no such API path");
  if (seg.size() == 4) {
    if (req.method() != "GET") return method_not_allowed("GET");
    auto d = store.get_delivery(rid, *did);
    if (!d.ok()) return from_status(d.status());
    auto attempts = store.delivery_attempts({d->id}, Store::kMaxDeliveryAttempts);
    if (!attempts.ok()) return from_status(attempts.status());
    auto by_delivery = std::move(attempts).value();
    return json_response(200,
                         view_for(role_of(actor), delivery_json(*d, &by_delivery[d->id], true)));
  }
  if (seg.size() != 5 || seg[4] != "redeliver")
    return error_response(404, "not_found", "no such API path");
  if (req.method() != "POST") return method_not_allowed("POST");
  auto before = store.get_delivery(rid, *did);
  if (!before.ok()) return from_status(before.status());
  AuditEntry entry = actor;
  entry.action = "delivery.redeliver";
  entry.target_type = "delivery";
  entry.target_id = *did;
  entry.target_name = receiver->name;
  entry.before = {{"state", before->state}, {"attempts", before->attempts}};
  entry.after = {{"state", "pending"}, {"attempts", before->attempts}};
  Status s = store.redeliver(rid, *did, store.clock().now_ms(), &entry);
  if (!s.ok()) return from_status(s);
  if (ctx_.notifier) ctx_.notifier->poke();
  auto d = store.get_delivery(rid, *did);
  if (!d.ok()) return from_status(d.status());
  return json_response(202, delivery_json(*d, nullptr, false));
}

}  // namespace tripline
