#include "sqlite_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>

#include "log.h"
#include "migrations.h"

namespace tripline {

namespace {

constexpr const char* kReceiverColumns =
    "id, name, driver, config, enabled, generation, created_at, updated_at, rules, auth, limits, "
    "nonce, version";
constexpr const char* kExecutionColumns =
    "id, receiver_id, generation, driver, config, status, attempts, plan, result, error, "
    "created_at, started_at, finished_at, next_attempt_at, action, attempt_errors, request_id, "
    "rule";

// Appends the failed attempt's error (at most 1024 characters) to executions.attempt_errors
// (migrations/014_execution_attempts.sql), then bounds the array to 16 entries: the first and
// the 15 latest.
constexpr const char* kAppendAttemptError =
    "UPDATE executions SET attempt_errors = json_insert(coalesce(attempt_errors, '[]'), '$[#]', "
    "json_object('attempt', attempts, 'at', ?, 'error', substr(?, 1, 1024))) WHERE id = ?";
constexpr const char* kBoundAttemptErrors =
    "UPDATE executions SET attempt_errors = json_remove(attempt_errors, '$[1]') "
    "WHERE id = ? AND json_array_length(attempt_errors) > 16";

std::optional<int64_t> opt_int(const SQLite::Column& c) {
  if (c.isNull()) return std::nullopt;
  return c.getInt64();
}

// Stored JSON was written by us; a row that no longer parses is corruption, reported as an
// error rather than handed on as a discarded value.
nlohmann::json parse_stored(const SQLite::Column& c) {
  auto j = nlohmann::json::parse(c.getString(), nullptr, false);
  if (j.is_discarded())
    throw std::runtime_error(std::string("column ") + c.getName() + " holds invalid JSON");
  return j;
}

nlohmann::json opt_json(const SQLite::Column& c) {
  if (c.isNull()) return nullptr;
  return parse_stored(c);
}

ReceiverRow read_receiver(SQLite::Statement& q) {
  ReceiverRow r;
  r.id = q.getColumn(0).getInt64();
  r.name = q.getColumn(1).getString();
  r.driver = q.getColumn(2).getString();
  r.config = parse_stored(q.getColumn(3));
  r.enabled = q.getColumn(4).getInt() != 0;
  r.generation = q.getColumn(5).getInt64();
  r.created_at = q.getColumn(6).getInt64();
  r.updated_at = q.getColumn(7).getInt64();
  r.rules = opt_json(q.getColumn(8));
  r.auth = opt_json(q.getColumn(9));
  r.limits = opt_json(q.getColumn(10));
  r.nonce = q.getColumn(11).getString();
  r.version = q.getColumn(12).getInt64();
  return r;
}

ExecutionRow read_execution(SQLite::Statement& q) {
  ExecutionRow e;
  e.id = q.getColumn(0).getInt64();
  e.receiver_id = q.getColumn(1).getInt64();
  e.generation = q.getColumn(2).getInt64();
  e.driver = q.getColumn(3).getString();
  e.config = q.getColumn(4).getString();
  e.status = parse_execution_status(q.getColumn(5).getString()).value_or(ExecutionStatus::kFailed);
  e.attempts = q.getColumn(6).getInt();
  e.plan = opt_json(q.getColumn(7));
  e.result = opt_json(q.getColumn(8));
  e.error = q.getColumn(9).isNull() ? "" : q.getColumn(9).getString();
  e.created_at = q.getColumn(10).getInt64();
  e.started_at = opt_int(q.getColumn(11));
  e.finished_at = opt_int(q.getColumn(12));
  e.next_attempt_at = opt_int(q.getColumn(13));
  e.action = q.getColumn(14).isNull() ? "" : q.getColumn(14).getString();
  e.attempt_errors = opt_json(q.getColumn(15));
  if (!e.attempt_errors.is_array()) e.attempt_errors = nlohmann::json::array();
  e.request_id = q.getColumn(16).isNull() ? 0 : q.getColumn(16).getInt64();
  e.rule = opt_json(q.getColumn(17));
  return e;
}

void configure(SQLite::Database& db, const StoreOptions& o) {
  db.setBusyTimeout(o.busy_timeout_ms);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA foreign_keys=ON");
}

// An execution's success, or its return to the queue for a retry, is committed without waiting
// for the disk: synchronous=NORMAL for that one transaction, on the writer's connection, under
// write_mu_. Its WAL frames reach the disk with the next sync of the WAL (a FULL commit, the
// ingest's sync_wal after a group commit) or checkpoint. A power loss can take only such outcomes,
// and recovery then re-applies the recorded plan, which drivers apply idempotently: the world ends
// in the same state, nothing is done twice; a lost retry runs as it would have
// (docs/durability.md). This halves the executor's fsyncs, which otherwise queue on write_mu_ in
// front of the trigger path's commits. SQLite refuses to change the level inside a transaction:
// construct this before the Transaction, so that the commit (or the rollback) comes first and the
// restore after it.
class OutcomeSync {
 public:
  explicit OutcomeSync(SQLite::Database& db) : db_(db) { db_.exec("PRAGMA synchronous=NORMAL"); }
  ~OutcomeSync() {
    try {
      db_.exec("PRAGMA synchronous=FULL");
    } catch (const std::exception& e) {
      // Going on would answer later triggers 202 before their rows are on disk. Setting the
      // level is a flag in SQLite's memory and does not fail short of a broken connection.
      log::error("cannot restore synchronous=FULL; stopping", {{"error", e.what()}});
      std::abort();
    }
  }
  OutcomeSync(const OutcomeSync&) = delete;
  OutcomeSync& operator=(const OutcomeSync&) = delete;

 private:
  SQLite::Database& db_;
};

// Resets a statement kept prepared on a connection on every way out of its use. An error
// (SQLITE_BUSY while taking the write lock) can leave it mid-run, and a statement still running
// keeps every later COMMIT on its connection from completing until it is reset.
class Rewind {
 public:
  explicit Rewind(SQLite::Statement& s) : s_(s) {}
  ~Rewind() { s_.tryReset(); }
  Rewind(const Rewind&) = delete;
  Rewind& operator=(const Rewind&) = delete;

 private:
  SQLite::Statement& s_;
};

template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    if (e.getErrorCode() == SQLITE_CONSTRAINT) return Status::Conflict(e.what());
    if (e.getErrorCode() == SQLITE_BUSY || e.getErrorCode() == SQLITE_FULL ||
        e.getErrorCode() == SQLITE_IOERR)
      return Status::Unavailable(std::string("database: ") + e.what());
    return Status::Internal(std::string("database: ") + e.what());
  } catch (const std::exception& e) {
    return Status::Internal(std::string("database: ") + e.what());
  }
}

}  // namespace

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(checkpoint_mu_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  // Declared before writer_, so destroyed after it unless released here: a statement left
  // open keeps the connection from closing.
  insert_request_log_.reset();
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

namespace {
// A system call on the WAL file failed: what, which file, and errno's reason.
Status wal_error(const char* what, const std::string& path) {
  return Status::Internal(std::string(what) + " " + path + ": " + std::strerror(errno));
}
}  // namespace

Status SqliteStore::open_wal_locked() {
  // fdatasync() on any descriptor of a file writes that file's dirty pages: the ones SQLite's own
  // descriptor wrote. Opened now, right after SQLite opened the file, so that this is SQLite's
  // file and a writeback error is reported to this descriptor too.
  wal_fd_ = ::open(wal_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (wal_fd_ < 0) return wal_error("cannot open the WAL file", wal_path_);
  // The WAL file's name must survive a power loss too: its directory is synced once.
  std::string dir = wal_path_.substr(0, wal_path_.find_last_of('/') + 1);
  int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d < 0 || ::fsync(d) != 0) {
    Status s = wal_error("cannot sync the directory of", wal_path_);
    if (d >= 0) ::close(d);
    return s;
  }
  ::close(d);
  return Status::Ok();
}

Status SqliteStore::sync_wal() {
  std::lock_guard lock(wal_mu_);
  if (wal_fd_ < 0) return Status::Ok();  // not in WAL mode: SQLite synced every commit
  // SQLite keeps its WAL file (same inode) while its connections are open: a file by that name
  // that is another one means SQLite's commits go elsewhere, and no sync here covers them.
  struct stat named {};
  if (::stat(wal_path_.c_str(), &named) != 0)
    return wal_error("cannot find the WAL file", wal_path_);
  struct stat opened {};
  if (::fstat(wal_fd_, &opened) != 0 || opened.st_ino != named.st_ino ||
      opened.st_dev != named.st_dev) {
    errno = ESTALE;
    return wal_error("another file replaced the WAL file", wal_path_);
  }
  if (::fdatasync(wal_fd_) != 0) return wal_error("cannot fdatasync", wal_path_);
  return Status::Ok();
}

void SqliteStore::checkpoint_loop(std::string path, StoreOptions options) {
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX);
    db->setBusyTimeout(0);  // PASSIVE never waits: what it cannot copy now, it copies next time
  } catch (const std::exception& e) {
    log::error("cannot open the database for background checkpoints; commits checkpoint instead",
               {{"error", e.what()}});
    std::lock_guard lock(write_mu_);
    static_cast<void>(guarded([&]() -> Status {
      writer_->exec("PRAGMA wal_autocheckpoint=1000");
      return Status::Ok();
    }));
    return;
  }
  std::unique_lock lock(checkpoint_mu_);
  while (!checkpoint_cv_.wait_for(lock, options.checkpoint_interval, [&] { return stopping_; })) {
    lock.unlock();
    try {
      db->exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const std::exception&) {
      // Busy: the next round copies what this one could not.
    }
    lock.lock();
  }
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::open(const std::string& path,
                                                       StoreOptions options) {
  // Each connection is used under a mutex of ours (write_mu_, read_mu_) or by one thread (the
  // checkpointer), so SQLite's own per-connection mutex (OPEN_FULLMUTEX) only doubled ours; and
  // its allocation statistics, which nothing reads, took a global mutex on every malloc. The
  // statistics can be switched off only before SQLite initialises (else SQLITE_MISUSE, ignored:
  // then they stay on, which costs time, not correctness).
  static const bool kNoMemStatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  static_cast<void>(kNoMemStatus);
  std::unique_ptr<SqliteStore> s(new SqliteStore());
  if (options.clock) s->clock_ = options.clock;
  try {
    s->writer_ = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
    configure(*s->writer_, options);
    Status m = s->migrate();
    if (!m.ok()) return m;
    {
      // WAL mode can be refused (a file system without shared memory): then SQLite syncs every
      // commit itself, deferred ones too, and sync_wal() has nothing to do.
      SQLite::Statement mode(*s->writer_, "PRAGMA journal_mode");
      if (mode.executeStep() && mode.getColumn(0).getString() == "wal") {
        s->wal_path_ = sqlite3_filename_wal(sqlite3_db_filename(s->writer_->getHandle(), "main"));
        std::lock_guard lock(s->wal_mu_);
        if (Status w = s->open_wal_locked(); !w.ok()) return w;
      }
    }
    if (options.background_checkpoints) {
      s->writer_->exec("PRAGMA wal_autocheckpoint=16384");
      // After a spike, a WAL that was reset is truncated back to 64 MiB.
      s->writer_->exec("PRAGMA journal_size_limit=67108864");
      s->checkpointer_ = std::thread(&SqliteStore::checkpoint_loop, s.get(), path, options);
    }
    s->reader_ =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX);
    configure(*s->reader_, options);
    s->insert_execution_ = std::make_unique<SQLite::Statement>(
        *s->writer_,
        // Only while the receiver still grants it: a URL revoked after the request was checked
        // but before this commit (the request waited in the ingest queue) records nothing.
        "INSERT INTO executions (receiver_id, generation, driver, config, idempotency_key, "
        "status, created_at, action, request_id, rule) "
        "SELECT ?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, ?8, ?9 "
        "WHERE EXISTS (SELECT 1 FROM receivers WHERE id = ?1 AND generation = ?2 AND enabled) "
        "ON CONFLICT (receiver_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING");
    s->insert_request_log_ = std::make_unique<SQLite::Statement>(
        *s->writer_,
        // OR REPLACE: a deferred entry written after a rebuild made its row (excerpt_lost) wins.
        "INSERT OR REPLACE INTO requests_log (id, receiver_id, received_at, outcome, status, "
        "error, detail, source, method, headers, body, body_size, body_truncated, execution_id, "
        "replay_of, token_redacted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s->defer_accepted_log_ = options.defer_accepted_log;
    // Before the next id is read: it restores ids. Only in the serving process: another one
    // (a CLI command on the file) would write entries the server still holds in memory.
    if (options.recover_request_log) s->rebuild_deferred_request_logs();
    s->next_request_id_ = s->highest_request_id_locked() + 1;
    s->find_idempotent_ = std::make_unique<SQLite::Statement>(
        *s->writer_, "SELECT id FROM executions WHERE receiver_id = ? AND idempotency_key = ?");
    // A notification carries the plan and the result, but never a large one: a webhook plan
    // holds the whole request body (up to 1 MiB), and 1,000 pending deliveries of it per
    // subscription would be a GiB. The webhook's body is left out; any other plan or result
    // over 16 KiB is replaced by {"truncated": true} (docs/webhooks.md).
    static constexpr const char* kNotificationPlan =
        "(CASE WHEN e.driver = 'webhook' THEN json_remove(json(e.plan), '$.body') "
        "WHEN length(e.plan) > 16384 THEN json_object('truncated', json('true')) "
        "ELSE json(e.plan) END)";
    static constexpr const char* kNotificationResult =
        "(CASE WHEN length(e.result) > 16384 THEN json_object('truncated', json('true')) "
        "ELSE json(e.result) END)";
    // One delivery per subscription of the execution's receiver that asks for the event and
    // whose backlog has room; the body (docs/webhooks.md) is fixed now, as is its webhook-id.
    s->note_delivery_ = std::make_unique<SQLite::Statement>(
        *s->writer_,
        "INSERT INTO deliveries (subscription_id, receiver_id, execution_id, event, webhook_id, "
        "payload, state, next_attempt_at, created_at) "
        "SELECT s.id, e.receiver_id, e.id, ?2, 'msg_' || lower(hex(randomblob(16))), "
        "json_object('type', 'execution.' || ?2, 'timestamp', "
        "strftime('%Y-%m-%dT%H:%M:%fZ', ?4 / 1000.0, 'unixepoch'), 'data', json_object("
        "'execution_id', e.id, 'receiver_id', e.receiver_id, "
        "'receiver', (SELECT name FROM receivers WHERE id = e.receiver_id), "
        "'driver', e.driver, 'target', ?3, 'action', e.action, 'status', ?2, "
        "'attempt', e.attempts, 'plan', " +
            std::string(kNotificationPlan) + ", 'result', " + std::string(kNotificationResult) +
            ", "
            "'error', e.error)), 'pending', ?4, ?4 "
            "FROM executions e JOIN subscriptions s ON s.receiver_id = e.receiver_id "
            "WHERE e.id = ?1 AND s.enabled AND EXISTS (SELECT 1 FROM json_each(s.events) "
            "WHERE value = ?2) AND (SELECT count(*) FROM deliveries d WHERE d.subscription_id = "
            "s.id "
            "AND d.state = 'pending') < ?5");
    s->note_dropped_ = std::make_unique<SQLite::Statement>(
        *s->writer_,
        "UPDATE subscriptions SET dropped = dropped + 1 WHERE receiver_id = "
        "(SELECT receiver_id FROM executions WHERE id = ?1) AND enabled AND EXISTS "
        "(SELECT 1 FROM json_each(events) WHERE value = ?2) AND (SELECT count(*) FROM deliveries "
        "d WHERE d.subscription_id = subscriptions.id AND d.state = 'pending') >= ?3");
    {
      std::lock_guard lock(s->write_mu_);
      s->refresh_any_subscriptions_locked();
    }
  } catch (const std::exception& e) {
    return Status::Internal("cannot open database " + path + ": " + e.what());
  }
  return s;
}

