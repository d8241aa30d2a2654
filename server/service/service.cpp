#include "service.h"

#include <malloc.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "admin_auth.h"
#include "app.h"
#include "database.h"
#include "executor.h"
#include "flags.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"
#include "net.h"
#include "notifier.h"
#include "pruner.h"
#include "readiness.h"
#include "receivers.h"
#include "secret_keys.h"
#include "secrets.h"
#include "store.h"
#include "token.h"

namespace tripline {

namespace {
class ReplicaKeeper;
}

struct Service::Parts {
  ServiceOptions options;
  std::unique_ptr<Store> store;
  Keyring keyring;
  SecretBox secrets = SecretBox::from_key(std::string(32, '\0'));  // replaced at start
  DriverRegistry drivers;
  ReceiverCache receivers{keyring};
  Metrics metrics;
  std::unique_ptr<AdminAuth> admin;
  std::unique_ptr<Executor> executor;
  std::unique_ptr<RequestLog> request_log;  // outlives the ingest, which hands it entries
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<Readiness> readiness;
  std::unique_ptr<Pruner> pruner;
  std::unique_ptr<Notifier> notifier;
  std::unique_ptr<App> app;
  std::unique_ptr<HttpServer> http;
  std::string public_url;
  std::optional<std::string> generated_admin_token;
  // Replicas (docs/scale-out.md): what other replicas change is followed while `following`
  // (Service::stop() ends it, waiting for a change being followed); the lease and take-overs.
  std::mutex follow_mu;
  std::condition_variable follow_cv;  // told when `following` ends
  bool following = true;
  std::unique_ptr<ReplicaKeeper> keeper;  // last: stopped and destroyed first
};

namespace {

// Executions on one target run one at a time. The key comes from the execution's own config,
// both when it is accepted and when it is recovered after a restart (the trigger path has
// already checked that it is the target the URL grants).
std::string lane_key(const Driver& driver, const DriverConfig& config) {
  return std::string(driver.name()) + ":" + driver.target(config);
}

Job job_for(const Ingest::Trigger& t, int64_t id) {
  const Receiver& r = *t.receiver;
  Job j;
  j.id = id;
  j.driver = r.driver;
  j.config = t.config ? t.config : r.config;
  j.lane = t.config ? lane_key(*r.driver, *t.config) : r.row.driver + ":" + r.target;
  j.created_at = t.created_at;
  j.backlog = r.limiter->queued();
  return j;
}

Status split_listen(const std::string& listen, std::string* host, uint16_t* port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::Invalid("--listen must be host:port");
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']')
    *host = host->substr(1, host->size() - 2);
  try {
    size_t used = 0;
    int p = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || p < 0 || p > 65535) throw std::out_of_range("port");
    *port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return Status::Invalid("--listen must be host:port with a port from 0 to 65535");
  }
  return Status::Ok();
}

bool stopping(const ServiceOptions& o) { return o.stop_requested && o.stop_requested(); }

