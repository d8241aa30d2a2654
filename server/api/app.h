// The route layer: maps HTTP requests to tripline's operations and their results to HTTP status
// codes. The only place that chooses status codes. Knows nothing of the HTTP server library.
//
// Routes:
//   POST /_webhooks/{token}           trigger (or POST /_webhooks/trigger + X-Tripline-Token)
//   GET  /healthz  /readyz  /metrics
//   /api/v1/...                       management API, an admin token with the route's role
//                                     (routes.cpp; docs/api.md, docs/security.md)
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "admin_auth.h"
#include "executor.h"
#include "http.h"
#include "ingest.h"
#include "metrics.h"
#include "net.h"
#include "notifier.h"
#include "readiness.h"
#include "receivers.h"
#include "registry.h"
#include "request_log.h"
#include "request_record.h"
#include "secrets.h"
#include "store.h"
#include "token.h"
#include "ui.h"

namespace tripline {

// The settings row that keeps the workers' pause across restarts.
inline constexpr const char* kWorkersPausedSetting = "workers_paused";

// A notification subscription as the audit log shows it: secrets redacted, no counters or times
// (notifications_api.cpp).
nlohmann::json subscription_audit_view(const SubscriptionRow& s);
// Every URL's credentials (user:password@, or a lone user@ that may be a token) anywhere in `j`
// replaced by kRedacted, for the audit log and a read-only token's view of subscriptions
// (notifications_api.cpp).
nlohmann::json redact_url_credentials(nlohmann::json j);
// `view` as a token of `role` may read it: below operator (a dashboard's read-only token), every
// URL's credentials redacted, wherever they are (a receiver's config, an execution's plan, a
// delivery's payload); operators and admins see what they edit and run.
nlohmann::json view_for(Role role, nlohmann::json view);

struct AppContext {
  Store& store;
  ReceiverCache& receivers;
  const DriverRegistry& drivers;
  const Keyring& keyring;
  const SecretBox& secrets;
  Ingest& ingest;
  Executor& executor;
  Metrics& metrics;
  AdminAuth& admin;
  std::vector<Cidr> trusted_proxies;
  std::string public_url;                     // base of trigger URLs, no trailing slash
  Limits default_limits = Limits::builtin();  // for receivers whose "limits" leave fields out
  const Readiness* readiness = nullptr;       // /readyz's cached answer (readiness.h)
  Notifier* notifier = nullptr;               // woken by a re-send by hand; may be null
  RequestLog* request_log = nullptr;          // docs/requests-log.md; null or disabled: off
  // The target picker's listing (docs/api.md "Driver targets"): all of one listing's peer calls
  // end within `targets_deadline`, and its answer is shared for `targets_cache_ttl`.
  std::chrono::milliseconds targets_deadline{5000};
  std::chrono::milliseconds targets_cache_ttl{5000};
};

class App {
 public:
  explicit App(AppContext ctx) : ctx_(std::move(ctx)) {}
  void handle(const HttpRequest& request, Responder respond);
  // Set once, before the server serves (the port may be known only after binding).
  void set_public_url(std::string url) { ctx_.public_url = std::move(url); }

  // Another replica changed receiver `id` (Store::watch, docs/scale-out.md): the cache takes
  // the stored row as this replica's own change would have published it, or drops it when it
  // is gone. A row the cache holds at the same or a newer version is left alone. An error: the
  // row could not be read (the caller reads everything again until it can).
  Status refresh_receiver(int64_t id);
  // Every receiver, after a gap in the changes: stored rows refreshed, cached ones no longer
  // stored dropped.
  Status refresh_receivers();
  // Another replica changed a setting: this one follows (workers_paused: pause or resume).
  Status refresh_setting(const std::string& name);

  // The trigger URL currently valid for a receiver.
  std::string trigger_url(const Receiver& r) const;