Status SqliteStore::migrate() {
  writer_->exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
      "NULL, applied_at INTEGER NOT NULL)");
  for (const Migration& m : embedded_migrations()) {
    SQLite::Statement seen(*writer_, "SELECT 1 FROM schema_migrations WHERE version = ?");
    seen.bind(1, m.version);
    if (seen.executeStep()) continue;
    try {
      SQLite::Transaction tx(*writer_);
      writer_->exec(std::string(m.sql));
      SQLite::Statement rec(
          *writer_, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)");
      rec.bind(1, m.version);
      rec.bind(2, std::string(m.name));
      rec.bind(3, now_ms());
      rec.exec();
      tx.commit();
    } catch (const std::exception& e) {
      return Status::Internal("migration " + std::string(m.name) + " failed: " + e.what());
    }
  }
  return Status::Ok();
}

std::vector<int> SqliteStore::applied_migrations() {
  std::lock_guard lock(read_mu_);
  std::vector<int> out;
  SQLite::Statement q(*reader_, "SELECT version FROM schema_migrations ORDER BY version");
  while (q.executeStep()) out.push_back(q.getColumn(0).getInt());
  return out;
}

// --- receivers ---------------------------------------------------------------------------

namespace {
void bind_json(SQLite::Statement& q, int index, const nlohmann::json& j) {
  if (j.is_null())
    q.bind(index);
  else
    q.bind(index, j.dump());
}
}  // namespace

Result<ReceiverRow> SqliteStore::insert_receiver(const ReceiverRow& r, const AuditEntry* audit) {
  auto id = guarded([&]() -> Result<int64_t> {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(
        *writer_,
        "INSERT INTO receivers (name, driver, config, rules, auth, limits, enabled, "
        "created_at, updated_at, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    int64_t now = now_ms();
    q.bind(1, r.name);
    q.bind(2, r.driver);
    q.bind(3, r.config.dump());
    bind_json(q, 4, r.rules);
    bind_json(q, 5, r.auth);
    bind_json(q, 6, r.limits);
    q.bind(7, r.enabled ? 1 : 0);
    q.bind(8, now);
    q.bind(9, now);
    q.bind(10, r.nonce);
    q.exec();
    int64_t id = writer_->getLastInsertRowid();
    if (audit) {
      ReceiverRow now_row = receiver_locked(id);
      audit_locked(*audit, id, &now_row);
    }
    tx.commit();
    return id;
  });
  if (!id.ok()) {
    if (id.status().code() == Status::Code::kConflict)
      return Status::Conflict("a receiver named \"" + r.name + "\" already exists");
    return id.status();
  }
  return get_receiver(*id);
}

// Runs one UPDATE on a receiver, and its audit entry in the same transaction; NotFound when no
// row changed.
template <typename Bind>
Status SqliteStore::update_one(int64_t id, const char* sql, const AuditEntry* audit, Bind&& bind) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_, sql);
    bind(q);
    if (q.exec() == 0) return Status::NotFound("no such receiver");
    if (audit) {
      ReceiverRow row = receiver_locked(id);
      audit_locked(*audit, std::nullopt, &row);
    }
    tx.commit();
    return Status::Ok();
  });
}

Result<ReceiverRow> SqliteStore::update_receiver(int64_t id, const ReceiverRow& r,
                                                 int64_t expected_version, bool revoke,
                                                 const AuditEntry* audit) {
  Status s =
      update_one(id,
                 "UPDATE receivers SET name = ?, config = ?, rules = ?, auth = ?, limits = ?, "
                 "enabled = ?, generation = generation + ?, version = version + 1, "
                 "updated_at = ? WHERE id = ? AND version = ?",
                 audit, [&](SQLite::Statement& q) {
                   q.bind(1, r.name);
                   q.bind(2, r.config.dump());
                   bind_json(q, 3, r.rules);
                   bind_json(q, 4, r.auth);
                   bind_json(q, 5, r.limits);
                   q.bind(6, r.enabled ? 1 : 0);
                   q.bind(7, revoke ? 1 : 0);
                   q.bind(8, now_ms());
                   q.bind(9, id);
                   q.bind(10, expected_version);
                 });
  if (s.code() == Status::Code::kConflict)
    return Status::Conflict("a receiver named \"" + r.name + "\" already exists");
  if (s.code() == Status::Code::kNotFound) {
    // No row at that version: either it is gone, or it changed while this edit was checked.
    auto now = get_receiver(id);
    if (!now.ok()) return now.status();
    return Status::Conflict(
        "the receiver changed while this edit was being checked; reload it and try again");
  }
  if (!s.ok()) return s;
  return get_receiver(id);
}

Result<ReceiverRow> SqliteStore::set_enabled(int64_t id, bool enabled, const AuditEntry* audit) {
  Status s = update_one(id,
                        // Disabling an enabled receiver revokes its URL.
                        "UPDATE receivers SET generation = generation + (enabled AND NOT ?1), "
                        "enabled = ?1, version = version + 1, updated_at = ?2 WHERE id = ?3",
                        audit, [&](SQLite::Statement& q) {
                          q.bind(1, enabled ? 1 : 0);
                          q.bind(2, now_ms());
                          q.bind(3, id);
                        });
  if (!s.ok()) return s;
  return get_receiver(id);
}

Result<ReceiverRow> SqliteStore::bump_generation(int64_t id, const AuditEntry* audit) {
  Status s = update_one(id,
                        "UPDATE receivers SET generation = generation + 1, version = version + 1, "
                        "updated_at = ? WHERE id = ?",
                        audit, [&](SQLite::Statement& q) {
                          q.bind(1, now_ms());
                          q.bind(2, id);
                        });
  if (!s.ok()) return s;
  return get_receiver(id);
}

Status SqliteStore::delete_receiver(int64_t id, const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    // Its name outlives it, for the executions that stay in the history (migration 017).
    SQLite::Statement keep(*writer_,
                           "INSERT OR REPLACE INTO deleted_receivers (id, name, deleted_at) "
                           "SELECT id, name, ? FROM receivers WHERE id = ?");
    keep.bind(1, now_ms());
    keep.bind(2, id);
    keep.exec();
    SQLite::Statement q(*writer_, "DELETE FROM receivers WHERE id = ?");
    q.bind(1, id);
    if (q.exec() == 0) return Status::NotFound("no such receiver");
    // Its subscriptions, and their deliveries, go with it.
    for (const char* sql : {"DELETE FROM delivery_attempts WHERE delivery_id IN "
                            "(SELECT id FROM deliveries WHERE receiver_id = ?)",
                            "DELETE FROM deliveries WHERE receiver_id = ?",
                            "DELETE FROM subscriptions WHERE receiver_id = ?",
                            "DELETE FROM requests_log WHERE receiver_id = ?"}) {
      SQLite::Statement d(*writer_, sql);
      d.bind(1, id);
      d.exec();
    }
    if (audit) audit_locked(*audit);
    refresh_any_subscriptions_locked();
    tx.commit();
    return Status::Ok();
  });
}

Result<std::map<int64_t, Store::ReceiverName>> SqliteStore::receiver_names(
    const std::vector<int64_t>& ids) {
  return guarded([&]() -> Result<std::map<int64_t, ReceiverName>> {
    if (ids.size() > 500) return Status::Invalid("at most 500 receiver ids at once");
    std::lock_guard lock(read_mu_);
    std::map<int64_t, ReceiverName> out;
    SQLite::Statement q(*reader_,
                        "SELECT name, 0 FROM receivers WHERE id = ?1 UNION ALL "
                        "SELECT name, 1 FROM deleted_receivers WHERE id = ?1 LIMIT 1");
    for (int64_t id : ids) {
      if (out.count(id)) continue;
      q.tryReset();
      q.bind(1, id);
      if (q.executeStep()) out[id] = {q.getColumn(0).getString(), q.getColumn(1).getInt() != 0};
    }
    return out;
  });
}