// Builds every stored receiver and publishes them all in one cache snapshot. This thread reads
// the store a page at a time while a helper builds the pages read so far (secrets opened, config
// validated, rules compiled: most of the work); then both build what is left, and the tokens are
// signed on both threads too. stop_requested is looked at between pages (some 20 ms of work).
// Answers how many rows the store holds (a receiver that cannot be built is logged and left out).
Result<size_t> load_receivers(Service::Parts& p) {
  constexpr int kPageRows = 1000;
  constexpr size_t kThreads = 2;
  auto started = std::chrono::steady_clock::now();
  auto ms_since = [](std::chrono::steady_clock::time_point t) {
    return int64_t(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
            .count());
  };
  struct Page {
    std::vector<ReceiverRow> rows;
    std::vector<std::shared_ptr<const Receiver>> built;
  };
  std::deque<Page> pages;  // grows while the helper works on earlier pages: references stay valid
  std::mutex mu;
  std::condition_variable cv;
  bool read_all = false;
  size_t next = 0;
  std::atomic<bool> stop{false};
  auto take = [&]() -> Page* {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return next < pages.size() || read_all || stop; });
    if (stop || next == pages.size()) return nullptr;
    return &pages[next++];
  };
  auto build = [&] {
    while (Page* page = take()) {
      if (stopping(p.options)) {
        stop = true;
        cv.notify_all();
        return;
      }
      for (ReceiverRow& row : page->rows) {
        int64_t id = row.id;
        auto r = make_receiver(std::move(row), p.drivers, p.secrets, /*check_peer=*/false,
                               p.options.default_limits);
        if (r.ok())
          page->built.push_back(std::move(r).value());
        else
          log::error("receiver cannot be loaded; its URL will not work",
                     {{"receiver_id", id}, {"error", r.status().message()}});
      }
      page->rows = {};
    }
  };
  std::thread helper(build);
  Status read_status;
  size_t n = 0;
  for (int64_t after = 0; !stop;) {
    if (stopping(p.options)) {
      stop = true;
      break;
    }
    auto rows = p.store->receivers_after(after, kPageRows);
    if (!rows.ok()) {
      read_status = rows.status();
      stop = true;
      break;
    }
    if (rows->empty()) break;
    after = rows->back().id;
    n += rows->size();
    std::lock_guard lock(mu);
    pages.push_back(Page{std::move(rows).value(), {}});
    cv.notify_one();
  }
  int64_t read_ms = ms_since(started);
  {
    std::lock_guard lock(mu);
    read_all = true;
  }
  cv.notify_all();
  build();
  helper.join();
  if (!read_status.ok()) return read_status;
  if (stop) return Status::Unavailable(kStartInterrupted);
  std::vector<std::shared_ptr<const Receiver>> built;
  built.reserve(n);
  for (Page& page : pages)
    for (auto& r : page.built) built.push_back(std::move(r));
  pages.clear();
  int64_t build_ms = ms_since(started);
  size_t published = p.receivers.put_all(built, kThreads);
  built.clear();
  int64_t publish_ms = ms_since(started) - build_ms;
  // Hands back to the system what reading and building left free.
  ::malloc_trim(0);
  log::info("receivers loaded", {{"receivers", published},
                                 {"stored", n},
                                 {"ms", ms_since(started)},
                                 {"read_ms", read_ms},
                                 {"read_and_build_ms", build_ms},
                                 {"publish_ms", publish_ms}});
  return n;
}