 private:
  void trigger(const HttpRequest& req, std::string_view token, Responder& respond);
  // decide() (trigger/decide.h: inbound auth, rules, Alertmanager, request-bound values), for
  // receivers that have any. Fills `t` and answers true to go on, or answers the request itself
  // (401/403, 422, or the receiver's ignore status) and returns false. When the request log is
  // on, t.request is its entry: a refusal's outcome is filled in and it is handed to the log.
  // `token` is the trigger token, taken out of what the log keeps of the decision.
  bool apply_receiver_logic(const HttpRequest& req, std::string_view token, const Receiver& r,
                            Ingest::Trigger& t, Responder& respond);
  // The receiver's limits; answers the request itself (429, or 200 cooling down) when refused.
  bool admit(const Receiver& r, Ingest::Trigger& t, Reservation* claim, Responder& respond);
  // Fills a request log entry's outcome from the answer and hands it to the background writer.
  // The trigger token, when given, is taken out of `detail` (a rule may have compared a body
  // field that holds the trigger URL).
  void log_request(RequestLogEntry& entry, const char* outcome, int status, std::string_view error,
                   nlohmann::json detail, std::string_view token = {});
  // /receivers/{id}/requests[/{rid}[/redeliver]] (requests_api.cpp).
  HttpResponse requests_api(const HttpRequest& req, int64_t receiver_id,
                            const std::vector<std::string_view>& seg, const AuditEntry& actor);
  HttpResponse redeliver_request(int64_t receiver_id, int64_t request_id, const AuditEntry& actor);
  // Before a read of the request log: the entries of requests answered before it are written
  // (RequestLog::sync; accepted ones may wait in memory for a moment, store.h).
  void sync_request_log() const {
    if (ctx_.request_log) ctx_.request_log->sync();
  }
  // POST /executions/{id}/cancel (requests_api.cpp).
  HttpResponse cancel_execution(int64_t id, const AuditEntry& actor);
  // `actor` below: an audit entry naming who asks (the admin token's id, name and role) and from
  // where; each change copies it, says what it does, and hands it to the store, which writes it
  // in the change's own transaction (docs/security.md "Audit log").
  HttpResponse api(const HttpRequest& req, const std::vector<std::string_view>& segments);
  HttpResponse receivers_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                             const AuditEntry& actor);
  HttpResponse executions_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                              const AuditEntry& actor);
  // POST /executions/{id}/retry: a failed execution run again as a new one (docs/api.md).
  HttpResponse retry_execution(int64_t id, const AuditEntry& actor);
  // /receivers/{id}/notifications[/{sid}] and /receivers/{id}/deliveries[/{did}[/redeliver]]
  // (notifications_api.cpp).
  HttpResponse notifications_api(const HttpRequest& req, int64_t receiver_id,
                                 const std::vector<std::string_view>& seg, const AuditEntry& actor);
  Status subscription_from(const nlohmann::json& body, const SubscriptionRow* previous,
                           SubscriptionRow* row) const;
  HttpResponse tokens_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                          const AuditEntry& actor);
  HttpResponse workers_api(const HttpRequest& req, const std::vector<std::string_view>& seg,
                           const AuditEntry& actor);
  HttpResponse drivers_api(const HttpRequest& req);
  // GET /api/v1/drivers/{name}/targets: the driver's targets for the UI's picker (admin_api.cpp).
  HttpResponse targets_api(const HttpRequest& req, std::string_view driver);
  // GET /api/v1/peers: the readiness prober's last answer per peer; details for operator+.
  HttpResponse peers_api(const AuditEntry& actor);
  // POST /receivers/{id}/rules/test (receiver_id) and POST /rules/test: a sample request through
  // decide() with a trace (rules_test_api.cpp, docs/api.md "Testing rules").
  HttpResponse rules_test_api(const HttpRequest& req, std::optional<int64_t> receiver_id,
                              const AuditEntry& actor);
  // GET /api/v1/audit (admin_api.cpp).
  HttpResponse audit_api(const HttpRequest& req);
  HttpResponse readyz(const HttpRequest& req);

  HttpResponse create_receiver(const HttpRequest& req, const AuditEntry& actor);
  HttpResponse update_receiver(const HttpRequest& req, int64_t id, const AuditEntry& actor);
  // A receiver as the audit log shows it: its settings with every secret redacted.
  nlohmann::json audit_view(const ReceiverRow& row) const;
  // `actor` for one change: the action, the receiver, its state before, its state after
  // rendered from the committed row.
  AuditEntry receiver_audit(const AuditEntry& actor, const char* action,
                            const ReceiverRow* before) const;
  HttpResponse commit_receiver(int status, const std::function<Result<ReceiverRow>()>& write,
                               bool with_url, std::optional<bool> url_revoked = std::nullopt);
  // Whether the caller's token is an admin's: only an admin sees trigger URLs, and only an
  // admin's dry run checks the peer.
  static bool is_admin(const AuditEntry& actor);
  // The caller's role, compared as the enum (Role's order: read-only < operator < admin).
  static Role role_of(const AuditEntry& actor);
  Result<std::shared_ptr<const Receiver>> view_of(const ReceiverRow& row);
  void seed_limiter(const Receiver& r, bool existing = false);
  // Builds and publishes a committed row (receiver_writes_ held); nullptr when it cannot be built
  // (then no older version answers for it either).
  Result<std::shared_ptr<const Receiver>> publish_locked(const ReceiverRow& row);
  // Seals the body's secrets (keeping `previous` ones sent back redacted) and validates the
  // result against the driver and, when `check_peer`, its live peer (?check_peer=false skips it).
  Result<std::shared_ptr<const Receiver>> check_receiver(ReceiverRow row,
                                                         const std::optional<ReceiverRow>& previous,
                                                         bool check_peer = true);
  // `with_url`: include the trigger URL, a capability to run the receiver's action, which only an
  // admin may hold (docs/security.md "Roles"); others see null.
  Result<nlohmann::json> receiver_json(const Receiver& r, bool with_url) const;

  AppContext ctx_;
  UiFiles ui_;
  std::mutex receiver_writes_;  // serializes receiver changes: commit, read back, publish
  std::mutex workers_writes_;   // serializes pause/resume: the check, the record, the change
  // The target picker's answers by (driver, backend, limit), each shared for
  // ctx_.targets_cache_ttl once ready and by every request that asks while it is being listed
  // (single flight): the peer is asked on an HTTP thread that triggers also use, so focus events
  // from many tabs must not become many listings. At most kMaxTargetLists keys.
  static constexpr size_t kMaxTargetLists = 64;
  struct TargetListing {
    std::chrono::steady_clock::time_point expires;  // max() while being listed
    std::shared_future<HttpResponse> answer;
  };
  std::mutex targets_mu_;
  std::map<std::string, TargetListing> target_lists_;
};

}  // namespace tripline
