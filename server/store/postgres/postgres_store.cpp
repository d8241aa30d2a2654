#include "postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "crypto.h"
#include "json_limits.h"
#include "log.h"
#include "migrations.h"

namespace tripline {

namespace pg {

// A libpq error, thrown inside the store and answered as a Status by write() and read().
struct Error : std::exception {
  std::string sqlstate;  // "" when no server answered (a broken connection)
  std::string message;
  // The connection is gone (CONNECTION_BAD), whatever the server said last: a session the
  // server ended while it sat in the pool answers its next statement with the reason (57P01
  // when an administrator or a shutdown ended it, 57P05 after idle_session_timeout), then EOF.
  bool lost = false;
  Error(std::string state, std::string msg) : sqlstate(std::move(state)), message(std::move(msg)) {}
  const char* what() const noexcept override { return message.c_str(); }
  bool retryable() const { return sqlstate == "40001" || sqlstate == "40P01"; }
  bool connection() const { return lost || sqlstate.empty() || sqlstate.rfind("08", 0) == 0; }
};

// What a SQLSTATE means to the contract (store.h): Conflict for a constraint, Unavailable for
// what may pass (a connection lost, the server shutting down or out of space or connections, a
// lock held elsewhere past busy_timeout_ms, a standby that cannot write), Internal otherwise.
Status to_status(const Error& e) {
  const std::string& s = e.sqlstate;
  std::string msg = "database: " + e.message;
  if (s.rfind("23", 0) == 0) return Status::Conflict(msg);
  if (e.connection() || e.retryable() || s.rfind("53", 0) == 0 || s.rfind("58", 0) == 0 ||
      s == "57P01" || s == "57P02" || s == "57P03" || s == "57014" || s == "55P03" || s == "25006")
    return Status::Unavailable(msg);
  return Status::Internal(msg);
}

std::string trimmed(const char* text) {
  std::string out = text ? text : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// One statement's answer (text format).
class Res {
 public:
  explicit Res(PGresult* r) : r_(r) {}
  int rows() const { return PQntuples(r_.get()); }
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col));
  }
  std::string opt_text(int row, int col) const { return null(row, col) ? "" : text(row, col); }
  int64_t i64(int row, int col) const {
    return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
  }
  int64_t opt_i64(int row, int col, int64_t none) const {
    return null(row, col) ? none : i64(row, col);
  }
  std::optional<int64_t> maybe_i64(int row, int col) const {
    if (null(row, col)) return std::nullopt;
    return i64(row, col);
  }
  bool boolean(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }
  std::string bytea(int row, int col) const {
    size_t n = 0;
    unsigned char* raw =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_.get(), row, col)), &n);
    if (!raw) throw Error("", "cannot decode a bytea value");
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  // Rows an INSERT, UPDATE or DELETE touched.
  int64_t affected() const { return std::strtoll(PQcmdTuples(r_.get()), nullptr, 10); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

// A statement's parameters, bound by position ($1, $2...): values are never part of the SQL.
// Text parameters are made fit for a PostgreSQL text value: a NUL byte (which text cannot
// hold) or bytes that are not UTF-8 become U+FFFD, where SQLite would have stored them as they
// were; PostgreSQL would refuse the whole statement, and with it a group commit.
class Params {
 public:
  Params& add(int64_t v) { return put(std::to_string(v), 0); }
  Params& add(int v) { return add(static_cast<int64_t>(v)); }
  Params& add(bool v) { return put(v ? "true" : "false", 0); }
  Params& add(double v) {  // every digit a double holds (float8 reads it back exactly)
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", v);
    return put(text, 0);
  }
  Params& add(const char* s) { return add(std::string_view(s)); }
  Params& add(const std::string& s) { return add(std::string_view(s)); }
  Params& add(std::string_view s) {
    bool fine = true;
    for (unsigned char c : s)
      if (c == 0 || c >= 0x80) {
        fine = false;
        break;
      }
    if (fine) return put(std::string(s), 0);
    std::string text = utf8_text(s);
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
      if (c == '\0')
        out += "\xEF\xBF\xBD";
      else
        out += c;
    }
    return put(std::move(out), 0);
  }
  Params& add(std::optional<int64_t> v) { return v ? add(*v) : null(); }
  // Empty: NULL.
  Params& text_or_null(std::string_view s) { return s.empty() ? null() : add(s); }
  // JSON null: NULL.
  Params& json_or_null(const nlohmann::json& j) {
    if (j.is_null()) return null();
    return add(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  Params& bytes(std::string_view raw) { return put(std::string(raw), 1); }  // binary: bytea
  Params& ids(const std::vector<int64_t>& v) {                              // a bigint[] literal
    std::string s = "{";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return put(s + "}", 0);
  }
  // A text[] literal: each element quoted, `"` and `\` escaped.
  Params& texts(const std::vector<std::string_view>& v) {
    std::string s = "{";
    for (size_t i = 0; i < v.size(); ++i) {
      s += i ? ",\"" : "\"";
      for (char c : utf8_text(v[i])) {
        if (c == '"' || c == '\\') s += '\\';
        if (c != '\0') s += c;
      }
      s += '"';
    }
    return put(s + "}", 0);
  }
  Params& null() {
    values_.emplace_back();
    formats_.push_back(0);
    is_null_.push_back(true);
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  // Pointers valid while this lives and is not added to.
  void arrays(std::vector<const char*>& v, std::vector<int>& len) const {
    v.clear();
    len.clear();
    for (size_t i = 0; i < values_.size(); ++i) {
      v.push_back(is_null_[i] ? nullptr : values_[i].data());
      len.push_back(static_cast<int>(values_[i].size()));
    }
  }
  const int* formats() const { return formats_.data(); }

 private:
  Params& put(std::string v, int format) {
    values_.push_back(std::move(v));
    formats_.push_back(format);
    is_null_.push_back(false);
    return *this;
  }
  std::deque<std::string> values_;
  std::vector<int> formats_;
  std::vector<bool> is_null_;
};

// The statements the trigger path sends for every trigger, prepared once per connection (the
// first time it sends one): parsed and planned once instead of for every trigger, which cost the
// server 65-95 µs a trigger (bench/RESULTS.md, "replicas"). Each is sent as the very pointer
// listed here (kPrepared); any other text goes unprepared.
struct PreparedStatement {
  const char* name;
  const char* sql;
};
// A batch's executions of one receiver checked against its limits across the replicas
// (PostgresStore::insert_executions_tx, migrations/postgres/019_shared_limits.sql).
constexpr char kAdmit[] =
    "SELECT verdict, wait FROM tripline_admit($1, $2::bigint[], $3::text[], $4::text[], "
    "$5::bigint[], $6, $7, $8, $9)";
// One execution its receiver's limits admitted, recorded only while the receiver grants it
// (PostgresStore::insert_executions_tx).
constexpr char kInsertExecution[] =
    "INSERT INTO executions (receiver_id, generation, driver, config, idempotency_key, status, "
    "created_at, action, request_id, rule, owner) SELECT $1, $2, $3, $4, $5, 'queued', "
    "$6::bigint, $7, $8::bigint, $9, $10 FROM (SELECT 1 FROM receivers WHERE id = $1 AND "
    "generation = $2 AND enabled FOR SHARE) AS grants ON CONFLICT (receiver_id, idempotency_key) "
    "WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id";
// One request log entry, its id allocated already (request_log_insert).
constexpr char kRequestLogInsert[] =
    "INSERT INTO requests_log (id, receiver_id, received_at, outcome, status, error, detail, "
    "source, method, headers, body, body_size, body_truncated, execution_id, replay_of, "
    "token_redacted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
    "$16)";
constexpr PreparedStatement kPrepared[] = {{"tl_admit", kAdmit},
                                           {"tl_insert_execution", kInsertExecution},
                                           {"tl_request_log_insert", kRequestLogInsert}};

// A pooled connection, used by one call at a time.
class Conn {
 public:
  // `prepared`: which of kPrepared this connection has prepared (one bit each), kept by the pool
  // with the connection; null: none are (a connection of its own, the listener's).
  explicit Conn(PGconn* c, uint32_t* prepared = nullptr) : c_(c), prepared_(prepared) {}
  Res exec(const char* sql, const Params& p = Params()) {
    std::vector<const char*> values;
    std::vector<int> lengths;
    p.arrays(values, lengths);
    return check(
        PQexecParams(c_, sql, p.size(), nullptr, values.data(), lengths.data(), p.formats(), 0));
  }
  Res exec(const std::string& sql, const Params& p = Params()) { return exec(sql.c_str(), p); }
  // Several statements, no parameters (a migration's file).
  void script(const std::string& sql) { check(PQexec(c_, sql.c_str())); }
  PGconn* raw() const { return c_; }

  // Several statements in one round trip (libpq's pipeline mode), answered in order; the first
  // error throws once every answer is read. Sent in chunks, so that the server's answers never
  // fill the socket while this side is still sending (libpq's blocking mode would then wait on
  // both sides).
  using Statement = std::pair<const char*, Params>;
  static constexpr size_t kChunkMax = 256;
  std::vector<Res> pipeline(const std::vector<Statement>& statements) {
    constexpr size_t kChunk = kChunkMax;
    std::vector<Res> out;
    out.reserve(statements.size());
    for (size_t from = 0; from < statements.size(); from += kChunk)
      pipeline_chunk(statements, from, std::min(statements.size(), from + kChunk), out);
    return out;
  }

 private:
  Res check(PGresult* r) {
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return Res(r);
    std::string state, message;
    if (r) {
      const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
      if (s) state = s;
      message = trimmed(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
      PQclear(r);
    }
    if (message.empty()) message = trimmed(PQerrorMessage(c_));
    bool lost = PQstatus(c_) == CONNECTION_BAD;
    if (lost && state.empty()) state = "08006";
    Error e(std::move(state), std::move(message));
    e.lost = lost;
    throw e;
  }
  // The entry of kPrepared that `sql` is, prepared on this connection by now; null: `sql` is
  // none of them, or this connection keeps no record of what it prepared.
  const PreparedStatement* prepare(const char* sql) {
    if (!prepared_) return nullptr;
    for (uint32_t i = 0; i < std::size(kPrepared); ++i) {
      if (kPrepared[i].sql != sql) continue;
      if (!(*prepared_ & (1u << i))) {
        check(PQprepare(c_, kPrepared[i].name, sql, 0, nullptr));
        *prepared_ |= 1u << i;
      }
      return &kPrepared[i];
    }
    return nullptr;
  }
  void pipeline_chunk(const std::vector<Statement>& statements, size_t from, size_t to,
                      std::vector<Res>& out) {
    // Prepared before the pipeline, synchronously: once per connection and statement. A
    // prepared statement is the session's, not the transaction's: a rollback keeps it.
    const PreparedStatement* as[kChunkMax];
    for (size_t i = from; i < to; ++i) as[i - from] = prepare(statements[i].first);
    if (PQenterPipelineMode(c_) != 1) check(nullptr);
    std::vector<const char*> values;
    std::vector<int> lengths;
    size_t sent = from;
    for (; sent < to; ++sent) {
      const Params& p = statements[sent].second;
      p.arrays(values, lengths);
      const PreparedStatement* ps = as[sent - from];
      if ((ps ? PQsendQueryPrepared(c_, ps->name, p.size(), values.data(), lengths.data(),
                                    p.formats(), 0)
              : PQsendQueryParams(c_, statements[sent].first, p.size(), nullptr, values.data(),
                                  lengths.data(), p.formats(), 0)) != 1)
        break;
    }
    if (sent < to || PQpipelineSync(c_) != 1) {
      // The connection broke while sending: nothing more can be read from it.
      check(nullptr);
    }
    std::optional<Error> failure;
    for (size_t i = from; i < to; ++i) {
      PGresult* r = PQgetResult(c_);
      if (!r) check(nullptr);  // the connection broke: it is dropped
      while (PGresult* more = PQgetResult(c_)) PQclear(more);  // up to the query's end (NULL)
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_PIPELINE_ABORTED) {
        PQclear(r);
        out.emplace_back(nullptr);
        continue;
      }
      try {
        out.push_back(check(r));
      } catch (const Error& e) {
        if (!failure) failure = e;
        out.emplace_back(nullptr);
      }
    }
    PGresult* sync = PQgetResult(c_);  // PGRES_PIPELINE_SYNC
    if (!sync) check(nullptr);
    PQclear(sync);
    if (PQexitPipelineMode(c_) != 1) check(nullptr);
    if (failure) throw *failure;
  }
  PGconn* c_;
  uint32_t* prepared_;
};

// At most `max` connections, opened as calls need them, each checked out by one call at a time.
class Pool {
 public:
  Pool(std::string url, int max, int wait_ms, int lock_timeout_ms)
      : url_(std::move(url)),
        max_(std::max(max, 1)),
        wait_ms_(wait_ms),
        lock_timeout_ms_(lock_timeout_ms) {}
  ~Pool() {
    for (PGconn* c : idle_) PQfinish(c);
  }
  // Which of kPrepared `c` has prepared (Conn): the connection's own, until it is closed.
  uint32_t* prepared(PGconn* c) {
    std::lock_guard lock(mu_);
    return &prepared_[c];  // a node's address stays while it is in the map
  }

  // A connection for the caller alone; `reused` says it was open before (it may have broken
  // since, unseen: the server restarted).
  Status acquire(PGconn** out, bool* reused) {
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::milliseconds(wait_ms_),
                        [&] { return !idle_.empty() || open_ < max_; }))
        return Status::Unavailable("database: all " + std::to_string(max_) +
                                   " connections to PostgreSQL are busy");
      if (!idle_.empty()) {
        *out = idle_.back();
        idle_.pop_back();
        *reused = true;
        return Status::Ok();
      }
      ++open_;  // this slot is ours while the connection opens, outside the lock
    }
    *reused = false;
    Status s = connect(out);
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      --open_;
      cv_.notify_one();
    }
    return s;
  }

  // Back to the pool, or closed when it broke or was left inside a transaction.
  void release(PGconn* c) {
    bool keep = PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
    std::lock_guard lock(mu_);
    if (keep) {
      idle_.push_back(c);
    } else {
      --open_;
      // Forgotten before the connection is freed: a new one may get the same address.
      prepared_.erase(c);
      PQfinish(c);
    }
    cv_.notify_one();
  }

 private:
  Status connect(PGconn** out) {
    // The URL's own settings win over these defaults: expand_dbname expands it in place, and
    // what comes after it overrides what came before.
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* values[] = {"10", "tripline", url_.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keys, values, 1);
    if (!c) return Status::Unavailable("database: out of memory connecting to PostgreSQL");
    if (PQstatus(c) != CONNECTION_OK) {
      // libpq's message names the host and the user, never the password.
      std::string msg = trimmed(PQerrorMessage(c));
      PQfinish(c);
      return Status::Unavailable("database: cannot connect to PostgreSQL: " + msg);
    }
    // The server's notices (CREATE TABLE IF NOT EXISTS ... skipping) are not the service's log.
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    try {
      Conn conn(c);
      // A lock held elsewhere (another replica's transaction) is waited for as long as SQLite's
      // busy timeout, then the call answers Unavailable (55P03). A server or database whose
      // synchronous_commit is off would make every write relaxed: synced writes need it on.
      conn.exec(
          "SELECT set_config('lock_timeout', $1, false), set_config('synchronous_commit', "
          "CASE WHEN current_setting('synchronous_commit') = 'off' THEN 'on' ELSE "
          "current_setting('synchronous_commit') END, false)",
          Params().add(std::to_string(lock_timeout_ms_)));
    } catch (const Error& e) {
      PQfinish(c);
      return to_status(e);
    }
    *out = c;
    return Status::Ok();
  }

  const std::string url_;
  const int max_;
  const int wait_ms_;
  const int lock_timeout_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PGconn*> idle_;
  std::unordered_map<PGconn*, uint32_t> prepared_;
  int open_ = 0;  // idle, checked out, or opening
};

