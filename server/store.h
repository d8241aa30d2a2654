// Durable state in one SQLite file (WAL mode, synchronous=FULL: a returned commit is fsync'd).
//
// Two connections: one for writes, serialized by a mutex, and one for reads, so management
// queries never wait behind a group commit. Migrations from migrations/ run at open, each in its
// own transaction, and are recorded in schema_migrations.
//
// Errors: SQLite exceptions stop here; methods answer Status/Result. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "status.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace tripline {

int64_t now_ms();

struct ReceiverRow {
  int64_t id = 0;
  std::string name;
  std::string driver;
  nlohmann::json config;
  nlohmann::json rules;   // null: none (see rules.h)
  nlohmann::json auth;    // null: none; secrets sealed or hashed (see inbound_auth.h)
  nlohmann::json limits;  // null: none (see receiver_limits.h)
  bool enabled = true;
  int64_t generation = 1;
  int64_t created_at = 0;
  int64_t updated_at = 0;
};

enum class ExecutionStatus { kQueued, kRunning, kSucceeded, kFailed };
const char* to_string(ExecutionStatus s);
std::optional<ExecutionStatus> parse_execution_status(std::string_view s);

struct ExecutionRow {
  int64_t id = 0;
  int64_t receiver_id = 0;
  int64_t generation = 0;
  std::string driver;
  std::string config;  // JSON text, snapshot at acceptance
  ExecutionStatus status = ExecutionStatus::kQueued;
  int attempts = 0;
  nlohmann::json plan;    // null until planned
  nlohmann::json result;  // null until succeeded
  std::string error;
  int64_t created_at = 0;
  std::optional<int64_t> started_at, finished_at, next_attempt_at;
};

// One accepted trigger, as the ingest path hands it to insert_executions().
struct NewExecution {
  int64_t receiver_id = 0;
  int64_t generation = 0;
  const std::string* driver = nullptr;  // borrowed from the receiver cache for the call
  const std::string* config = nullptr;
  std::string idempotency_key;          // empty: none
  int64_t created_at = 0;
  // Filled by insert_executions():
  int64_t id = 0;
  bool replayed = false;  // the Idempotency-Key matched an earlier execution, whose id is `id`
};

struct ExecutionFilter {
  std::optional<int64_t> receiver_id;
  std::optional<ExecutionStatus> status;
  int limit = 50;
  int64_t before_id = 0;  // 0: newest first from the top; else ids below this (paging)
};

struct AdminTokenRow {
  int64_t id = 0;
  std::string name;
  std::string token_hash;  // raw 32 bytes
  int64_t created_at = 0;
  bool from_env = false;   // the row managed from TRIPLINE_ADMIN_TOKEN
};

// Every stored JSON text that may hold sealed secrets (secrets.h): receivers' config and auth,
// executions' config. For checking them against the key at start-up and re-sealing them.
struct SealedText {
  enum class Where { kReceiverConfig, kReceiverAuth, kExecutionConfig };
  Where where = Where::kReceiverConfig;
  int64_t id = 0;         // the receiver's or execution's id
  std::string driver;     // whose config it is (its schema names the secret fields)
  bool finished = false;  // an execution that succeeded or failed: never opened again
  std::string text;       // JSON
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();

  // Receivers. Names are unique: a clash answers Conflict.
  // Stores name, driver, config, rules, auth and limits of `r`.
  Result<ReceiverRow> insert_receiver(const ReceiverRow& r);
  // Replaces name, config, rules, auth and limits and bumps the generation (old URLs stop working).
  Result<ReceiverRow> update_receiver(int64_t id, const ReceiverRow& r);
  Result<ReceiverRow> set_enabled(int64_t id, bool enabled);
  Result<ReceiverRow> bump_generation(int64_t id);
  Status delete_receiver(int64_t id);
  Result<ReceiverRow> get_receiver(int64_t id);
  std::vector<ReceiverRow> list_receivers(int limit, int64_t offset, int64_t* total);
  std::vector<ReceiverRow> all_receivers();

  // Inserts a batch in ONE transaction and commits it (the group commit of the trigger path).
  // On success every element has its id. On failure nothing of the batch is stored.
  Status insert_executions(std::vector<NewExecution>& batch);

  Status mark_running(int64_t id, int attempts, int64_t started_at);
  Status record_plan(int64_t id, const nlohmann::json& plan);
  Status requeue(int64_t id, const std::string& error, int64_t next_attempt_at);
  Status finish(int64_t id, ExecutionStatus status, const nlohmann::json& result,
                const std::string& error, int64_t finished_at);
  Result<ExecutionRow> get_execution(int64_t id);
  std::vector<ExecutionRow> list_executions(const ExecutionFilter& filter);
  // Everything queued or running, oldest first: what a restart must pick up.
  std::vector<ExecutionRow> unfinished_executions();

  // Admin credentials.
  Result<AdminTokenRow> insert_admin_token(const std::string& name, const std::string& token_hash);
  std::vector<AdminTokenRow> list_admin_tokens();
  // Deletes it unless it is the last one (Conflict), in one statement, so concurrent deletes
  // can never remove the last admin token between them.
  Status delete_admin_token(int64_t id);
  // In one transaction: revokes the rows from_env whose hash is not `token_hash` and stores
  // `token_hash` as the from_env row (if it is not stored yet). Answers how many were revoked.
  Result<int> replace_env_admin_token(const std::string& name, const std::string& token_hash);

  // Sealed secrets at rest (secret_keys.h). Only texts that contain a sealed value are listed;
  // finished executions only when asked (a full scan of the history: rotation, not start-up).
  std::vector<SealedText> sealed_texts(bool include_finished_executions);
  // Writes the given texts back, all in ONE transaction.
  Status rewrite_sealed_texts(const std::vector<SealedText>& texts);

  // For /readyz: a write transaction can begin and roll back.
  Status check_writable();

  // Applied migration versions, for tests and diagnostics.
  std::vector<int> applied_migrations();

 private:
  Store() = default;
  Status migrate();

  std::mutex write_mu_;
  std::unique_ptr<SQLite::Database> writer_;
  std::unique_ptr<SQLite::Statement> insert_execution_;
  std::unique_ptr<SQLite::Statement> find_idempotent_;
  std::mutex read_mu_;
  std::unique_ptr<SQLite::Database> reader_;
};

}  // namespace tripline
