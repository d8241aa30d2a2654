// /api/v1/receivers: create, read, update, delete, rotate; a receiver's JSON view.
#include <algorithm>
#include <charconv>
#include <set>
#include <unordered_set>

#include "app.h"
#include "crypto.h"
#include "field_reader.h"
#include "log.h"
#include "responses.h"
#include "schema.h"
#include "secrets.h"

namespace tripline {

using nlohmann::json;

namespace {

// The receiver fields a client may send, checked before the driver sees the config.
Status check_receiver_body(const json& body, bool require_driver) {
  using Need = FieldReader::Need;
  FieldReader r(body, "");
  r.reject_unknown({"name", "driver", "config", "enabled", "rules", "auth", "limits"},
                   "is not a receiver field");
  constexpr const char* kName = "is required: 1 to 100 printable characters";
  if (const json* name = r.find("name"); !name || !valid_name(*name)) r.error("name", kName);
  if (require_driver)
    r.string("driver", Need::kRequired, "is required (see GET /api/v1/drivers)", {},
             "is required (see GET /api/v1/drivers)");
  r.object("config", Need::kRequired, "is required and must be an object",
           "is required and must be an object");
  r.boolean("enabled", Need::kOptional);
  return r.status();
}

// The secret fields (sealed or hashed values, at any depth of config and auth) that differ
// between two stored rows, as "config.secret" / "auth.github_secret": the audit shows every
// secret as kRedacted, so without this a changed secret would look like no change. Sealed values
// are opened and compared in constant time (a secret sent again as it was is no change); a
// hashed one (salted) is a change whenever its stored value differs, since it cannot be opened.
void changed_secrets(const json& before, const json& after, const std::string& path,
                     const SecretBox& box, std::vector<std::string>* out) {
  auto secret = [](const json& j) {
    if (!j.is_string()) return false;
    const auto& v = j.get_ref<const std::string&>();
    return SecretBox::is_sealed(v) || v.rfind("hashed:", 0) == 0;
  };
  if (before.is_object() || after.is_object()) {
    static const json kNone;
    std::set<std::string> keys;
    if (before.is_object())
      for (const auto& [k, v] : before.items()) keys.insert(k);
    if (after.is_object())
      for (const auto& [k, v] : after.items()) keys.insert(k);
    for (const auto& k : keys) {
      const json& b = before.is_object() && before.contains(k) ? before[k] : kNone;
      const json& a = after.is_object() && after.contains(k) ? after[k] : kNone;
      changed_secrets(b, a, path + "." + k, box, out);
    }
    return;
  }
  if (!secret(before) && !secret(after)) return;
  if (before.is_string() && after.is_string()) {
    const auto& b = before.get_ref<const std::string&>();
    const auto& a = after.get_ref<const std::string&>();
    if (b == a) return;
    if (SecretBox::is_sealed(b) && SecretBox::is_sealed(a)) {
      auto pb = box.open(b), pa = box.open(a);
      if (pb && pa && crypto::constant_time_equal(*pb, *pa)) return;
    }
  }
  out->push_back(path);
}

}  // namespace

json App::audit_view(const ReceiverRow& row) const {
  std::vector<std::string> secrets;
  if (const Driver* d = ctx_.drivers.find(row.driver)) secrets = secret_fields(*d);
  return {{"name", row.name},
          {"driver", row.driver},
          {"enabled", row.enabled},
          {"generation", row.generation},
          {"config", redact_url_credentials(redact_sealed(redact_config(row.config, secrets)))},
          {"rules", row.rules},
          {"auth", redact_sealed(InboundAuth::redact(row.auth))},
          {"limits", row.limits}};
}

AuditEntry App::receiver_audit(const AuditEntry& actor, const char* action,
                               const ReceiverRow* before) const {
  AuditEntry e = actor;
  e.action = action;
  e.target_type = "receiver";
  if (before) {
    e.target_id = before->id;
    e.target_name = before->name;
    e.before = audit_view(*before);
  }
  e.render_after = [this](const ReceiverRow& row) { return audit_view(row); };
  return e;
}

Role App::role_of(const AuditEntry& actor) {
  // Unknown or empty (never from api(), which names the checked token's role): the least.
  return parse_role(actor.actor_role).value_or(Role::kReadOnly);
}

bool App::is_admin(const AuditEntry& actor) { return role_of(actor) >= Role::kAdmin; }

namespace {
// A receiver's view as `actor` may read it: a read-only token sees a URL's credentials redacted
// (user:********@), as in its notification subscriptions; operators and admins see what they
// edit.
json for_role(json view, Role role) {
  // The config, and what names the URL too: the driver's target and description (the webhook
  // driver's "target"), the last execution's plan, an error.
  return view_for(role, std::move(view));
}
}  // namespace

Result<json> App::receiver_json(const Receiver& r, bool with_url) const {
  ExecutionFilter last;
  last.receiver_id = r.row.id;
  last.limit = 1;
  auto rows = ctx_.store.list_executions(last);
  if (!rows.ok()) return rows.status();
  const Store::ReceiverName self{r.row.name, false};
  json last_run = rows->empty()
                      ? json(nullptr)
                      : execution_json(rows->front(), ctx_.executor.max_attempts(), &self);
  return json{{"id", r.row.id},
              {"last_execution", std::move(last_run)},
              {"name", r.row.name},
              {"driver", r.row.driver},
              {"config", redact_config(r.stored_config(), *r.secret_fields)},
              {"rules", r.row.rules},
              {"auth", InboundAuth::redact(r.row.auth)},
              {"limits", r.row.limits},
              {"enabled", r.row.enabled},
              {"generation", r.row.generation},
              {"version", r.row.version},
              {"description", r.description},
              {"target", r.target},
              {"action", r.action},
              {"trigger_url", with_url ? json(trigger_url(r)) : json(nullptr)},
              {"created_at", log::format_time(r.row.created_at)},
              {"updated_at", log::format_time(r.row.updated_at)}};
}

HttpResponse App::commit_receiver(int status, const std::function<Result<ReceiverRow>()>& write,
                                  bool with_url, std::optional<bool> url_revoked) {
  std::shared_ptr<const Receiver> published;
  {
    std::lock_guard lock(receiver_writes_);
    auto row = write();
    if (!row.ok()) return from_status(row.status());
    auto r = publish_locked(*row);
    if (!r.ok()) return from_status(r.status());
    published = *r;
  }
  auto body = receiver_json(*published, with_url);
  if (!body.ok()) return from_status(body.status());
  if (url_revoked) body.value()["url_revoked"] = *url_revoked;
  return json_response(status, *body);
}

Result<std::shared_ptr<const Receiver>> App::publish_locked(const ReceiverRow& row) {
  auto r =
      make_receiver(row, ctx_.drivers, ctx_.secrets, /*check_peer=*/false, ctx_.default_limits);
  if (!r.ok()) {
    // Committed but unusable (e.g. its sealed secrets do not open): no older version may go on
    // answering for it.
    ctx_.receivers.erase(row.id, /*deleted=*/false);
    return r.status();
  }
  if (auto old = ctx_.receivers.find(row.id))  // cooldowns and rate limits outlive an edit
    std::const_pointer_cast<Receiver>(*r)->limiter = old->limiter;
  else
    seed_limiter(**r, /*existing=*/row.version > 1);
  ctx_.receivers.put(*r);
  return r;
}

Status App::refresh_receiver(int64_t id) {
  std::lock_guard lock(receiver_writes_);
  auto row = ctx_.store.get_receiver(id);
  if (!row.ok()) {
    if (row.status().code() != Status::Code::kNotFound) return row.status();
    ctx_.receivers.erase(id, /*deleted=*/true);
    return Status::Ok();
  }
  if (auto cached = ctx_.receivers.find(id); cached && cached->row.version >= row->version)
    return Status::Ok();
  if (auto r = publish_locked(*row); !r.ok())
    log::warn("a receiver another replica changed cannot be built; its URL answers nothing",
              {{"receiver_id", id}, {"error", r.status().message()}});
  return Status::Ok();
}

Status App::refresh_receivers() {
  std::unordered_set<int64_t> stored;
  int64_t after = 0;
  for (;;) {
    auto page = ctx_.store.receivers_after(after, 1000);
    if (!page.ok()) return page.status();
    if (page->empty()) break;
    for (const ReceiverRow& row : *page) {
      stored.insert(row.id);
      after = row.id;
      std::lock_guard lock(receiver_writes_);
      if (auto cached = ctx_.receivers.find(row.id); cached && cached->row.version >= row.version)
        continue;
      if (auto r = publish_locked(row); !r.ok())
        log::warn("a receiver another replica changed cannot be built; its URL answers nothing",
                  {{"receiver_id", row.id}, {"error", r.status().message()}});
    }
  }
  for (const auto& r : ctx_.receivers.all())
    if (!stored.count(r->row.id)) {
      std::lock_guard lock(receiver_writes_);
      // Read again under the lock: created here after the pages above were read, it is stored.
      if (auto again = ctx_.store.get_receiver(r->row.id);
          !again.ok() && again.status().code() == Status::Code::kNotFound)
        ctx_.receivers.erase(r->row.id, /*deleted=*/true);
    }
  return Status::Ok();
}

void App::seed_limiter(const Receiver& r, bool existing) {
  if (existing) {  // e.g. a receiver that could not be loaded before: its backlog still counts
    auto queued = ctx_.store.unfinished_count(r.row.id);
    if (queued.ok()) r.limiter->queued()->store(*queued, std::memory_order_relaxed);
  }
  auto recent =
      ctx_.store.recent_executions(r.row.id, ctx_.store.clock().now_ms() - r.limits.memory_ms());
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

HttpResponse App::receivers_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                                const AuditEntry& actor) {
  if (seg.size() == 1) {
    if (req.method() == "POST") return create_receiver(req, actor);
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
        items.push_back(for_role({{"id", row.id},
                                  {"name", row.name},
                                  {"driver", row.driver},
                                  {"enabled", row.enabled},
                                  {"error", r.status().message()}},
                                 role_of(actor)));
        continue;
      }
      auto view = receiver_json(**r, is_admin(actor));
      if (!view.ok()) return from_status(view.status());
      items.push_back(for_role(std::move(view).value(), role_of(actor)));
    }
    return json_response(
        200, {{"items", items}, {"total", total}, {"limit", *limit}, {"offset", *offset}});
  }
  auto id = parse_id(seg[1]);
  if (!id) return error_response(404, "not_found", "no such receiver");
  if (seg.size() == 2) {
    if (req.method() == "GET") {
      auto row = ctx_.store.get_receiver(*id);
      if (!row.ok()) return from_status(row.status());
      auto r = view_of(*row);
      if (!r.ok()) {
        // Why it cannot be loaded may quote its config's URL.
        HttpResponse resp = from_status(r.status());
        if (role_of(actor) < Role::kOperator)
          resp.body = view_for(role_of(actor), json::parse(resp.body)).dump();
        return resp;
      }
      auto view = receiver_json(**r, is_admin(actor));
      if (!view.ok()) return from_status(view.status());
      HttpResponse resp = json_response(200, for_role(std::move(view).value(), role_of(actor)));
      // What PUT's If-Match compares (update_receiver).
      resp.headers.emplace_back("ETag", "\"" + std::to_string(row->version) + "\"");
      return resp;
    }
    if (req.method() == "PUT") return update_receiver(req, *id, actor);
    if (req.method() == "DELETE") {
      std::lock_guard lock(receiver_writes_);
      // Read under the lock every receiver change takes: what the delete removes.
      auto current = ctx_.store.get_receiver(*id);
      if (!current.ok()) return from_status(current.status());
      AuditEntry entry = receiver_audit(actor, "receiver.delete", &*current);
      entry.render_after = nullptr;
      // The delete removes its notification subscriptions too: the row says which.
      auto subscriptions = ctx_.store.list_subscriptions(*id);
      if (!subscriptions.ok()) return from_status(subscriptions.status());
      if (!subscriptions->empty()) {
        json list = json::array();
        for (const auto& sub : *subscriptions) list.push_back(subscription_audit_view(sub));
        entry.before["subscriptions"] = std::move(list);
      }
      // Its accepted entries still waiting to be written are written first, so the delete
      // takes them with the rest (one arriving during the delete may still be left behind).
      sync_request_log();
      Status s = ctx_.store.delete_receiver(*id, &entry);
      if (!s.ok()) return from_status(s);
      ctx_.receivers.erase(*id, /*deleted=*/true);
      HttpResponse r;
      r.status = 204;
      return r;
    }
    return method_not_allowed("GET, PUT, DELETE");
  }
  if (seg[2] == "notifications" || seg[2] == "deliveries")
    return notifications_api(req, *id, seg, actor);
  if (seg.size() == 4 && seg[2] == "rules" && seg[3] == "test")
    return rules_test_api(req, *id, actor);
  if (seg[2] == "requests") return requests_api(req, *id, seg, actor);
  if (seg.size() != 3) return error_response(404, "not_found", "no such API path");
  std::string_view verb = seg[2];
  if (verb != "enable" && verb != "disable" && verb != "rotate" && verb != "test")
    return error_response(404, "not_found", "no such API path");
  if (req.method() != "POST") return method_not_allowed("POST");
  Store& store = ctx_.store;
  int64_t rid = *id;
  // The state before, read under the lock every receiver change takes (commit_receiver's).
  auto audited = [&](const char* action,
                     const std::function<Result<ReceiverRow>(const AuditEntry*)>& write) {
    return [&, action, write]() -> Result<ReceiverRow> {
      auto current = store.get_receiver(rid);
      if (!current.ok()) return current.status();
      AuditEntry entry = receiver_audit(actor, action, &*current);
      return write(&entry);
    };
  };
  if (verb == "enable")
    return commit_receiver(
        200,
        audited("receiver.enable",
                [&](const AuditEntry* a) { return store.set_enabled(rid, true, a); }),
        is_admin(actor));
  if (verb == "disable")
    return commit_receiver(
        200,
        audited("receiver.disable",
                [&](const AuditEntry* a) { return store.set_enabled(rid, false, a); }),
        is_admin(actor), true);
  if (verb == "rotate")
    return commit_receiver(
        200,
        audited("receiver.rotate",
                [&](const AuditEntry* a) { return store.bump_generation(rid, a); }),
        is_admin(actor), true);
  // test: a dry run, the driver's plan without apply.
  auto receiver = ctx_.receivers.find(*id);
  if (!receiver) return error_response(404, "not_found", "no such receiver");
  Plan plan = receiver->driver->plan(*receiver->config);
  if (!plan.ok())
    return json_response(200, {{"dry_run", true},
                               {"ok", false},
                               {"retryable", plan.failure.kind == Outcome::Kind::kRetryable},
                               {"error", plan.failure.reason}});
  return json_response(200, {{"dry_run", true},
                             {"ok", true},
                             {"plan", plan.desired},
                             {"description", receiver->description}});
}