// A checked-out connection, handed back when it goes.
class Lease {
 public:
  explicit Lease(Pool& pool) : pool_(pool) {}
  ~Lease() {
    if (c_) pool_.release(c_);
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Status acquire() {
    Status s = pool_.acquire(&c_, &reused_);
    if (s.ok()) prepared_ = pool_.prepared(c_);
    return s;
  }
  bool reused() const { return reused_; }
  PGconn* get() const { return c_; }
  uint32_t* prepared() const { return prepared_; }

 private:
  Pool& pool_;
  PGconn* c_ = nullptr;
  uint32_t* prepared_ = nullptr;
  bool reused_ = false;
};

}  // namespace pg

using pg::Conn;
using pg::Params;
using pg::Res;

namespace {

// Retries of a transaction that lost a serialization race or was chosen as a deadlock's victim.
constexpr int kMaxAttempts = 4;

template <typename R>
R failed(const Status& s) {
  return R(s);
}
template <>
Status failed<Status>(const Status& s) {
  return s;
}

void rollback_quietly(PGconn* c) {
  if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_IDLE) return;
  PGresult* r = PQexec(c, "ROLLBACK");
  if (r) PQclear(r);
}

}  // namespace

template <typename F>
auto PostgresStore::write(Sync sync, F&& f) -> decltype(f(std::declval<Conn&>())) {
  using R = decltype(f(std::declval<Conn&>()));
  for (int attempt = 1;; ++attempt) {
    pg::Lease lease(*pool_);
    if (Status s = lease.acquire(); !s.ok()) return failed<R>(s);
    Conn c(lease.get(), lease.prepared());
    bool begun = false;
    try {
      c.exec("BEGIN");
      begun = true;
      if (sync == Sync::kRelaxed) c.exec("SET LOCAL synchronous_commit = off");
      R r = f(c);
      if (!r.ok()) {
        c.exec("ROLLBACK");
        return r;
      }
      c.exec("COMMIT");
      return r;
    } catch (const pg::Error& e) {
      rollback_quietly(lease.get());
      // A pooled connection found broken before anything was sent (the server restarted since
      // it was last used): again on another. One that is gone is closed as it goes back, so
      // after a restart this goes through the pool's dead connections, then opens a new one;
      // they do not count as attempts. After that the outcome may be unknown.
      bool stale = !begun && lease.reused() && e.connection();
      if (stale && e.lost) {
        --attempt;
        continue;
      }
      if ((e.retryable() || stale) && attempt < kMaxAttempts) {
        // A deadlock's victim goes again after a short random pause, so that the transactions it
        // crossed do not meet again in step.
        if (e.retryable())
          std::this_thread::sleep_for(std::chrono::milliseconds(
              attempt * 5 +
              static_cast<int>(static_cast<unsigned char>(crypto::random_bytes(1)[0]) % 20)));
        continue;
      }
      return failed<R>(pg::to_status(e));
    } catch (const std::exception& e) {
      rollback_quietly(lease.get());
      return failed<R>(Status::Internal(std::string("database: ") + e.what()));
    }
  }
}

template <typename F>
auto PostgresStore::read(F&& f) -> decltype(f(std::declval<Conn&>())) {
  using R = decltype(f(std::declval<Conn&>()));
  for (int attempt = 1;; ++attempt) {
    pg::Lease lease(*pool_);
    if (Status s = lease.acquire(); !s.ok()) return failed<R>(s);
    Conn c(lease.get(), lease.prepared());
    try {
      return f(c);
    } catch (const pg::Error& e) {
      rollback_quietly(lease.get());
      // A read changes nothing: a stale pooled connection is retried on another, as often as
      // the pool held connections that are gone (each is closed as it goes back), else once.
      if (e.connection() && lease.reused() && (e.lost || attempt < 2)) continue;
      return failed<R>(pg::to_status(e));
    } catch (const std::exception& e) {
      rollback_quietly(lease.get());
      return failed<R>(Status::Internal(std::string("database: ") + e.what()));
    }
  }
}

namespace {

constexpr const char* kReceiverColumns =
    "id, name, driver, config, enabled, generation, created_at, updated_at, rules, auth, limits, "
    "nonce, version";
constexpr const char* kExecutionColumns =
    "id, receiver_id, generation, driver, config, status, attempts, plan, result, error, "
    "created_at, started_at, finished_at, next_attempt_at, action, attempt_errors, request_id, "
    "rule";

std::string select_from(const char* columns, const char* rest) {
  return std::string("SELECT ") + columns + " " + rest;
}

// Stored JSON was written by us; a row that no longer parses is corruption, reported as an
// error rather than handed on as a discarded value.
nlohmann::json parse_stored(const Res& q, int row, int col) {
  auto j = nlohmann::json::parse(q.text(row, col), nullptr, false);
  if (j.is_discarded())
    throw std::runtime_error("column " + std::to_string(col) + " holds invalid JSON");
  return j;
}

nlohmann::json opt_json(const Res& q, int row, int col) {
  if (q.null(row, col)) return nullptr;
  return parse_stored(q, row, col);
}

ReceiverRow read_receiver(const Res& q, int i) {
  ReceiverRow r;
  r.id = q.i64(i, 0);
  r.name = q.text(i, 1);
  r.driver = q.text(i, 2);
  r.config = parse_stored(q, i, 3);
  r.enabled = q.boolean(i, 4);
  r.generation = q.i64(i, 5);
  r.created_at = q.i64(i, 6);
  r.updated_at = q.i64(i, 7);
  r.rules = opt_json(q, i, 8);
  r.auth = opt_json(q, i, 9);
  r.limits = opt_json(q, i, 10);
  r.nonce = q.text(i, 11);
  r.version = q.i64(i, 12);
  return r;
}

// Every row of `q`, each read by `read_row` (read_receiver, read_execution...).
template <typename Row>
std::vector<Row> read_all(const Res& q, Row (*read_row)(const Res&, int)) {
  std::vector<Row> out;
  out.reserve(q.rows());
  for (int i = 0; i < q.rows(); ++i) out.push_back(read_row(q, i));
  return out;
}

std::vector<ReceiverRow> read_receivers(const Res& q) { return read_all(q, read_receiver); }

ExecutionRow read_execution(const Res& q, int i) {
  ExecutionRow e;
  e.id = q.i64(i, 0);
  e.receiver_id = q.i64(i, 1);
  e.generation = q.i64(i, 2);
  e.driver = q.text(i, 3);
  e.config = q.text(i, 4);
  e.status = parse_execution_status(q.text(i, 5)).value_or(ExecutionStatus::kFailed);
  e.attempts = static_cast<int>(q.i64(i, 6));
  e.plan = opt_json(q, i, 7);
  e.result = opt_json(q, i, 8);
  e.error = q.opt_text(i, 9);
  e.created_at = q.i64(i, 10);
  e.started_at = q.maybe_i64(i, 11);
  e.finished_at = q.maybe_i64(i, 12);
  e.next_attempt_at = q.maybe_i64(i, 13);
  e.action = q.opt_text(i, 14);
  e.attempt_errors = opt_json(q, i, 15);
  if (!e.attempt_errors.is_array()) e.attempt_errors = nlohmann::json::array();
  e.request_id = q.opt_i64(i, 16, 0);
  e.rule = opt_json(q, i, 17);
  return e;
}

std::vector<ExecutionRow> read_executions(const Res& q) { return read_all(q, read_execution); }

std::vector<int64_t> read_ids(const Res& q) {
  std::vector<int64_t> out;
  out.reserve(q.rows());
  for (int i = 0; i < q.rows(); ++i) out.push_back(q.i64(i, 0));
  return out;
}

// The key of the advisory lock that migrations are applied under ("tripline" in ASCII, then 1).
constexpr int64_t kMigrationLock = 0x7472706c696e0001LL;

// The advisory lock of one receiver's idempotency key: 64-bit FNV-1a of "id:key", the same in
// every replica (a collision only makes two batches wait for each other).
int64_t idempotency_lock(int64_t receiver_id, const std::string& key) {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(std::to_string(receiver_id));
  mix(":");
  mix(key);
  return static_cast<int64_t>(h);
}

}  // namespace

PostgresStore::~PostgresStore() {
  {
    std::lock_guard lock(watch_mu_);
    watch_stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watch_thread_.joinable()) watch_thread_.join();
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::open(const std::string& url,
                                                           StoreOptions options) {
  std::unique_ptr<PostgresStore> s(new PostgresStore());
  if (options.clock) s->clock_ = options.clock;
  s->busy_timeout_ms_ = options.busy_timeout_ms;
  s->pool_ = std::make_unique<pg::Pool>(url, options.max_connections, options.busy_timeout_ms,
                                        options.busy_timeout_ms);
  s->url_ = url;
  s->replica_ = options.replica;
  if (s->replica_.empty()) {
    // New at every start (docs/scale-out.md): a name no earlier process had, readable in logs.
    char host[64] = {};
    ::gethostname(host, sizeof host - 1);
    s->replica_ = std::string(host) + "-" + std::to_string(::getpid()) + "-" +
                  crypto::hex(crypto::random_bytes(4));
  }
  if (Status m = s->migrate(); !m.ok()) return m;
  return s;
}

Status PostgresStore::migrate() {
  // Every migration in its own transaction, under a transaction-scoped advisory lock: replicas
  // opening the database at once wait for each other, and the one that comes second finds the
  // version recorded and skips it. schema_migrations is created under the same lock (two
  // concurrent CREATE TABLE IF NOT EXISTS may both try to create it).
  Result<std::vector<int>> applied = write(Sync::kSynced, [&](Conn& c) -> Result<std::vector<int>> {
    c.exec("SELECT pg_advisory_xact_lock($1)", Params().add(kMigrationLock));
    c.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT "
        "NULL, applied_at BIGINT NOT NULL)");
    Res q = c.exec("SELECT version FROM schema_migrations ORDER BY version");
    std::vector<int> out;
    for (int i = 0; i < q.rows(); ++i) out.push_back(static_cast<int>(q.i64(i, 0)));
    return out;
  });
  if (!applied.ok()) return applied.status();
  for (const Migration& m : embedded_postgres_migrations()) {
    if (std::find(applied->begin(), applied->end(), m.version) != applied->end()) continue;
    Status s = write(Sync::kSynced, [&](Conn& c) -> Status {
      c.exec("SELECT pg_advisory_xact_lock($1)", Params().add(kMigrationLock));
      Res seen =
          c.exec("SELECT 1 FROM schema_migrations WHERE version = $1", Params().add(m.version));
      if (seen.rows() > 0) return Status::Ok();  // another replica applied it meanwhile
      c.script(std::string(m.sql));
      c.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
             Params().add(m.version).add(m.name).add(now_ms()));
      return Status::Ok();
    });
    if (!s.ok()) {
      std::string why = "migration " + std::string(m.name) + " failed: " + s.message();
      return s.code() == Status::Code::kUnavailable ? Status::Unavailable(why)
                                                    : Status::Internal(why);
    }
  }
  return Status::Ok();
}

std::vector<int> PostgresStore::applied_migrations() {
  auto r = read([&](Conn& c) -> Result<std::vector<int>> {
    Res q = c.exec("SELECT version FROM schema_migrations ORDER BY version");
    std::vector<int> out;
    for (int i = 0; i < q.rows(); ++i) out.push_back(static_cast<int>(q.i64(i, 0)));
    return out;
  });
  if (!r.ok()) return {};
  return std::move(r).value();
}

// --- receivers ---------------------------------------------------------------------------

ReceiverRow PostgresStore::receiver_tx(Conn& c, int64_t id) {
  Res q = c.exec(select_from(kReceiverColumns, "FROM receivers WHERE id = $1"), Params().add(id));
  if (q.rows() == 0) throw std::runtime_error("the receiver changed is not there to audit");
  return read_receiver(q, 0);
}

Result<ReceiverRow> PostgresStore::insert_receiver(const ReceiverRow& r, const AuditEntry* audit) {
  auto id = write(Sync::kSynced, [&](Conn& c) -> Result<int64_t> {
    int64_t now = now_ms();
    Res q = c.exec(
        "INSERT INTO receivers (name, driver, config, rules, auth, limits, enabled, created_at, "
        "updated_at, nonce) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        Params()
            .add(r.name)
            .add(r.driver)
            .add(r.config.dump())
            .json_or_null(r.rules)
            .json_or_null(r.auth)
            .json_or_null(r.limits)
            .add(r.enabled)
            .add(now)
            .add(now)
            .add(r.nonce));
    int64_t id = q.i64(0, 0);
    if (audit) {
      ReceiverRow row = receiver_tx(c, id);
      audit_tx(c, *audit, id, &row);
    }
    return id;
  });
  if (!id.ok()) {
    if (id.status().code() == Status::Code::kConflict)
      return Status::Conflict("a receiver named \"" + r.name + "\" already exists");
    return id.status();
  }
  return get_receiver(*id);
}