Result<ReceiverRow> SqliteStore::get_receiver(int64_t id) {
  return guarded([&]() -> Result<ReceiverRow> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        std::string("SELECT ") + kReceiverColumns + " FROM receivers WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return Status::NotFound("no receiver with id " + std::to_string(id));
    return read_receiver(q);
  });
}

Result<std::vector<ReceiverRow>> SqliteStore::list_receivers(int limit, int64_t offset,
                                                             int64_t* total) {
  return guarded([&]() -> Result<std::vector<ReceiverRow>> {
    std::lock_guard lock(read_mu_);
    std::vector<ReceiverRow> out;
    // One read transaction, so the total and the page agree.
    SQLite::Transaction tx(*reader_, SQLite::TransactionBehavior::DEFERRED);
    SQLite::Statement count(*reader_, "SELECT count(*) FROM receivers");
    count.executeStep();
    *total = count.getColumn(0).getInt64();
    // The page starts at the id OFFSET rows in, found along the narrow id index (migration 011).
    SQLite::Statement q(*reader_, std::string("SELECT ") + kReceiverColumns +
                                      " FROM receivers WHERE id >= (SELECT id FROM receivers "
                                      "INDEXED BY receivers_by_id ORDER BY id LIMIT 1 OFFSET ?2) "
                                      "ORDER BY id LIMIT ?1");
    q.bind(1, limit);
    q.bind(2, offset);
    while (q.executeStep()) out.push_back(read_receiver(q));
    return out;
  });
}

Result<std::vector<ReceiverRow>> SqliteStore::receivers_after(int64_t after_id, int limit) {
  return guarded([&]() -> Result<std::vector<ReceiverRow>> {
    std::lock_guard lock(read_mu_);
    std::vector<ReceiverRow> out;
    SQLite::Statement q(*reader_, std::string("SELECT ") + kReceiverColumns +
                                      " FROM receivers WHERE id > ? ORDER BY id LIMIT ?");
    q.bind(1, after_id);
    q.bind(2, limit);
    while (q.executeStep()) out.push_back(read_receiver(q));
    return out;
  });
}

Result<std::vector<ReceiverRow>> SqliteStore::all_receivers() {
  return guarded([&]() -> Result<std::vector<ReceiverRow>> {
    std::lock_guard lock(read_mu_);
    std::vector<ReceiverRow> out;
    SQLite::Statement q(*reader_, std::string("SELECT ") + kReceiverColumns + " FROM receivers");
    while (q.executeStep()) out.push_back(read_receiver(q));
    return out;
  });
}

// --- executions --------------------------------------------------------------------------

Status SqliteStore::insert_executions(std::vector<NewExecution>& batch) {
  return commit_group(batch, {}, nullptr, false);
}

Status SqliteStore::commit_group(std::vector<NewExecution>& batch,
                                 const std::vector<PlannedBatch>& plans,
                                 std::vector<Status>* plan_status, bool deferred_sync) {
  if (plan_status) plan_status->assign(plans.size(), Status::Ok());
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    std::optional<OutcomeSync> deferred;  // before the transaction: restored after its commit
    if (deferred_sync && wal_fd_ >= 0) deferred.emplace(*writer_);
    SQLite::Transaction tx(*writer_);
    insert_executions_locked(batch);
    // Each lane's plans in a savepoint of their own: plans that cannot be recorded fail their
    // worker alone (it records them again later), not the triggers or the other lanes.
    for (size_t i = 0; i < plans.size(); ++i) {
      writer_->exec("SAVEPOINT plans");
      Status s = guarded([&]() -> Status {
        start_planned_locked(*plans[i].runs, plans[i].started_at);
        return Status::Ok();
      });
      if (!s.ok()) writer_->exec("ROLLBACK TO plans");
      writer_->exec("RELEASE plans");
      if (plan_status) (*plan_status)[i] = std::move(s);
    }
    tx.commit();
    return Status::Ok();
  });
}

void SqliteStore::insert_executions_locked(std::vector<NewExecution>& batch) {
  SQLite::Statement& q = *insert_execution_;
  Rewind rewind(q), rewind_find(*find_idempotent_);
  for (NewExecution& e : batch) {
    // tryReset: reset() re-throws the error of the statement's last step, so one failed
    // commit (a lock held elsewhere) would fail the next batch too.
    q.tryReset();
    q.bind(1, e.receiver_id);
    q.bind(2, e.generation);
    q.bindNoCopy(3, *e.driver);
    q.bindNoCopy(4, *e.config);
    if (e.idempotency_key.empty())
      q.bind(5);
    else
      q.bindNoCopy(5, e.idempotency_key);
    q.bind(6, e.created_at);
    if (e.action)
      q.bindNoCopy(7, *e.action);
    else
      q.bind(7);
    // The log entry's id is allocated first, so the execution names it in its own row.
    if (e.request) {
      e.request->id = next_request_id_++;
      q.bind(8, e.request->id);
    } else {
      q.bind(8);
    }
    std::string rule;
    if (e.rule && !e.rule->is_null()) {
      rule = e.rule->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      q.bindNoCopy(9, rule);
    } else {
      q.bind(9);
    }
    e.revoked = false;
    e.replayed = false;
    e.limited = LimitRefusal::kNone;  // one process: the replica's own check was the whole one
    e.limit_wait = 0;
    e.id = 0;
    if (q.exec() == 1) {
      e.id = writer_->getLastInsertRowid();
    } else if (e.idempotency_key.empty()) {
      e.revoked = true;
    } else {
      SQLite::Statement& f = *find_idempotent_;
      f.tryReset();
      f.bind(1, e.receiver_id);
      f.bindNoCopy(2, e.idempotency_key);
      if (!f.executeStep()) {  // not a repeat: the receiver no longer grants it
        e.revoked = true;
      } else {
        e.id = f.getColumn(0).getInt64();
        e.replayed = true;
      }
    }
    if (!e.request) continue;
    RequestLogRow& r = *e.request;
    if (e.revoked) {
      r.outcome = "refused";
      r.status = 401;
      r.error = "revoked_token";
      r.detail = {{"check", "revoked"},
                  {"message", "the trigger URL was revoked while the request was being recorded"}};
    } else {
      r.execution_id = e.id;
      if (e.replayed) {
        r.detail["duplicate"] = true;  // the earlier execution answered
      } else if (defer_accepted_log_) {
        r.deferred = true;  // its id is allocated and named by the execution: written later
        continue;
      }
    }
    insert_request_log_locked(r);
  }
}

void SqliteStore::insert_request_log_locked(RequestLogRow& r) {
  if (r.id == 0) r.id = next_request_id_++;
  SQLite::Statement& q = *insert_request_log_;
  Rewind rewind(q);
  q.tryReset();
  q.bind(1, r.id);
  q.bind(2, r.receiver_id);
  q.bind(3, r.received_at);
  q.bindNoCopy(4, r.outcome);
  q.bind(5, r.status);
  if (r.error.empty())
    q.bind(6);
  else
    q.bindNoCopy(6, r.error);
  // A compared value is whatever the request held (a header of byte 0xFF): not UTF-8 text is
  // stored with U+FFFD, where nlohmann's strict dump would throw and lose the whole batch.
  std::string detail =
      r.detail.is_null() ? std::string("{}")
                         : r.detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  q.bindNoCopy(7, detail);
  q.bindNoCopy(8, r.source);
  q.bindNoCopy(9, r.method);
  q.bindNoCopy(10, r.headers);
  q.bindNoCopy(11, r.body);
  q.bind(12, r.body_size);
  q.bind(13, r.body_truncated ? 1 : 0);
  if (r.execution_id)
    q.bind(14, r.execution_id);
  else
    q.bind(14);
  if (r.replay_of)
    q.bind(15, r.replay_of);
  else
    q.bind(15);
  q.bind(16, r.token_redacted ? 1 : 0);
  q.exec();
}

namespace {
// How far the deferred entries of accepted requests are written (StoreOptions::
// defer_accepted_log): every entry with an id up to this one is written, or no longer wanted by
// the cap. Request ids are never reused (AUTOINCREMENT), so it only moves forward.
constexpr const char* kSetDeferredUpto =
    "INSERT INTO settings (name, value) VALUES ('request_log_deferred_upto', ?1) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value "
    "WHERE CAST(excluded.value AS INTEGER) > CAST(settings.value AS INTEGER)";
// The executions a rebuild looks at: the newest, by id. SQLite gives a new row the largest id
// present + 1, so the newest ids are the last inserted, and an entry waits in memory only while
// the log's byte budget holds it (a few thousand entries at most, RequestLog::Options).
constexpr int64_t kRebuildWindow = 50000;
}  // namespace

int64_t SqliteStore::highest_request_id_locked() {
  // AUTOINCREMENT's sequence: ids of deleted entries are never handed out again, so an
  // execution's request_id never names another request. And the deferred entries' note: ids an
  // execution may name with no row (its receiver deleted before the entry was written).
  SQLite::Statement q(*writer_,
                      "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = "
                      "'requests_log'), 0), coalesce((SELECT max(id) FROM requests_log), 0), "
                      "coalesce((SELECT CAST(value AS INTEGER) FROM settings WHERE name = "
                      "'request_log_deferred_upto'), 0))");
  return q.executeStep() ? q.getColumn(0).getInt64() : 0;
}

void SqliteStore::rebuild_deferred_request_logs() {
  std::lock_guard lock(write_mu_);
  SQLite::Transaction tx(*writer_);
  int64_t upto = 0;
  bool known = false;
  {
    SQLite::Statement q(*writer_,
                        "SELECT CAST(value AS INTEGER) FROM settings "
                        "WHERE name = 'request_log_deferred_upto'");
    if (q.executeStep()) {
      upto = q.getColumn(0).getInt64();
      known = true;
    }
  }
  int64_t first = 0;  // the window's first execution id
  {
    SQLite::Statement q(*writer_, "SELECT coalesce(max(id), 0) FROM executions");
    if (q.executeStep()) first = q.getColumn(0).getInt64() - kRebuildWindow;
  }
  // The newest request id named anywhere: the log's own, and its executions'.
  int64_t newest = highest_request_id_locked();
  {
    SQLite::Statement q(*writer_,
                        "SELECT coalesce(max(request_id), 0) FROM executions WHERE id > ?1");
    q.bind(1, first);
    if (q.executeStep()) newest = std::max(newest, q.getColumn(0).getInt64());
  }
  // Unknown: a database from before deferred entries (or a new one); every entry so far was
  // written by its execution's commit, and one missing since was deleted by the cap or the age
  // retention and must stay so.
  if (known && newest > upto) {
    // What was accepted and recorded, but not yet written to the log when tripline stopped: its
    // execution knows when, which receiver and which rule; the request's excerpt (source,
    // headers, body) was in memory only. Shown as such, under the id the execution names; not
    // for a receiver deleted since.
    SQLite::Statement w(
        *writer_,
        "INSERT OR IGNORE INTO requests_log (id, receiver_id, received_at, outcome, status, "
        "detail, source, method, headers, body, body_size, execution_id) "
        "SELECT e.request_id, e.receiver_id, e.created_at, 'accepted', 202, "
        "json_patch(CASE WHEN e.rule IS NULL THEN '{}' ELSE json_object('rule', json(e.rule)) "
        "END, json_object('excerpt_lost', 'tripline stopped before the request''s source, "
        "headers and body were written; its execution was recorded')), "
        "'unknown', 'POST', '[]', '', 0, e.id FROM executions e "
        "WHERE e.id > ?2 AND e.request_id > ?1 "
        "AND NOT EXISTS (SELECT 1 FROM requests_log l WHERE l.id = e.request_id) "
        "AND EXISTS (SELECT 1 FROM receivers r WHERE r.id = e.receiver_id) "
        "RETURNING receiver_id");
    w.bind(1, upto);
    w.bind(2, first);
    size_t rebuilt = 0;
    for (; w.executeStep(); ++rebuilt) rebuilt_receivers_.push_back(w.getColumn(0).getInt64());
    std::sort(rebuilt_receivers_.begin(), rebuilt_receivers_.end());
    rebuilt_receivers_.erase(std::unique(rebuilt_receivers_.begin(), rebuilt_receivers_.end()),
                             rebuilt_receivers_.end());
    if (rebuilt > 0)
      log::warn("request log: entries of accepted requests rebuilt from their executions",
                {{"entries", rebuilt}});
  }
  // Known from now on (0 in a new database): a crash before the first entry is written still
  // rebuilds it at the next start.
  if (newest > upto || !known) {
    SQLite::Statement w(*writer_, kSetDeferredUpto);
    w.bind(1, newest);
    w.exec();
  }
  tx.commit();
}