// The executor's Loader: the next page of unfinished executions from the store, as jobs. Used at
// start-up (recovery after a restart) and whenever the executor's in-memory window was full.
// Unfinished executions as jobs (a page of them, or those taken over from another replica):
// rows that cannot be resumed are failed in the store and left out.
Status jobs_from_rows(Service::Parts& p, const std::vector<ExecutionRow>& rows, LoadedPage* out) {
  LoadedPage& page = *out;
  std::map<const Driver*, std::vector<std::string>>
      secrets;  // each driver's schema read once a page
  for (const ExecutionRow& e : rows) {
    page.last_id = e.id;
    const Driver* driver = p.drivers.find(e.driver);
    Result<std::shared_ptr<const DriverConfig>> config =
        Status::Invalid("unknown driver " + e.driver);
    if (driver) {
      auto [fields, fresh] = secrets.try_emplace(driver);
      if (fresh) fields->second = secret_fields(*driver);
      auto plain =
          open_config(nlohmann::json::parse(e.config, nullptr, false), fields->second, p.secrets);
      config = plain.ok() ? driver->validate(*plain, false) : plain.status();
    }
    auto receiver = p.receivers.find(e.receiver_id);
    if (!config.ok()) {
      Status s =
          p.store->finish(e.id, ExecutionStatus::kFailed, nullptr,
                          "cannot resume: " + config.status().message(), p.store->clock().now_ms());
      if (!s.ok()) return s;
      if (receiver) receiver->limiter->queued()->fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    Job j;
    j.id = e.id;
    j.driver = driver;
    j.config = *config;
    j.lane = lane_key(*driver, **config);
    j.attempts = e.attempts;
    j.plan = e.plan;  // re-applied as recorded: nothing happens twice
    j.created_at = e.created_at;
    if (receiver) j.backlog = receiver->limiter->queued();
    page.jobs.push_back(std::move(j));
  }
  return Status::Ok();
}

Result<LoadedPage> load_page(Service::Parts& p, int64_t after_id, int limit) {
  auto rows = p.store->unfinished_executions(after_id, limit);
  if (!rows.ok()) return rows.status();
  LoadedPage page;
  page.rows = static_cast<int>(rows->size());
  if (Status s = jobs_from_rows(p, *rows, &page); !s.ok()) return s;
  return page;
}

// Replicas on one database (docs/scale-out.md): this one's lease, renewed every quarter of it;
// the executions of replicas whose lease ran out, taken over; the targets' locks, taken by the
// executor's rounds. A replica that finds its lease lost, or cannot renew it before it runs
// out, stops at once: another replica may be running its executions by then.
class ReplicaKeeper {
 public:
  static constexpr int64_t kLeaseMs = 10000;
  explicit ReplicaKeeper(Service::Parts& p) : p_(p) {}
  ~ReplicaKeeper() { stop(); }
  // The first lease, before the executor starts.
  Status start() {
    auto sent = Steady::now();
    int64_t now = p_.store->clock().now_ms();
    auto held = p_.store->renew_lease(now + kLeaseMs);
    if (!held.ok()) return held.status();
    if (!*held) return Status::Conflict("this replica's lease is already taken over");
    renewed_at_ = sent;
    thread_ = std::thread([this] { run(); });
    watchdog_ = std::thread([this] { watch_deadline(); });
    return Status::Ok();
  }
  // The executor, once it exists, for the executions and locks taken over.
  void attach(Executor* executor) { executor_ = executor; }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (watchdog_.joinable()) watchdog_.join();
  }

 private:
  using Steady = std::chrono::steady_clock;
  // Renewals are due by the machine's time (run() waits in real time): so is the deadline.
  static constexpr auto kRenewWithin = std::chrono::milliseconds(kLeaseMs * 3 / 4);

  void run() {
    std::unique_lock lock(mu_);
    while (
        !cv_.wait_for(lock, std::chrono::milliseconds(kLeaseMs / 4), [&] { return stopping_; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
  }
  // A renewal may hang rather than fail: a frozen database, or a network that drops packets,
  // answers nothing and reports nothing for minutes (TCP gives up after some 15 minutes). So the
  // deadline is watched on a thread of its own that never waits for the store: the replica
  // stops 3/4 into a lease it could not renew, before another replica may take it over.
  void watch_deadline() {
    std::unique_lock lock(mu_);
    for (;;) {
      if (cv_.wait_until(lock, renewed_at_ + kRenewWithin, [&] { return stopping_; })) return;
      if (Steady::now() < renewed_at_ + kRenewWithin) continue;  // renewed meanwhile
      auto since =
          std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - renewed_at_);
      log::error("cannot renew this replica's lease before it runs out; stopping at once",
                 {{"error", renewing_ ? "the database has not answered the renewal" : last_error_},
                  {"ms_since_renewed", int64_t(since.count())}});
      std::abort();
    }
  }
  void tick() {
    if (!renew()) return;
    take_over(p_.store->clock().now_ms());
  }
  // Renews the lease (stops the process at once when it was taken over). False: it could not be
  // renewed now (the watchdog stops the replica if that goes on).
  bool renew() {
    auto sent = Steady::now();
    int64_t now = p_.store->clock().now_ms();
    {
      std::lock_guard lock(mu_);
      renewing_ = true;
    }
    auto held = p_.store->renew_lease(now + kLeaseMs);
    {
      std::lock_guard lock(mu_);
      renewing_ = false;
      if (held.ok() && *held) renewed_at_ = sent;
      if (!held.ok()) last_error_ = held.status().message();
    }
    if (held.ok() && !*held) {
      log::error(
          "this replica's lease ran out and another replica took its executions over; "
          "stopping at once");
      std::abort();
    }
    if (!held.ok()) {  // the watchdog stops the replica if this goes on
      log::warn("cannot renew this replica's lease; trying again",
                {{"error", held.status().message()}});
      return false;
    }
    return true;
  }
  void take_over(int64_t now) {
    Executor* executor = executor_.load();
    // No page read and no target lock taken while executions and locks come over (executor.h).
    if (executor) executor->begin_take_over();
    take_over(now, executor);
    if (executor) executor->end_take_over();
  }
  void take_over(int64_t now, Executor* executor) {
    if (executor && !unread_.empty()) adopt_rows(executor, std::exchange(unread_, {}));
    auto taken = p_.store->take_over_expired(now);
    if (!taken.ok()) {
      log::warn("cannot take over the executions of a replica that stopped",
                {{"error", taken.status().message()}});
      return;
    }
    if (!executor) return;  // still starting: its first pages read them
    if (taken->executions.empty() && taken->locks.empty()) return;
    std::vector<int64_t> ids, planned;
    for (const auto& t : taken->executions) {
      (t.planned ? planned : ids).push_back(t.id);
      if (auto r = p_.receivers.find(t.receiver_id))
        r->limiter->queued()->fetch_add(1, std::memory_order_relaxed);
    }
    log::info("took over the executions of a replica that stopped",
              {{"executions", taken->executions.size()},
               {"planned", planned.size()},
               {"target_locks", taken->locks.size()}});
    adopt_rows(executor, executor->adopt_ids(ids, planned));
    for (const auto& [lane, token] : taken->locks) executor->hold_target(lane, token);
  }
  // Reads the rows of executions taken over and hands them to the executor. One whose row cannot
  // be read now goes back to the pages (above the watermark) or is read again at the next tick.
  void adopt_rows(Executor* executor, const std::vector<int64_t>& ids) {
    std::vector<ExecutionRow> rows;
    for (int64_t id : ids) {
      // Thousands of them, read one at a time from a slow database, may take longer than the
      // renewals' period: the lease is renewed on the way, not left to the watchdog.
      bool due;
      {
        std::lock_guard lock(mu_);
        due = Steady::now() - renewed_at_ >= std::chrono::milliseconds(kLeaseMs / 4);
      }
      if (due) renew();
      auto row = p_.store->get_execution(id);
      if (!row.ok()) {
        log::warn("cannot read an execution taken over; trying again",
                  {{"execution_id", id}, {"error", row.status().message()}});
        if (!executor->adopt_failed(id)) unread_.push_back(id);
        continue;
      }
      if (row->status == ExecutionStatus::kQueued || row->status == ExecutionStatus::kRunning)
        rows.push_back(std::move(row).value());
    }
    LoadedPage page;
    if (Status s = jobs_from_rows(p_, rows, &page); !s.ok())
      log::warn("cannot resume executions taken over", {{"error", s.message()}});
    executor->adopt(std::move(page.jobs));
  }

  Service::Parts& p_;
  std::atomic<Executor*> executor_{nullptr};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  Steady::time_point renewed_at_;  // when the last renewal that held was sent
  bool renewing_ = false;          // a renewal is waiting for the database
  std::string last_error_;         // why the last renewal failed
  std::vector<int64_t> unread_;    // taken over, their rows not read yet (run()'s thread only)
  std::thread thread_, watchdog_;
};

// Cooldowns and rate limits continue from the committed executions, so a restart reopens
// none: one pass over the executions of the longest window any receiver needs.
Status seed_limits(Service::Parts& p) {
  int64_t now = p.store->clock().now_ms(), longest = 0;
  auto all = p.receivers.all();
  for (const auto& r : all) longest = std::max(longest, r->limits.memory_ms());
  if (longest == 0) return Status::Ok();
  auto recent = p.store->recent_executions(now - longest);
  if (!recent.ok()) return recent.status();
  for (const auto& r : all) {
    auto it = recent->find(r->row.id);
    if (it == recent->end()) continue;
    std::vector<RecentExecution> mine;
    for (const auto& e : it->second)
      if (e.created_at >= now - r->limits.memory_ms()) mine.push_back(e);
    r->limiter->seed(r->limits, mine);
  }
  return Status::Ok();
}

}  // namespace

Service::Service() : parts_(new Parts()) {}
Service::~Service() { stop(); }

Result<std::unique_ptr<Service>> Service::start(const ServiceOptions& o) {
  std::unique_ptr<Service> svc(new Service());
  Parts& p = *svc->parts_;
  p.options = o;

  std::string host;
  uint16_t port = 0;
  if (Status s = split_listen(o.listen, &host, &port); !s.ok()) return s;
  if (::mkdir(o.data_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::Internal("cannot create data directory " + o.data_dir + ": " +
                            std::strerror(errno));

  auto keyring = Keyring::load_or_create(o.data_dir + "/keys");
  if (!keyring.ok()) return keyring.status();
  p.keyring = *keyring;
  auto secrets = SecretBox::load_or_create(o.data_dir, std::getenv("TRIPLINE_SECRET_KEY"),
                                           std::getenv("TRIPLINE_SECRET_KEY_PREVIOUS"));
  if (!secrets.ok()) return secrets.status();
  p.secrets = *secrets;
  std::vector<Cidr> proxies;
  for (const auto& text : o.trusted_proxies) {
    auto c = Cidr::parse(text);
    if (!c)
      return Status::Invalid("--trusted-proxies: \"" + text + "\" is not an address or CIDR range");
    proxies.push_back(*c);
  }
  StoreOptions store_options;
  store_options.busy_timeout_ms = o.store_busy_timeout_ms;
  store_options.clock = o.clock;
  // The request log's writer writes accepted requests' entries after their commit (store.h).
  store_options.defer_accepted_log = o.request_log.keep_per_receiver > 0;
  store_options.recover_request_log = true;
  const std::string database = database_or_default(o.data_dir, o.database);
  auto store = Store::open(database, store_options);
  // Its error may name the database, a URL's password with it: never logged (database.h).
  if (!store.ok()) return redact_database_in(store.status(), database);
  p.store = std::move(store).value();
  if (p.store->shared()) {
    // Replicas share the signing keys through the database, sealed, so that a URL one of them
    // issues verifies on all (docs/scale-out.md). The first replica brings the keys of its
    // DATA_DIR/keys (a new one when there were none); the others take the stored ones.
    auto stored = p.store->signing_keys();
    if (!stored.ok()) return stored.status();
    if (stored->empty()) {
      for (const auto& k : p.keyring.keys())
        if (Status s = p.store->add_signing_key(k.kid, p.secrets.seal(k.secret)); !s.ok()) return s;
      stored = p.store->signing_keys();
      if (!stored.ok()) return stored.status();
    }
    std::vector<std::pair<std::string, std::string>> keys;
    for (const auto& [kid, sealed] : *stored) {
      auto secret = p.secrets.open(sealed);
      if (!secret)
        return Status::Internal("the signing key " + kid +
                                " in the database does not open with this replica's secrets key: "
                                "every replica needs the same TRIPLINE_SECRET_KEY "
                                "(docs/scale-out.md)");
      keys.emplace_back(kid, std::move(*secret));
    }
    p.keyring = Keyring::from_keys(std::move(keys));
  }

  register_drivers(p.drivers, o.drivers);
  // A wrong secrets key must stop the start, not hide receivers and fail queued executions.
  if (Status s = check_sealed_data(*p.store, p.drivers, p.secrets); !s.ok()) return s;

  p.admin = std::make_unique<AdminAuth>(*p.store);
  if (Status s = p.admin->reload(); !s.ok()) return s;
  if (!o.admin_token.empty()) {
    if (o.admin_token.size() < 16)
      return Status::Invalid("TRIPLINE_ADMIN_TOKEN must be at least 16 characters");
    // A change of the variable is a change of who holds admin access: audited, by the service.
    AuditEntry by_env;
    by_env.actor_name = "TRIPLINE_ADMIN_TOKEN at start-up";
    by_env.actor_role = "admin";
    auto revoked = p.admin->use_env_token(o.admin_token, &by_env);
    if (!revoked.ok()) return revoked.status();
    if (*revoked > 0)
      log::info("TRIPLINE_ADMIN_TOKEN changed: the token of its previous value is revoked",
                {{"revoked", *revoked}});
  } else if (p.admin->empty()) {
    AuditEntry first;
    first.actor_name = "first start";
    first.actor_role = "admin";
    first.action = "token.create";
    first.target_type = "token";
    first.target_name = "initial";
    first.after = {{"name", "initial"}, {"role", "admin"}, {"from_env", false}};
    auto created = p.admin->create("initial", Role::kAdmin, &first);
    if (!created.ok()) return created.status();
    p.generated_admin_token = created->second;
  }

  if (stopping(o)) return Status::Unavailable(kStartInterrupted);
  auto receiver_count = load_receivers(p);
  if (!receiver_count.ok()) return receiver_count.status();
  if (Status s = seed_limits(p); !s.ok()) return s;

  if (p.store->shared()) {
    // The lease first: this replica's executions are its own from the first one it accepts, and
    // those of replicas gone meanwhile are taken over (the executor's first pages read them).
    p.keeper = std::make_unique<ReplicaKeeper>(p);
    if (Status s = p.keeper->start(); !s.ok()) return s;
  }
  // Each receiver's unfinished executions count against its queue cap from the start.
  auto counts = p.store->unfinished_counts();
  if (!counts.ok()) return counts.status();
  size_t backlog = 0;
  for (const auto& [rid, n] : *counts) {
    backlog += static_cast<size_t>(n);
    if (auto r = p.receivers.find(rid)) r->limiter->queued()->store(n, std::memory_order_relaxed);
  }

  p.executor = std::make_unique<Executor>(
      *p.store, p.metrics, o.retry, o.workers,
      [parts = &p](int64_t after, int limit) { return load_page(*parts, after, limit); },
      o.max_held_executions);
  p.metrics.set_queue_depth_source([ex = p.executor.get()] { return ex->depth(); });
  p.request_log = std::make_unique<RequestLog>(*p.store, p.metrics, o.request_log);
  for (int64_t rid : p.store->rebuilt_request_log_receivers()) p.request_log->touch(rid);
  p.ingest = std::make_unique<Ingest>(
      *p.store,
      [ex = p.executor.get()](const Ingest::Trigger& t, int64_t id) {
        ex->enqueue(job_for(t, id));
      },
      20000, p.request_log.get());
  // A batch's plans ride on the next group commit (docs/durability.md).
  p.executor->record_plans_with(
      [ingest = p.ingest.get()](const std::vector<Store::PlannedRun>& runs, int64_t started) {
        return ingest->record_plans(runs, started);
      });
  // A pause survives restarts: held work stays held until someone resumes it.
  auto paused = p.store->get_setting(kWorkersPausedSetting);
  if (!paused.ok()) return paused.status();
  if (*paused == std::optional<std::string>("true")) {
    p.executor->pause();
    log::warn(
        "workers are paused (since before this start); POST /api/v1/workers/resume runs them");
  }
  if (p.store->shared()) {
    p.executor->lock_targets_with(
        {[store = p.store.get()](const std::string& lane) {
           return store->lock_target(lane, store->clock().now_ms());
         },
         [store = p.store.get()](const std::string& lane, int64_t token) {
           if (Status s = store->unlock_target(lane, token); !s.ok())
             log::warn("cannot release a target's lock; it is freed when this replica stops",
                       {{"lane", lane}, {"error", s.message()}});
         }});
  }
  if (p.keeper) p.keeper->attach(p.executor.get());
  p.executor->start(backlog);  // reads the unfinished executions from the store, page by page
  if (backlog) log::info("resuming unfinished executions", {{"count", backlog}});

  Pruner::Options prune;
  prune.policy = o.retention;
  prune.audit = o.audit_retention;
  prune.protect_ms = [parts = &p] {
    int64_t longest = 0;
    for (const auto& r : parts->receivers.all()) longest = std::max(longest, r->limits.memory_ms());
    return longest;
  };
  p.pruner = std::make_unique<Pruner>(*p.store, prune);
  p.pruner->start();

  NotifierOptions notify = o.notifications;
  for (const auto& opt : driver_options())
    if (std::string_view(opt.name) == "allow-local-webhook-targets") {
      notify.allow_local = option_enabled(o.drivers.get(opt));  // as the webhook driver reads it
    }
  p.notifier = std::make_unique<Notifier>(*p.store, p.secrets, notify);
  p.notifier->start();  // pending deliveries (from before a restart too) go out when due

  p.readiness = std::make_unique<Readiness>(*p.store, p.drivers);
  p.readiness->start();
  AppContext ctx{*p.store,  p.receivers,        p.drivers,   p.keyring,
                 p.secrets, *p.ingest,          *p.executor, p.metrics,
                 *p.admin,  std::move(proxies), "",          o.default_limits};
  ctx.readiness = p.readiness.get();
  ctx.notifier = p.notifier.get();
  ctx.request_log = p.request_log.get();
  ctx.targets_deadline = o.targets_deadline;
  ctx.targets_cache_ttl = o.targets_cache_ttl;
  p.app = std::make_unique<App>(ctx);
  if (p.store->shared()) {
    // Replicas on one database (docs/scale-out.md): what another one changes reaches this one's
    // memory within a second. Every call comes from the store's one watch thread.
    Status watching = p.store->watch([parts = &p](const Store::Change& c) {
      std::unique_lock follow(parts->follow_mu);
      if (!parts->following) return;
      auto everything = [parts] {
        Status s = parts->app->refresh_receivers();
        if (s.ok()) s = parts->admin->reload();
        if (s.ok()) s = parts->app->refresh_setting(kWorkersPausedSetting);
        return s;
      };
      Status s;
      switch (c.kind) {
        case Store::Change::Kind::kReceiver:
          s = parts->app->refresh_receiver(c.id);
          break;
        case Store::Change::Kind::kAdminTokens:
          s = parts->admin->reload();
          break;
        case Store::Change::Kind::kSetting:
          s = parts->app->refresh_setting(c.name);
          break;
        case Store::Change::Kind::kEverything:
          s = everything();
          break;
      }
      // A change is told once: one that could not be read (the database busy or away for a
      // moment) would be missed until the next gap. So everything is read again, with a growing
      // pause, until it holds; what other replicas change meanwhile waits, then follows.
      for (int wait_ms = 100; !s.ok(); wait_ms = std::min(wait_ms * 2, 5000)) {
        log::warn("cannot follow a change made by another replica; reading everything again",
                  {{"error", s.message()}, {"id", c.id}, {"name", c.name}});
        if (parts->follow_cv.wait_for(follow, std::chrono::milliseconds(wait_ms),
                                      [parts] { return !parts->following; }))
          return;
        s = everything();
      }
    });
    if (!watching.ok()) return watching;
  }
  HttpServerOptions http{host, port, o.http_threads, 1 << 20};
  p.http = std::make_unique<HttpServer>(
      [app = p.app.get()](const HttpRequest& r, Responder respond) {
        app->handle(r, std::move(respond));
      },
      http);
  if (Status s = p.http->bind(); !s.ok()) return s;

  p.public_url = o.public_url;
  if (p.public_url.empty()) {
    std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    p.public_url = "http://" + shown + ":" + std::to_string(p.http->port());
  }
  while (!p.public_url.empty() && p.public_url.back() == '/') p.public_url.pop_back();
  p.app->set_public_url(p.public_url);
  if (Status s = p.http->serve(); !s.ok()) return s;
  log::info("tripline serving",
            {{"listen", host + ":" + std::to_string(p.http->port())},
             {"public_url", p.public_url},
             {"data_dir", o.data_dir},
             {"store", o.database.rfind("postgres", 0) == 0 ? "postgresql" : "sqlite"},
             {"database", redact_database(database_or_default(o.data_dir, o.database))},
             {"receivers", *receiver_count}});
  return svc;
}

void Service::stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  if (p.http) p.http->stop();
  {
    std::lock_guard follow(p.follow_mu);
    p.following = false;
  }
  p.follow_cv.notify_all();
  if (p.ingest) p.ingest->stop();
  if (p.request_log) p.request_log->stop();
  if (p.executor) p.executor->stop();
  if (p.keeper) p.keeper->stop();  // renewed until nothing of this replica runs
  if (p.keeper && p.store) {
    // Nothing of this replica runs any more: its queued executions go to another replica at
    // once, not after the lease would have run out.
    if (auto ended = p.store->renew_lease(0); !ended.ok())
      log::warn(
          "cannot end this replica's lease; another replica takes its executions over "
          "when it runs out",
          {{"error", ended.status().message()}});
  }
  if (p.notifier) p.notifier->stop();
  if (p.readiness) p.readiness->stop();
  if (p.pruner) p.pruner->stop();
}

uint16_t Service::port() const { return parts_->http ? parts_->http->port() : 0; }
const std::string& Service::public_url() const { return parts_->public_url; }
const std::optional<std::string>& Service::generated_admin_token() const {
  return parts_->generated_admin_token;
}

}  // namespace tripline