// Runs one UPDATE of receiver `id`, and its audit entry in the same transaction; NotFound when no
// row changed.
template <typename Bind>
Status PostgresStore::update_receiver_row(const char* sql, int64_t id, const AuditEntry* audit,
                                          Bind&& bind) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    Params p;
    bind(p);
    if (c.exec(sql, p).affected() == 0) return Status::NotFound("no such receiver");
    if (audit) {
      ReceiverRow row = receiver_tx(c, id);
      audit_tx(c, *audit, std::nullopt, &row);
    }
    return Status::Ok();
  });
}

Result<ReceiverRow> PostgresStore::update_receiver(int64_t id, const ReceiverRow& r,
                                                   int64_t expected_version, bool revoke,
                                                   const AuditEntry* audit) {
  Status s = update_receiver_row(
      "UPDATE receivers SET name = $1, config = $2, rules = $3, auth = $4, limits = $5, "
      "enabled = $6, generation = generation + $7, version = version + 1, updated_at = $8 "
      "WHERE id = $9 AND version = $10",
      id, audit, [&](Params& p) {
        p.add(r.name)
            .add(r.config.dump())
            .json_or_null(r.rules)
            .json_or_null(r.auth)
            .json_or_null(r.limits)
            .add(r.enabled)
            .add(revoke ? 1 : 0)
            .add(now_ms())
            .add(id)
            .add(expected_version);
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

Result<ReceiverRow> PostgresStore::set_enabled(int64_t id, bool enabled, const AuditEntry* audit) {
  Status s = update_receiver_row(
      // Disabling an enabled receiver revokes its URL.
      "UPDATE receivers SET generation = generation + CASE WHEN enabled AND NOT $1 THEN 1 "
      "ELSE 0 END, enabled = $1, version = version + 1, updated_at = $2 WHERE id = $3",
      id, audit, [&](Params& p) { p.add(enabled).add(now_ms()).add(id); });
  if (!s.ok()) return s;
  return get_receiver(id);
}

Result<ReceiverRow> PostgresStore::bump_generation(int64_t id, const AuditEntry* audit) {
  Status s = update_receiver_row(
      "UPDATE receivers SET generation = generation + 1, version = version + 1, updated_at = $1 "
      "WHERE id = $2",
      id, audit, [&](Params& p) { p.add(now_ms()).add(id); });
  if (!s.ok()) return s;
  return get_receiver(id);
}

Status PostgresStore::delete_receiver(int64_t id, const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    // Its name outlives it, for the executions that stay in the history (migration 017).
    c.exec(
        "INSERT INTO deleted_receivers (id, name, deleted_at) SELECT id, name, $1::bigint FROM "
        "receivers "
        "WHERE id = $2 ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
        "deleted_at = excluded.deleted_at",
        Params().add(now_ms()).add(id));
    if (c.exec("DELETE FROM receivers WHERE id = $1", Params().add(id)).affected() == 0)
      return Status::NotFound("no such receiver");
    // Its subscriptions, and their deliveries, go with it.
    for (const char* sql : {"DELETE FROM delivery_attempts WHERE delivery_id IN "
                            "(SELECT id FROM deliveries WHERE receiver_id = $1)",
                            "DELETE FROM deliveries WHERE receiver_id = $1",
                            "DELETE FROM subscriptions WHERE receiver_id = $1",
                            "DELETE FROM requests_log WHERE receiver_id = $1",
                            // Its limits across replicas (migration 019), after its row: the
                            // trigger path's lock order.
                            "DELETE FROM limit_state WHERE receiver_id = $1",
                            "DELETE FROM limit_deltas WHERE receiver_id = $1"})
      c.exec(sql, Params().add(id));
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
}

Result<std::map<int64_t, Store::ReceiverName>> PostgresStore::receiver_names(
    const std::vector<int64_t>& ids) {
  if (ids.size() > 500) return Status::Invalid("at most 500 receiver ids at once");
  return read([&](Conn& c) -> Result<std::map<int64_t, ReceiverName>> {
    std::map<int64_t, ReceiverName> out;
    if (ids.empty()) return out;
    // Live names first: an id is in deleted_receivers only once its receiver is gone.
    Res q = c.exec(
        "SELECT id, name, false FROM receivers WHERE id = ANY($1::bigint[]) UNION ALL "
        "SELECT id, name, true FROM deleted_receivers WHERE id = ANY($1::bigint[]) ORDER BY 3",
        Params().ids(ids));
    for (int i = 0; i < q.rows(); ++i)
      out.emplace(q.i64(i, 0), ReceiverName{q.text(i, 1), q.boolean(i, 2)});
    return out;
  });
}

Result<ReceiverRow> PostgresStore::get_receiver(int64_t id) {
  return read([&](Conn& c) -> Result<ReceiverRow> {
    Res q = c.exec(select_from(kReceiverColumns, "FROM receivers WHERE id = $1"), Params().add(id));
    if (q.rows() == 0) return Status::NotFound("no receiver with id " + std::to_string(id));
    return read_receiver(q, 0);
  });
}

Result<std::vector<ReceiverRow>> PostgresStore::list_receivers(int limit, int64_t offset,
                                                               int64_t* total) {
  return read([&](Conn& c) -> Result<std::vector<ReceiverRow>> {
    // One snapshot, so the total and the page agree.
    c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    *total = c.exec("SELECT count(*) FROM receivers").i64(0, 0);
    Res q = c.exec(select_from(kReceiverColumns, "FROM receivers ORDER BY id LIMIT $1 OFFSET $2"),
                   Params().add(limit).add(offset));
    c.exec("COMMIT");
    return read_receivers(q);
  });
}

Result<std::vector<ReceiverRow>> PostgresStore::receivers_after(int64_t after_id, int limit) {
  return read([&](Conn& c) -> Result<std::vector<ReceiverRow>> {
    return read_receivers(
        c.exec(select_from(kReceiverColumns, "FROM receivers WHERE id > $1 ORDER BY id LIMIT $2"),
               Params().add(after_id).add(limit)));
  });
}

Result<std::vector<ReceiverRow>> PostgresStore::all_receivers() {
  return read([&](Conn& c) -> Result<std::vector<ReceiverRow>> {
    return read_receivers(c.exec(select_from(kReceiverColumns, "FROM receivers ORDER BY id")));
  });
}

// --- executions --------------------------------------------------------------------------

Status PostgresStore::insert_executions(std::vector<NewExecution>& batch) {
  return commit_group(batch, {}, nullptr, false);
}

// The group commit is always synced: a deferred_sync commit would be durable only after
// sync_wal(), and PostgreSQL offers no way to wait for the flush of one earlier asynchronous
// commit short of a synced commit of its own. Committing synced at once is the simplest correct
// choice (sync_wal() then has nothing left to do); the ingest pays the fsync in the commit
// instead of in the sync that overlaps the next batch (docs/postgres.md).
Status PostgresStore::commit_group(std::vector<NewExecution>& batch,
                                   const std::vector<PlannedBatch>& plans,
                                   std::vector<Status>* plan_status, bool /*deferred_sync*/) {
  // What the transaction changes in the batch's request log entries, restored before a retry.
  struct Saved {
    std::string outcome, error;
    int status = 0;
    nlohmann::json detail;
  };
  std::vector<Saved> saved;
  saved.reserve(batch.size());
  for (const NewExecution& e : batch)
    saved.push_back(e.request ? Saved{e.request->outcome, e.request->error, e.request->status,
                                      e.request->detail}
                              : Saved{});
  // The receivers' limits across the replicas first, in a short relaxed transaction of its
  // own: the limit_state rows it locks are let go at once, not held through the group commit's
  // flush, so the replicas' group commits on one hot receiver do not queue behind each other
  // (docs/scale-out.md). What it claims stays claimed if the group commit then fails.
  std::vector<Claim> claims;
  if (!batch.empty()) {
    Status claimed = write(Sync::kRelaxed, [&](Conn& c) -> Status {
      claims = admit_tx(c, batch);
      return Status::Ok();
    });
    if (!claimed.ok()) return claimed;
  }
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    for (size_t i = 0; i < batch.size(); ++i)
      if (RequestLogRow* r = batch[i].request) {
        r->outcome = saved[i].outcome;
        r->error = saved[i].error;
        r->status = saved[i].status;
        r->detail = saved[i].detail;
        r->execution_id = 0;
        r->id = 0;
      }
    if (plan_status) plan_status->assign(plans.size(), Status::Ok());
    insert_executions_tx(c, batch, claims);
    // Each lane's plans in a savepoint of their own: plans that cannot be recorded fail their
    // worker alone (it records them again later), not the triggers or the other lanes.
    for (size_t i = 0; i < plans.size(); ++i) {
      c.exec("SAVEPOINT plans");
      Status s = Status::Ok();
      try {
        start_planned_tx(c, *plans[i].runs, plans[i].started_at);
      } catch (const pg::Error& e) {
        if (e.connection()) throw;
        s = pg::to_status(e);
      } catch (const std::exception& e) {
        s = Status::Internal(std::string("database: ") + e.what());
      }
      if (!s.ok()) c.exec("ROLLBACK TO SAVEPOINT plans");
      c.exec("RELEASE SAVEPOINT plans");
      if (plan_status) (*plan_status)[i] = std::move(s);
    }
    return Status::Ok();
  });
}

// Every commit is synced when it returns (commit_group above): nothing is left to make durable.
Status PostgresStore::sync_wal() { return Status::Ok(); }

namespace {
// The INSERT of one request log entry, whose id is allocated already.
Conn::Statement request_log_insert(const RequestLogRow& r) {
  // A compared value is whatever the request held (a header of byte 0xFF): not UTF-8 text is
  // stored with U+FFFD, where nlohmann's strict dump would throw and lose the whole batch.
  std::string detail =
      r.detail.is_null() ? std::string("{}")
                         : r.detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  Params p;
  p.add(r.id).add(r.receiver_id).add(r.received_at).add(r.outcome).add(r.status);
  p.text_or_null(r.error).add(detail).add(r.source).add(r.method).add(r.headers).add(r.body);
  p.add(r.body_size).add(r.body_truncated);
  p.add(r.execution_id ? std::optional<int64_t>(r.execution_id) : std::nullopt);
  p.add(r.replay_of ? std::optional<int64_t>(r.replay_of) : std::nullopt);
  p.add(r.token_redacted);
  return {pg::kRequestLogInsert, std::move(p)};
}
}  // namespace

namespace {
// The log entry of an execution the receiver's limits across the replicas refused: what the
// replica's own check writes for the same refusal (App::admit), noting that it was the count of
// every replica that said no.
void limited_log_entry(const NewExecution& e, RequestLogRow& r) {
  const LimitsCheck& l = e.limits;
  switch (e.limited) {
    case LimitRefusal::kRateLimited:
      r.outcome = "rate_limited";
      r.status = 429;
      r.error = "rate_limited";
      r.detail = {{"message", "the receiver's rate limit was reached (all replicas together)"},
                  {"rate_per_minute", l.rate_per_s * 60},
                  {"burst", l.burst},
                  {"retry_after_s", e.limit_wait}};
      break;
    case LimitRefusal::kQueueFull:
      r.outcome = "queue_full";
      r.status = 429;
      r.error = "queue_full";
      r.detail = {{"message",
                   "the receiver's executions waiting to run reached its max_queued (all "
                   "replicas together)"},
                  {"max_queued", l.max_queued}};
      break;
    case LimitRefusal::kCoolingDown:
    case LimitRefusal::kNone: {
      std::string action = e.action ? *e.action : "";
      r.outcome = "cooling_down";
      r.status = l.ignore_status;
      r.error.clear();
      r.detail = {
          {"message", "cooling down: \"" + action + "\" ran less than " +
                          std::to_string(l.cooldown_ms / 1000) + " s ago (all replicas together)"},
          {"action", action},
          {"cooldown_s", l.cooldown_ms / 1000}};
      break;
    }
  }
}
}  // namespace

namespace {
// The execution each of `rows` (of `batch`, each with an idempotency key) finds recorded under
// its key, 0 for none: all in one round trip.
std::vector<int64_t> recorded_keys(Conn& c, const std::vector<NewExecution>& batch,
                                   const std::vector<size_t>& rows) {
  std::vector<Conn::Statement> finds;
  for (size_t i : rows)
    finds.emplace_back("SELECT id FROM executions WHERE receiver_id = $1 AND idempotency_key = $2",
                       Params().add(batch[i].receiver_id).add(batch[i].idempotency_key));
  std::vector<int64_t> ids;
  for (const Res& found : c.pipeline(finds)) ids.push_back(found.rows() == 1 ? found.i64(0, 0) : 0);
  return ids;
}
}  // namespace

std::vector<PostgresStore::Claim> PostgresStore::admit_tx(Conn& c,
                                                          std::vector<NewExecution>& batch) {
  std::vector<Claim> claims(batch.size());
  // A repeat is answered with the earlier execution before any limit is looked at, as on one
  // node (App::admit).
  std::vector<size_t> keyed;
  for (size_t i = 0; i < batch.size(); ++i)
    if (!batch[i].idempotency_key.empty()) keyed.push_back(i);
  std::vector<int64_t> earlier = recorded_keys(c, batch, keyed);
  for (size_t j = 0; j < keyed.size(); ++j)
    if (earlier[j] != 0) claims[keyed[j]] = {Claim::kReplayed, earlier[j]};

  // Each receiver's executions in one call (migrations/postgres/019_shared_limits.sql), the
  // receivers in id order, so two replicas' claims lock limit_state rows in the same order. All
  // the calls in one round trip.
  std::vector<size_t> order;
  for (size_t i = 0; i < batch.size(); ++i)
    if (claims[i].kind != Claim::kReplayed) order.push_back(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return batch[x].receiver_id < batch[y].receiver_id; });
  std::vector<Conn::Statement> admits;
  std::vector<std::pair<size_t, size_t>> spans;  // each call's rows: [first, last) of `order`
  for (size_t from = 0; from < order.size();) {
    size_t to = from;
    std::vector<int64_t> gens, nows;
    std::vector<std::string_view> acts, kinds;
    while (to < order.size() && batch[order[to]].receiver_id == batch[order[from]].receiver_id) {
      const NewExecution& e = batch[order[to++]];
      gens.push_back(e.generation);
      nows.push_back(e.created_at);
      acts.push_back(e.action ? std::string_view(*e.action) : std::string_view());
      kinds.push_back(e.limits.kind == LimitsCheck::Kind::kTrigger ? "trigger"
                      : e.limits.kind == LimitsCheck::Kind::kRetry ? "retry"
                                                                   : "redeliver");
    }
    const LimitsCheck& l = batch[order[to - 1]].limits;  // the newest version's, in batch order
    Params p;
    p.add(batch[order[from]].receiver_id).ids(gens).texts(acts).texts(kinds).ids(nows);
    p.add(l.cooldown_ms).add(l.rate_per_s).add(l.burst).add(l.max_queued);
    admits.emplace_back(pg::kAdmit, std::move(p));
    spans.emplace_back(from, to);
    from = to;
  }
  std::vector<Res> verdicts = c.pipeline(admits);
  for (size_t k = 0; k < spans.size(); ++k) {
    const Res& q = verdicts[k];
    for (size_t n = spans[k].first; n < spans[k].second; ++n) {
      Claim& claim = claims[order[n]];
      int row = int(n - spans[k].first);
      std::string verdict = q.text(row, 0);
      if (verdict == "ok") {
        claim.kind = Claim::kAdmitted;
      } else if (verdict == "revoked") {
        claim.kind = Claim::kRevoked;
      } else {
        claim.kind = Claim::kLimited;
        claim.limited = verdict == "rate_limited" ? LimitRefusal::kRateLimited
                        : verdict == "queue_full" ? LimitRefusal::kQueueFull
                                                  : LimitRefusal::kCoolingDown;
        claim.value = q.i64(row, 1);
      }
    }
  }
  return claims;
}

