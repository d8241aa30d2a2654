// The route layer: maps HTTP requests to tripline's operations and their results to HTTP status
// codes. The only place that chooses status codes. Knows nothing of the HTTP server library.
//
// Routes:
//   POST /_webhooks/{token}           trigger (or POST /_webhooks/trigger + X-Tripline-Token)
//   GET  /healthz  /readyz  /metrics
//   /api/v1/...                       management API, admin bearer token required (docs/api.md)
#pragma once

#include <functional>
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
};

class App {
 public:
  explicit App(AppContext ctx) : ctx_(std::move(ctx)) {}
  void handle(const HttpRequest& request, Responder respond);
  // Set once, before the server serves (the port may be known only after binding).
  void set_public_url(std::string url) { ctx_.public_url = std::move(url); }

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
  void log_request(std::unique_ptr<RequestLogRow>& entry, const char* outcome, int status,
                   std::string_view error, nlohmann::json detail, std::string_view token = {});
  // /receivers/{id}/requests[/{rid}[/redeliver]] (requests_api.cpp).
  HttpResponse requests_api(const HttpRequest& req, int64_t receiver_id,
                            const std::vector<std::string_view>& seg);
  HttpResponse redeliver_request(int64_t receiver_id, int64_t request_id);
  // POST /executions/{id}/cancel (requests_api.cpp).
  HttpResponse cancel_execution(int64_t id);
  HttpResponse api(const HttpRequest& req, const std::vector<std::string_view>& segments);
  HttpResponse receivers_api(const HttpRequest& req, const std::vector<std::string_view>& seg);
  HttpResponse executions_api(const HttpRequest& req, const std::vector<std::string_view>& seg);
  // POST /executions/{id}/retry: a failed execution run again as a new one (docs/api.md).
  HttpResponse retry_execution(int64_t id);
  // /receivers/{id}/notifications[/{sid}] and /receivers/{id}/deliveries[/{did}[/redeliver]]
  // (notifications_api.cpp).
  HttpResponse notifications_api(const HttpRequest& req, int64_t receiver_id,
                                 const std::vector<std::string_view>& seg);
  Status subscription_from(const nlohmann::json& body, const SubscriptionRow* previous,
                           SubscriptionRow* row) const;
  HttpResponse tokens_api(const HttpRequest& req, const std::vector<std::string_view>& seg);
  HttpResponse workers_api(const HttpRequest& req, const std::vector<std::string_view>& seg);
  HttpResponse drivers_api(const HttpRequest& req);
  HttpResponse readyz(const HttpRequest& req);

  HttpResponse create_receiver(const HttpRequest& req);
  HttpResponse update_receiver(const HttpRequest& req, int64_t id);
  HttpResponse commit_receiver(int status, const std::function<Result<ReceiverRow>()>& write,
                               std::optional<bool> url_revoked = std::nullopt);
  Result<std::shared_ptr<const Receiver>> view_of(const ReceiverRow& row);
  void seed_limiter(const Receiver& r, bool existing = false);
  // Seals the body's secrets (keeping `previous` ones sent back redacted) and validates the
  // result against the driver and its peer.
  Result<std::shared_ptr<const Receiver>> check_receiver(
      ReceiverRow row, const std::optional<ReceiverRow>& previous);
  Result<nlohmann::json> receiver_json(const Receiver& r) const;

  AppContext ctx_;
  UiFiles ui_;
  std::mutex receiver_writes_;  // serializes receiver changes: commit, read back, publish
};

}  // namespace tripline