Status SqliteStore::insert_request_logs(std::vector<RequestLogRow>& rows,
                                        const std::vector<int64_t>& trim, int64_t keep_per_receiver,
                                        std::vector<int64_t>* untrimmed, int max_trimmed,
                                        int64_t accepted_upto) {
  std::vector<int64_t> left;
  Status s = guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    OutcomeSync relaxed(*writer_);
    // An entry that reached the log's writer after its receiver was deleted is not written: the
    // delete took the receiver's entries, and nothing would show or trim this one. Checked
    // before the transaction (the receivers are deleted under write_mu_ too, which this holds):
    // a read inside it would make its first write fail at once, without waiting busy_timeout_ms,
    // while another process holds the write lock (SQLite waits for the lock only when the
    // connection holds no read transaction).
    // (A receiver deleted by another process, a CLI command on the file, between this check and
    // the transaction leaves its entry behind, as before the check.)
    std::vector<int64_t> gone;
    {
      std::vector<int64_t> named;
      for (const RequestLogRow& r : rows) named.push_back(r.receiver_id);
      std::sort(named.begin(), named.end());
      named.erase(std::unique(named.begin(), named.end()), named.end());
      SQLite::Statement& exists =
          writer_statement(receiver_exists_, "SELECT 1 FROM receivers WHERE id = ?");
      Rewind rewind(exists);
      for (int64_t id : named) {
        exists.tryReset();
        exists.bind(1, id);
        if (!exists.executeStep()) gone.push_back(id);
      }
    }
    SQLite::Transaction tx(*writer_);
    for (RequestLogRow& r : rows) {
      if (!gone.empty() && std::binary_search(gone.begin(), gone.end(), r.receiver_id)) continue;
      if (!r.deferred) r.id = 0;  // a deferred entry keeps the id its execution names
      insert_request_log_locked(r);
    }
    if (accepted_upto > 0) {
      SQLite::Statement w(*writer_, kSetDeferredUpto);
      w.bind(1, accepted_upto);
      w.exec();
    }
    if (keep_per_receiver > 0 && !trim.empty()) {
      // The newest N stay: the oldest of what is at or below the (N+1)th newest id go, at most
      // `budget` of them (both by the index on (receiver_id, id)).
      SQLite::Statement d(*writer_,
                          "DELETE FROM requests_log WHERE id IN (SELECT id FROM requests_log "
                          "WHERE receiver_id = ?1 AND id <= (SELECT id FROM requests_log WHERE "
                          "receiver_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2) ORDER BY id "
                          "LIMIT ?3)");
      int budget = std::max(max_trimmed, 1);
      for (int64_t receiver : trim) {
        if (budget > 0) {
          d.tryReset();
          d.bind(1, receiver);
          d.bind(2, keep_per_receiver);
          d.bind(3, budget);
          budget -= d.exec();
        }
        if (budget <= 0) left.push_back(receiver);  // may hold more: the next call goes on
      }
    }
    tx.commit();
    return Status::Ok();
  });
  if (s.ok() && untrimmed) *untrimmed = std::move(left);
  return s;
}

namespace {
constexpr const char* kRequestLogColumns =
    "id, receiver_id, received_at, outcome, status, error, detail, source, method, headers, "
    "body, body_size, body_truncated, execution_id, replay_of, token_redacted";

RequestLogRow read_request_log(SQLite::Statement& q) {
  RequestLogRow r;
  r.id = q.getColumn(0).getInt64();
  r.receiver_id = q.getColumn(1).getInt64();
  r.received_at = q.getColumn(2).getInt64();
  r.outcome = q.getColumn(3).getString();
  r.status = q.getColumn(4).getInt();
  r.error = q.getColumn(5).isNull() ? "" : q.getColumn(5).getString();
  r.detail = opt_json(q.getColumn(6));
  if (!r.detail.is_object()) r.detail = nlohmann::json::object();
  r.source = q.getColumn(7).getString();
  r.method = q.getColumn(8).getString();
  r.headers = q.getColumn(9).getString();
  r.body = q.getColumn(10).getString();
  r.body_size = q.getColumn(11).getInt64();
  r.body_truncated = q.getColumn(12).getInt() != 0;
  r.execution_id = q.getColumn(13).isNull() ? 0 : q.getColumn(13).getInt64();
  r.replay_of = q.getColumn(14).isNull() ? 0 : q.getColumn(14).getInt64();
  r.token_redacted = q.getColumn(15).getInt() != 0;
  return r;
}
}  // namespace

Result<std::vector<RequestLogRow>> SqliteStore::list_request_logs(int64_t receiver_id,
                                                                  const std::string& outcome,
                                                                  int limit, int64_t before_id) {
  return guarded([&]() -> Result<std::vector<RequestLogRow>> {
    std::lock_guard lock(read_mu_);
    std::string sql = std::string("SELECT ") + kRequestLogColumns +
                      " FROM requests_log WHERE receiver_id = ?1 AND (?2 = 0 OR id < ?2)";
    if (!outcome.empty()) sql += " AND outcome = ?3";
    sql += " ORDER BY id DESC LIMIT ?4";
    SQLite::Statement q(*reader_, sql);
    q.bind(1, receiver_id);
    q.bind(2, before_id);
    if (!outcome.empty()) q.bind(3, outcome);
    q.bind(4, limit);
    std::vector<RequestLogRow> out;
    while (q.executeStep()) out.push_back(read_request_log(q));
    return out;
  });
}

Result<RequestLogRow> SqliteStore::get_request_log(int64_t receiver_id, int64_t id) {
  return guarded([&]() -> Result<RequestLogRow> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, std::string("SELECT ") + kRequestLogColumns +
                                      " FROM requests_log WHERE receiver_id = ? AND id = ?");
    q.bind(1, receiver_id);
    q.bind(2, id);
    if (!q.executeStep()) return Status::NotFound("no such request in the log");
    return read_request_log(q);
  });
}

Result<int> SqliteStore::prune_request_logs(int64_t before_ms, int limit) {
  return guarded([&]() -> Result<int> {
    std::lock_guard lock(write_mu_);
    OutcomeSync relaxed(*writer_);
    SQLite::Statement q(*writer_,
                        "DELETE FROM requests_log WHERE id IN (SELECT id FROM requests_log "
                        "WHERE received_at < ? ORDER BY received_at LIMIT ?)");
    q.bind(1, before_ms);
    q.bind(2, limit);
    return q.exec();
  });
}

Status SqliteStore::cancel_execution(int64_t id, int64_t now_ms, const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_,
                        "UPDATE executions SET status = 'failed', error = 'cancelled', "
                        "finished_at = ?, next_attempt_at = NULL WHERE id = ? AND status = "
                        "'queued'");
    q.bind(1, now_ms);
    q.bind(2, id);
    if (q.exec() == 0) {
      SQLite::Statement s(*writer_, "SELECT status FROM executions WHERE id = ?");
      s.bind(1, id);
      if (!s.executeStep()) return Status::NotFound("no such execution");
      return Status::Conflict(
          "only a queued execution (or one waiting to retry) can be "
          "cancelled; this one is " +
          s.getColumn(0).getString());
    }
    note_status_locked(id, "failed", {}, now_ms);
    if (audit) audit_locked(*audit);
    tx.commit();
    return Status::Ok();
  });
}

namespace {
template <typename Bind>
Status exec_write(std::mutex& mu, SQLite::Database& db, const char* sql, Bind&& bind) {
  return guarded([&]() -> Status {
    std::lock_guard lock(mu);
    SQLite::Statement q(db, sql);
    bind(q);
    q.exec();
    return Status::Ok();
  });
}
}  // namespace

Status SqliteStore::mark_running(int64_t id, int attempts, int64_t started_at,
                                 std::string_view target) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(
        *writer_,
        "UPDATE executions SET status = 'running', attempts = ?, "
        "started_at = coalesce(started_at, ?), next_attempt_at = NULL WHERE id = ?");
    q.bind(1, attempts);
    q.bind(2, started_at);
    q.bind(3, id);
    q.exec();
    note_status_locked(id, "running", target, started_at);
    tx.commit();
    return Status::Ok();
  });
}

Status SqliteStore::record_plan(int64_t id, const nlohmann::json& plan) {
  return exec_write(write_mu_, *writer_, "UPDATE executions SET plan = ? WHERE id = ?",
                    [&](SQLite::Statement& q) {
                      q.bind(1, plan.dump());
                      q.bind(2, id);
                    });
}

namespace {
// One failed attempt into the execution's bounded history (kAppendAttemptError).
void append_attempt_error(SQLite::Statement& append, SQLite::Statement& bound, int64_t id,
                          int64_t at, const std::string& error) {
  Rewind rewind_append(append), rewind_bound(bound);
  append.tryReset();
  append.bind(1, at);
  append.bind(2, error);
  append.bind(3, id);
  append.exec();
  bound.tryReset();
  bound.bind(1, id);
  bound.exec();
}
}  // namespace

Status SqliteStore::requeue(int64_t id, const std::string& error, int64_t next_attempt_at,
                            std::string_view target) {
  return requeue_all({id}, error, next_attempt_at, target);
}

Status SqliteStore::requeue_all(const std::vector<int64_t>& ids, const std::string& error,
                                int64_t next_attempt_at, std::string_view target) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    OutcomeSync relaxed(*writer_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement& q =
        writer_statement(requeue_,
                         "UPDATE executions SET status = 'queued', error = ?, next_attempt_at = ? "
                         "WHERE id = ?");
    Rewind rewind(q);
    SQLite::Statement& append = writer_statement(append_error_, kAppendAttemptError);
    SQLite::Statement& bound = writer_statement(bound_errors_, kBoundAttemptErrors);
    const int64_t now = now_ms();
    for (int64_t id : ids) {
      q.tryReset();
      q.bind(1, error);
      q.bind(2, next_attempt_at);
      q.bind(3, id);
      q.exec();
      append_attempt_error(append, bound, id, now, error);
      note_status_locked(id, "retrying", target, now);
    }
    tx.commit();
    return Status::Ok();
  });
}

Status SqliteStore::finish(int64_t id, ExecutionStatus status, const nlohmann::json& result,
                           const std::string& error, int64_t finished_at, std::string_view target) {
  return finish_all({Finished{id, status, &result, error, finished_at, target}});
}

Status SqliteStore::start_planned(const std::vector<PlannedRun>& runs, int64_t started_at) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    start_planned_locked(runs, started_at);
    tx.commit();
    return Status::Ok();
  });
}

SQLite::Statement& SqliteStore::writer_statement(std::unique_ptr<SQLite::Statement>& slot,
                                                 const char* sql) {
  if (!slot) slot = std::make_unique<SQLite::Statement>(*writer_, sql);
  return *slot;
}

void SqliteStore::start_planned_locked(const std::vector<PlannedRun>& runs, int64_t started_at) {
  SQLite::Statement& q =
      writer_statement(start_planned_,
                       "UPDATE executions SET status = 'running', attempts = ?, "
                       "started_at = coalesce(started_at, ?), next_attempt_at = NULL, plan = ? "
                       "WHERE id = ?");
  Rewind rewind(q);
  for (const PlannedRun& r : runs) {
    q.tryReset();
    q.bind(1, r.attempts);
    q.bind(2, started_at);
    q.bind(3, r.plan->dump());
    q.bind(4, r.id);
    q.exec();
    note_status_locked(r.id, "running", r.target, started_at);
  }
}

