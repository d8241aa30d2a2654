// The store's contract: every durable row of tripline (receivers, executions, the request log,
// notifications, admin tokens, the audit log, settings) and the operations the layers above
// may ask of it. `Store` is an interface with two implementations: SQLite
// (sqlite/sqlite_store.h: one file, WAL) and PostgreSQL (postgres/postgres_store.h, issue 16).
// Only Store::open (open_store.cpp) names an implementation; the layers above the store see
// this file alone.
//
// What every implementation guarantees, whatever the method:
// - Thread-safe: any method may be called from any thread, concurrently. Reads do not wait
//   behind the trigger path's group commit.
// - Errors are answers, never exceptions (status.h): NotFound for a row that is not there,
//   Conflict for a unique name or key taken or a row not in the state the change needs,
//   Unavailable when the database cannot take the write now (locked elsewhere, disk full, I/O
//   error: the caller answers 503 and may retry), Internal for anything else. A write that
//   fails has changed nothing: each is one transaction, its audit entry (when given) in it.
// - Durability (docs/durability.md): a write is synced unless its comment says relaxed. A
//   synced write is on stable storage when the method returns. A relaxed one survives a
//   process crash (kill -9) once returned and reaches stable storage with the next synced
//   commit; only a power loss or an OS crash may take it, and never with a synced write made
//   after it.
// - Times: every time the store records itself (created_at of a receiver, updated_at, an audit
//   entry's `at`...) is read from clock(), the service's one clock.
// - Schema: open() brings the database to the current schema (migrations/, each applied once,
//   in order) before it answers; a database it cannot migrate is not opened.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "clock.h"
#include "status.h"