void PostgresStore::insert_executions_tx(Conn& c, std::vector<NewExecution>& batch,
                                         const std::vector<Claim>& claims) {
  // The request log's ids first, in one round trip, so each execution names its entry. A
  // sequence never hands an id out twice, not even one of a transaction that rolled back.
  int64_t wanted = 0;
  for (const NewExecution& e : batch)
    if (e.request) ++wanted;
  std::vector<int64_t> request_ids;
  if (wanted > 0)
    request_ids =
        read_ids(c.exec("SELECT nextval(pg_get_serial_sequence('requests_log', 'id')) FROM "
                        "generate_series(1, $1)",
                        Params().add(wanted)));
  // Replicas' batches that share idempotency keys would otherwise wait on each other's inserts in
  // batch order, and two batches with two keys in opposite orders deadlock. Each key's
  // transaction-scoped advisory lock is taken first, all in one sorted order: the second batch
  // waits for the first to commit, then finds its keys recorded (`replayed`).
  std::vector<int64_t> key_locks;
  for (size_t i = 0; i < batch.size(); ++i)
    if (claims[i].kind == Claim::kAdmitted && !batch[i].idempotency_key.empty())
      key_locks.push_back(idempotency_lock(batch[i].receiver_id, batch[i].idempotency_key));
  if (!key_locks.empty()) {
    std::sort(key_locks.begin(), key_locks.end());
    key_locks.erase(std::unique(key_locks.begin(), key_locks.end()), key_locks.end());
    c.exec("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k",
           Params().ids(key_locks));
  }
  size_t next_request = 0;
  std::vector<size_t> admitted;
  for (size_t i = 0; i < batch.size(); ++i) {
    NewExecution& e = batch[i];
    const Claim& claim = claims[i];
    e.replayed = claim.kind == Claim::kReplayed;
    e.revoked = claim.kind == Claim::kRevoked;
    e.limited = claim.kind == Claim::kLimited ? claim.limited : LimitRefusal::kNone;
    e.limit_wait = claim.kind == Claim::kLimited ? claim.value : 0;
    e.id = claim.kind == Claim::kReplayed ? claim.value : 0;
    if (e.request) e.request->id = request_ids.at(next_request++);
    if (claim.kind == Claim::kAdmitted) admitted.push_back(i);
  }

  // Only while the receiver still grants it. FOR SHARE locks the receiver's row until the
  // commit: a revoke (an UPDATE of the row, on any replica) waits for this transaction, and one
  // that committed first is seen here (READ COMMITTED re-reads the updated row), so no revoke
  // can slip between the check and the insert. Every execution's INSERT in one round trip.
  std::vector<Conn::Statement> inserts;
  inserts.reserve(admitted.size());
  for (size_t i : admitted) {
    const NewExecution& e = batch[i];
    Params p;
    p.add(e.receiver_id).add(e.generation).add(*e.driver).add(*e.config);
    p.text_or_null(e.idempotency_key).add(e.created_at);
    if (e.action)
      p.add(*e.action);
    else
      p.null();
    if (e.request)
      p.add(e.request->id);
    else
      p.null();
    if (e.rule && !e.rule->is_null())
      p.add(e.rule->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    else
      p.null();
    p.add(replica_);  // this replica's to run (docs/scale-out.md)
    inserts.emplace_back(pg::kInsertExecution, std::move(p));
  }
  std::vector<Res> inserted = c.pipeline(inserts);
  // Not recorded: a key recorded since the claims were made (ON CONFLICT waited for that insert
  // to commit, and a later statement's snapshot sees it), or a revoke.
  std::vector<size_t> late;
  std::map<int64_t, int64_t> recorded;  // receiver -> executions recorded: its queue's +n
  for (size_t j = 0; j < inserted.size(); ++j) {
    NewExecution& e = batch[admitted[j]];
    if (inserted[j].rows() == 1) {
      e.id = inserted[j].i64(0, 0);
      ++recorded[e.receiver_id];
    } else if (e.idempotency_key.empty()) {
      e.revoked = true;
    } else {
      late.push_back(admitted[j]);
    }
  }
  std::vector<int64_t> earlier = recorded_keys(c, batch, late);
  for (size_t j = 0; j < late.size(); ++j) {
    NewExecution& e = batch[late[j]];
    e.revoked = earlier[j] == 0;  // not a repeat: the receiver no longer grants it
    e.replayed = earlier[j] != 0;
    e.id = earlier[j];
  }
  if (!recorded.empty()) {
    std::vector<int64_t> receivers, counts;
    for (const auto& [receiver, n] : recorded) {
      receivers.push_back(receiver);
      counts.push_back(n);
    }
    c.exec(
        "INSERT INTO limit_deltas (receiver_id, n) SELECT * FROM unnest($1::bigint[], "
        "$2::bigint[])",
        Params().ids(receivers).ids(counts));
  }
  write_request_logs_tx(c, batch);
}

void PostgresStore::write_request_logs_tx(Conn& c, std::vector<NewExecution>& batch) {
  std::vector<Conn::Statement> logs;
  for (NewExecution& e : batch) {
    if (!e.request) continue;
    RequestLogRow& r = *e.request;
    if (e.revoked) {
      r.outcome = "refused";
      r.status = 401;
      r.error = "revoked_token";
      r.detail = {{"check", "revoked"},
                  {"message", "the trigger URL was revoked while the request was being recorded"}};
    } else if (e.limited != LimitRefusal::kNone) {
      limited_log_entry(e, r);
    } else {
      r.execution_id = e.id;
      if (e.replayed) r.detail["duplicate"] = true;  // the earlier execution answered
    }
    logs.push_back(request_log_insert(r));
  }
  c.pipeline(logs);
}

Status PostgresStore::insert_request_logs(std::vector<RequestLogRow>& rows,
                                          const std::vector<int64_t>& trim,
                                          int64_t keep_per_receiver,
                                          std::vector<int64_t>* untrimmed, int max_trimmed,
                                          int64_t /*accepted_upto: this store never defers*/) {
  std::vector<int64_t> left;
  Status s = write(Sync::kRelaxed, [&](Conn& c) -> Status {
    left.clear();
    if (!rows.empty()) {
      std::vector<int64_t> ids =
          read_ids(c.exec("SELECT nextval(pg_get_serial_sequence('requests_log', 'id')) FROM "
                          "generate_series(1, $1)",
                          Params().add(static_cast<int64_t>(rows.size()))));
      // An entry that reached the log's writer after its receiver was deleted is not written:
      // the delete took the receiver's entries, and nothing would show or trim this one.
      std::vector<int64_t> named;
      for (const RequestLogRow& r : rows) named.push_back(r.receiver_id);
      std::sort(named.begin(), named.end());
      named.erase(std::unique(named.begin(), named.end()), named.end());
      // FOR KEY SHARE: a delete of one of them (another replica's) waits for this commit, and
      // its DELETE of the receiver's entries then takes these too.
      std::vector<int64_t> present = read_ids(
          c.exec("SELECT id FROM receivers WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE",
                 Params().ids(named)));
      std::vector<Conn::Statement> logs;
      logs.reserve(rows.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        if (!rows[i].deferred) rows[i].id = ids.at(i);
        if (std::binary_search(present.begin(), present.end(), rows[i].receiver_id))
          logs.push_back(request_log_insert(rows[i]));
      }
      if (!logs.empty()) c.pipeline(logs);
    }
    if (keep_per_receiver > 0 && !trim.empty()) {
      // The newest N stay: the oldest of what is at or below the (N+1)th newest id go, at most
      // `budget` of them (both by the index on (receiver_id, id)).
      int64_t budget = std::max(max_trimmed, 1);
      for (int64_t receiver : trim) {
        if (budget > 0)
          budget -= c.exec(
                         "DELETE FROM requests_log WHERE id IN (SELECT id FROM requests_log "
                         "WHERE receiver_id = $1 AND id <= (SELECT id FROM requests_log WHERE "
                         "receiver_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2) ORDER BY id "
                         "LIMIT $3)",
                         Params().add(receiver).add(keep_per_receiver).add(budget))
                        .affected();
        if (budget <= 0) left.push_back(receiver);  // may hold more: the next call goes on
      }
    }
    return Status::Ok();
  });
  if (s.ok() && untrimmed) *untrimmed = std::move(left);
  return s;
}

namespace {
constexpr const char* kRequestLogColumns =
    "id, receiver_id, received_at, outcome, status, error, detail, source, method, headers, "
    "body, body_size, body_truncated, execution_id, replay_of, token_redacted";

RequestLogRow read_request_log(const Res& q, int i) {
  RequestLogRow r;
  r.id = q.i64(i, 0);
  r.receiver_id = q.i64(i, 1);
  r.received_at = q.i64(i, 2);
  r.outcome = q.text(i, 3);
  r.status = static_cast<int>(q.i64(i, 4));
  r.error = q.opt_text(i, 5);
  r.detail = opt_json(q, i, 6);
  if (!r.detail.is_object()) r.detail = nlohmann::json::object();
  r.source = q.text(i, 7);
  r.method = q.text(i, 8);
  r.headers = q.text(i, 9);
  r.body = q.text(i, 10);
  r.body_size = q.i64(i, 11);
  r.body_truncated = q.boolean(i, 12);
  r.execution_id = q.opt_i64(i, 13, 0);
  r.replay_of = q.opt_i64(i, 14, 0);
  r.token_redacted = q.boolean(i, 15);
  return r;
}
}  // namespace

Result<std::vector<RequestLogRow>> PostgresStore::list_request_logs(int64_t receiver_id,
                                                                    const std::string& outcome,
                                                                    int limit, int64_t before_id) {
  return read([&](Conn& c) -> Result<std::vector<RequestLogRow>> {
    Res q = c.exec(
        select_from(kRequestLogColumns,
                    "FROM requests_log WHERE receiver_id = $1 AND ($2::bigint = 0 OR id < $2) "
                    "AND ($3 = '' OR outcome = $3) ORDER BY id DESC LIMIT $4"),
        Params().add(receiver_id).add(before_id).add(outcome).add(limit));
    return read_all(q, read_request_log);
  });
}

Result<RequestLogRow> PostgresStore::get_request_log(int64_t receiver_id, int64_t id) {
  return read([&](Conn& c) -> Result<RequestLogRow> {
    Res q = c.exec(
        select_from(kRequestLogColumns, "FROM requests_log WHERE receiver_id = $1 AND id = $2"),
        Params().add(receiver_id).add(id));
    if (q.rows() == 0) return Status::NotFound("no such request in the log");
    return read_request_log(q, 0);
  });
}

Result<int> PostgresStore::prune_request_logs(int64_t before_ms, int limit) {
  return write(Sync::kRelaxed, [&](Conn& c) -> Result<int> {
    return static_cast<int>(c.exec("DELETE FROM requests_log WHERE id IN (SELECT id FROM "
                                   "requests_log WHERE received_at < $1 ORDER BY received_at "
                                   "LIMIT $2)",
                                   Params().add(before_ms).add(limit))
                                .affected());
  });
}

Status PostgresStore::cancel_execution(int64_t id, int64_t now_ms, const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    Res q = c.exec(
        "UPDATE executions SET status = 'failed', error = 'cancelled', finished_at = $1, "
        "next_attempt_at = NULL WHERE id = $2 AND status = 'queued'",
        Params().add(now_ms).add(id));
    if (q.affected() == 0) {
      Res s = c.exec("SELECT status FROM executions WHERE id = $1", Params().add(id));
      if (s.rows() == 0) return Status::NotFound("no such execution");
      return Status::Conflict(
          "only a queued execution (or one waiting to retry) can be cancelled; this one is " +
          s.text(0, 0));
    }
    note_status_tx(c, id, "failed", {}, now_ms);
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
}

namespace {
// Appends the failed attempt's error (at most 1024 characters) to executions.attempt_errors
// (migrations/postgres/014_execution_attempts.sql), then bounds the array to 16 entries: the
// first and the 15 latest. $1: the error, $2: when; the SET list of an UPDATE of executions.
constexpr const char* kAppendAttemptError =
    "attempt_errors = (SELECT (CASE WHEN jsonb_array_length(a) > 16 THEN a - 1 ELSE a END)::text "
    "FROM (SELECT coalesce(attempt_errors, '[]')::jsonb || jsonb_build_array(jsonb_build_object("
    "'attempt', attempts, 'at', $2::bigint, 'error', left($1::text, 1024))) AS a) AS appended)";
}  // namespace

Status PostgresStore::mark_running(int64_t id, int attempts, int64_t started_at,
                                   std::string_view target) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec(
        "UPDATE executions SET status = 'running', attempts = $1, "
        "started_at = coalesce(started_at, $2), next_attempt_at = NULL WHERE id = $3",
        Params().add(attempts).add(started_at).add(id));
    note_status_tx(c, id, "running", target, started_at);
    return Status::Ok();
  });
}