Status SqliteStore::finish_all(const std::vector<Finished>& outcomes) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    // Only successes are relaxed: a lost success is re-applied to the same end. A failure is
    // synced, since after its loss recovery would run the execution again and might act.
    std::optional<OutcomeSync> relaxed;
    if (std::all_of(outcomes.begin(), outcomes.end(),
                    [](const Finished& f) { return f.status == ExecutionStatus::kSucceeded; }))
      relaxed.emplace(*writer_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement& q =
        writer_statement(finish_one_,
                         "UPDATE executions SET status = ?, result = ?, error = ?, "
                         "finished_at = ?, next_attempt_at = NULL WHERE id = ?");
    Rewind rewind(q);
    for (const Finished& f : outcomes) {
      q.tryReset();
      q.bind(1, to_string(f.status));
      if (!f.result || f.result->is_null())
        q.bind(2);
      else
        q.bind(2, f.result->dump());
      if (f.error.empty())
        q.bind(3);
      else
        q.bind(3, f.error);
      q.bind(4, f.finished_at);
      q.bind(5, f.id);
      q.exec();
      if (!f.error.empty())
        append_attempt_error(writer_statement(append_error_, kAppendAttemptError),
                             writer_statement(bound_errors_, kBoundAttemptErrors), f.id,
                             f.finished_at, f.error);
      note_status_locked(f.id, to_string(f.status), f.target, f.finished_at);
    }
    tx.commit();
    return Status::Ok();
  });
}

Status SqliteStore::finish_settled(const std::vector<PlannedRun>& runs, int64_t started_at,
                                   const std::vector<Finished>& outcomes) {
  if (runs.size() != outcomes.size()) return Status::Invalid("runs and outcomes differ in number");
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    OutcomeSync relaxed(*writer_);  // successes only (see finish_all)
    SQLite::Transaction tx(*writer_);
    SQLite::Statement& q = writer_statement(
        finish_settled_,
        "UPDATE executions SET status = 'succeeded', attempts = ?, "
        "started_at = coalesce(started_at, ?), plan = ?, result = ?, finished_at = ?, "
        "next_attempt_at = NULL WHERE id = ? AND plan IS NULL");
    Rewind rewind(q);
    for (size_t i = 0; i < runs.size(); ++i) {
      const PlannedRun& r = runs[i];
      const Finished& f = outcomes[i];
      q.tryReset();
      q.bind(1, r.attempts);
      q.bind(2, started_at);
      q.bind(3, r.plan->dump());
      if (!f.result || f.result->is_null())
        q.bind(4);
      else
        q.bind(4, f.result->dump());
      q.bind(5, f.finished_at);
      q.bind(6, r.id);
      // Only an execution with no recorded plan: a recorded one is what a recovery re-applies,
      // and is never finished from a fresh read.
      if (q.exec() != 1)
        throw std::runtime_error("execution " + std::to_string(r.id) + " has a recorded plan");
      note_status_locked(r.id, "running", r.target, started_at);
      note_status_locked(f.id, "succeeded", f.target, f.finished_at);
    }
    tx.commit();
    return Status::Ok();
  });
}

Result<ExecutionRow> SqliteStore::get_execution(int64_t id) {
  return guarded([&]() -> Result<ExecutionRow> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(
        *reader_, std::string("SELECT ") + kExecutionColumns + " FROM executions WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return Status::NotFound("no execution with id " + std::to_string(id));
    return read_execution(q);
  });
}

Result<std::vector<ExecutionRow>> SqliteStore::list_executions(const ExecutionFilter& f) {
  return guarded([&]() -> Result<std::vector<ExecutionRow>> {
    std::string sql = std::string("SELECT ") + kExecutionColumns + " FROM executions WHERE 1=1";
    if (f.receiver_id) sql += " AND receiver_id = :rid";
    if (f.status) sql += " AND status = :status";
    if (f.before_id > 0) sql += " AND id < :before";
    sql += " ORDER BY id DESC LIMIT :limit";
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, sql);
    if (f.receiver_id) q.bind(":rid", *f.receiver_id);
    if (f.status) q.bind(":status", to_string(*f.status));
    if (f.before_id > 0) q.bind(":before", f.before_id);
    q.bind(":limit", f.limit);
    std::vector<ExecutionRow> out;
    while (q.executeStep()) out.push_back(read_execution(q));
    return out;
  });
}

Result<std::vector<ExecutionRow>> SqliteStore::unfinished_executions(int64_t after_id, int limit) {
  return guarded([&]() -> Result<std::vector<ExecutionRow>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, std::string("SELECT ") + kExecutionColumns +
                                      " FROM executions WHERE status IN ('queued', 'running') "
                                      "AND id > ? ORDER BY id LIMIT ?");
    q.bind(1, after_id);
    q.bind(2, limit);
    std::vector<ExecutionRow> out;
    while (q.executeStep()) out.push_back(read_execution(q));
    return out;
  });
}

Result<std::vector<std::pair<int64_t, int64_t>>> SqliteStore::unfinished_counts() {
  return guarded([&]() -> Result<std::vector<std::pair<int64_t, int64_t>>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        "SELECT receiver_id, count(*) FROM executions "
                        "WHERE status IN ('queued', 'running') GROUP BY receiver_id");
    std::vector<std::pair<int64_t, int64_t>> out;
    while (q.executeStep()) out.emplace_back(q.getColumn(0).getInt64(), q.getColumn(1).getInt64());
    return out;
  });
}

Result<std::optional<int64_t>> SqliteStore::find_execution_by_key(int64_t receiver_id,
                                                                  const std::string& key) {
  return guarded([&]() -> Result<std::optional<int64_t>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        "SELECT id FROM executions WHERE receiver_id = ? AND idempotency_key = ?");
    q.bind(1, receiver_id);
    q.bind(2, key);
    if (!q.executeStep()) return std::optional<int64_t>();
    return std::optional<int64_t>(q.getColumn(0).getInt64());
  });
}

Result<std::vector<RecentExecution>> SqliteStore::recent_executions(int64_t receiver_id,
                                                                    int64_t since_ms) {
  return guarded([&]() -> Result<std::vector<RecentExecution>> {
    std::lock_guard lock(read_mu_);
    // Newest first along executions_by_receiver (ids grow with time), stopping at `since_ms`.
    SQLite::Statement q(*reader_,
                        "SELECT created_at, coalesce(action, '') FROM executions "
                        "WHERE receiver_id = ? ORDER BY id DESC");
    q.bind(1, receiver_id);
    std::vector<RecentExecution> out;
    while (q.executeStep()) {
      int64_t at = q.getColumn(0).getInt64();
      if (at < since_ms) break;
      out.push_back({at, q.getColumn(1).getString()});
    }
    std::reverse(out.begin(), out.end());
    return out;
  });
}

Result<std::vector<int64_t>> SqliteStore::receivers_over(int64_t count) {
  return guarded([&]() -> Result<std::vector<int64_t>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(
        *reader_, "SELECT receiver_id FROM executions GROUP BY receiver_id HAVING count(*) > ?");
    q.bind(1, count);
    std::vector<int64_t> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
    return out;
  });
}

Result<int64_t> SqliteStore::unfinished_count(int64_t receiver_id) {
  return guarded([&]() -> Result<int64_t> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        "SELECT count(*) FROM executions WHERE receiver_id = ? "
                        "AND status IN ('queued', 'running')");
    q.bind(1, receiver_id);
    q.executeStep();
    return q.getColumn(0).getInt64();
  });
}

Result<std::vector<int64_t>> SqliteStore::prunable_executions(const RetentionPolicy& p, int64_t now,
                                                              int64_t protect_since_ms,
                                                              const std::vector<int64_t>& over,
                                                              int limit) {
  return guarded([&]() -> Result<std::vector<int64_t>> {
    std::lock_guard lock(read_mu_);
    std::vector<int64_t> out;
    const int64_t dedupe_before = now - p.dedupe_window_ms;
    if (p.max_age_ms > 0) {
      SQLite::Statement q(*reader_,
                          "SELECT id FROM executions WHERE status IN ('succeeded', 'failed') "
                          "AND created_at < ? AND (idempotency_key IS NULL OR created_at < ?) "
                          "ORDER BY id LIMIT ?");
      q.bind(1, std::min(now - p.max_age_ms, protect_since_ms));
      q.bind(2, dedupe_before);
      q.bind(3, limit);
      while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
    }
    if (p.keep_per_receiver > 0 && int(out.size()) < limit) {
      // Each receiver's finished rows older than its newest N.
      for (int64_t rid : over) {
        SQLite::Statement q(*reader_,
                            "SELECT id FROM executions WHERE receiver_id = ?1 "
                            "AND status IN ('succeeded', 'failed') "
                            "AND (idempotency_key IS NULL OR created_at < ?2) AND created_at < ?5 "
                            "AND id < (SELECT id FROM executions WHERE receiver_id = ?1 "
                            "          ORDER BY id DESC LIMIT 1 OFFSET ?3) "
                            "ORDER BY id LIMIT ?4");
        q.bind(1, rid);
        q.bind(2, dedupe_before);
        q.bind(3, p.keep_per_receiver - 1);
        q.bind(4, limit - int(out.size()));
        q.bind(5, protect_since_ms);
        while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
        if (int(out.size()) >= limit) break;
      }
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    return out;
  });
}

Result<int> SqliteStore::delete_executions(const std::vector<int64_t>& ids) {
  return guarded([&]() -> Result<int> {
    if (ids.empty()) return 0;
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(
        *writer_, "DELETE FROM executions WHERE id = ? AND status IN ('succeeded', 'failed')");
    // An execution's notifications and their attempts go with it (docs/webhooks.md).
    SQLite::Statement attempts(*writer_,
                               "DELETE FROM delivery_attempts WHERE delivery_id IN "
                               "(SELECT id FROM deliveries WHERE execution_id = ?)");
    SQLite::Statement deliveries(*writer_, "DELETE FROM deliveries WHERE execution_id = ?");
    int n = 0;
    for (int64_t id : ids) {
      q.tryReset();
      q.bind(1, id);
      int gone = q.exec();
      n += gone;
      if (gone == 0) continue;
      for (SQLite::Statement* d : {&attempts, &deliveries}) {
        d->tryReset();
        d->bind(1, id);
        d->exec();
      }
    }
    // A deleted receiver's name is kept while it has executions (migration 017).
    if (n > 0) {
      SQLite::Statement names(
          *writer_,
          "DELETE FROM deleted_receivers WHERE NOT EXISTS "
          "(SELECT 1 FROM executions WHERE receiver_id = deleted_receivers.id)");
      names.exec();
    }
    tx.commit();
    return n;
  });
}

Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> SqliteStore::recent_executions(
    int64_t since_ms) {
  return guarded([&]() -> Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        "SELECT receiver_id, created_at, coalesce(action, '') FROM executions "
                        "ORDER BY id DESC");
    std::unordered_map<int64_t, std::vector<RecentExecution>> out;
    while (q.executeStep()) {
      int64_t at = q.getColumn(1).getInt64();
      if (at < since_ms) break;
      out[q.getColumn(0).getInt64()].push_back({at, q.getColumn(2).getString()});
    }
    for (auto& [_, list] : out) std::reverse(list.begin(), list.end());
    return out;
  });
}

Status SqliteStore::set_setting(const std::string& name, const std::string& value,
                                const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_,
                        "INSERT INTO settings (name, value) VALUES (?, ?) "
                        "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
    q.bind(1, name);
    q.bind(2, value);
    q.exec();
    if (audit) audit_locked(*audit);
    tx.commit();
    return Status::Ok();
  });
}

Result<std::optional<std::string>> SqliteStore::get_setting(const std::string& name) {
  return guarded([&]() -> Result<std::optional<std::string>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, "SELECT value FROM settings WHERE name = ?");
    q.bind(1, name);
    if (!q.executeStep()) return std::optional<std::string>();
    return std::optional<std::string>(q.getColumn(0).getString());
  });
}

// --- admin tokens ------------------------------------------------------------------------