// ?check_peer=false saves without asking the driver's peer (Docker, the Kubernetes API, a DNS
// server) whether the target exists: for a peer that is down or not yet set up when the receiver
// is saved (the UI's "Save anyway"). The config is still validated in full; the target is then
// checked by the first trigger. Anything but true or false is refused.
static std::optional<HttpResponse> check_peer_query(const HttpRequest& req, bool* check_peer) {
  auto q = req.query("check_peer");
  if (q && *q != "true" && *q != "false")
    return error_response(400, "bad_query", "check_peer must be true or false");
  *check_peer = !q || *q == "true";
  return std::nullopt;
}

HttpResponse App::create_receiver(const HttpRequest& req, const AuditEntry& actor) {
  bool check_peer = true;
  if (auto bad = check_peer_query(req, &check_peer)) return *bad;
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
  auto checked = check_receiver(row, std::nullopt, check_peer);
  if (!checked.ok()) return from_status(checked.status());
  const ReceiverRow stored = (*checked)->stored_row();
  AuditEntry entry = receiver_audit(actor, "receiver.create", nullptr);
  return commit_receiver(
      201, [&] { return ctx_.store.insert_receiver(stored, &entry); }, is_admin(actor));
}

Result<std::shared_ptr<const Receiver>> App::check_receiver(
    ReceiverRow row, const std::optional<ReceiverRow>& previous, bool check_peer) {
  const Driver* driver = ctx_.drivers.find(row.driver);
  if (driver) {
    auto secrets = secret_fields(*driver);
    row.config =
        seal_config(row.config, secrets, ctx_.secrets, previous ? previous->config : json(nullptr));
    // A rule's "set" may change only what the driver declares per request: never the target or
    // the action the URL grants, nor a secret (rules are stored and shown as written).
    auto allowed = request_fields(*driver);
    if (row.rules.is_object() && row.rules.contains("rules") && row.rules["rules"].is_array()) {
      const auto& rules = row.rules["rules"];
      for (size_t i = 0; i < rules.size(); ++i) {
        if (!rules[i].is_object() || !rules[i].contains("set") || !rules[i]["set"].is_object())
          continue;
        for (const auto& [k, v] : rules[i]["set"].items()) {
          if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
          std::string field = "rules.rules[" + std::to_string(i) + "].set." + k;
          std::string why =
              std::find(secrets.begin(), secrets.end(), k) != secrets.end()
                  ? "is a secret: set it in config, where it is stored sealed"
                  : "cannot be set per request: the trigger URL grants config." + k + " as saved";
          why += " (" + row.driver + " lets rules set:";
          for (const auto& a : allowed) why += " " + a;
          why += allowed.empty() ? " nothing)" : ")";
          return Status::Invalid(field + " " + why, {{field, why}});
        }
      }
    }
  }
  auto auth = InboundAuth::prepare_for_storage(row.auth, previous ? previous->auth : json(nullptr),
                                               ctx_.secrets);
  if (!auth.ok()) return auth.status();
  row.auth = std::move(auth).value();
  // Validated against the driver and (unless ?check_peer=false) its live peer before anything
  // is stored.
  return make_receiver(std::move(row), ctx_.drivers, ctx_.secrets, check_peer, ctx_.default_limits);
}