namespace tripline {

struct ReceiverRow {
  int64_t id = 0;
  std::string name;
  std::string driver;
  nlohmann::json config;
  nlohmann::json rules;   // null: none (see rules.h)
  nlohmann::json auth;    // null: none; secrets sealed or hashed (see inbound_auth.h)
  nlohmann::json limits;  // null: none (see receiver_limits.h)
  bool enabled = true;
  int64_t generation = 1;  // bumped when the URL is revoked (rotate, disable, new target/action)
  std::string nonce;       // random per receiver, signed into its tokens ("" for pre-0.2 rows)
  int64_t version = 1;     // bumped by every committed change of the row
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
  std::string action;  // what it does ("up", "delete"...); "" for rows from before 0.2
  ExecutionStatus status = ExecutionStatus::kQueued;
  int attempts = 0;
  nlohmann::json plan;    // null until planned
  nlohmann::json result;  // null until succeeded
  std::string error;      // the last attempt's
  // Every failed attempt's error, oldest first: [{"attempt": N, "at": ms, "error": "..."}],
  // at most 16 (the first and the 15 latest), each error at most 1024 characters
  // (migrations/014_execution_attempts.sql).
  nlohmann::json attempt_errors = nlohmann::json::array();
  int64_t created_at = 0;
  std::optional<int64_t> started_at, finished_at, next_attempt_at;
  int64_t request_id = 0;  // the request log entry that made it (0: none, or from before 0.3)
  nlohmann::json rule;     // the rule that matched: {"index", "name"}; null: none did
};

// One entry of the request log (migrations/015_requests_log.sql, docs/requests-log.md): a trigger
// request that named a real receiver, and what came of it. Built on the trigger path already
// redacted (trigger/request_record.h); the store writes it as given.
struct RequestLogRow {
  int64_t id = 0;
  int64_t receiver_id = 0;
  int64_t received_at = 0;
  std::string outcome;  // accepted, ignored, refused, rate_limited, cooling_down, queue_full,
                        // malformed, unavailable
  int status = 0;       // the HTTP status answered
  std::string error;    // the error code answered; empty for a 2xx
  nlohmann::json detail = nlohmann::json::object();  // why
  std::string source;
  std::string method;
  std::string headers;  // JSON text: [[name, value]...], secrets redacted
  std::string body;     // the body's first bytes, valid UTF-8
  int64_t body_size = 0;
  bool body_truncated = false;
  // The trigger token was found in the body or a header value and replaced by "[redacted]"
  // (a GitHub ping carries the trigger URL): what is kept is not what was sent.
  bool token_redacted = false;
  int64_t execution_id = 0;
  int64_t replay_of = 0;
  // An accepted request's entry that its execution's commit did not write (a store that defers
  // them, StoreOptions::defer_accepted_log): its id was allocated by that commit and the
  // execution names it; insert_request_logs() writes it under that id.
  bool deferred = false;
};

// A receiver's limits as a shared store checks them across replicas (docs/scale-out.md): the
// trigger layer's Limits (trigger/receiver_limits.h) copied, and what the execution is. Each
// replica checks its own share first, in memory; a shared store checks the receiver's whole
// count again in the transaction that records the execution. A store that is not shared (one
// process: the memory's check is the whole one) ignores it.
struct LimitsCheck {
  // kTrigger: every limit. kRetry (an admin's retry of a failed execution) and kRedeliver (a
  // logged request sent again): the queue cap only. Every kind records its action's run.
  enum class Kind : uint8_t { kTrigger, kRetry, kRedeliver };
  Kind kind = Kind::kTrigger;
  int64_t cooldown_ms = 0;
  double rate_per_s = 0;  // 0: no rate limit
  double burst = 1;
  int64_t max_queued = 0;   // 0: no cap
  int ignore_status = 200;  // the receiver's answer to an ignored request (a cooldown's)
};
enum class LimitRefusal : uint8_t { kNone, kRateLimited, kQueueFull, kCoolingDown };

// One accepted trigger, as the ingest path hands it to insert_executions().
struct NewExecution {
  int64_t receiver_id = 0;
  int64_t generation = 0;
  const std::string* driver = nullptr;  // borrowed from the receiver cache for the call
  const std::string* config = nullptr;
  const std::string* action = nullptr;
  std::string idempotency_key;  // empty: none
  int64_t created_at = 0;
  // The request's log entry (null: none is kept). Its id, execution_id and, for a revoked one,
  // outcome are filled in. Written in the same transaction, except a new execution's on a store
  // with StoreOptions::defer_accepted_log: then it is marked `deferred`, for the caller to write
  // with insert_request_logs() (RequestLog::record_accepted).
  RequestLogRow* request = nullptr;
  const nlohmann::json* rule = nullptr;  // the rule that matched; may be null
  LimitsCheck limits;                    // what a shared store holds it to
  // Filled by insert_executions():
  int64_t id = 0;
  bool replayed = false;  // the Idempotency-Key matched an earlier execution, whose id is `id`
  bool revoked = false;   // nothing stored: the receiver is gone, disabled or at a newer generation
  // Nothing stored: a shared store found the receiver's limits reached across the replicas
  // (its request log entry says which). limit_wait: seconds to wait (rate, queue), or the
  // milliseconds left (cooldown).
  LimitRefusal limited = LimitRefusal::kNone;
  int64_t limit_wait = 0;
};

struct ExecutionFilter {
  std::optional<int64_t> receiver_id;
  std::optional<ExecutionStatus> status;
  int limit = 50;
  int64_t before_id = 0;  // 0: newest first from the top; else ids below this (paging)
};

// An execution's time and action: what cooldowns and rate limits are rebuilt from.
struct RecentExecution {
  int64_t created_at = 0;
  std::string action;
};

// How long finished executions are kept (docs/operations: --retention).
struct RetentionPolicy {
  int64_t max_age_ms = 30LL * 24 * 3600 * 1000;  // 0: no age limit
  int64_t keep_per_receiver = 100000;            // the newest N per receiver; 0: no count limit
  // A row carrying an idempotency key (an Alertmanager group, a signed message id, an
  // Idempotency-Key) is kept at least this long whatever the limits above say: it is what
  // answers a re-send with the first execution instead of running again.
  int64_t dedupe_window_ms = 48LL * 3600 * 1000;
};

// How to open a store. The clock is every implementation's; the rest tunes the SQLite one
// (sqlite/sqlite_store.h) or the PostgreSQL one (postgres/postgres_store.h), and each ignores
// what does not apply to it.
struct StoreOptions {
  int busy_timeout_ms = 5000;  // how long a write waits for a lock held elsewhere
  // WAL checkpoints on a thread of their own (every checkpoint_interval), not in the commit that
  // crosses SQLite's 1,000-page threshold: the trigger path's group commit then only appends to
  // the WAL and syncs it, instead of stalling on a checkpoint's page writes and syncs of the
  // database file. The commit still checkpoints past 16,384 pages (64 MiB of WAL), a bound
  // if the thread falls behind.
  bool background_checkpoints = true;
  std::chrono::milliseconds checkpoint_interval{200};
  // PostgreSQL (postgres/postgres_store.h): at most this many connections to the server, each
  // used by one call at a time (libpq connections are not thread-safe); a call that finds all
  // of them busy waits up to busy_timeout_ms, then answers Unavailable.
  int max_connections = 8;
  // The time every recorded time is read from, and that the layers above the store read theirs
  // from (clock.h). Must outlive the store. Null: the system clock.
  const Clock* clock = nullptr;
  // A shared store's name for this process among the replicas (docs/scale-out.md): the owner of
  // the executions it accepts. Empty: a random one, new at every start.
  std::string replica;
  // SQLite: an accepted request's log entry is not written by its execution's commit; the commit
  // allocates its id, which the execution names, and the entry is written after it by the
  // request log's writer (RequestLog::record_accepted), under that id. The headers and body
  // excerpt then stay off the trigger path's commit, where the entry cost about a quarter of
  // the plain path's throughput (docs/requests-log.md "Accepted requests"). What a crash leaves
  // unwritten is rebuilt from the executions when the serving process opens the store
  // (recover_request_log). PostgreSQL ignores it.
  bool defer_accepted_log = false;
  // The serving process: at open, rebuild the entries a crash left unwritten (above), whatever
  // defer_accepted_log is now. Never in another process on the same file.
  bool recover_request_log = false;
};

// Execution notifications (docs/webhooks.md): a receiver's subscriber, told when one of its
// executions changes status.
struct SubscriptionRow {
  int64_t id = 0;
  int64_t receiver_id = 0;
  std::string url;
  nlohmann::json secrets;           // {"secret": sealed, "previous_secret": sealed (optional)}
  std::string scheme = "standard";  // or "seed-002"
  std::vector<std::string> events;  // of kNotificationEvents
  bool enabled = true;
  std::string disabled_reason;  // set when tripline disabled it (the subscriber answered 410)
  int64_t dropped = 0;          // notifications not recorded because its backlog was full
  int64_t created_at = 0;
  int64_t updated_at = 0;
};
// The status changes a subscription may ask for: running, succeeded, failed, retrying.
inline constexpr const char* kNotificationEvents[] = {"running", "succeeded", "failed", "retrying"};
inline constexpr int64_t kMaxPendingPerSubscription = 1000;  // then notifications are dropped

struct DeliveryRow {
  int64_t id = 0;
  int64_t subscription_id = 0;
  int64_t receiver_id = 0;
  int64_t execution_id = 0;
  std::string event;
  std::string webhook_id;  // the same for every attempt
  std::string payload;     // the exact body sent
  std::string state;       // pending, delivered, failed
  int attempts = 0;
  int budget_from = 0;  // attempts made before the last re-send by hand
  std::optional<int64_t> next_attempt_at;
  std::optional<int> last_status;
  std::string last_error;
  int64_t created_at = 0;
  std::optional<int64_t> finished_at;
};

struct DeliveryAttemptRow {
  int64_t id = 0;
  int64_t delivery_id = 0;
  int attempt = 0;
  int64_t started_at = 0;
  int64_t latency_ms = 0;
  std::optional<int> status;  // none when no HTTP answer came
  std::string error;
  std::string answer;  // the first bytes of the answer
};

// A due delivery, claimed by the dispatcher, with its subscription (nullopt: deleted meanwhile).
struct ClaimedDelivery {
  DeliveryRow delivery;
  std::optional<SubscriptionRow> subscription;
};

// What one attempt came to (Store::record_delivery_attempt).
struct DeliveryOutcome {
  DeliveryAttemptRow attempt;
  std::string state;                 // pending (retry at next_attempt_at), delivered, failed
  int64_t next_attempt_at = 0;       // for pending
  std::string disable_subscription;  // non-empty: disable it, with this reason (a 410)
};

// What an admin token may do (server/api/routes.cpp holds every route's minimum role). Ordered:
// each role may do everything the ones below it may.
enum class Role { kReadOnly = 0, kOperator = 1, kAdmin = 2 };
const char* to_string(Role r);
std::optional<Role> parse_role(std::string_view s);

struct AdminTokenRow {
  int64_t id = 0;
  std::string name;
  std::string token_hash;  // raw 32 bytes
  int64_t created_at = 0;
  bool from_env = false;  // the row managed from TRIPLINE_ADMIN_TOKEN
  Role role = Role::kAdmin;
};

// One management change, as the audit log records it (migrations/016_admin_roles_audit.sql).
// The store writes it in the same transaction as the change it records.
struct AuditEntry {
  int64_t id = 0;                   // filled when read
  int64_t at = 0;                   // filled by the store (its clock) when written
  std::optional<int64_t> actor_id;  // nullopt: the service itself (start-up)
  std::string actor_name;
  std::string actor_role;
  std::string source;  // the client's address
  std::string action;  // "receiver.create", "token.revoke", ...
  std::string target_type;
  std::optional<int64_t> target_id;  // for a row the change creates: filled with its new id
  std::string target_name;
  nlohmann::json before;  // null: nothing before (a create)
  nlohmann::json after;   // null: nothing after (a delete)
  // For receivers: the state after the change, rendered (secrets redacted) from the row as the
  // transaction left it; fills `after` when set.
  std::function<nlohmann::json(const ReceiverRow&)> render_after;
};

struct AuditFilter {
  int limit = 50;
  int64_t before_id = 0;    // 0: from the newest
  std::string target_type;  // empty: any
  std::optional<int64_t> target_id;
};

// How long audit rows are kept: the newest `keep` rows, none older than max_age_ms (0: either
// bound off; both 0 keeps everything).
struct AuditRetention {
  int64_t max_age_ms = 400LL * 24 * 3600 * 1000;
  int64_t keep = 100000;
  // The count bound removes no row younger than this: a token that may act (an operator pausing
  // the workers over and over) cannot push the record of recent changes out with fresh rows.
  int64_t count_floor_ms = 30LL * 24 * 3600 * 1000;
};

// Every stored JSON text that may hold sealed secrets (secrets.h): receivers' config and auth,
// executions' config. For checking them against the key at start-up and re-sealing them.
struct SealedText {
  enum class Where { kReceiverConfig, kReceiverAuth, kExecutionConfig, kSubscription };
  Where where = Where::kReceiverConfig;
  int64_t id = 0;         // the receiver's or execution's id
  std::string driver;     // whose config it is (its schema names the secret fields)
  bool finished = false;  // an execution that succeeded or failed: never opened again
  std::string text;       // JSON
};

// Defaults of the methods' arguments are the interface's: implementations declare none, so a
// call means the same through any of them.
class Store {
 public:
  // Opens the store `database` names, creating and migrating it as needed: a postgres:// or
  // postgresql:// URL (a libpq connection URI, docs/postgres.md) opens a PostgreSQL database,
  // anything else is the path of a SQLite file. The options are the store's for its life;
  // options.clock must outlive it.
  static Result<std::unique_ptr<Store>> open(const std::string& database,
                                             StoreOptions options = {});
  // Closes the database and stops the store's own background work; no call may be in
  // progress. Nothing that was answered is lost.
  virtual ~Store() = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The clock this store records times by (StoreOptions::clock; the system clock when none
  // was given): the one clock of the service, which the layers above read theirs from.
  virtual const Clock& clock() const = 0;

  // Receivers. Names are unique: a clash answers Conflict. Ids are never reused, not even those
  // of deleted receivers (an execution's receiver_id names one receiver for good). Every
  // committed change bumps `version` and sets updated_at.
  // Every change below takes an optional audit entry, written in the change's own transaction:
  // both are recorded or neither.
  // Stores name, driver, config, rules, auth, limits, enabled and nonce of `r`, at generation 1
  // and version 1.
  virtual Result<ReceiverRow> insert_receiver(const ReceiverRow& r,
                                              const AuditEntry* audit = nullptr) = 0;
  // Replaces name, config, rules, auth, limits and enabled, if the row is still at
  // `expected_version` (else Conflict: it changed meanwhile; NotFound: it is gone). `revoke`
  // bumps the generation.
  virtual Result<ReceiverRow> update_receiver(int64_t id, const ReceiverRow& r,
                                              int64_t expected_version, bool revoke,
                                              const AuditEntry* audit = nullptr) = 0;
  // Disabling revokes (bumps the generation): enabling again issues a new URL.
  virtual Result<ReceiverRow> set_enabled(int64_t id, bool enabled,
                                          const AuditEntry* audit = nullptr) = 0;
  virtual Result<ReceiverRow> bump_generation(int64_t id, const AuditEntry* audit = nullptr) = 0;
  // Deletes the receiver (its subscriptions and deliveries with it) and keeps its name in
  // deleted_receivers for its executions' history (migrations/017_deleted_receiver_names.sql).
  virtual Status delete_receiver(int64_t id, const AuditEntry* audit = nullptr) = 0;
  // The names of receivers `ids`, live or deleted (then as they were when deleted), for the
  // executions the API lists; ids never seen are left out. At most 500 ids (one page).
  struct ReceiverName {
    std::string name;
    bool deleted = false;
  };
  virtual Result<std::map<int64_t, ReceiverName>> receiver_names(
      const std::vector<int64_t>& ids) = 0;
  virtual Result<ReceiverRow> get_receiver(int64_t id) = 0;
  // `limit` receivers by id from the `offset`th; *total (required) is the count of all of
  // them, read in the same snapshot as the page.
  virtual Result<std::vector<ReceiverRow>> list_receivers(int limit, int64_t offset,
                                                          int64_t* total) = 0;
  virtual Result<std::vector<ReceiverRow>> all_receivers() = 0;
  // Up to `limit` receivers with ids above `after_id`, by id: all of them, a page at a time.
  virtual Result<std::vector<ReceiverRow>> receivers_after(int64_t after_id, int limit) = 0;

  // The trigger path. Each execution of a batch is recorded only while its receiver still
  // grants it: it exists, is enabled and is at the execution's generation, checked inside the
  // transaction that inserts it, so a URL revoked after the request was checked but before the
  // commit (the request waited in the ingest queue) records nothing (`revoked`, and its request
  // log entry becomes a 401 revoked_token refusal). An execution whose idempotency key the
  // receiver has recorded already is not recorded again: `replayed`, with the earlier
  // execution's id (its log entry notes "duplicate"). A request log entry is written in the
  // same transaction, its id allocated first so the execution names it (request_id); request
  // log ids are never reused. The pointers of a NewExecution are read during the call only.
  // A shared store also holds each execution to its receiver's limits across the replicas
  // (NewExecution::limits): one over them records nothing (`limited`, and its log entry says
  // which limit, as the replica's own check would have). A replay is answered before the limits
  // are looked at, as on one node.
  // Inserts a batch in ONE synced transaction (the group commit of the trigger path): the 202
  // is sent after it returns. On success every element has its id. On failure nothing of the
  // batch is stored.
  virtual Status insert_executions(std::vector<NewExecution>& batch) = 0;

  // The executor's writes. The status changes below also record a delivery for each of the
  // receiver's subscriptions that asks for the event, in the same transaction (docs/webhooks.md,
  // at most kMaxPendingPerSubscription pending each, else counted as dropped); `target` (what
  // the executor's lane names) goes into the notification. Nothing more when no subscription
  // exists.
  virtual Status mark_running(int64_t id, int attempts, int64_t started_at,
                              std::string_view target = {}) = 0;
  // Synced: a plan is on disk before the driver applies it, so a crash re-applies it, never
  // re-computes it.
  virtual Status record_plan(int64_t id, const nlohmann::json& plan) = 0;
  virtual Status requeue(int64_t id, const std::string& error, int64_t next_attempt_at,
                         std::string_view target = {}) = 0;
  // requeue() for several executions (a lane's, retried together), in ONE transaction.
  // Retries (requeue*) and successes (finish* when every outcome succeeded) commit relaxed: not
  // synced before they return (docs/durability.md). A failure is synced.
  virtual Status requeue_all(const std::vector<int64_t>& ids, const std::string& error,
                             int64_t next_attempt_at, std::string_view target = {}) = 0;
  // A lane's executions planned together (Executor, Driver::plan_after): each marked running
  // with its attempt count and its plan, in ONE synced transaction.
  struct PlannedRun {
    int64_t id = 0;
    int attempts = 0;
    const nlohmann::json* plan = nullptr;
    std::string_view target;
  };
  virtual Status start_planned(const std::vector<PlannedRun>& runs, int64_t started_at) = 0;
  // insert_executions() and the start_planned() of several lanes in ONE synced transaction: the
  // ingest's group commit carries the executor's plan records, so a batch of plans costs no
  // fsync of its own (docs/durability.md). Each lane's plans are recorded in a savepoint: one
  // that fails is rolled back alone and its status set in *plan_status (one per element of
  // `plans`); the answer is the transaction's, and when it fails nothing is recorded.
  struct PlannedBatch {
    const std::vector<PlannedRun>* runs = nullptr;
    int64_t started_at = 0;
  };
  // `deferred_sync`: the transaction is committed without waiting for the disk (it survives a
  // process crash, as a relaxed write) and is durable only after the next sync_wal() returns:
  // the ingest answers its triggers after that (docs/durability.md, "The group commit's sync").
  // Until then other connections may already read its rows.
  virtual Status commit_group(std::vector<NewExecution>& batch,
                              const std::vector<PlannedBatch>& plans,
                              std::vector<Status>* plan_status = nullptr,
                              bool deferred_sync = false) = 0;
  // Makes every commit that returned before the call durable (those of commit_group's
  // deferred_sync above all), callable from any thread while other writes go on: the ingest
  // commits its next batch while the last one's sync runs. An error means no answered write
  // can be trusted to be on disk: the caller stops (Ingest::answer_all).
  virtual Status sync_wal() = 0;
  // Outcomes of several executions, recorded in ONE transaction: relaxed when every outcome
  // succeeded, synced when any failed.
  struct Finished {
    int64_t id = 0;
    ExecutionStatus status = ExecutionStatus::kSucceeded;
    const nlohmann::json* result = nullptr;  // may be null
    std::string error;
    int64_t finished_at = 0;
    std::string_view target;
  };
  virtual Status finish_all(const std::vector<Finished>& outcomes) = 0;
  // A lane's executions whose plans ask for the state the peer was just read at
  // (Driver::settled): nothing is applied, so the plan need not be recorded before an apply.
  // Each is recorded planned AND succeeded (its plan, its result, both status changes for the
  // notifications) by ONE update, in ONE transaction that commits relaxed like any success: if
  // it is lost, the executions are still queued and are planned again (docs/durability.md).
  // runs[i] and outcomes[i] are the same execution. Refused, recording nothing, when any of them
  // has a plan recorded already.
  virtual Status finish_settled(const std::vector<PlannedRun>& runs, int64_t started_at,
                                const std::vector<Finished>& outcomes) = 0;
  // finish_all() of one.
  virtual Status finish(int64_t id, ExecutionStatus status, const nlohmann::json& result,
                        const std::string& error, int64_t finished_at,
                        std::string_view target = {}) = 0;

  // Executions, read.
  virtual Result<ExecutionRow> get_execution(int64_t id) = 0;
  // Newest first.
  virtual Result<std::vector<ExecutionRow>> list_executions(const ExecutionFilter& filter) = 0;
  // Queued or running executions with id > after_id, oldest first, at most `limit` (-1: all):
  // what a restart must pick up, read in pages by the executor.
  virtual Result<std::vector<ExecutionRow>> unfinished_executions(int64_t after_id = 0,
                                                                  int limit = -1) = 0;
  // How many executions each receiver has queued or running: (receiver id, count).
  virtual Result<std::vector<std::pair<int64_t, int64_t>>> unfinished_counts() = 0;
  // The execution that an idempotency key (or a signed message id) already created, if any.
  virtual Result<std::optional<int64_t>> find_execution_by_key(int64_t receiver_id,
                                                               const std::string& key) = 0;
  // A receiver's executions created at or after `since_ms`, oldest first.
  virtual Result<std::vector<RecentExecution>> recent_executions(int64_t receiver_id,
                                                                 int64_t since_ms) = 0;
  // Every receiver's, in one pass (start-up): receiver id -> its executions, oldest first.
  virtual Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> recent_executions(
      int64_t since_ms) = 0;

  // Retention: up to `limit` ids of finished executions the policy lets go, oldest first (a
  // read that takes no write lock), then deleted in one short transaction.
  // Never rows created after `protect_since_ms` (what cooldowns and rate limits are rebuilt
  // from), nor a row with an idempotency key younger than policy.dedupe_window_ms; `over`: the
  // receivers with more than policy.keep_per_receiver executions.
  virtual Result<std::vector<int64_t>> prunable_executions(const RetentionPolicy& policy,
                                                           int64_t now_ms, int64_t protect_since_ms,
                                                           const std::vector<int64_t>& over,
                                                           int limit) = 0;
  virtual Result<std::vector<int64_t>> receivers_over(int64_t count) = 0;
  // Queued or running executions of one receiver.
  virtual Result<int64_t> unfinished_count(int64_t receiver_id) = 0;
  // Deletes those of `ids` that are finished, with their notifications, in one transaction;
  // answers how many.
  virtual Result<int> delete_executions(const std::vector<int64_t>& ids) = 0;

  // An operator's cancel: a queued execution (never started, or waiting to retry) is failed
  // with the error "cancelled", in one synced statement that only matches a queued row
  // (NotFound; Conflict when it is running or finished). The executor must have let go of it
  // first (Executor::cancel).
  // `audit`, when given, is written in the same transaction.
  virtual Status cancel_execution(int64_t id, int64_t now_ms,
                                  const AuditEntry* audit = nullptr) = 0;

  // The receivers whose request log entries the store rebuilt when it opened (StoreOptions::
  // recover_request_log): the log's cap is applied to them (RequestLog::touch), as they may hold
  // more than it after a crash during a flood.
  virtual std::vector<int64_t> rebuilt_request_log_receivers() { return {}; }
  // The request log (docs/requests-log.md). Written in ONE transaction, relaxed like an
  // outcome (a power loss may take the last entries, never an execution); then each receiver
  // in `trim` keeps only its newest `keep_per_receiver` entries (0: no cap), at most
  // `max_trimmed` rows deleted in all: a lowered cap (--request-log 100000 -> 1000) is applied
  // over several calls, each a short write that the trigger path's commits may wait for. The
  // receivers that may still hold more go to `*untrimmed`. Ids are set; rows marked `deferred`
  // keep theirs. `accepted_upto`: every deferred entry with an id up to it is written or no
  // longer wanted (the cap would delete it), which the store remembers in the same
  // transaction: what it rebuilds after a crash starts above it.
  virtual Status insert_request_logs(std::vector<RequestLogRow>& rows,
                                     const std::vector<int64_t>& trim, int64_t keep_per_receiver,
                                     std::vector<int64_t>* untrimmed = nullptr,
                                     int max_trimmed = 2000, int64_t accepted_upto = 0) = 0;
  // Newest first; before_id pages; outcome filters when not empty.
  virtual Result<std::vector<RequestLogRow>> list_request_logs(int64_t receiver_id,
                                                               const std::string& outcome,
                                                               int limit, int64_t before_id) = 0;
  virtual Result<RequestLogRow> get_request_log(int64_t receiver_id, int64_t id) = 0;
  // Age retention: deletes up to `limit` entries received before `before_ms`, oldest first.
  virtual Result<int> prune_request_logs(int64_t before_ms, int limit) = 0;

  // Notification subscriptions (docs/webhooks.md). Secrets arrive sealed and are stored as
  // given.
  virtual Result<SubscriptionRow> insert_subscription(const SubscriptionRow& s,
                                                      const AuditEntry* audit = nullptr) = 0;
  // Replaces url, secrets, scheme, events and enabled (enabling clears disabled_reason).
  virtual Result<SubscriptionRow> update_subscription(const SubscriptionRow& s,
                                                      const AuditEntry* audit = nullptr) = 0;
  // Deletes it with its deliveries and their attempts.
  virtual Status delete_subscription(int64_t receiver_id, int64_t id,
                                     const AuditEntry* audit = nullptr) = 0;
  virtual Result<SubscriptionRow> get_subscription(int64_t receiver_id, int64_t id) = 0;
  virtual Result<std::vector<SubscriptionRow>> list_subscriptions(int64_t receiver_id) = 0;

  // Deliveries: the dispatcher claims one that is due (pushing its next_attempt_at `lease_ms`
  // ahead, so a crash mid-send retries it after the lease, with the same webhook-id), sends it,
  // and records the attempt and what follows in one transaction. Until its lease runs out, no
  // other claim returns the same delivery.
  virtual Result<std::optional<ClaimedDelivery>> claim_due_delivery(int64_t now_ms,
                                                                    int64_t lease_ms) = 0;
  // When the next pending delivery is due (nullopt: none pending).
  virtual Result<std::optional<int64_t>> next_delivery_due() = 0;
  virtual Status record_delivery_attempt(int64_t delivery_id, const DeliveryOutcome& outcome) = 0;
  // A finished delivery due again at once, with a fresh retry budget (NotFound; Conflict when it
  // is pending, its subscription is disabled or gone, or it has had kMaxDeliveryAttempts).
  virtual Status redeliver(int64_t receiver_id, int64_t delivery_id, int64_t now_ms,
                           const AuditEntry* audit = nullptr) = 0;
  static constexpr int kMaxDeliveryAttempts = 200;  // per delivery, re-sends included
  // Newest first; before_id pages; state filters when not empty.
  virtual Result<std::vector<DeliveryRow>> list_deliveries(int64_t receiver_id,
                                                           const std::string& state, int limit,
                                                           int64_t before_id) = 0;
  virtual Result<DeliveryRow> get_delivery(int64_t receiver_id, int64_t id) = 0;
  // The newest `limit` attempts of each delivery, oldest first: delivery id -> attempts.
  virtual Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>> delivery_attempts(
      const std::vector<int64_t>& delivery_ids, int limit) = 0;

  // Durable switches (e.g. "workers_paused"); nullopt when never set.
  virtual Status set_setting(const std::string& name, const std::string& value,
                             const AuditEntry* audit = nullptr) = 0;
  virtual Result<std::optional<std::string>> get_setting(const std::string& name) = 0;

  // Admin credentials: hashes only (token_hash, raw 32 bytes), never a token.
  virtual Result<AdminTokenRow> insert_admin_token(const std::string& name,
                                                   const std::string& token_hash,
                                                   Role role = Role::kAdmin,
                                                   const AuditEntry* audit = nullptr) = 0;
  virtual Result<std::vector<AdminTokenRow>> list_admin_tokens() = 0;
  // Deletes it unless it is the last token with the admin role (Conflict), atomically, so
  // concurrent deletes (or demotions) can never remove the last admin between them.
  virtual Status delete_admin_token(int64_t id, const AuditEntry* audit = nullptr) = 0;
  // Gives the token another role, unless that would leave no admin (Conflict), atomically as
  // delete_admin_token. The row managed from TRIPLINE_ADMIN_TOKEN stays an admin (Conflict).
  virtual Result<AdminTokenRow> set_admin_token_role(int64_t id, Role role,
                                                     const AuditEntry* audit = nullptr) = 0;
  // In one transaction: revokes the rows from_env whose hash is not `token_hash` and stores
  // `token_hash` as the from_env row (if it is not stored yet), an admin. Answers how many were
  // revoked. `audit` (actor, source) is recorded for each token revoked or created.
  virtual Result<int> replace_env_admin_token(const std::string& name,
                                              const std::string& token_hash,
                                              const AuditEntry* audit = nullptr) = 0;

  // The audit log (docs/security.md "Audit log"): newest first. An entry's sides (before,
  // after) are bounded in size when written.
  virtual Result<std::vector<AuditEntry>> list_audit(const AuditFilter& filter) = 0;
  // Records an entry on its own, for acts whose change commits elsewhere (a retry's execution
  // is committed by the ingest's group commit, docs/security.md says so).
  virtual Status record_audit(const AuditEntry& entry) = 0;
  // Deletes audit rows beyond the retention, at most `limit` per call. Answers how many.
  virtual Result<int> prune_audit(const AuditRetention& retention, int64_t now_ms, int limit) = 0;

  // Sealed secrets at rest (secret_keys.h). Only texts that contain a sealed value are listed;
  // finished executions only when asked (a full scan of the history: rotation, not start-up).
  virtual Result<std::vector<SealedText>> sealed_texts(bool include_finished_executions) = 0;
  // Writes the given texts back, all in ONE transaction.
  virtual Status rewrite_sealed_texts(const std::vector<SealedText>& texts) = 0;

  // For /readyz: a write transaction can begin and roll back.
  virtual Status check_writable() = 0;

  // Applied migration versions, ascending, for tests and diagnostics.
  virtual std::vector<int> applied_migrations() = 0;

  // Scale-out (docs/scale-out.md): several tripline processes, replicas, on one database. A
  // SQLite file is one process's own: shared() is false, watch() never calls back, and the
  // signing keys stay in DATA_DIR/keys. The PostgreSQL store is shared.
  virtual bool shared() const = 0;
  // What a replica changed that every replica keeps in memory: a receiver (its id), the admin
  // tokens, a setting (its name), or possibly anything (kEverything: reload all of it).
  struct Change {
    enum class Kind { kEverything, kReceiver, kAdminTokens, kSetting };
    Kind kind = Kind::kEverything;
    int64_t id = 0;
    std::string name;
  };
  // From now on, calls on_change on a thread of the store's, one call at a time, for every such
  // change any replica commits (this one's own included), within a second of its commit; first
  // with kEverything once watching, and again after any gap in which changes may have been
  // missed (a lost connection). Returns at once. The store stops calling before its destructor
  // returns; on_change must not call watch(). A store that is not shared never calls it.
  virtual Status watch(std::function<void(const Change&)> on_change) = 0;
  // The trigger tokens' signing keys of a shared store, as (kid, secret sealed by the caller,
  // secrets.h), by kid ascending. A store that is not shared answers none.
  virtual Result<std::vector<std::pair<std::string, std::string>>> signing_keys() = 0;
  // A shared store's unfinished executions each belong to one replica: the one that accepted
  // them, until its lease runs out and another replica takes them over. unfinished_executions(),
  // unfinished_counts() and unfinished_count() answer only this replica's own
  // (StoreOptions::replica).
  // Renews this replica's lease until `until_ms` (held from the first call). False: it had run
  // out and another replica has taken this one's executions over: this process must not run
  // anything more (the service stops). A store that is not shared answers true.
  virtual Result<bool> renew_lease(int64_t until_ms) = 0;
  // Gives this replica the unfinished executions of every replica whose lease ran out before
  // `now_ms` (each such replica is taken over by one replica only), oldest first, and the
  // target locks it held, each with a new token: the executor runs the executions as after a
  // crash, re-applying a recorded plan, and keeps a lock while such a plan waits.
  struct TakenOver {
    struct Execution {
      int64_t id = 0;
      int64_t receiver_id = 0;
      bool planned = false;  // its plan is recorded: re-applied first, before anything else moves
                             // its target (Executor::adopt)
    };
    std::vector<Execution> executions;
    std::vector<std::pair<std::string, int64_t>> locks;  // lane, token
  };
  virtual Result<TakenOver> take_over_expired(int64_t now_ms) = 0;
  // The lock of a lane (driver + target, executor.h): taken when no replica holds it (a dead
  // replica's stays its own until taken over with its executions), or kept when this replica
  // holds it. Answers its token, or 0 when another replica holds it. Two replicas so never act
  // on one target at once. A store that is not shared answers 1 (one process: the executor's
  // lanes serialise).
  virtual Result<int64_t> lock_target(const std::string& lane, int64_t now_ms) = 0;
  // Releases the lock if this replica still holds it under `token` (a take-over gives a new one).
  virtual Status unlock_target(const std::string& lane, int64_t token) = 0;
  // Adds a key unless one with its kid is stored (replicas that start together may each add a
  // first key: all of them verify everywhere); `replace`: stores this sealed value for the kid
  // whatever was there (re-sealed under a new secrets key). Invalid for a store not shared.
  virtual Status add_signing_key(const std::string& kid, const std::string& sealed_secret,
                                 bool replace = false) = 0;

 protected:
  Store() = default;
};

}  // namespace tripline