Result<AdminTokenRow> SqliteStore::insert_admin_token(const std::string& name,
                                                      const std::string& token_hash, Role role,
                                                      const AuditEntry* audit) {
  return guarded([&]() -> Result<AdminTokenRow> {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(
        *writer_,
        "INSERT INTO admin_tokens (name, token_hash, created_at, role) VALUES (?, ?, ?, ?)");
    AdminTokenRow row{0, name, token_hash, now_ms(), false, role};
    q.bind(1, name);
    q.bind(2, token_hash.data(), static_cast<int>(token_hash.size()));
    q.bind(3, row.created_at);
    q.bind(4, to_string(role));
    q.exec();
    row.id = writer_->getLastInsertRowid();
    if (audit) audit_locked(*audit, row.id);
    tx.commit();
    return row;
  });
}

Result<std::vector<AdminTokenRow>> SqliteStore::list_admin_tokens() {
  return guarded([&]() -> Result<std::vector<AdminTokenRow>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(
        *reader_,
        "SELECT id, name, token_hash, created_at, from_env, role FROM admin_tokens ORDER BY id");
    std::vector<AdminTokenRow> out;
    while (q.executeStep()) {
      const auto& blob = q.getColumn(2);
      out.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                     std::string(static_cast<const char*>(blob.getBlob()), blob.getBytes()),
                     q.getColumn(3).getInt64(), q.getColumn(4).getInt() != 0,
                     // The CHECK of migration 016 admits no other value.
                     parse_role(q.getColumn(5).getString()).value_or(Role::kReadOnly)});
    }
    return out;
  });
}

Status SqliteStore::delete_admin_token(int64_t id, const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    // The "not the last admin" check is part of the delete itself: two concurrent deletes (even
    // from two processes) cannot both see two admins and remove both.
    SQLite::Statement q(*writer_,
                        "DELETE FROM admin_tokens WHERE id = ? AND (role <> 'admin' OR "
                        "(SELECT count(*) FROM admin_tokens WHERE role = 'admin') > 1)");
    q.bind(1, id);
    if (q.exec() == 1) {
      if (audit) audit_locked(*audit);
      tx.commit();
      return Status::Ok();
    }
    SQLite::Statement exists(*writer_, "SELECT 1 FROM admin_tokens WHERE id = ?");
    exists.bind(1, id);
    if (exists.executeStep())
      return Status::Conflict(
          "this is the last token with the admin role; create another admin first");
    return Status::NotFound("no admin token with id " + std::to_string(id));
  });
}

Result<AdminTokenRow> SqliteStore::set_admin_token_role(int64_t id, Role role,
                                                        const AuditEntry* audit) {
  Status s = guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    // As delete_admin_token: the check is in the statement, so two concurrent demotions cannot
    // leave no admin.
    SQLite::Statement q(*writer_,
                        "UPDATE admin_tokens SET role = ?2 WHERE id = ?1 AND from_env = 0 AND "
                        "(role <> 'admin' OR ?2 = 'admin' OR "
                        "(SELECT count(*) FROM admin_tokens WHERE role = 'admin') > 1)");
    q.bind(1, id);
    q.bind(2, to_string(role));
    if (q.exec() == 1) {
      if (audit) audit_locked(*audit);
      tx.commit();
      return Status::Ok();
    }
    SQLite::Statement exists(*writer_, "SELECT from_env FROM admin_tokens WHERE id = ?");
    exists.bind(1, id);
    if (!exists.executeStep())
      return Status::NotFound("no admin token with id " + std::to_string(id));
    if (exists.getColumn(0).getInt() != 0)
      return Status::Conflict(
          "the token from TRIPLINE_ADMIN_TOKEN is always an admin; change the variable instead");
    return Status::Conflict(
        "this is the last token with the admin role; create another admin first");
  });
  if (!s.ok()) return s;
  auto all = list_admin_tokens();
  if (!all.ok()) return all.status();
  for (auto& t : *all)
    if (t.id == id) return t;
  return Status::NotFound("no admin token with id " + std::to_string(id));
}

Result<int> SqliteStore::replace_env_admin_token(const std::string& name,
                                                 const std::string& token_hash,
                                                 const AuditEntry* audit) {
  return guarded([&]() -> Result<int> {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement old(
        *writer_, "SELECT id, name FROM admin_tokens WHERE from_env = 1 AND token_hash <> ?");
    old.bind(1, token_hash.data(), static_cast<int>(token_hash.size()));
    std::vector<std::pair<int64_t, std::string>> revoked_rows;
    while (old.executeStep())
      revoked_rows.emplace_back(old.getColumn(0).getInt64(), old.getColumn(1).getString());
    SQLite::Statement revoke(*writer_,
                             "DELETE FROM admin_tokens WHERE from_env = 1 AND token_hash <> ?");
    revoke.bind(1, token_hash.data(), static_cast<int>(token_hash.size()));
    int revoked = revoke.exec();
    SQLite::Statement known(*writer_,
                            "SELECT id FROM admin_tokens WHERE token_hash = ? AND from_env = 1");
    known.bind(1, token_hash.data(), static_cast<int>(token_hash.size()));
    bool stored = known.executeStep();
    // A token created through the API with the same value becomes the managed row, an admin.
    SQLite::Statement upsert(
        *writer_,
        "INSERT INTO admin_tokens (name, token_hash, created_at, from_env, role) "
        "VALUES (?, ?, ?, 1, 'admin') ON CONFLICT (token_hash) DO UPDATE SET from_env = 1, "
        "role = 'admin'");
    upsert.bind(1, name);
    upsert.bind(2, token_hash.data(), static_cast<int>(token_hash.size()));
    upsert.bind(3, now_ms());
    upsert.exec();
    if (audit) {
      for (const auto& [id, old_name] : revoked_rows) {
        AuditEntry e = *audit;
        e.action = "token.revoke";
        e.target_type = "token";
        e.target_id = id;
        e.target_name = old_name;
        e.before = {{"name", old_name}, {"role", "admin"}, {"from_env", true}};
        e.after = nullptr;
        audit_locked(e);
      }
      if (!stored) {
        SQLite::Statement id(*writer_, "SELECT id FROM admin_tokens WHERE token_hash = ?");
        id.bind(1, token_hash.data(), static_cast<int>(token_hash.size()));
        id.executeStep();
        AuditEntry e = *audit;
        e.action = "token.create";
        e.target_type = "token";
        e.target_id = id.getColumn(0).getInt64();
        e.target_name = name;
        e.before = nullptr;
        e.after = {{"name", name}, {"role", "admin"}, {"from_env", true}};
        audit_locked(e);
      }
    }
    tx.commit();
    return revoked;
  });
}

// --- audit log ---------------------------------------------------------------------------

namespace {
constexpr size_t kMaxAuditSide = 64 * 1024;
}  // namespace

ReceiverRow SqliteStore::receiver_locked(int64_t id) {
  SQLite::Statement q(*writer_,
                      std::string("SELECT ") + kReceiverColumns + " FROM receivers WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep()) throw std::runtime_error("the receiver changed is not there to audit");
  return read_receiver(q);
}

void SqliteStore::audit_locked(const AuditEntry& a, std::optional<int64_t> target_id,
                               const ReceiverRow* row) {
  SQLite::Statement q(
      *writer_,
      "INSERT INTO audit_log (at, actor_id, actor_name, actor_role, source, action, "
      "target_type, target_id, target_name, before, after) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, now_ms());
  if (a.actor_id)
    q.bind(2, *a.actor_id);
  else
    q.bind(2);
  q.bind(3, a.actor_name);
  q.bind(4, a.actor_role);
  q.bind(5, a.source);
  q.bind(6, a.action);
  q.bind(7, a.target_type);
  std::optional<int64_t> tid = a.target_id ? a.target_id : target_id;
  if (tid)
    q.bind(8, *tid);
  else
    q.bind(8);
  std::string name = a.target_name;
  nlohmann::json after = a.after;
  if (row) {
    if (name.empty()) name = row->name;
    if (a.render_after) after = a.render_after(*row);
  }
  q.bind(9, name);
  // Each side at most 64 KiB: a receiver's rules can be large, and 100,000 rows of them would
  // not be bounded by the row count alone (docs/security.md "Audit log").
  auto bounded = [](const nlohmann::json& j) -> nlohmann::json {
    if (j.is_null()) return j;
    std::string text = j.dump();
    if (text.size() <= kMaxAuditSide) return j;
    return {{"truncated", true}, {"bytes", text.size()}};
  };
  bind_json(q, 10, bounded(a.before));
  bind_json(q, 11, bounded(after));
  q.exec();
}

Status SqliteStore::record_audit(const AuditEntry& entry) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    audit_locked(entry);
    return Status::Ok();
  });
}

