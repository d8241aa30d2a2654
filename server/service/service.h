// The whole tripline service, wired: store, keys, drivers, receiver cache, ingest, executor,
// management API and HTTP server. main() runs one; integration tests run one in-process.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "http_server.h"
#include "notifier.h"
#include "receiver_limits.h"
#include "registry.h"
#include "request_log.h"
#include "retry.h"
#include "status.h"
#include "store.h"

namespace tripline {

struct ServiceOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  std::string data_dir = "./data";
  // The store: empty for DATA_DIR/tripline.db (SQLite); a postgres:// URL for a PostgreSQL
  // database (docs/postgres.md), the keys staying in data_dir.
  std::string database;
  std::string public_url;   // empty: http://<listen> (HTTPS: a proxy in front, deploy/nginx)
  std::string admin_token;  // empty: keep existing ones, or generate the first
  DriverEnv drivers;
  int http_threads = 2;
  int workers = 4;
  RetryPolicy retry;
  std::vector<std::string> trusted_proxies;  // addresses/CIDRs whose X-Forwarded-For is believed
  int store_busy_timeout_ms = 5000;          // how long a write waits for a database lock
  // The target picker's bound on one listing and how long its answer is shared (tests shorten
  // them; docs/api.md "Driver targets").
  std::chrono::milliseconds targets_deadline{5000};
  std::chrono::milliseconds targets_cache_ttl{5000};
  Limits default_limits = Limits::builtin();  // for receivers whose "limits" leave fields out
  RetentionPolicy retention;                  // finished executions kept (pruner.h)
  AuditRetention audit_retention;             // audit log rows kept (pruner.h)
  size_t max_held_executions = 10000;         // the executor's in-memory window (executor.h)
  // The request log (docs/requests-log.md): entries kept per receiver (0: off) and the
  // background writer's queue.
  RequestLog::Options request_log;
  // Execution notifications (notifier.h); allow_local comes from the drivers' option
  // --allow-local-webhook-targets (drivers/webhook), which governs every outbound webhook.
  NotifierOptions notifications;
  const Clock* clock = nullptr;  // what time decides by (clock.h); null: the system clock
  // Polled during start-up (loading a large store takes seconds): once it answers true, start()
  // stops where it is and answers Unavailable (kStartInterrupted). Unset: never.
  std::function<bool()> stop_requested;
};

// The message of the Status start() answers when stop_requested() cut it short.
inline constexpr const char* kStartInterrupted = "start-up interrupted by a stop request";

class Service {
 public:
  static Result<std::unique_ptr<Service>> start(const ServiceOptions& options);
  ~Service();
  void stop();

  uint16_t port() const;
  const std::string& public_url() const;
  // Set when this start generated the first admin token (shown once, never stored in clear).
  const std::optional<std::string>& generated_admin_token() const;

  struct Parts;

 private:
  Service();
  std::unique_ptr<Parts> parts_;
};

}  // namespace tripline