HttpResponse App::update_receiver(const HttpRequest& req, int64_t id, const AuditEntry& actor) {
  json body;
  if (auto bad = parse_body(req, &body)) return *bad;
  if (Status s = check_receiver_body(body, false); !s.ok()) return from_status(s);
  auto dry = req.query("dry_run");
  if (dry && *dry != "true" && *dry != "false")
    return error_response(400, "bad_query", "dry_run must be true or false");
  bool dry_run = dry && *dry == "true";
  bool check_peer = true;
  if (auto bad = check_peer_query(req, &check_peer)) return *bad;
  // If-Match: "N" (the version, as GET's ETag gives it) saves only over that version, so two
  // people editing the same receiver cannot silently undo each other's change (RFC 9110 13.1.1).
  std::optional<int64_t> if_match;
  if (auto h = req.header("If-Match")) {
    int64_t v = 0;
    const std::string& t = *h;
    bool ok = t.size() > 2 && t.front() == '"' && t.back() == '"';
    if (ok) {
      const char* last = t.data() + t.size() - 1;
      auto [end, ec] = std::from_chars(t.data() + 1, last, v);
      ok = ec == std::errc() && end == last && v >= 1;
    }
    if (!ok)
      return error_response(400, "bad_header",
                            "If-Match must be the receiver's version in quotes, as its ETag gives "
                            "it (e.g. \"3\")");
    if_match = v;
  }
  auto current = ctx_.store.get_receiver(id);
  if (!current.ok()) return from_status(current.status());
  if (if_match && *if_match != current->version)
    return error_response(412, "precondition_failed",
                          "the receiver was changed since you read it (version " +
                              std::to_string(*if_match) + ", now " +
                              std::to_string(current->version) + "): read it again");
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
  // A dry run by a non-admin (an operator may send one) is checked without the peer: the body
  // may point the receiver's stored secrets (a TSIG key, a webhook secret) at any address, and
  // the peer check would send them there and echo what came back.
  auto checked = check_receiver(row, *current, check_peer && (!dry_run || is_admin(actor)));
  if (!checked.ok()) return from_status(checked.status());
  // The URL is revoked only when what it grants changes (or the receiver is disabled): edits of
  // bounds, rules, limits or the name keep it, so an alerting config keeps working.
  auto before = view_of(*current);
  bool revoke = !before.ok() || (*before)->target != (*checked)->target ||
                (*before)->action != (*checked)->action || (current->enabled && !row.enabled);
  if (dry_run)
    return json_response(200, {{"dry_run", true},
                               {"valid", true},
                               {"url_revoked", revoke},
                               {"description", (*checked)->description}});
  const ReceiverRow stored = (*checked)->stored_row();
  int64_t version = current->version;
  // `current` is the state before: the update commits only at its version.
  AuditEntry entry = receiver_audit(actor, "receiver.update", &*current);
  entry.render_after = [this, previous = *current](const ReceiverRow& after) {
    json view = audit_view(after);
    std::vector<std::string> changed;
    changed_secrets(previous.config, after.config, "config", ctx_.secrets, &changed);
    changed_secrets(previous.auth, after.auth, "auth", ctx_.secrets, &changed);
    if (!changed.empty()) view["secrets_changed"] = changed;
    return view;
  };
  return commit_receiver(
      200, [&] { return ctx_.store.update_receiver(id, stored, version, revoke, &entry); },
      is_admin(actor), revoke);
}

}  // namespace tripline
