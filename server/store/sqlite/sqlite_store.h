// The store in one SQLite file (WAL mode, synchronous=FULL: a returned commit is fsync'd,
// except the relaxed ones of the contract, store.h and docs/durability.md, committed at
// synchronous=NORMAL).
//
// Two connections: one for writes, serialized by a mutex, and one for reads, so management
// queries never wait behind a group commit. Migrations from migrations/ run at open, each in its
// own transaction, and are recorded in schema_migrations. WAL checkpoints run on a thread of
// their own (StoreOptions::background_checkpoints).
//
// Errors: SQLite exceptions stop here; methods answer Status/Result (a constraint violation is
// Conflict; busy, full and I/O errors are Unavailable). Private to server/store: the layers
// above reach it through Store (store.h) and Store::open.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "store.h"
#include "table_copy.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace tripline {

class SqliteStore final : public Store {
 public:
  // `path`: the database file, created when missing.
  static Result<std::unique_ptr<SqliteStore>> open(const std::string& path, StoreOptions options);

  // `tripline migrate-data` (docs/migrate-data.md): every row of every table of the database
  // `path` (schema_migrations and SQLite's own tables aside) handed to `sink`, parents before
  // children, in pages of `page_rows`, each value as stored; all of it read in one transaction,
  // one snapshot of the file. Opens the file read-only and changes nothing in it; a database
  // whose applied migrations are not this build's is refused (Invalid, saying which), as is a
  // missing file. The sink's error stops the export and is answered as it is.
  static Status export_tables(const std::string& path, const TableSink& sink, int page_rows = 256);
  ~SqliteStore() override;

  const Clock& clock() const override { return *clock_; }

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

  std::vector<int64_t> rebuilt_request_log_receivers() override { return rebuilt_receivers_; }
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
  // One process's file: nothing is shared (store.h, docs/scale-out.md).
  bool shared() const override { return false; }
  Status watch(std::function<void(const Change&)>) override { return Status::Ok(); }
  Result<std::vector<std::pair<std::string, std::string>>> signing_keys() override {
    return std::vector<std::pair<std::string, std::string>>{};
  }
  Result<bool> renew_lease(int64_t) override { return true; }
  Result<TakenOver> take_over_expired(int64_t) override { return TakenOver{}; }
  Result<int64_t> lock_target(const std::string&, int64_t) override { return int64_t{1}; }
  Status unlock_target(const std::string&, int64_t) override { return Status::Ok(); }
  Status add_signing_key(const std::string&, const std::string&, bool) override {
    return Status::Invalid("a SQLite store keeps the signing keys in DATA_DIR/keys");
  }

 private:
  SqliteStore() = default;
  Status migrate();
  // Records the deliveries one execution's status change announces; write_mu_ held, inside the
  // caller's transaction.
  void note_status_locked(int64_t execution_id, const char* event, std::string_view target,
                          int64_t now);
  void refresh_any_subscriptions_locked();
  // The bodies of insert_executions() and start_planned(): write_mu_ held, inside the caller's
  // transaction; SQLite errors throw.
  void insert_executions_locked(std::vector<NewExecution>& batch);
  // Writes `audit` on the writer's connection (write_mu_ held, inside the caller's transaction).
  // `target_id` fills an entry that has none (the row the change created); `row`, when given,
  // is rendered into `after` by the entry's render_after.
  void audit_locked(const AuditEntry& audit, std::optional<int64_t> target_id = std::nullopt,
                    const ReceiverRow* row = nullptr);
  template <typename Bind>
  Status update_one(int64_t id, const char* sql, const AuditEntry* audit, Bind&& bind);
  // A receiver read on the writer's connection: what a transaction in progress sees.
  ReceiverRow receiver_locked(int64_t id);
  void start_planned_locked(const std::vector<PlannedRun>& runs, int64_t started_at);
  void insert_request_log_locked(RequestLogRow& row);
  int64_t next_request_id_ = 1;      // write_mu_: ids are allocated before the execution names one
  bool defer_accepted_log_ = false;  // StoreOptions::defer_accepted_log
  // Writes the entries that accepted requests' commits deferred and a crash left unwritten
  // (StoreOptions::defer_accepted_log), from their executions; at open().
  void rebuild_deferred_request_logs();
  // The highest request id ever handed out or named (write_mu_, or at open()).
  int64_t highest_request_id_locked();
  std::vector<int64_t> rebuilt_receivers_;  // whose entries rebuild_deferred_request_logs() made
  std::unique_ptr<SQLite::Statement> insert_request_log_;
  std::atomic<bool> any_subscriptions_{false};
  int64_t now_ms() const { return clock_->now_ms(); }

  const Clock* clock_ = &Clock::system();

  std::mutex write_mu_;
  std::unique_ptr<SQLite::Database> writer_;
  std::unique_ptr<SQLite::Statement> insert_execution_;
  std::unique_ptr<SQLite::Statement> find_idempotent_;
  std::unique_ptr<SQLite::Statement> note_delivery_, note_dropped_;  // note_status_locked()
  // The executor's writes, prepared at first use: a flooded lane writes a batch every
  // millisecond or so, and preparing them again each time was a tenth of a worker's time.
  SQLite::Statement& writer_statement(std::unique_ptr<SQLite::Statement>& slot, const char* sql);
  std::unique_ptr<SQLite::Statement> start_planned_, finish_one_, finish_settled_, requeue_;
  std::unique_ptr<SQLite::Statement> append_error_, bound_errors_;  // append_attempt_error()
  std::unique_ptr<SQLite::Statement> receiver_exists_;              // insert_request_logs()
  std::mutex read_mu_;
  std::unique_ptr<SQLite::Database> reader_;
  // sync_wal(): the WAL file, opened at open() right after SQLite opened it (empty and -1 when
  // the database is not in WAL mode: then every commit is synced by SQLite itself).
  std::mutex wal_mu_;
  Status open_wal_locked();
  std::string wal_path_;
  int wal_fd_ = -1;
  // Background WAL checkpoints (StoreOptions::background_checkpoints).
  void checkpoint_loop(std::string path, StoreOptions options);
  std::mutex checkpoint_mu_;
  std::condition_variable checkpoint_cv_;
  bool stopping_ = false;
  std::thread checkpointer_;
};

}  // namespace tripline