Result<std::vector<AuditEntry>> SqliteStore::list_audit(const AuditFilter& f) {
  return guarded([&]() -> Result<std::vector<AuditEntry>> {
    std::lock_guard lock(read_mu_);
    std::string sql =
        "SELECT id, at, actor_id, actor_name, actor_role, source, action, target_type, "
        "target_id, target_name, before, after FROM audit_log WHERE 1";
    if (f.before_id > 0) sql += " AND id < :before";
    if (!f.target_type.empty()) sql += " AND target_type = :type";
    if (f.target_id) sql += " AND target_id = :tid";
    sql += " ORDER BY id DESC LIMIT :limit";
    SQLite::Statement q(*reader_, sql);
    if (f.before_id > 0) q.bind(":before", f.before_id);
    if (!f.target_type.empty()) q.bind(":type", f.target_type);
    if (f.target_id) q.bind(":tid", *f.target_id);
    q.bind(":limit", f.limit);
    std::vector<AuditEntry> out;
    while (q.executeStep()) {
      AuditEntry e;
      e.id = q.getColumn(0).getInt64();
      e.at = q.getColumn(1).getInt64();
      e.actor_id = opt_int(q.getColumn(2));
      e.actor_name = q.getColumn(3).getString();
      e.actor_role = q.getColumn(4).getString();
      e.source = q.getColumn(5).getString();
      e.action = q.getColumn(6).getString();
      e.target_type = q.getColumn(7).getString();
      e.target_id = opt_int(q.getColumn(8));
      e.target_name = q.getColumn(9).getString();
      e.before = opt_json(q.getColumn(10));
      e.after = opt_json(q.getColumn(11));
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<int> SqliteStore::prune_audit(const AuditRetention& r, int64_t now, int limit) {
  return guarded([&]() -> Result<int> {
    std::lock_guard lock(write_mu_);
    // The oldest rows first: those past the age, and those below the newest `keep`.
    SQLite::Statement q(*writer_,
                        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE "
                        "(?1 > 0 AND at < ?2) OR (?3 > 0 AND at < ?5 AND id <= (SELECT id FROM "
                        "audit_log ORDER BY id DESC LIMIT 1 OFFSET ?3)) ORDER BY id LIMIT ?4)");
    q.bind(1, r.max_age_ms);
    q.bind(2, now - r.max_age_ms);
    q.bind(3, r.keep);
    q.bind(4, limit);
    q.bind(5, now - r.count_floor_ms);
    return q.exec();
  });
}

// --- notifications -----------------------------------------------------------------------

void SqliteStore::refresh_any_subscriptions_locked() {
  SQLite::Statement q(*writer_, "SELECT EXISTS (SELECT 1 FROM subscriptions)");
  q.executeStep();
  any_subscriptions_ = q.getColumn(0).getInt() != 0;
}

void SqliteStore::note_status_locked(int64_t execution_id, const char* event,
                                     std::string_view target, int64_t now) {
  // No subscription anywhere (the usual case): the status change costs nothing more.
  if (!any_subscriptions_) return;
  SQLite::Statement& dropped = *note_dropped_;
  Rewind rewind_dropped(dropped), rewind_delivery(*note_delivery_);
  dropped.tryReset();
  dropped.bind(1, execution_id);
  dropped.bind(2, event);
  dropped.bind(3, kMaxPendingPerSubscription);
  if (dropped.exec() > 0)
    log::warn("notification dropped: a subscription's backlog is full",
              {{"execution_id", std::to_string(execution_id)}, {"event", event}});
  SQLite::Statement& q = *note_delivery_;
  q.tryReset();
  q.bind(1, execution_id);
  q.bind(2, event);
  q.bind(3, std::string(target));
  q.bind(4, now);
  q.bind(5, kMaxPendingPerSubscription);
  q.exec();
}

namespace {
constexpr const char* kSubscriptionColumns =
    "id, receiver_id, url, secrets, scheme, events, enabled, disabled_reason, dropped, "
    "created_at, updated_at";

SubscriptionRow read_subscription(SQLite::Statement& q, int at = 0) {
  SubscriptionRow s;
  s.id = q.getColumn(at + 0).getInt64();
  s.receiver_id = q.getColumn(at + 1).getInt64();
  s.url = q.getColumn(at + 2).getString();
  s.secrets = nlohmann::json::parse(q.getColumn(at + 3).getString(), nullptr, false);
  s.scheme = q.getColumn(at + 4).getString();
  auto events = nlohmann::json::parse(q.getColumn(at + 5).getString(), nullptr, false);
  if (events.is_array())
    for (const auto& e : events)
      if (e.is_string()) s.events.push_back(e.get<std::string>());
  s.enabled = q.getColumn(at + 6).getInt() != 0;
  s.disabled_reason = q.getColumn(at + 7).isNull() ? "" : q.getColumn(at + 7).getString();
  s.dropped = q.getColumn(at + 8).getInt64();
  s.created_at = q.getColumn(at + 9).getInt64();
  s.updated_at = q.getColumn(at + 10).getInt64();
  return s;
}

constexpr const char* kDeliveryColumns =
    "id, subscription_id, receiver_id, execution_id, event, webhook_id, payload, state, attempts, "
    "budget_from, next_attempt_at, last_status, last_error, created_at, finished_at";

DeliveryRow read_delivery(SQLite::Statement& q) {
  DeliveryRow d;
  d.id = q.getColumn(0).getInt64();
  d.subscription_id = q.getColumn(1).getInt64();
  d.receiver_id = q.getColumn(2).getInt64();
  d.execution_id = q.getColumn(3).getInt64();
  d.event = q.getColumn(4).getString();
  d.webhook_id = q.getColumn(5).getString();
  d.payload = q.getColumn(6).getString();
  d.state = q.getColumn(7).getString();
  d.attempts = q.getColumn(8).getInt();
  d.budget_from = q.getColumn(9).getInt();
  d.next_attempt_at = opt_int(q.getColumn(10));
  if (!q.getColumn(11).isNull()) d.last_status = q.getColumn(11).getInt();
  d.last_error = q.getColumn(12).isNull() ? "" : q.getColumn(12).getString();
  d.created_at = q.getColumn(13).getInt64();
  d.finished_at = opt_int(q.getColumn(14));
  return d;
}

std::string events_json(const std::vector<std::string>& events) {
  return nlohmann::json(events).dump();
}
}  // namespace

Result<SubscriptionRow> SqliteStore::insert_subscription(const SubscriptionRow& s,
                                                         const AuditEntry* audit) {
  auto id = guarded([&]() -> Result<int64_t> {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_,
                        "INSERT INTO subscriptions (receiver_id, url, secrets, scheme, events, "
                        "enabled, created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
                        "WHERE EXISTS (SELECT 1 FROM receivers WHERE id = ?1)");
    int64_t now = now_ms();
    q.bind(1, s.receiver_id);
    q.bind(2, s.url);
    q.bind(3, s.secrets.dump());
    q.bind(4, s.scheme);
    q.bind(5, events_json(s.events));
    q.bind(6, s.enabled ? 1 : 0);
    q.bind(7, now);
    q.bind(8, now);
    if (q.exec() == 0)
      return Status::NotFound("no receiver with id " + std::to_string(s.receiver_id));
    int64_t id = writer_->getLastInsertRowid();
    if (audit) audit_locked(*audit, id);
    refresh_any_subscriptions_locked();
    tx.commit();
    return id;
  });
  if (!id.ok()) return id.status();
  return get_subscription(s.receiver_id, *id);
}

Result<SubscriptionRow> SqliteStore::update_subscription(const SubscriptionRow& s,
                                                         const AuditEntry* audit) {
  Status st = guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_,
                        "UPDATE subscriptions SET url = ?, secrets = ?, scheme = ?, events = ?, "
                        "enabled = ?, disabled_reason = CASE WHEN ? THEN NULL ELSE "
                        "disabled_reason END, updated_at = ? WHERE id = ? AND receiver_id = ?");
    q.bind(1, s.url);
    q.bind(2, s.secrets.dump());
    q.bind(3, s.scheme);
    q.bind(4, events_json(s.events));
    q.bind(5, s.enabled ? 1 : 0);
    q.bind(6, s.enabled ? 1 : 0);
    q.bind(7, now_ms());
    q.bind(8, s.id);
    q.bind(9, s.receiver_id);
    if (q.exec() == 0) return Status::NotFound("no subscription with id " + std::to_string(s.id));
    if (audit) audit_locked(*audit);
    tx.commit();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return get_subscription(s.receiver_id, s.id);
}

Status SqliteStore::delete_subscription(int64_t receiver_id, int64_t id, const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_, "DELETE FROM subscriptions WHERE id = ? AND receiver_id = ?");
    q.bind(1, id);
    q.bind(2, receiver_id);
    if (q.exec() == 0) return Status::NotFound("no subscription with id " + std::to_string(id));
    for (const char* sql : {"DELETE FROM delivery_attempts WHERE delivery_id IN "
                            "(SELECT id FROM deliveries WHERE subscription_id = ?)",
                            "DELETE FROM deliveries WHERE subscription_id = ?"}) {
      SQLite::Statement d(*writer_, sql);
      d.bind(1, id);
      d.exec();
    }
    if (audit) audit_locked(*audit);
    refresh_any_subscriptions_locked();
    tx.commit();
    return Status::Ok();
  });
}

Result<SubscriptionRow> SqliteStore::get_subscription(int64_t receiver_id, int64_t id) {
  return guarded([&]() -> Result<SubscriptionRow> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, std::string("SELECT ") + kSubscriptionColumns +
                                      " FROM subscriptions WHERE id = ? AND receiver_id = ?");
    q.bind(1, id);
    q.bind(2, receiver_id);
    if (!q.executeStep()) return Status::NotFound("no subscription with id " + std::to_string(id));
    return read_subscription(q);
  });
}

Result<std::vector<SubscriptionRow>> SqliteStore::list_subscriptions(int64_t receiver_id) {
  return guarded([&]() -> Result<std::vector<SubscriptionRow>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, std::string("SELECT ") + kSubscriptionColumns +
                                      " FROM subscriptions WHERE receiver_id = ? ORDER BY id");
    q.bind(1, receiver_id);
    std::vector<SubscriptionRow> out;
    while (q.executeStep()) out.push_back(read_subscription(q));
    return out;
  });
}

Result<std::optional<ClaimedDelivery>> SqliteStore::claim_due_delivery(int64_t now,
                                                                       int64_t lease_ms) {
  return guarded([&]() -> Result<std::optional<ClaimedDelivery>> {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_, std::string("SELECT ") + kDeliveryColumns +
                                      " FROM deliveries WHERE state = 'pending' AND "
                                      "next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1");
    q.bind(1, now);
    if (!q.executeStep()) return std::optional<ClaimedDelivery>();
    ClaimedDelivery c;
    c.delivery = read_delivery(q);
    SQLite::Statement lease(*writer_, "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?");
    lease.bind(1, now + lease_ms);
    lease.bind(2, c.delivery.id);
    lease.exec();
    SQLite::Statement sub(*writer_, std::string("SELECT ") + kSubscriptionColumns +
                                        " FROM subscriptions WHERE id = ?");
    sub.bind(1, c.delivery.subscription_id);
    if (sub.executeStep()) c.subscription = read_subscription(sub);
    tx.commit();
    return std::optional<ClaimedDelivery>(std::move(c));
  });
}

Result<std::optional<int64_t>> SqliteStore::next_delivery_due() {
  return guarded([&]() -> Result<std::optional<int64_t>> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_,
                        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'");
    q.executeStep();
    return opt_int(q.getColumn(0));
  });
}

Status SqliteStore::record_delivery_attempt(int64_t delivery_id, const DeliveryOutcome& o) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    const DeliveryAttemptRow& a = o.attempt;
    // Deleted meanwhile (with its subscription or receiver): nothing to record it against.
    SQLite::Statement exists(*writer_, "SELECT 1 FROM deliveries WHERE id = ?");
    exists.bind(1, delivery_id);
    if (!exists.executeStep()) return Status::Ok();
    SQLite::Statement ins(*writer_,
                          "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, "
                          "latency_ms, status, error, answer) VALUES (?, ?, ?, ?, ?, ?, ?)");
    ins.bind(1, delivery_id);
    ins.bind(2, a.attempt);
    ins.bind(3, a.started_at);
    ins.bind(4, a.latency_ms);
    if (a.status)
      ins.bind(5, *a.status);
    else
      ins.bind(5);
    ins.bind(6, a.error);
    ins.bind(7, a.answer);
    ins.exec();
    bool pending = o.state == "pending";
    SQLite::Statement up(*writer_,
                         "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, "
                         "last_status = ?, last_error = ?, finished_at = ? WHERE id = ?");
    up.bind(1, a.attempt);
    up.bind(2, o.state);
    if (pending)
      up.bind(3, o.next_attempt_at);
    else
      up.bind(3);
    if (a.status)
      up.bind(4, *a.status);
    else
      up.bind(4);
    up.bind(5, a.error);
    if (pending)
      up.bind(6);
    else
      up.bind(6, a.started_at + a.latency_ms);
    up.bind(7, delivery_id);
    up.exec();
    if (!o.disable_subscription.empty()) {
      SQLite::Statement dis(*writer_,
                            "UPDATE subscriptions SET enabled = 0, disabled_reason = ?, "
                            "updated_at = ? WHERE id = (SELECT subscription_id FROM deliveries "
                            "WHERE id = ?)");
      dis.bind(1, o.disable_subscription);
      dis.bind(2, now_ms());
      dis.bind(3, delivery_id);
      dis.exec();
      // Its other pending deliveries will not be sent either.
      SQLite::Statement rest(*writer_,
                             "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, "
                             "last_error = 'the subscription was disabled: ' || ?, "
                             "finished_at = ? WHERE state = 'pending' AND subscription_id = "
                             "(SELECT subscription_id FROM deliveries WHERE id = ?)");
      rest.bind(1, o.disable_subscription);
      rest.bind(2, now_ms());
      rest.bind(3, delivery_id);
      rest.exec();
    }
    tx.commit();
    return Status::Ok();
  });
}

Status SqliteStore::redeliver(int64_t receiver_id, int64_t delivery_id, int64_t now,
                              const AuditEntry* audit) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement q(*writer_,
                        "SELECT d.state, d.attempts, s.enabled FROM deliveries d LEFT JOIN "
                        "subscriptions s ON s.id = d.subscription_id WHERE d.id = ? AND "
                        "d.receiver_id = ?");
    q.bind(1, delivery_id);
    q.bind(2, receiver_id);
    if (!q.executeStep())
      return Status::NotFound("no delivery with id " + std::to_string(delivery_id));
    if (q.getColumn(0).getString() == "pending")
      return Status::Conflict("the delivery is still pending: it is sent again on its own");
    if (q.getColumn(2).isNull() || q.getColumn(2).getInt() == 0)
      return Status::Conflict("the subscription is disabled or deleted: enable it first");
    if (q.getColumn(1).getInt() >= kMaxDeliveryAttempts)
      return Status::Conflict("the delivery has had " + std::to_string(kMaxDeliveryAttempts) +
                              " attempts, tripline's limit");
    SQLite::Statement up(*writer_,
                         "UPDATE deliveries SET state = 'pending', budget_from = attempts, "
                         "next_attempt_at = ?, finished_at = NULL WHERE id = ?");
    up.bind(1, now);
    up.bind(2, delivery_id);
    up.exec();
    if (audit) audit_locked(*audit);
    tx.commit();
    return Status::Ok();
  });
}

