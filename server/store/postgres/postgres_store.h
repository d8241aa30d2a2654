// The store in a PostgreSQL database (issue 16, docs/postgres.md), through libpq.
//
// A bounded pool of connections (StoreOptions::max_connections): libpq connections are not
// thread-safe, so each call checks one out for itself and hands it back; a connection that broke
// is dropped and a new one is opened by the next call. Every statement is parameterised. Each
// write is one transaction (READ COMMITTED), retried a few times on a serialization failure or a
// deadlock. Migrations from migrations/postgres/ run at open, under an advisory lock, so several
// replicas opening one database at once apply each migration once.
//
// Durability (store.h, docs/durability.md): synced writes commit with synchronous_commit on (a
// session that finds it off turns it on); relaxed ones with SET LOCAL synchronous_commit = off:
// the commit is in the server's WAL buffers, which a crash of tripline cannot take, and
// PostgreSQL's WAL is flushed in order, so it is never lost while a later synced commit is kept.
//
// Errors: libpq's stop here; methods answer Status/Result (a unique or other constraint
// violation is Conflict; a broken connection, a server shutting down, disk full, too many
// connections, a lock wait past busy_timeout_ms are Unavailable). No message carries the
// connection string's password. Private to server/store: the layers above reach it through
// Store (store.h) and Store::open.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store.h"
#include "table_copy.h"

namespace tripline {

namespace pg {
class Pool;
class Conn;
}  // namespace pg

class PostgresStore final : public Store {
 public:
  // `url`: a libpq connection URI (postgres://user:password@host:port/dbname?sslmode=...).
  static Result<std::unique_ptr<PostgresStore>> open(const std::string& url, StoreOptions options);
  ~PostgresStore() override;

  const Clock& clock() const override { return *clock_; }

  // `tripline migrate-data` (docs/migrate-data.md): `produce` hands every page of the source's
  // tables to the sink it is given (SqliteStore::export_tables), and each row is inserted with
  // its values as given, ids included, all in one transaction, committed synced. Refused
  // (Conflict) when any table that is copied already holds a row here; Invalid, naming it, for a
  // table or column this database does not have. Values are converted by the column's type
  // here (information_schema): integers into BOOLEAN, blobs into BYTEA. Each identity sequence
  // is then set past the highest id copied and the page's `sequence`, so new rows never take a
  // copied (or a deleted row's) id. `counts`, when given, gets the rows copied per table.
  Status import_tables(const std::function<Status(const TableSink&)>& produce, TableCounts* counts);

  Result<ReceiverRow> insert_receiver(const ReceiverRow& r, const AuditEntry* audit) override;
  Result<ReceiverRow> update_receiver(int64_t id, const ReceiverRow& r, int64_t expected_version,
                                      bool revoke, const AuditEntry* audit) override;
  Result<ReceiverRow> set_enabled(int64_t id, bool enabled, const AuditEntry* audit) override;
  Result<ReceiverRow> bump_generation(int64_t id, const AuditEntry* audit) override;
  Status delete_receiver(int64_t id, const AuditEntry* audit) override;
  Result<std::map<int64_t, ReceiverName>> receiver_names(const std::vector<int64_t>& ids) override;
  Result<ReceiverRow> get_receiver(int64_t id) override;
  Result<std::vector<ReceiverRow>> list_receivers(int limit, int64_t offset,
                                                  int64_t* total) override;
  Result<std::vector<ReceiverRow>> all_receivers() override;
  Result<std::vector<ReceiverRow>> receivers_after(int64_t after_id, int limit) override;

  Status insert_executions(std::vector<NewExecution>& batch) override;
  Status mark_running(int64_t id, int attempts, int64_t started_at,
                      std::string_view target) override;
  Status record_plan(int64_t id, const nlohmann::json& plan) override;
  Status requeue(int64_t id, const std::string& error, int64_t next_attempt_at,
                 std::string_view target) override;
  Status requeue_all(const std::vector<int64_t>& ids, const std::string& error,
                     int64_t next_attempt_at, std::string_view target) override;
  Status start_planned(const std::vector<PlannedRun>& runs, int64_t started_at) override;
  Status commit_group(std::vector<NewExecution>& batch, const std::vector<PlannedBatch>& plans,
                      std::vector<Status>* plan_status, bool deferred_sync) override;
  Status sync_wal() override;
  Status finish_all(const std::vector<Finished>& outcomes) override;
  Status finish_settled(const std::vector<PlannedRun>& runs, int64_t started_at,
                        const std::vector<Finished>& outcomes) override;
  Status finish(int64_t id, ExecutionStatus status, const nlohmann::json& result,
                const std::string& error, int64_t finished_at, std::string_view target) override;