Status PostgresStore::record_plan(int64_t id, const nlohmann::json& plan) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec("UPDATE executions SET plan = $1 WHERE id = $2", Params().add(plan.dump()).add(id));
    return Status::Ok();
  });
}

Status PostgresStore::requeue(int64_t id, const std::string& error, int64_t next_attempt_at,
                              std::string_view target) {
  return requeue_all({id}, error, next_attempt_at, target);
}

Status PostgresStore::requeue_all(const std::vector<int64_t>& ids, const std::string& error,
                                  int64_t next_attempt_at, std::string_view target) {
  return write(Sync::kRelaxed, [&](Conn& c) -> Status {
    const int64_t now = now_ms();
    const std::string sql = std::string("UPDATE executions SET status = 'queued', error = $1, ") +
                            "next_attempt_at = $3, " + kAppendAttemptError + " WHERE id = $4";
    for (int64_t id : ids) {
      c.exec(sql, Params().add(error).add(now).add(next_attempt_at).add(id));
      note_status_tx(c, id, "retrying", target, now);
    }
    return Status::Ok();
  });
}

Status PostgresStore::finish(int64_t id, ExecutionStatus status, const nlohmann::json& result,
                             const std::string& error, int64_t finished_at,
                             std::string_view target) {
  return finish_all({Finished{id, status, &result, error, finished_at, target}});
}

Status PostgresStore::start_planned(const std::vector<PlannedRun>& runs, int64_t started_at) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    start_planned_tx(c, runs, started_at);
    return Status::Ok();
  });
}

void PostgresStore::start_planned_tx(Conn& c, const std::vector<PlannedRun>& runs,
                                     int64_t started_at) {
  for (const PlannedRun& r : runs) {
    c.exec(
        "UPDATE executions SET status = 'running', attempts = $1, "
        "started_at = coalesce(started_at, $2), next_attempt_at = NULL, plan = $3 WHERE id = $4",
        Params().add(r.attempts).add(started_at).add(r.plan->dump()).add(r.id));
    note_status_tx(c, r.id, "running", r.target, started_at);
  }
}

Status PostgresStore::finish_all(const std::vector<Finished>& outcomes) {
  // Only successes are relaxed: a lost success is re-applied to the same end. A failure is
  // synced, since after its loss recovery would run the execution again and might act.
  bool all_succeeded = std::all_of(outcomes.begin(), outcomes.end(), [](const Finished& f) {
    return f.status == ExecutionStatus::kSucceeded;
  });
  return write(all_succeeded ? Sync::kRelaxed : Sync::kSynced, [&](Conn& c) -> Status {
    const std::string with_error =
        std::string("UPDATE executions SET status = $5, result = $3, error = $1, ") +
        "finished_at = $2, next_attempt_at = NULL, " + kAppendAttemptError + " WHERE id = $4";
    for (const Finished& f : outcomes) {
      Params p;
      p.text_or_null(f.error).add(f.finished_at);
      if (!f.result || f.result->is_null())
        p.null();
      else
        p.add(f.result->dump());
      p.add(f.id).add(to_string(f.status));
      if (!f.error.empty())
        c.exec(with_error, p);
      else
        c.exec(
            "UPDATE executions SET status = $5, result = $3, error = $1, finished_at = $2, "
            "next_attempt_at = NULL WHERE id = $4",
            p);
      note_status_tx(c, f.id, to_string(f.status), f.target, f.finished_at);
    }
    return Status::Ok();
  });
}

Status PostgresStore::finish_settled(const std::vector<PlannedRun>& runs, int64_t started_at,
                                     const std::vector<Finished>& outcomes) {
  if (runs.size() != outcomes.size()) return Status::Invalid("runs and outcomes differ in number");
  return write(Sync::kRelaxed, [&](Conn& c) -> Status {  // successes only (see finish_all)
    for (size_t i = 0; i < runs.size(); ++i) {
      const PlannedRun& r = runs[i];
      const Finished& f = outcomes[i];
      Params p;
      p.add(r.attempts).add(started_at).add(r.plan->dump());
      if (!f.result || f.result->is_null())
        p.null();
      else
        p.add(f.result->dump());
      p.add(f.finished_at).add(r.id);
      // Only an execution with no recorded plan: a recorded one is what a recovery re-applies,
      // and is never finished from a fresh read.
      Res q = c.exec(
          "UPDATE executions SET status = 'succeeded', attempts = $1, "
          "started_at = coalesce(started_at, $2), plan = $3, result = $4, finished_at = $5, "
          "next_attempt_at = NULL WHERE id = $6 AND plan IS NULL",
          p);
      if (q.affected() != 1)
        throw std::runtime_error("execution " + std::to_string(r.id) + " has a recorded plan");
      note_status_tx(c, r.id, "running", r.target, started_at);
      note_status_tx(c, f.id, "succeeded", f.target, f.finished_at);
    }
    return Status::Ok();
  });
}

Result<ExecutionRow> PostgresStore::get_execution(int64_t id) {
  return read([&](Conn& c) -> Result<ExecutionRow> {
    Res q =
        c.exec(select_from(kExecutionColumns, "FROM executions WHERE id = $1"), Params().add(id));
    if (q.rows() == 0) return Status::NotFound("no execution with id " + std::to_string(id));
    return read_execution(q, 0);
  });
}

Result<std::vector<ExecutionRow>> PostgresStore::list_executions(const ExecutionFilter& f) {
  return read([&](Conn& c) -> Result<std::vector<ExecutionRow>> {
    // The filters that are not given compare NULL and drop out of the plan.
    Params p;
    p.add(f.receiver_id);
    if (f.status)
      p.add(to_string(*f.status));
    else
      p.null();
    p.add(f.before_id).add(f.limit);
    return read_executions(
        c.exec(select_from(kExecutionColumns,
                           "FROM executions WHERE ($1::bigint IS NULL OR receiver_id = $1) AND "
                           "($2::text IS NULL OR status = $2) AND ($3::bigint = 0 OR id < $3) "
                           "ORDER BY id DESC LIMIT $4"),
               p));
  });
}

Result<std::vector<ExecutionRow>> PostgresStore::unfinished_executions(int64_t after_id,
                                                                       int limit) {
  return read([&](Conn& c) -> Result<std::vector<ExecutionRow>> {
    Params p;
    p.add(after_id);
    if (limit < 0)
      p.null();  // LIMIT NULL: all
    else
      p.add(limit);
    return read_executions(
        c.exec(select_from(kExecutionColumns,
                           "FROM executions WHERE status IN ('queued', 'running') AND id > $1 "
                           "AND owner = $3 ORDER BY id LIMIT $2"),
               p.add(replica_)));
  });
}

Result<std::vector<std::pair<int64_t, int64_t>>> PostgresStore::unfinished_counts() {
  return read([&](Conn& c) -> Result<std::vector<std::pair<int64_t, int64_t>>> {
    Res q = c.exec(
        "SELECT receiver_id, count(*) FROM executions WHERE status IN ('queued', 'running') "
        "AND owner = $1 GROUP BY receiver_id",
        Params().add(replica_));
    std::vector<std::pair<int64_t, int64_t>> out;
    for (int i = 0; i < q.rows(); ++i) out.emplace_back(q.i64(i, 0), q.i64(i, 1));
    return out;
  });
}

Result<std::optional<int64_t>> PostgresStore::find_execution_by_key(int64_t receiver_id,
                                                                    const std::string& key) {
  return read([&](Conn& c) -> Result<std::optional<int64_t>> {
    Res q = c.exec("SELECT id FROM executions WHERE receiver_id = $1 AND idempotency_key = $2",
                   Params().add(receiver_id).add(key));
    if (q.rows() == 0) return std::optional<int64_t>();
    return std::optional<int64_t>(q.i64(0, 0));
  });
}

Result<std::vector<RecentExecution>> PostgresStore::recent_executions(int64_t receiver_id,
                                                                      int64_t since_ms) {
  return read([&](Conn& c) -> Result<std::vector<RecentExecution>> {
    // As SQLite's: newest first along executions_by_receiver (ids grow with time) down to the
    // first row created before `since_ms`; here, every row after the newest such row.
    Res q = c.exec(
        "SELECT created_at, coalesce(action, '') FROM executions WHERE receiver_id = $1 AND "
        "id > coalesce((SELECT id FROM executions WHERE receiver_id = $1 AND created_at < $2 "
        "ORDER BY id DESC LIMIT 1), 0) ORDER BY id",
        Params().add(receiver_id).add(since_ms));
    std::vector<RecentExecution> out;
    for (int i = 0; i < q.rows(); ++i) out.push_back({q.i64(i, 0), q.text(i, 1)});
    return out;
  });
}

Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> PostgresStore::recent_executions(
    int64_t since_ms) {
  return read([&](Conn& c) -> Result<std::unordered_map<int64_t, std::vector<RecentExecution>>> {
    Res q = c.exec(
        "SELECT receiver_id, created_at, coalesce(action, '') FROM executions WHERE id > "
        "coalesce((SELECT id FROM executions WHERE created_at < $1 ORDER BY id DESC LIMIT 1), 0) "
        "ORDER BY id",
        Params().add(since_ms));
    std::unordered_map<int64_t, std::vector<RecentExecution>> out;
    for (int i = 0; i < q.rows(); ++i) out[q.i64(i, 0)].push_back({q.i64(i, 1), q.text(i, 2)});
    return out;
  });
}

Result<std::vector<int64_t>> PostgresStore::receivers_over(int64_t count) {
  return read([&](Conn& c) -> Result<std::vector<int64_t>> {
    return read_ids(
        c.exec("SELECT receiver_id FROM executions GROUP BY receiver_id HAVING count(*) > $1",
               Params().add(count)));
  });
}

Result<int64_t> PostgresStore::unfinished_count(int64_t receiver_id) {
  return read([&](Conn& c) -> Result<int64_t> {
    return c
        .exec(
            "SELECT count(*) FROM executions WHERE receiver_id = $1 AND status IN "
            "('queued', 'running') AND owner = $2",
            Params().add(receiver_id).add(replica_))
        .i64(0, 0);
  });
}

Result<std::vector<int64_t>> PostgresStore::prunable_executions(const RetentionPolicy& p,
                                                                int64_t now,
                                                                int64_t protect_since_ms,
                                                                const std::vector<int64_t>& over,
                                                                int limit) {
  return read([&](Conn& c) -> Result<std::vector<int64_t>> {
    std::vector<int64_t> out;
    const int64_t dedupe_before = now - p.dedupe_window_ms;
    if (p.max_age_ms > 0)
      out = read_ids(c.exec(
          "SELECT id FROM executions WHERE status IN ('succeeded', 'failed') AND created_at < $1 "
          "AND (idempotency_key IS NULL OR created_at < $2) ORDER BY id LIMIT $3",
          Params()
              .add(std::min(now - p.max_age_ms, protect_since_ms))
              .add(dedupe_before)
              .add(limit)));
    if (p.keep_per_receiver > 0 && int(out.size()) < limit) {
      // Each receiver's finished rows older than its newest N.
      for (int64_t rid : over) {
        Res q = c.exec(
            "SELECT id FROM executions WHERE receiver_id = $1 AND status IN ('succeeded', "
            "'failed') AND (idempotency_key IS NULL OR created_at < $2) AND created_at < $5 AND "
            "id < (SELECT id FROM executions WHERE receiver_id = $1 ORDER BY id DESC LIMIT 1 "
            "OFFSET $3) ORDER BY id LIMIT $4",
            Params()
                .add(rid)
                .add(dedupe_before)
                .add(p.keep_per_receiver - 1)
                .add(limit - int(out.size()))
                .add(protect_since_ms));
        for (int64_t id : read_ids(q)) out.push_back(id);
        if (int(out.size()) >= limit) break;
      }
      std::sort(out.begin(), out.end());
      out.erase(std::unique(out.begin(), out.end()), out.end());
    }
    return out;
  });
}

Result<int> PostgresStore::delete_executions(const std::vector<int64_t>& ids) {
  if (ids.empty()) return 0;
  return write(Sync::kSynced, [&](Conn& c) -> Result<int> {
    std::vector<int64_t> gone = read_ids(
        c.exec("DELETE FROM executions WHERE id = ANY($1::bigint[]) AND status IN ('succeeded', "
               "'failed') RETURNING id",
               Params().ids(ids)));
    if (gone.empty()) return 0;
    // An execution's notifications and their attempts go with it (docs/webhooks.md).
    c.exec(
        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE "
        "execution_id = ANY($1::bigint[]))",
        Params().ids(gone));
    c.exec("DELETE FROM deliveries WHERE execution_id = ANY($1::bigint[])", Params().ids(gone));
    // A deleted receiver's name is kept while it has executions (migration 017).
    c.exec(
        "DELETE FROM deleted_receivers WHERE NOT EXISTS (SELECT 1 FROM executions WHERE "
        "receiver_id = deleted_receivers.id)");
    // An execution of a deleted receiver that finished after it went counted a -1 for it
    // (migration 019) that nothing will fold.
    c.exec(
        "DELETE FROM limit_deltas WHERE NOT EXISTS (SELECT 1 FROM receivers WHERE id = "
        "limit_deltas.receiver_id)");
    return static_cast<int>(gone.size());
  });
}

// --- settings ----------------------------------------------------------------------------

Status PostgresStore::set_setting(const std::string& name, const std::string& value,
                                  const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec(
        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET "
        "value = excluded.value",
        Params().add(name).add(value));
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
}

Result<std::optional<std::string>> PostgresStore::get_setting(const std::string& name) {
  return read([&](Conn& c) -> Result<std::optional<std::string>> {
    Res q = c.exec("SELECT value FROM settings WHERE name = $1", Params().add(name));
    if (q.rows() == 0) return std::optional<std::string>();
    return std::optional<std::string>(q.text(0, 0));
  });
}

// --- admin tokens ------------------------------------------------------------------------

namespace {
// The last-admin checks count admins and then change one: two transactions of READ COMMITTED
// could each count two admins and each remove one. This lock (which only writers of admin
// tokens take; reads go on) makes them one after the other, on every replica, and the count
// statement that follows it sees what the one before committed.
constexpr const char* kLockAdminTokens = "LOCK TABLE admin_tokens IN SHARE ROW EXCLUSIVE MODE";
}  // namespace