Result<std::vector<DeliveryRow>> SqliteStore::list_deliveries(int64_t receiver_id,
                                                              const std::string& state, int limit,
                                                              int64_t before_id) {
  return guarded([&]() -> Result<std::vector<DeliveryRow>> {
    std::lock_guard lock(read_mu_);
    std::string sql = std::string("SELECT ") + kDeliveryColumns +
                      " FROM deliveries WHERE receiver_id = ?1 AND (?2 = 0 OR id < ?2)";
    if (!state.empty()) sql += " AND state = ?4";
    sql += " ORDER BY id DESC LIMIT ?3";
    SQLite::Statement q(*reader_, sql);
    q.bind(1, receiver_id);
    q.bind(2, before_id);
    q.bind(3, limit);
    if (!state.empty()) q.bind(4, state);
    std::vector<DeliveryRow> out;
    while (q.executeStep()) out.push_back(read_delivery(q));
    return out;
  });
}

Result<DeliveryRow> SqliteStore::get_delivery(int64_t receiver_id, int64_t id) {
  return guarded([&]() -> Result<DeliveryRow> {
    std::lock_guard lock(read_mu_);
    SQLite::Statement q(*reader_, std::string("SELECT ") + kDeliveryColumns +
                                      " FROM deliveries WHERE id = ? AND receiver_id = ?");
    q.bind(1, id);
    q.bind(2, receiver_id);
    if (!q.executeStep()) return Status::NotFound("no delivery with id " + std::to_string(id));
    return read_delivery(q);
  });
}

Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>> SqliteStore::delivery_attempts(
    const std::vector<int64_t>& ids, int limit) {
  return guarded([&]() -> Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>> {
    std::lock_guard lock(read_mu_);
    std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>> out;
    SQLite::Statement q(*reader_,
                        "SELECT id, delivery_id, attempt, started_at, latency_ms, status, error, "
                        "answer FROM delivery_attempts WHERE delivery_id = ? ORDER BY id DESC "
                        "LIMIT ?");
    for (int64_t id : ids) {
      q.tryReset();
      q.bind(1, id);
      q.bind(2, limit);
      auto& list = out[id];
      while (q.executeStep()) {
        DeliveryAttemptRow a;
        a.id = q.getColumn(0).getInt64();
        a.delivery_id = q.getColumn(1).getInt64();
        a.attempt = q.getColumn(2).getInt();
        a.started_at = q.getColumn(3).getInt64();
        a.latency_ms = q.getColumn(4).getInt64();
        if (!q.getColumn(5).isNull()) a.status = q.getColumn(5).getInt();
        a.error = q.getColumn(6).isNull() ? "" : q.getColumn(6).getString();
        a.answer = q.getColumn(7).isNull() ? "" : q.getColumn(7).getString();
        list.push_back(std::move(a));
      }
      std::reverse(list.begin(), list.end());
    }
    return out;
  });
}

// --- sealed secrets ----------------------------------------------------------------------

Result<std::vector<SealedText>> SqliteStore::sealed_texts(bool include_finished_executions) {
  return guarded([&]() -> Result<std::vector<SealedText>> {
    std::lock_guard lock(read_mu_);
    std::vector<SealedText> out;
    using W = SealedText::Where;
    // "sealed:v" starts every sealed value of every format (secrets.h).
    SQLite::Statement r(
        *reader_,
        "SELECT id, config, auth, driver FROM receivers "
        "WHERE instr(config, 'sealed:v') > 0 OR instr(auth, 'sealed:v') > 0 ORDER BY id");
    while (r.executeStep()) {
      int64_t id = r.getColumn(0).getInt64();
      for (int col : {1, 2}) {
        if (r.getColumn(col).isNull()) continue;
        std::string text = r.getColumn(col).getString();
        if (text.find("sealed:v") == std::string::npos) continue;
        out.push_back({col == 1 ? W::kReceiverConfig : W::kReceiverAuth, id,
                       r.getColumn(3).getString(), false, std::move(text)});
      }
    }
    SQLite::Statement e(
        *reader_,
        std::string("SELECT id, config, status IN ('succeeded', 'failed'), driver FROM executions "
                    "WHERE instr(config, 'sealed:v') > 0") +
            (include_finished_executions ? "" : " AND status IN ('queued', 'running')") +
            " ORDER BY id");
    while (e.executeStep())
      out.push_back({W::kExecutionConfig, e.getColumn(0).getInt64(), e.getColumn(3).getString(),
                     e.getColumn(2).getInt() != 0, e.getColumn(1).getString()});
    SQLite::Statement n(*reader_, "SELECT id, secrets FROM subscriptions ORDER BY id");
    while (n.executeStep())
      out.push_back(
          {W::kSubscription, n.getColumn(0).getInt64(), "", false, n.getColumn(1).getString()});
    return out;
  });
}

Status SqliteStore::rewrite_sealed_texts(const std::vector<SealedText>& texts) {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    SQLite::Transaction tx(*writer_);
    SQLite::Statement config(*writer_, "UPDATE receivers SET config = ? WHERE id = ?");
    SQLite::Statement auth(*writer_, "UPDATE receivers SET auth = ? WHERE id = ?");
    SQLite::Statement exec(*writer_, "UPDATE executions SET config = ? WHERE id = ?");
    SQLite::Statement sub(*writer_, "UPDATE subscriptions SET secrets = ? WHERE id = ?");
    for (const SealedText& t : texts) {
      SQLite::Statement& q = t.where == SealedText::Where::kReceiverConfig ? config
                             : t.where == SealedText::Where::kReceiverAuth ? auth
                             : t.where == SealedText::Where::kSubscription ? sub
                                                                           : exec;
      q.reset();
      q.bind(1, t.text);
      q.bind(2, t.id);
      q.exec();
    }
    tx.commit();
    return Status::Ok();
  });
}

Status SqliteStore::check_writable() {
  return guarded([&]() -> Status {
    std::lock_guard lock(write_mu_);
    writer_->exec("BEGIN IMMEDIATE");
    writer_->exec("ROLLBACK");
    return Status::Ok();
  });
}

// --- export (tripline migrate-data) -------------------------------------------------------

namespace {

// The tables in the order they are copied: each before the tables whose rows name its ids
// (docs/migrate-data.md). Tables this list does not know (a later migration's) follow, by name.
constexpr const char* kParentsFirst[] = {
    "receivers",    "deleted_receivers", "admin_tokens", "settings",          "subscriptions",
    "requests_log", "executions",        "deliveries",   "delivery_attempts", "audit_log"};

std::string quoted(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

TableValue read_value(const SQLite::Column& c) {
  TableValue v;
  switch (c.getType()) {
    case SQLITE_INTEGER:
      v.type = TableValue::Type::kInteger;
      v.integer = c.getInt64();
      break;
    case SQLITE_FLOAT:
      v.type = TableValue::Type::kReal;
      v.real = c.getDouble();
      break;
    case SQLITE_TEXT:
      v.type = TableValue::Type::kText;
      v.bytes = c.getString();
      break;
    case SQLITE_BLOB:
      v.type = TableValue::Type::kBlob;
      v.bytes.assign(static_cast<const char*>(c.getBlob()), static_cast<size_t>(c.getBytes()));
      break;
    default:
      break;
  }
  return v;
}

}  // namespace

Status SqliteStore::export_tables(const std::string& path, const TableSink& sink, int page_rows) {
  if (page_rows < 1) return Status::Invalid("export: page_rows must be at least 1");
  return guarded([&]() -> Status {
    // Read-only: the source is never changed by its copy, nor created when the path is wrong.
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    db.setBusyTimeout(5000);
    // One read transaction: every SELECT below sees the same snapshot of the file (WAL mode),
    // whatever a process still writing it commits meanwhile.
    db.exec("BEGIN");
    std::vector<int> applied, expected;
    {
      SQLite::Statement q(db,
                          "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                          "'schema_migrations'");
      if (!q.executeStep())
        return Status::Invalid(path + " is not a tripline database (no schema_migrations table)");
    }
    {
      SQLite::Statement q(db, "SELECT version FROM schema_migrations ORDER BY version");
      while (q.executeStep()) applied.push_back(q.getColumn(0).getInt());
    }
    for (const Migration& m : embedded_migrations()) expected.push_back(m.version);
    if (applied != expected) {
      auto last = [](const std::vector<int>& v) { return v.empty() ? 0 : v.back(); };
      return Status::Invalid(
          path + " has schema version " + std::to_string(last(applied)) + " (" +
          std::to_string(applied.size()) + " migrations applied), this build's is " +
          std::to_string(last(expected)) + " (" + std::to_string(expected.size()) +
          "): start this build's `tripline serve` on it once (it migrates at start), stop it, "
          "then copy");
    }
    std::vector<std::string> tables;
    {
      SQLite::Statement q(db,
                          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                          "'sqlite\\_%' ESCAPE '\\' AND name <> 'schema_migrations' ORDER BY name");
      while (q.executeStep()) tables.push_back(q.getColumn(0).getString());
    }
    std::vector<std::string> ordered;
    for (const char* t : kParentsFirst)
      if (std::find(tables.begin(), tables.end(), t) != tables.end()) ordered.push_back(t);
    for (const std::string& t : tables)
      if (std::find(ordered.begin(), ordered.end(), t) == ordered.end()) ordered.push_back(t);

    bool has_sequence = false;
    {
      SQLite::Statement q(db, "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'");
      has_sequence = q.executeStep();
    }
    for (const std::string& table : ordered) {
      TablePage page;
      page.table = table;
      page.first = true;
      if (has_sequence) {
        SQLite::Statement q(db, "SELECT seq FROM sqlite_sequence WHERE name = ?");
        q.bind(1, table);
        if (q.executeStep()) page.sequence = q.getColumn(0).getInt64();
      }
      if (table == "requests_log") {
        // An execution may name an entry a crash left unwritten (StoreOptions::
        // defer_accepted_log; a start of tripline on this file rebuilds it): its id is never
        // handed out again either.
        SQLite::Statement q(db, "SELECT max(request_id) FROM executions");
        if (q.executeStep() && !q.getColumn(0).isNull())
          page.sequence = std::max(page.sequence, q.getColumn(0).getInt64());
      }
      {
        SQLite::Statement q(db, "SELECT name FROM pragma_table_info(?) ORDER BY cid");
        q.bind(1, table);
        while (q.executeStep()) page.columns.push_back(q.getColumn(0).getString());
      }
      std::string select = "SELECT _rowid_";
      for (const std::string& c : page.columns) select += ", " + quoted(c);
      select += " FROM " + quoted(table) + " WHERE _rowid_ > ?";
      // This file's own bookkeeping of its deferred request log entries (rebuild_deferred_
      // request_logs): it means nothing to another store.
      if (table == "settings") select += " AND name <> 'request_log_deferred_upto'";
      select += " ORDER BY _rowid_ LIMIT ?";
      SQLite::Statement q(db, select);
      int64_t after = std::numeric_limits<int64_t>::min();
      for (;;) {
        q.reset();
        q.bind(1, after);
        q.bind(2, page_rows);
        page.rows.clear();
        while (q.executeStep()) {
          after = q.getColumn(0).getInt64();
          std::vector<TableValue> row;
          row.reserve(page.columns.size());
          for (int i = 0; i < static_cast<int>(page.columns.size()); ++i)
            row.push_back(read_value(q.getColumn(i + 1)));
          page.rows.push_back(std::move(row));
        }
        bool last = static_cast<int>(page.rows.size()) < page_rows;
        if (!page.rows.empty() || page.first) {
          if (Status s = sink(page); !s.ok()) return s;
        }
        page.first = false;
        if (last) break;
      }
    }
    db.exec("COMMIT");
    return Status::Ok();
  });
}

}  // namespace tripline