  Result<ExecutionRow> get_execution(int64_t id) override;
  Result<std::vector<ExecutionRow>> list_executions(const ExecutionFilter& filter) override;
  Result<std::vector<ExecutionRow>> unfinished_executions(int64_t after_id, int limit) override;
  Result<std::vector<std::pair<int64_t, int64_t>>> unfinished_counts() override;
  Result<std::optional<int64_t>> find_execution_by_key(int64_t receiver_id,
                                                       const std::string& key) override;
  Result<std::vector<RecentExecution>> recent_executions(int64_t receiver_id,
                                                         int64_t since_ms) override;
  Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> recent_executions(
      int64_t since_ms) override;

  Result<std::vector<int64_t>> prunable_executions(const RetentionPolicy& policy, int64_t now_ms,
                                                   int64_t protect_since_ms,
                                                   const std::vector<int64_t>& over,
                                                   int limit) override;
  Result<std::vector<int64_t>> receivers_over(int64_t count) override;
  Result<int64_t> unfinished_count(int64_t receiver_id) override;
  Result<int> delete_executions(const std::vector<int64_t>& ids) override;
  Status cancel_execution(int64_t id, int64_t now_ms, const AuditEntry* audit) override;

  Status insert_request_logs(std::vector<RequestLogRow>& rows, const std::vector<int64_t>& trim,
                             int64_t keep_per_receiver, std::vector<int64_t>* untrimmed,
                             int max_trimmed, int64_t accepted_upto) override;
  Result<std::vector<RequestLogRow>> list_request_logs(int64_t receiver_id,
                                                       const std::string& outcome, int limit,
                                                       int64_t before_id) override;
  Result<RequestLogRow> get_request_log(int64_t receiver_id, int64_t id) override;
  Result<int> prune_request_logs(int64_t before_ms, int limit) override;

  Result<SubscriptionRow> insert_subscription(const SubscriptionRow& s,
                                              const AuditEntry* audit) override;
  Result<SubscriptionRow> update_subscription(const SubscriptionRow& s,
                                              const AuditEntry* audit) override;
  Status delete_subscription(int64_t receiver_id, int64_t id, const AuditEntry* audit) override;
  Result<SubscriptionRow> get_subscription(int64_t receiver_id, int64_t id) override;
  Result<std::vector<SubscriptionRow>> list_subscriptions(int64_t receiver_id) override;

  Result<std::optional<ClaimedDelivery>> claim_due_delivery(int64_t now_ms,
                                                            int64_t lease_ms) override;
  Result<std::optional<int64_t>> next_delivery_due() override;
  Status record_delivery_attempt(int64_t delivery_id, const DeliveryOutcome& outcome) override;
  Status redeliver(int64_t receiver_id, int64_t delivery_id, int64_t now_ms,
                   const AuditEntry* audit) override;
  Result<std::vector<DeliveryRow>> list_deliveries(int64_t receiver_id, const std::string& state,
                                                   int limit, int64_t before_id) override;
  Result<DeliveryRow> get_delivery(int64_t receiver_id, int64_t id) override;
  Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>> delivery_attempts(
      const std::vector<int64_t>& delivery_ids, int limit) override;

  Status set_setting(const std::string& name, const std::string& value,
                     const AuditEntry* audit) override;
  Result<std::optional<std::string>> get_setting(const std::string& name) override;

  Result<AdminTokenRow> insert_admin_token(const std::string& name, const std::string& token_hash,
                                           Role role, const AuditEntry* audit) override;
  Result<std::vector<AdminTokenRow>> list_admin_tokens() override;
  Status delete_admin_token(int64_t id, const AuditEntry* audit) override;
  Result<AdminTokenRow> set_admin_token_role(int64_t id, Role role,
                                             const AuditEntry* audit) override;
  Result<int> replace_env_admin_token(const std::string& name, const std::string& token_hash,
                                      const AuditEntry* audit) override;