Result<AdminTokenRow> PostgresStore::insert_admin_token(const std::string& name,
                                                        const std::string& token_hash, Role role,
                                                        const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Result<AdminTokenRow> {
    AdminTokenRow row{0, name, token_hash, now_ms(), false, role};
    row.id = c.exec(
                  "INSERT INTO admin_tokens (name, token_hash, created_at, role) VALUES ($1, $2, "
                  "$3, $4) RETURNING id",
                  Params().add(name).bytes(token_hash).add(row.created_at).add(to_string(role)))
                 .i64(0, 0);
    if (audit) audit_tx(c, *audit, row.id);
    return row;
  });
}

Result<std::vector<AdminTokenRow>> PostgresStore::list_admin_tokens() {
  return read([&](Conn& c) -> Result<std::vector<AdminTokenRow>> {
    Res q = c.exec(
        "SELECT id, name, token_hash, created_at, from_env, role FROM admin_tokens ORDER BY id");
    std::vector<AdminTokenRow> out;
    for (int i = 0; i < q.rows(); ++i)
      out.push_back({q.i64(i, 0), q.text(i, 1), q.bytea(i, 2), q.i64(i, 3), q.boolean(i, 4),
                     // The CHECK of migration 016 admits no other value.
                     parse_role(q.text(i, 5)).value_or(Role::kReadOnly)});
    return out;
  });
}

Status PostgresStore::delete_admin_token(int64_t id, const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec(kLockAdminTokens);
    Res q = c.exec(
        "DELETE FROM admin_tokens WHERE id = $1 AND (role <> 'admin' OR "
        "(SELECT count(*) FROM admin_tokens WHERE role = 'admin') > 1)",
        Params().add(id));
    if (q.affected() == 1) {
      if (audit) audit_tx(c, *audit);
      return Status::Ok();
    }
    if (c.exec("SELECT 1 FROM admin_tokens WHERE id = $1", Params().add(id)).rows() > 0)
      return Status::Conflict(
          "this is the last token with the admin role; create another admin first");
    return Status::NotFound("no admin token with id " + std::to_string(id));
  });
}

Result<AdminTokenRow> PostgresStore::set_admin_token_role(int64_t id, Role role,
                                                          const AuditEntry* audit) {
  Status s = write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec(kLockAdminTokens);
    Res q = c.exec(
        "UPDATE admin_tokens SET role = $2 WHERE id = $1 AND NOT from_env AND "
        "(role <> 'admin' OR $2 = 'admin' OR "
        "(SELECT count(*) FROM admin_tokens WHERE role = 'admin') > 1)",
        Params().add(id).add(to_string(role)));
    if (q.affected() == 1) {
      if (audit) audit_tx(c, *audit);
      return Status::Ok();
    }
    Res exists = c.exec("SELECT from_env FROM admin_tokens WHERE id = $1", Params().add(id));
    if (exists.rows() == 0) return Status::NotFound("no admin token with id " + std::to_string(id));
    if (exists.boolean(0, 0))
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

Result<int> PostgresStore::replace_env_admin_token(const std::string& name,
                                                   const std::string& token_hash,
                                                   const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Result<int> {
    c.exec(kLockAdminTokens);
    Res revoked =
        c.exec("DELETE FROM admin_tokens WHERE from_env AND token_hash <> $1 RETURNING id, name",
               Params().bytes(token_hash));
    bool stored = c.exec("SELECT id FROM admin_tokens WHERE token_hash = $1 AND from_env",
                         Params().bytes(token_hash))
                      .rows() > 0;
    // A token created through the API with the same value becomes the managed row, an admin.
    int64_t id = c.exec(
                      "INSERT INTO admin_tokens (name, token_hash, created_at, from_env, role) "
                      "VALUES ($1, $2, $3, true, 'admin') ON CONFLICT (token_hash) DO UPDATE "
                      "SET from_env = true, role = 'admin' RETURNING id",
                      Params().add(name).bytes(token_hash).add(now_ms()))
                     .i64(0, 0);
    if (audit) {
      for (int i = 0; i < revoked.rows(); ++i) {
        AuditEntry e = *audit;
        e.action = "token.revoke";
        e.target_type = "token";
        e.target_id = revoked.i64(i, 0);
        e.target_name = revoked.text(i, 1);
        e.before = {{"name", e.target_name}, {"role", "admin"}, {"from_env", true}};
        e.after = nullptr;
        audit_tx(c, e);
      }
      if (!stored) {
        AuditEntry e = *audit;
        e.action = "token.create";
        e.target_type = "token";
        e.target_id = id;
        e.target_name = name;
        e.before = nullptr;
        e.after = {{"name", name}, {"role", "admin"}, {"from_env", true}};
        audit_tx(c, e);
      }
    }
    return static_cast<int>(revoked.rows());
  });
}

// --- audit log ---------------------------------------------------------------------------

namespace {
constexpr size_t kMaxAuditSide = 64 * 1024;
}  // namespace

void PostgresStore::audit_tx(Conn& c, const AuditEntry& a, std::optional<int64_t> target_id,
                             const ReceiverRow* row) {
  std::string name = a.target_name;
  nlohmann::json after = a.after;
  if (row) {
    if (name.empty()) name = row->name;
    if (a.render_after) after = a.render_after(*row);
  }
  // Each side at most 64 KiB: a receiver's rules can be large, and 100,000 rows of them would
  // not be bounded by the row count alone (docs/security.md "Audit log").
  auto bounded = [](const nlohmann::json& j) -> nlohmann::json {
    if (j.is_null()) return j;
    std::string text = j.dump();
    if (text.size() <= kMaxAuditSide) return j;
    return {{"truncated", true}, {"bytes", text.size()}};
  };
  Params p;
  p.add(now_ms()).add(a.actor_id).add(a.actor_name).add(a.actor_role).add(a.source);
  p.add(a.action).add(a.target_type).add(a.target_id ? a.target_id : target_id).add(name);
  p.json_or_null(bounded(a.before)).json_or_null(bounded(after));
  c.exec(
      "INSERT INTO audit_log (at, actor_id, actor_name, actor_role, source, action, "
      "target_type, target_id, target_name, \"before\", \"after\") "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      p);
}

Status PostgresStore::record_audit(const AuditEntry& entry) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    audit_tx(c, entry);
    return Status::Ok();
  });
}

Result<std::vector<AuditEntry>> PostgresStore::list_audit(const AuditFilter& f) {
  return read([&](Conn& c) -> Result<std::vector<AuditEntry>> {
    Params p;
    p.add(f.before_id).add(f.target_type).add(f.target_id).add(f.limit);
    Res q = c.exec(
        "SELECT id, at, actor_id, actor_name, actor_role, source, action, target_type, "
        "target_id, target_name, \"before\", \"after\" FROM audit_log WHERE ($1::bigint = 0 OR id "
        "< $1) "
        "AND ($2 = '' OR target_type = $2) AND ($3::bigint IS NULL OR target_id = $3) "
        "ORDER BY id DESC LIMIT $4",
        p);
    std::vector<AuditEntry> out;
    for (int i = 0; i < q.rows(); ++i) {
      AuditEntry e;
      e.id = q.i64(i, 0);
      e.at = q.i64(i, 1);
      e.actor_id = q.maybe_i64(i, 2);
      e.actor_name = q.text(i, 3);
      e.actor_role = q.text(i, 4);
      e.source = q.text(i, 5);
      e.action = q.text(i, 6);
      e.target_type = q.text(i, 7);
      e.target_id = q.maybe_i64(i, 8);
      e.target_name = q.text(i, 9);
      e.before = opt_json(q, i, 10);
      e.after = opt_json(q, i, 11);
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<int> PostgresStore::prune_audit(const AuditRetention& r, int64_t now, int limit) {
  return write(Sync::kSynced, [&](Conn& c) -> Result<int> {
    // The oldest rows first: those past the age, and those below the newest `keep`.
    return static_cast<int>(
        c.exec("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE "
               "($1::bigint > 0 AND at < $2) OR ($3::bigint > 0 AND at < $5 AND id <= (SELECT id "
               "FROM audit_log "
               "ORDER BY id DESC LIMIT 1 OFFSET $3)) ORDER BY id LIMIT $4)",
               Params()
                   .add(r.max_age_ms)
                   .add(now - r.max_age_ms)
                   .add(r.keep)
                   .add(limit)
                   .add(now - r.count_floor_ms))
            .affected());
  });
}

// --- notifications -----------------------------------------------------------------------

namespace {
constexpr const char* kSubscriptionColumns =
    "id, receiver_id, url, secrets, scheme, events, enabled, disabled_reason, dropped, "
    "created_at, updated_at";

SubscriptionRow read_subscription(const Res& q, int i) {
  SubscriptionRow s;
  s.id = q.i64(i, 0);
  s.receiver_id = q.i64(i, 1);
  s.url = q.text(i, 2);
  s.secrets = nlohmann::json::parse(q.text(i, 3), nullptr, false);
  s.scheme = q.text(i, 4);
  auto events = nlohmann::json::parse(q.text(i, 5), nullptr, false);
  if (events.is_array())
    for (const auto& e : events)
      if (e.is_string()) s.events.push_back(e.get<std::string>());
  s.enabled = q.boolean(i, 6);
  s.disabled_reason = q.opt_text(i, 7);
  s.dropped = q.i64(i, 8);
  s.created_at = q.i64(i, 9);
  s.updated_at = q.i64(i, 10);
  return s;
}

constexpr const char* kDeliveryColumns =
    "id, subscription_id, receiver_id, execution_id, event, webhook_id, payload, state, attempts, "
    "budget_from, next_attempt_at, last_status, last_error, created_at, finished_at";

DeliveryRow read_delivery(const Res& q, int i) {
  DeliveryRow d;
  d.id = q.i64(i, 0);
  d.subscription_id = q.i64(i, 1);
  d.receiver_id = q.i64(i, 2);
  d.execution_id = q.i64(i, 3);
  d.event = q.text(i, 4);
  d.webhook_id = q.text(i, 5);
  d.payload = q.text(i, 6);
  d.state = q.text(i, 7);
  d.attempts = static_cast<int>(q.i64(i, 8));
  d.budget_from = static_cast<int>(q.i64(i, 9));
  d.next_attempt_at = q.maybe_i64(i, 10);
  if (!q.null(i, 11)) d.last_status = static_cast<int>(q.i64(i, 11));
  d.last_error = q.opt_text(i, 12);
  d.created_at = q.i64(i, 13);
  d.finished_at = q.maybe_i64(i, 14);
  return d;
}

std::string events_json(const std::vector<std::string>& events) {
  return nlohmann::json(events).dump();
}

// RFC 3339 in UTC with milliseconds, as SQLite's strftime('%Y-%m-%dT%H:%M:%fZ').
std::string rfc3339_ms(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  int64_t frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(frac));
  return buf;
}

nlohmann::ordered_json text_or_null(const Res& q, int col) {
  if (q.null(0, col)) return nullptr;
  return q.text(0, col);
}

// A notification carries the plan and the result, but never a large one: a webhook plan holds
// the whole request body (up to 1 MiB), and 1,000 pending deliveries of it per subscription
// would be a GiB. The webhook's body is left out; any other plan or result over 16 KiB is
// replaced by {"truncated": true} (docs/webhooks.md). As the SQLite store's.
nlohmann::ordered_json notification_json(const Res& q, int col, bool webhook_plan) {
  if (q.null(0, col)) return nullptr;
  std::string text = q.text(0, col);
  if (!webhook_plan && text.size() > 16384) return {{"truncated", true}};
  auto j = nlohmann::ordered_json::parse(text, nullptr, false);
  if (j.is_discarded()) return nullptr;
  if (webhook_plan && j.is_object()) j.erase("body");
  return j;
}
}  // namespace

void PostgresStore::note_status_tx(Conn& c, int64_t execution_id, const char* event,
                                   std::string_view target, int64_t now) {
  // The subscriptions of the execution's receiver that ask for the event, and whether each
  // one's backlog is full. No subscription (the usual case): one statement, nothing more. No
  // cache of "are there any" as the SQLite store keeps: another replica may add one.
  Res subs = c.exec(
      "SELECT s.id, (SELECT count(*) FROM deliveries d WHERE d.subscription_id = s.id AND "
      "d.state = 'pending') >= $3 FROM subscriptions s JOIN executions e ON s.receiver_id = "
      "e.receiver_id WHERE e.id = $1 AND s.enabled AND s.events::jsonb ? $2 ORDER BY s.id",
      Params().add(execution_id).add(event).add(kMaxPendingPerSubscription));
  if (subs.rows() == 0) return;
  std::vector<int64_t> room, full;
  for (int i = 0; i < subs.rows(); ++i)
    (subs.boolean(i, 1) ? full : room).push_back(subs.i64(i, 0));
  if (!full.empty()) {
    c.exec("UPDATE subscriptions SET dropped = dropped + 1 WHERE id = ANY($1::bigint[])",
           Params().ids(full));
    log::warn("notification dropped: a subscription's backlog is full",
              {{"execution_id", std::to_string(execution_id)}, {"event", event}});
  }
  if (room.empty()) return;
  // The body (docs/webhooks.md) is fixed now, as is its webhook-id: the same bytes and id on
  // every attempt. Built here, in the same order and shape as the SQLite store's json_object().
  Res e = c.exec(
      "SELECT e.receiver_id, (SELECT name FROM receivers WHERE id = e.receiver_id), e.driver, "
      "e.action, e.attempts, e.plan, e.result, e.error FROM executions e WHERE e.id = $1",
      Params().add(execution_id));
  if (e.rows() == 0) return;
  nlohmann::ordered_json data;
  data["execution_id"] = execution_id;
  data["receiver_id"] = e.i64(0, 0);
  data["receiver"] = text_or_null(e, 1);
  data["driver"] = e.text(0, 2);
  data["target"] = utf8_text(target);
  data["action"] = text_or_null(e, 3);
  data["status"] = event;
  data["attempt"] = e.i64(0, 4);
  data["plan"] = notification_json(e, 5, e.text(0, 2) == "webhook");
  data["result"] = notification_json(e, 6, false);
  data["error"] = text_or_null(e, 7);
  nlohmann::ordered_json body;
  body["type"] = std::string("execution.") + event;
  body["timestamp"] = rfc3339_ms(now);
  body["data"] = std::move(data);
  const std::string payload = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  for (int64_t sub : room)
    c.exec(
        "INSERT INTO deliveries (subscription_id, receiver_id, execution_id, event, webhook_id, "
        "payload, state, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', "
        "$7, $7)",
        Params()
            .add(sub)
            .add(e.i64(0, 0))
            .add(execution_id)
            .add(event)
            .add("msg_" + crypto::hex(crypto::random_bytes(16)))
            .add(payload)
            .add(now));
}

Result<SubscriptionRow> PostgresStore::insert_subscription(const SubscriptionRow& s,
                                                           const AuditEntry* audit) {
  auto id = write(Sync::kSynced, [&](Conn& c) -> Result<int64_t> {
    int64_t now = now_ms();
    Res q = c.exec(
        "INSERT INTO subscriptions (receiver_id, url, secrets, scheme, events, enabled, "
        "created_at, updated_at) SELECT $1::bigint, $2, $3, $4, $5, $6::boolean, $7::bigint, "
        "$8::bigint FROM receivers "
        "WHERE id = $1 RETURNING id",
        Params()
            .add(s.receiver_id)
            .add(s.url)
            .add(s.secrets.dump())
            .add(s.scheme)
            .add(events_json(s.events))
            .add(s.enabled)
            .add(now)
            .add(now));
    if (q.rows() == 0)
      return Status::NotFound("no receiver with id " + std::to_string(s.receiver_id));
    int64_t id = q.i64(0, 0);
    if (audit) audit_tx(c, *audit, id);
    return id;
  });
  if (!id.ok()) return id.status();
  return get_subscription(s.receiver_id, *id);
}

Result<SubscriptionRow> PostgresStore::update_subscription(const SubscriptionRow& s,
                                                           const AuditEntry* audit) {
  Status st = write(Sync::kSynced, [&](Conn& c) -> Status {
    Res q = c.exec(
        "UPDATE subscriptions SET url = $1, secrets = $2, scheme = $3, events = $4, enabled = $5, "
        "disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END, updated_at = $6 "
        "WHERE id = $7 AND receiver_id = $8",
        Params()
            .add(s.url)
            .add(s.secrets.dump())
            .add(s.scheme)
            .add(events_json(s.events))
            .add(s.enabled)
            .add(now_ms())
            .add(s.id)
            .add(s.receiver_id));
    if (q.affected() == 0)
      return Status::NotFound("no subscription with id " + std::to_string(s.id));
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return get_subscription(s.receiver_id, s.id);
}

Status PostgresStore::delete_subscription(int64_t receiver_id, int64_t id,
                                          const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    if (c.exec("DELETE FROM subscriptions WHERE id = $1 AND receiver_id = $2",
               Params().add(id).add(receiver_id))
            .affected() == 0)
      return Status::NotFound("no subscription with id " + std::to_string(id));
    c.exec(
        "DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE "
        "subscription_id = $1)",
        Params().add(id));
    c.exec("DELETE FROM deliveries WHERE subscription_id = $1", Params().add(id));
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
}

Result<SubscriptionRow> PostgresStore::get_subscription(int64_t receiver_id, int64_t id) {
  return read([&](Conn& c) -> Result<SubscriptionRow> {
    Res q = c.exec(
        select_from(kSubscriptionColumns, "FROM subscriptions WHERE id = $1 AND receiver_id = $2"),
        Params().add(id).add(receiver_id));
    if (q.rows() == 0) return Status::NotFound("no subscription with id " + std::to_string(id));
    return read_subscription(q, 0);
  });
}

Result<std::vector<SubscriptionRow>> PostgresStore::list_subscriptions(int64_t receiver_id) {
  return read([&](Conn& c) -> Result<std::vector<SubscriptionRow>> {
    Res q = c.exec(
        select_from(kSubscriptionColumns, "FROM subscriptions WHERE receiver_id = $1 ORDER BY id"),
        Params().add(receiver_id));
    return read_all(q, read_subscription);
  });
}

Result<std::optional<ClaimedDelivery>> PostgresStore::claim_due_delivery(int64_t now,
                                                                         int64_t lease_ms) {
  return write(Sync::kSynced, [&](Conn& c) -> Result<std::optional<ClaimedDelivery>> {
    // SKIP LOCKED: a delivery another dispatcher (a replica) is claiming right now is passed
    // over, not waited for; its lease is pushed ahead when that claim commits.
    Res q = c.exec(select_from(kDeliveryColumns,
                               "FROM deliveries WHERE state = 'pending' AND next_attempt_at <= $1 "
                               "ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"),
                   Params().add(now));
    if (q.rows() == 0) return std::optional<ClaimedDelivery>();
    ClaimedDelivery claimed;
    claimed.delivery = read_delivery(q, 0);
    c.exec("UPDATE deliveries SET next_attempt_at = $1 WHERE id = $2",
           Params().add(now + lease_ms).add(claimed.delivery.id));
    Res sub = c.exec(select_from(kSubscriptionColumns, "FROM subscriptions WHERE id = $1"),
                     Params().add(claimed.delivery.subscription_id));
    if (sub.rows() > 0) claimed.subscription = read_subscription(sub, 0);
    return std::optional<ClaimedDelivery>(std::move(claimed));
  });
}

Result<std::optional<int64_t>> PostgresStore::next_delivery_due() {
  return read([&](Conn& c) -> Result<std::optional<int64_t>> {
    return c.exec("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'")
        .maybe_i64(0, 0);
  });
}

Status PostgresStore::record_delivery_attempt(int64_t delivery_id, const DeliveryOutcome& o) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    const DeliveryAttemptRow& a = o.attempt;
    // Deleted meanwhile (with its subscription or receiver): nothing to record it against.
    Res d = c.exec("SELECT subscription_id FROM deliveries WHERE id = $1 FOR UPDATE",
                   Params().add(delivery_id));
    if (d.rows() == 0) return Status::Ok();
    int64_t subscription = d.i64(0, 0);
    std::optional<int64_t> status;
    if (a.status) status = *a.status;
    c.exec(
        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, status, "
        "error, answer) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        Params()
            .add(delivery_id)
            .add(a.attempt)
            .add(a.started_at)
            .add(a.latency_ms)
            .add(status)
            .add(a.error)
            .add(a.answer));
    bool pending = o.state == "pending";
    c.exec(
        "UPDATE deliveries SET attempts = $1, state = $2, next_attempt_at = $3, last_status = $4, "
        "last_error = $5, finished_at = $6 WHERE id = $7",
        Params()
            .add(a.attempt)
            .add(o.state)
            .add(pending ? std::optional<int64_t>(o.next_attempt_at) : std::nullopt)
            .add(status)
            .add(a.error)
            .add(pending ? std::nullopt : std::optional<int64_t>(a.started_at + a.latency_ms))
            .add(delivery_id));
    if (!o.disable_subscription.empty()) {
      c.exec(
          "UPDATE subscriptions SET enabled = false, disabled_reason = $1, updated_at = $2 "
          "WHERE id = $3",
          Params().add(o.disable_subscription).add(now_ms()).add(subscription));
      // Its other pending deliveries will not be sent either.
      c.exec(
          "UPDATE deliveries SET state = 'failed', next_attempt_at = NULL, last_error = "
          "'the subscription was disabled: ' || $1, finished_at = $2 WHERE state = 'pending' AND "
          "subscription_id = $3",
          Params().add(o.disable_subscription).add(now_ms()).add(subscription));
    }
    return Status::Ok();
  });
}

Status PostgresStore::redeliver(int64_t receiver_id, int64_t delivery_id, int64_t now,
                                const AuditEntry* audit) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    Res q = c.exec(
        "SELECT d.state, d.attempts, s.enabled FROM deliveries d LEFT JOIN subscriptions s ON "
        "s.id = d.subscription_id WHERE d.id = $1 AND d.receiver_id = $2 FOR UPDATE OF d",
        Params().add(delivery_id).add(receiver_id));
    if (q.rows() == 0)
      return Status::NotFound("no delivery with id " + std::to_string(delivery_id));
    if (q.text(0, 0) == "pending")
      return Status::Conflict("the delivery is still pending: it is sent again on its own");
    if (q.null(0, 2) || !q.boolean(0, 2))
      return Status::Conflict("the subscription is disabled or deleted: enable it first");
    if (q.i64(0, 1) >= kMaxDeliveryAttempts)
      return Status::Conflict("the delivery has had " + std::to_string(kMaxDeliveryAttempts) +
                              " attempts, tripline's limit");
    c.exec(
        "UPDATE deliveries SET state = 'pending', budget_from = attempts, next_attempt_at = $1, "
        "finished_at = NULL WHERE id = $2",
        Params().add(now).add(delivery_id));
    if (audit) audit_tx(c, *audit);
    return Status::Ok();
  });
}

Result<std::vector<DeliveryRow>> PostgresStore::list_deliveries(int64_t receiver_id,
                                                                const std::string& state, int limit,
                                                                int64_t before_id) {
  return read([&](Conn& c) -> Result<std::vector<DeliveryRow>> {
    Res q =
        c.exec(select_from(kDeliveryColumns,
                           "FROM deliveries WHERE receiver_id = $1 AND ($2::bigint = 0 OR id < $2) "
                           "AND ($4 = '' OR state = $4) ORDER BY id DESC LIMIT $3"),
               Params().add(receiver_id).add(before_id).add(limit).add(state));
    return read_all(q, read_delivery);
  });
}

Result<DeliveryRow> PostgresStore::get_delivery(int64_t receiver_id, int64_t id) {
  return read([&](Conn& c) -> Result<DeliveryRow> {
    Res q =
        c.exec(select_from(kDeliveryColumns, "FROM deliveries WHERE id = $1 AND receiver_id = $2"),
               Params().add(id).add(receiver_id));
    if (q.rows() == 0) return Status::NotFound("no delivery with id " + std::to_string(id));
    return read_delivery(q, 0);
  });
}

Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>>
PostgresStore::delivery_attempts(const std::vector<int64_t>& ids, int limit) {
  return read([&](Conn& c) -> Result<std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>>> {
    std::unordered_map<int64_t, std::vector<DeliveryAttemptRow>> out;
    for (int64_t id : ids) out[id];
    if (ids.empty()) return out;
    // The newest `limit` of each, oldest first.
    Res q = c.exec(
        "SELECT a.id, a.delivery_id, a.attempt, a.started_at, a.latency_ms, a.status, a.error, "
        "a.answer FROM unnest($1::bigint[]) AS d(id) CROSS JOIN LATERAL (SELECT * FROM "
        "delivery_attempts WHERE delivery_id = d.id ORDER BY id DESC LIMIT $2) AS a "
        "ORDER BY a.delivery_id, a.id",
        Params().ids(ids).add(limit));
    for (int i = 0; i < q.rows(); ++i) {
      DeliveryAttemptRow a;
      a.id = q.i64(i, 0);
      a.delivery_id = q.i64(i, 1);
      a.attempt = static_cast<int>(q.i64(i, 2));
      a.started_at = q.i64(i, 3);
      a.latency_ms = q.i64(i, 4);
      if (!q.null(i, 5)) a.status = static_cast<int>(q.i64(i, 5));
      a.error = q.opt_text(i, 6);
      a.answer = q.opt_text(i, 7);
      out[a.delivery_id].push_back(std::move(a));
    }
    return out;
  });
}

// --- sealed secrets ----------------------------------------------------------------------

Result<std::vector<SealedText>> PostgresStore::sealed_texts(bool include_finished_executions) {
  return read([&](Conn& c) -> Result<std::vector<SealedText>> {
    std::vector<SealedText> out;
    using W = SealedText::Where;
    // "sealed:v" starts every sealed value of every format (secrets.h).
    Res r = c.exec(
        "SELECT id, config, auth, driver FROM receivers WHERE strpos(config, 'sealed:v') > 0 OR "
        "strpos(auth, 'sealed:v') > 0 ORDER BY id");
    for (int i = 0; i < r.rows(); ++i)
      for (int col : {1, 2}) {
        if (r.null(i, col)) continue;
        std::string text = r.text(i, col);
        if (text.find("sealed:v") == std::string::npos) continue;
        out.push_back({col == 1 ? W::kReceiverConfig : W::kReceiverAuth, r.i64(i, 0), r.text(i, 3),
                       false, std::move(text)});
      }
    Res e = c.exec(
        "SELECT id, config, status IN ('succeeded', 'failed'), driver FROM executions WHERE "
        "strpos(config, 'sealed:v') > 0 AND ($1 OR status IN ('queued', 'running')) ORDER BY id",
        Params().add(include_finished_executions));
    for (int i = 0; i < e.rows(); ++i)
      out.push_back(
          {W::kExecutionConfig, e.i64(i, 0), e.text(i, 3), e.boolean(i, 2), e.text(i, 1)});
    Res n = c.exec("SELECT id, secrets FROM subscriptions ORDER BY id");
    for (int i = 0; i < n.rows(); ++i)
      out.push_back({W::kSubscription, n.i64(i, 0), "", false, n.text(i, 1)});
    return out;
  });
}

Status PostgresStore::rewrite_sealed_texts(const std::vector<SealedText>& texts) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    for (const SealedText& t : texts) {
      const char* sql = t.where == SealedText::Where::kReceiverConfig
                            ? "UPDATE receivers SET config = $1 WHERE id = $2"
                        : t.where == SealedText::Where::kReceiverAuth
                            ? "UPDATE receivers SET auth = $1 WHERE id = $2"
                        : t.where == SealedText::Where::kSubscription
                            ? "UPDATE subscriptions SET secrets = $1 WHERE id = $2"
                            : "UPDATE executions SET config = $1 WHERE id = $2";
      c.exec(sql, Params().add(t.text).add(t.id));
    }
    return Status::Ok();
  });
}

Status PostgresStore::check_writable() {
  // A transaction that takes a transaction id (what any write needs: refused by a standby, or
  // a server that is out of them) and rolls back.
  return read([&](Conn& c) -> Status {
    c.exec("BEGIN READ WRITE");
    c.exec("SELECT txid_current()");
    c.exec("ROLLBACK");
    return Status::Ok();
  });
}

// Scale-out (docs/scale-out.md).