  Result<std::vector<AuditEntry>> list_audit(const AuditFilter& filter) override;
  Status record_audit(const AuditEntry& entry) override;
  Result<int> prune_audit(const AuditRetention& retention, int64_t now_ms, int limit) override;

  Result<std::vector<SealedText>> sealed_texts(bool include_finished_executions) override;
  Status rewrite_sealed_texts(const std::vector<SealedText>& texts) override;

  Status check_writable() override;
  std::vector<int> applied_migrations() override;

  // Scale-out (docs/scale-out.md): one database, several replicas.
  bool shared() const override { return true; }
  Status watch(std::function<void(const Change&)> on_change) override;
  Result<std::vector<std::pair<std::string, std::string>>> signing_keys() override;
  Status add_signing_key(const std::string& kid, const std::string& sealed_secret,
                         bool replace) override;
  Result<bool> renew_lease(int64_t until_ms) override;
  Result<TakenOver> take_over_expired(int64_t now_ms) override;
  Result<int64_t> lock_target(const std::string& lane, int64_t now_ms) override;
  Status unlock_target(const std::string& lane, int64_t token) override;
  const std::string& replica() const { return replica_; }

 private:
  PostgresStore() = default;
  enum class Sync { kSynced, kRelaxed };
  // Runs `f(conn)` in one write transaction on a pooled connection: committed when f answers ok,
  // rolled back otherwise; retried on a serialization failure or deadlock; libpq's errors
  // mapped to Status (pg::Error, postgres_store.cpp).
  template <typename F>
  auto write(Sync sync, F&& f) -> decltype(f(std::declval<pg::Conn&>()));
  // Runs `f(conn)` on a pooled connection outside any explicit transaction.
  template <typename F>
  auto read(F&& f) -> decltype(f(std::declval<pg::Conn&>()));
  Status migrate();

  // The bodies of the methods above that others share, inside the caller's transaction; libpq
  // errors throw pg::Error.
  // What the receivers' limits across the replicas made of one execution of a batch (admit_tx):
  // admitted, a repeat of a recorded key (value: its id), refused by a limit (value: the wait),
  // or revoked.
  struct Claim {
    enum Kind { kAdmitted, kReplayed, kLimited, kRevoked } kind = kAdmitted;
    int64_t value = 0;
    LimitRefusal limited = LimitRefusal::kNone;
  };
  std::vector<Claim> admit_tx(pg::Conn& c, std::vector<NewExecution>& batch);
  void insert_executions_tx(pg::Conn& c, std::vector<NewExecution>& batch,
                            const std::vector<Claim>& claims);
  // The batch's request log entries, each as its execution's outcome made it.
  void write_request_logs_tx(pg::Conn& c, std::vector<NewExecution>& batch);
  void start_planned_tx(pg::Conn& c, const std::vector<PlannedRun>& runs, int64_t started_at);
  // Records the deliveries one execution's status change announces (docs/webhooks.md).
  void note_status_tx(pg::Conn& c, int64_t execution_id, const char* event, std::string_view target,
                      int64_t now);
  void audit_tx(pg::Conn& c, const AuditEntry& audit, std::optional<int64_t> target_id = {},
                const ReceiverRow* row = nullptr);
  ReceiverRow receiver_tx(pg::Conn& c, int64_t id);
  template <typename Bind>
  Status update_receiver_row(const char* sql, int64_t id, const AuditEntry* audit, Bind&& bind);

  int64_t now_ms() const { return clock_->now_ms(); }
  const Clock* clock_ = &Clock::system();
  int busy_timeout_ms_ = 5000;
  std::unique_ptr<pg::Pool> pool_;

  // Scale-out: this replica's name (the owner of the executions it accepts), the URL the watch
  // connection opens, whether its lease row exists, and the watch thread (LISTEN).
  void watch_loop(const std::function<void(const Change&)>& on_change);
  std::string url_;
  std::string replica_;
  std::atomic<bool> lease_started_{false};
  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  bool watch_stopping_ = false;
  std::thread watch_thread_;
};

}  // namespace tripline