Status PostgresStore::watch(std::function<void(const Change&)> on_change) {
  std::lock_guard lock(watch_mu_);
  if (watch_thread_.joinable()) return Status::Invalid("the store is watched already");
  watch_thread_ = std::thread([this, f = std::move(on_change)] { watch_loop(f); });
  return Status::Ok();
}

void PostgresStore::watch_loop(const std::function<void(const Change&)>& on_change) {
  auto stopping = [&](int wait_ms) {
    std::unique_lock lock(watch_mu_);
    return watch_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms),
                              [&] { return watch_stopping_; });
  };
  int backoff_ms = 100;
  while (!stopping(0)) {
    // A connection of its own, outside the pool: it sits in LISTEN for good. TCP keepalives
    // notice a peer gone without a word (a cut network) within some 20 s.
    const char* keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "dbname",
                          nullptr};
    const char* values[] = {"10", "tripline-watch", "10", "5", "2", url_.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keys, values, 1);
    bool listening = false;
    if (c && PQstatus(c) == CONNECTION_OK) {
      PQsetNoticeProcessor(
          c, [](void*, const char*) {}, nullptr);
      PGresult* r = PQexec(c, "LISTEN tripline_changes");
      listening = r && PQresultStatus(r) == PGRES_COMMAND_OK;
      if (r) PQclear(r);
    }
    if (!listening) {
      log::warn("cannot listen for other replicas' changes; trying again",
                {{"error", c ? pg::trimmed(PQerrorMessage(c)) : std::string("out of memory")}});
      if (c) PQfinish(c);
      if (stopping(backoff_ms)) return;
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = 100;
    // Whatever changed while nobody listened (before the first LISTEN, or since the connection
    // was lost) is read again.
    on_change(Change{});
    while (!stopping(0)) {
      pollfd pfd{PQsocket(c), POLLIN, 0};
      int ready = ::poll(&pfd, 1, 250);
      if (ready < 0 && errno != EINTR) break;
      if (ready > 0 && !PQconsumeInput(c)) break;
      if (PQstatus(c) != CONNECTION_OK) break;
      while (PGnotify* n = PQnotifies(c)) {
        std::string_view payload = n->extra ? n->extra : "";
        Change change;
        if (payload.rfind("receiver:", 0) == 0) {
          change.kind = Change::Kind::kReceiver;
          change.id = std::strtoll(std::string(payload.substr(9)).c_str(), nullptr, 10);
        } else if (payload == "admin_tokens") {
          change.kind = Change::Kind::kAdminTokens;
        } else if (payload.rfind("setting:", 0) == 0) {
          change.kind = Change::Kind::kSetting;
          change.name = std::string(payload.substr(8));
        }  // else: unknown, so read everything again (kEverything)
        PQfreemem(n);
        on_change(change);
      }
    }
    if (!stopping(0))  // not when the store goes: nothing was lost then
      log::warn("lost the connection listening for other replicas' changes; reconnecting",
                {{"error", pg::trimmed(PQerrorMessage(c))}});
    PQfinish(c);
  }
}

Result<std::vector<std::pair<std::string, std::string>>> PostgresStore::signing_keys() {
  return read([&](Conn& c) -> Result<std::vector<std::pair<std::string, std::string>>> {
    Res q = c.exec("SELECT kid, secret FROM signing_keys ORDER BY kid");
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 0; i < q.rows(); ++i) out.emplace_back(q.text(i, 0), q.text(i, 1));
    return out;
  });
}

Status PostgresStore::add_signing_key(const std::string& kid, const std::string& sealed_secret,
                                      bool replace) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec(replace ? "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) "
                     "ON CONFLICT (kid) DO UPDATE SET secret = excluded.secret"
                   : "INSERT INTO signing_keys (kid, secret, created_at) VALUES ($1, $2, $3) "
                     "ON CONFLICT (kid) DO NOTHING",
           Params().add(kid).add(sealed_secret).add(now_ms()));
    return Status::Ok();
  });
}

Result<bool> PostgresStore::renew_lease(int64_t until_ms) {
  bool first = !lease_started_.load();
  auto held = write(Sync::kSynced, [&](Conn& c) -> Result<bool> {
    if (first) {
      c.exec("INSERT INTO replicas (id, lease_until, started_at) VALUES ($1, $2, $3)",
             Params().add(replica_).add(until_ms).add(now_ms()));
      // Executions from before replicas (owner ''): the first replica to start takes them.
      c.exec(
          "UPDATE executions SET owner = $1 WHERE owner = '' AND status IN ('queued', "
          "'running')",
          Params().add(replica_));
      return true;
    }
    return c.exec("UPDATE replicas SET lease_until = $2 WHERE id = $1",
                  Params().add(replica_).add(until_ms))
               .affected() == 1;
  });
  if (held.ok() && first) lease_started_ = true;
  return held;
}

Result<Store::TakenOver> PostgresStore::take_over_expired(int64_t now_ms) {
  TakenOver out;
  // One dead replica a transaction; SKIP LOCKED: a replica another one is taking over now is
  // not waited for, and is taken by that one alone.
  for (int round = 0; round < 16; ++round) {
    TakenOver one;
    auto took = write(Sync::kSynced, [&](Conn& c) -> Result<bool> {
      one = TakenOver{};
      Res dead = c.exec(
          "SELECT id FROM replicas WHERE lease_until < $1 AND id <> $2 ORDER BY lease_until "
          "LIMIT 1 FOR UPDATE SKIP LOCKED",
          Params().add(now_ms).add(replica_));
      if (dead.rows() == 0) return false;
      std::string gone = dead.text(0, 0);
      Res moved = c.exec(
          "UPDATE executions SET owner = $1 WHERE owner = $2 AND status IN ('queued', "
          "'running') RETURNING id, receiver_id, plan IS NOT NULL",
          Params().add(replica_).add(gone));
      for (int i = 0; i < moved.rows(); ++i)
        one.executions.push_back({moved.i64(i, 0), moved.i64(i, 1), moved.boolean(i, 2)});
      Res locks = c.exec(
          "UPDATE target_locks SET replica = $1, token = nextval('target_lock_tokens'), "
          "taken_at = $3 WHERE replica = $2 RETURNING lane, token",
          Params().add(replica_).add(gone).add(now_ms));
      for (int i = 0; i < locks.rows(); ++i)
        one.locks.emplace_back(locks.text(i, 0), locks.i64(i, 1));
      c.exec("DELETE FROM replicas WHERE id = $1", Params().add(gone));
      log::info("taking over a replica whose lease ran out",
                {{"replica", gone}, {"executions", one.executions.size()}});
      return true;
    });
    if (!took.ok()) return took.status();
    if (!*took) break;
    out.executions.insert(out.executions.end(), one.executions.begin(), one.executions.end());
    out.locks.insert(out.locks.end(), one.locks.begin(), one.locks.end());
  }
  std::sort(out.executions.begin(), out.executions.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

Result<int64_t> PostgresStore::lock_target(const std::string& lane, int64_t now_ms) {
  return write(Sync::kSynced, [&](Conn& c) -> Result<int64_t> {
    Res q = c.exec(
        "INSERT INTO target_locks (lane, replica, token, taken_at) VALUES ($1, $2, "
        "nextval('target_lock_tokens'), $3) ON CONFLICT (lane) DO UPDATE SET taken_at = "
        "excluded.taken_at WHERE target_locks.replica = excluded.replica RETURNING token",
        Params().add(lane).add(replica_).add(now_ms));
    return q.rows() == 1 ? q.i64(0, 0) : int64_t{0};
  });
}

Status PostgresStore::unlock_target(const std::string& lane, int64_t token) {
  return write(Sync::kSynced, [&](Conn& c) -> Status {
    c.exec("DELETE FROM target_locks WHERE lane = $1 AND replica = $2 AND token = $3",
           Params().add(lane).add(replica_).add(token));
    return Status::Ok();
  });
}

// --- import (tripline migrate-data) -------------------------------------------------------

namespace {

std::string quoted_name(const std::string& name) {
  std::string out = "\"";
  for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A table of this database, as information_schema describes it.
struct ImportTarget {
  std::map<std::string, std::string> types;  // column -> data_type ("boolean", "bytea", ...)
  std::string identity;                      // the identity column, if any
  int64_t max_id = 0;                        // the highest identity value copied
  int64_t sequence = 0;                      // the source's sequence (TablePage::sequence)
  size_t counted = 0;                        // its index in TableCounts::tables
};

// One value, converted for a column of type `type`.
void add_value(Params& p, const TableValue& v, const std::string& type) {
  using T = TableValue::Type;
  if (v.type == T::kNull) {
    p.null();
  } else if (type == "bytea") {
    if (v.type == T::kInteger)
      p.bytes(std::to_string(v.integer));
    else if (v.type == T::kReal)
      p.bytes(std::to_string(v.real));
    else
      p.bytes(v.bytes);
  } else if (type == "boolean" && v.type == T::kInteger) {
    p.add(v.integer != 0);  // SQLite's booleans are 0 and 1
  } else if (type == "boolean" && v.type == T::kReal) {
    p.add(v.real != 0);
  } else if (v.type == T::kInteger) {
    p.add(v.integer);
  } else if (v.type == T::kReal) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v.real);
    p.add(std::string_view(buf));
  } else {
    p.add(std::string_view(v.bytes));  // text (or a blob in a text column), as Params makes fit
  }
}

}  // namespace

Status PostgresStore::import_tables(const std::function<Status(const TableSink&)>& produce,
                                    TableCounts* counts) {
  TableCounts local;
  Status done = write(Sync::kSynced, [&](Conn& c) -> Status {
    local.tables.clear();  // a retried transaction starts over
    std::map<std::string, ImportTarget> targets;
    TableSink sink = [&](const TablePage& page) -> Status {
      try {
        if (page.first) {
          if (targets.count(page.table))
            return Status::Invalid("table " + page.table + " was given twice");
          ImportTarget& t = targets[page.table];
          Res cols = c.exec(
              "SELECT column_name, data_type, is_identity FROM information_schema.columns "
              "WHERE table_schema = current_schema() AND table_name = $1",
              Params().add(page.table));
          if (cols.rows() == 0)
            return Status::Invalid("table " + page.table +
                                   ": the target database has no such table");
          for (int i = 0; i < cols.rows(); ++i) {
            t.types[cols.text(i, 0)] = cols.text(i, 1);
            if (cols.text(i, 2) == "YES") t.identity = cols.text(i, 0);
          }
          for (const std::string& col : page.columns)
            if (!t.types.count(col))
              return Status::Invalid("table " + page.table +
                                     ": the target database has no column " + col);
          // Nobody adds a row to it until this transaction ends (writers wait): the check below
          // stays true to the commit.
          c.exec("LOCK TABLE " + quoted_name(page.table) + " IN SHARE ROW EXCLUSIVE MODE");
          Res any = c.exec("SELECT EXISTS (SELECT 1 FROM " + quoted_name(page.table) + ")");
          if (any.text(0, 0) == "t")
            return Status::Conflict("table " + page.table +
                                    " of the target database already has rows: migrate-data "
                                    "copies into an empty database only; nothing was written");
          t.sequence = page.sequence;
          t.counted = local.tables.size();
          local.tables.emplace_back(page.table, 0);
        }
        auto found = targets.find(page.table);
        if (found == targets.end())
          return Status::Invalid("table " + page.table + ": rows came before its first page");
        ImportTarget& t = found->second;
        if (page.rows.empty()) return Status::Ok();
        std::vector<std::string> types;
        int identity_at = -1;
        std::string head = "INSERT INTO " + quoted_name(page.table) + " (";
        for (size_t i = 0; i < page.columns.size(); ++i) {
          head += (i ? ", " : "") + quoted_name(page.columns[i]);
          types.push_back(t.types[page.columns[i]]);
          if (page.columns[i] == t.identity) identity_at = static_cast<int>(i);
        }
        // The ids as given: "BY DEFAULT" identities take them anyway; this also covers ALWAYS.
        head += t.identity.empty() ? ") VALUES " : ") OVERRIDING SYSTEM VALUE VALUES ";
        // At most 65,535 parameters in one statement (PostgreSQL's protocol).
        const size_t ncols = std::max<size_t>(1, page.columns.size());
        const size_t per_statement = std::max<size_t>(1, 30000 / ncols);
        for (size_t from = 0; from < page.rows.size(); from += per_statement) {
          size_t to = std::min(page.rows.size(), from + per_statement);
          std::string sql = head;
          Params p;
          int n = 0;
          for (size_t r = from; r < to; ++r) {
            const auto& row = page.rows[r];
            if (row.size() != page.columns.size())
              return Status::Invalid("table " + page.table + ": a row of " +
                                     std::to_string(row.size()) + " values for " +
                                     std::to_string(page.columns.size()) + " columns");
            sql += r == from ? "(" : ", (";
            for (size_t i = 0; i < row.size(); ++i) {
              sql += (i ? ", $" : "$") + std::to_string(++n);
              add_value(p, row[i], types[i]);
            }
            sql += ")";
            if (identity_at >= 0 && row[identity_at].type == TableValue::Type::kInteger)
              t.max_id = std::max(t.max_id, row[identity_at].integer);
          }
          c.exec(sql, p);
        }
        local.tables[t.counted].second += static_cast<int64_t>(page.rows.size());
        return Status::Ok();
      } catch (const pg::Error& e) {
        Status s = pg::to_status(e);
        std::string msg = "table " + page.table + ": " + s.message();
        if (s.code() == Status::Code::kConflict) return Status::Conflict(msg);
        if (s.code() == Status::Code::kUnavailable) return Status::Unavailable(msg);
        return Status::Internal(msg);
      }
    };
    if (Status s = produce(sink); !s.ok()) return s;
    // New ids start past every copied one and past every id the source ever handed out.
    for (const auto& [table, t] : targets) {
      int64_t floor = std::max(t.max_id, t.sequence);
      if (t.identity.empty() || floor <= 0) continue;
      Res seq = c.exec("SELECT pg_get_serial_sequence($1, $2)",
                       Params().add(quoted_name(table)).add(t.identity));
      if (seq.null(0, 0)) continue;
      const std::string name = seq.text(0, 0);
      c.exec("SELECT setval($1::regclass, GREATEST($2::bigint, (SELECT last_value FROM " + name +
                 ")))",
             Params().add(name).add(floor));
    }
    return Status::Ok();
  });
  if (done.ok() && counts) *counts = std::move(local);
  return done;
}

}  // namespace tripline
