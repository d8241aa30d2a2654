// tripline: rule-driven action triggers. `tripline serve` runs the service; the client commands
// (receivers, executions, tokens, trigger, status, completion) are server/cli's.
#include <curl/curl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "cli.h"
#include "log.h"
#include "migrate_data.h"
#include "pruner.h"
#include "secret_keys.h"
#include "service.h"
#include "token.h"

#ifndef TRIPLINE_VERSION
#define TRIPLINE_VERSION "0.0.0-dev"
#endif

namespace {

constexpr const char* kUsage = R"(tripline — rule-driven action triggers

Usage:
  tripline serve [flags]            run the service
  tripline rotate-signing-key [--data-dir DIR] [--database URL]
                                    add a new token signing key (old URLs keep working;
                                    new and rotated URLs use the new key)
  tripline rotate-secret-key [--data-dir DIR] [--database URL]
                                    with the server stopped: re-seal every stored secret under
                                    a new secrets key (DATA_DIR/secrets.key), or under
                                    TRIPLINE_SECRET_KEY when it is set (the old key then in
                                    TRIPLINE_SECRET_KEY_PREVIOUS); see docs/secret-keys.md
  tripline migrate-data --from FILE --to postgres://...
                                    with tripline stopped: copy every row of a SQLite database
                                    into a new, empty PostgreSQL database, ids kept; see
                                    docs/migrate-data.md
  tripline --help | --version
  (see the client commands below)

Flags of serve (each also read from the environment variable named after it):
  --listen HOST:PORT      TRIPLINE_LISTEN       address to listen on (default 127.0.0.1:8080)
  --data-dir DIR          TRIPLINE_DATA_DIR     SQLite database and signing keys (default ./data)
  --database URL          TRIPLINE_DATABASE     a postgres:// URL: keep the store in PostgreSQL
                                                (docs/postgres.md; default DATA_DIR/tripline.db)
  --public-url URL        TRIPLINE_PUBLIC_URL   base of issued trigger URLs (default http://LISTEN)
)";
// Then each driver's own options (driver.h, DriverOption), then:
constexpr const char* kUsageRest =
    R"(  --workers N             TRIPLINE_WORKERS      executions run in parallel (default 4)
  --http-threads N        TRIPLINE_HTTP_THREADS HTTP event loops (default 2)
  --max-attempts N        TRIPLINE_MAX_ATTEMPTS tries per execution before it fails (default 8)
  --retry-base-ms N       TRIPLINE_RETRY_BASE_MS first retry delay, doubling (default 500)
  --retry-max-ms N        TRIPLINE_RETRY_MAX_MS  longest retry delay (default 60000)
  --log-level LEVEL       TRIPLINE_LOG_LEVEL    debug, info, warn or error (default info)
  --retention SPEC        TRIPLINE_RETENTION    finished executions kept: an age (30d, 12h), a count
                                                per receiver (100000), both (default 30d,100000)
                                                or off; rows with an idempotency key stay 48 h
                                                (also the request log's age)
  --request-log N         TRIPLINE_REQUEST_LOG  requests logged per receiver, newest kept
                                                (default 1000; 0: no request log)
  --audit-retention SPEC  TRIPLINE_AUDIT_RETENTION  audit log rows kept: an age (400d), a count
                                                (100000), both (default 400d,100000) or off
  --default-rate-per-minute N  TRIPLINE_DEFAULT_RATE_PER_MINUTE  rate limit of receivers whose
                                                limits leave it out (default 600; 0: none)
  --default-burst N       TRIPLINE_DEFAULT_BURST  their burst (default 100)
  --default-max-queued N  TRIPLINE_DEFAULT_MAX_QUEUED  unfinished executions per receiver before
                                                triggers answer 429 (default 1000; 0: no cap)
  --trusted-proxies LIST  TRIPLINE_TRUSTED_PROXIES  comma-separated addresses/CIDRs of reverse
                                                proxies whose X-Forwarded-For is believed
                          TRIPLINE_SECRET_KEY   64 hex digits: key sealing config secrets at rest
                                                (default: DATA_DIR/secrets.key, created once)
                          TRIPLINE_SECRET_KEY_PREVIOUS  comma-separated older keys that still
                                                open secrets sealed before a rotation
                          TRIPLINE_ADMIN_TOKEN  an admin credential to accept; when unset and no
                                                admin token exists yet, one is generated and
                                                printed once

tripline serves plain HTTP. For HTTPS, put nginx in front of it: deploy/nginx/README.md.

)";

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Flag {
  const char* name;
  const char* env;
  std::string* value;
};

void print_usage(FILE* out) {
  std::fputs(kUsage, out);
  for (const auto& o : tripline::driver_options()) {
    std::string flag = std::string("--") + o.name + " VALUE";
    if (*o.default_value)
      std::fprintf(out, "  %-23s %-21s %s (default %s)\n", flag.c_str(), o.env, o.help,
                   o.default_value);
    else
      std::fprintf(out, "  %-23s %-21s %s\n", flag.c_str(), o.env, o.help);
  }
  std::fputs(kUsageRest, out);
  std::fputs(tripline::cli::kHelpText, out);
}

int to_int(const std::string& s, const char* name) {
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used == s.size() && v >= 0) return v;
  } catch (const std::exception&) {
  }
  std::fprintf(stderr, "tripline: %s must be a whole number, got \"%s\"\n", name, s.c_str());
  std::exit(2);
}

// Built-in TLS was removed: Pistache 0.0.5 runs each TLS handshake to the end on its single
// accept thread, so one client that connects and sends nothing stalled every new connection.
// Asking for it fails loudly instead of quietly serving plain HTTP where HTTPS was expected.
constexpr const char* kRemovedTlsFlags[] = {"--tls-cert", "--tls-key"};
constexpr const char* kRemovedTlsEnv[] = {"TRIPLINE_TLS_CERT", "TRIPLINE_TLS_KEY"};

int refuse_builtin_tls(const char* what) {
  std::fprintf(
      stderr,
      "tripline: %s is no longer supported: tripline serves plain HTTP only. Terminate TLS in "
      "a reverse proxy in front of it; a tested nginx recipe is in deploy/nginx/ (README.md, "
      "tripline.conf)\n",
      what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--help" || cmd == "-h" || cmd == "help" || cmd.empty()) {
    print_usage(cmd.empty() ? stderr : stdout);
    return cmd.empty() ? 2 : 0;
  }
  if (cmd == "--version") {
    std::printf("tripline %s\n", TRIPLINE_VERSION);
    return 0;
  }
  if (tripline::cli::is_client_command(cmd)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return tripline::cli::run(argc, argv);
  }
  if (cmd == "migrate-data") {
    for (int i = 2; i < argc; ++i)
      if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
        print_usage(stdout);
        return 0;
      }
    auto args = tripline::parse_migrate_data_args(std::vector<std::string>(argv + 2, argv + argc));
    if (!args.ok()) {
      std::fprintf(stderr, "tripline: %s\n", args.status().message().c_str());
      return 2;
    }
    auto done = tripline::migrate_data(*args);
    if (!done.ok()) {
      std::fprintf(stderr, "tripline: %s\n", done.status().message().c_str());
      return done.status().code() == tripline::Status::Code::kInvalid ? 2 : 1;
    }
    std::printf("%s\n", done->c_str());
    return 0;
  }
  if (cmd != "serve" && cmd != "rotate-signing-key" && cmd != "rotate-secret-key") {
    std::fprintf(stderr, "tripline: unknown command \"%s\"; see tripline --help\n", cmd.c_str());
    return 2;
  }
  // glibc hands a thread heap's free top back to the kernel once it passes M_TRIM_THRESHOLD
  // (128 KiB by default), with madvise(MADV_DONTNEED), and every madvise of a multi-threaded
  // process flushes the TLB of every core (an inter-processor interrupt). SQLite frees a
  // statement's sub-journal after each INSERT of a group commit, which crossed that line about
  // once per accepted trigger: 7% of the trigger path's CPU under a flood (bench/RESULTS.md).
  // A fixed M_TRIM_THRESHOLD keeps up to 4 MiB free per heap, and also stops glibc from raising
  // the mmap threshold by itself, so that is fixed too: at 4 MiB, above the largest buffer a
  // request makes (a 1 MiB body's string, grown by doubling), which is then not mmap()ed and
  // munmap()ed (another TLB flush) every time.
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);

  std::string listen = "127.0.0.1:8080", data_dir = "./data", database, public_url, workers = "4",
              http_threads = "2", max_attempts = "8", retry_base = "500", retry_max = "60000",
              log_level = "info", trusted_proxies, retention = "30d,100000", default_rate = "600",
              audit_retention = "400d,100000", default_burst = "100", default_max_queued = "1000",
              request_log = "1000";
  std::vector<Flag> flags = {
      {"--listen", "TRIPLINE_LISTEN", &listen},
      {"--data-dir", "TRIPLINE_DATA_DIR", &data_dir},
      {"--database", "TRIPLINE_DATABASE", &database},
      {"--public-url", "TRIPLINE_PUBLIC_URL", &public_url},
      {"--workers", "TRIPLINE_WORKERS", &workers},
      {"--http-threads", "TRIPLINE_HTTP_THREADS", &http_threads},
      {"--max-attempts", "TRIPLINE_MAX_ATTEMPTS", &max_attempts},
      {"--retry-base-ms", "TRIPLINE_RETRY_BASE_MS", &retry_base},
      {"--retry-max-ms", "TRIPLINE_RETRY_MAX_MS", &retry_max},
      {"--log-level", "TRIPLINE_LOG_LEVEL", &log_level},
      {"--trusted-proxies", "TRIPLINE_TRUSTED_PROXIES", &trusted_proxies},
      {"--retention", "TRIPLINE_RETENTION", &retention},
      {"--request-log", "TRIPLINE_REQUEST_LOG", &request_log},
      {"--audit-retention", "TRIPLINE_AUDIT_RETENTION", &audit_retention},
      {"--default-rate-per-minute", "TRIPLINE_DEFAULT_RATE_PER_MINUTE", &default_rate},
      {"--default-burst", "TRIPLINE_DEFAULT_BURST", &default_burst},
      {"--default-max-queued", "TRIPLINE_DEFAULT_MAX_QUEUED", &default_max_queued}};
  // Each driver's own options (e.g. scale-service's --docker-host), declared by the driver.
  const std::vector<tripline::DriverOption> driver_options = tripline::driver_options();
  std::vector<std::string> driver_flags(driver_options.size()),
      driver_values(driver_options.size());
  for (size_t i = 0; i < driver_options.size(); ++i) {
    driver_flags[i] = std::string("--") + driver_options[i].name;
    driver_values[i] = driver_options[i].default_value;
    flags.push_back({driver_flags[i].c_str(), driver_options[i].env, &driver_values[i]});
  }
  for (auto& f : flags)
    if (const char* v = std::getenv(f.env); v && *v) *f.value = v;
  for (const char* env : kRemovedTlsEnv)
    if (const char* v = std::getenv(env); v && *v && cmd == "serve") return refuse_builtin_tls(env);
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_usage(stdout);
      return 0;
    }
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    for (const char* flag : kRemovedTlsFlags)
      if (arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0)
        return refuse_builtin_tls(flag);
    bool matched = false;
    for (auto& f : flags) {
      std::string name = f.name;
      if (arg == name && i + 1 < argc) {
        *f.value = argv[++i];
        matched = true;
      } else if (arg.rfind(name + "=", 0) == 0) {
        *f.value = arg.substr(name.size() + 1);
        matched = true;
      }
      if (matched) break;
    }
    if (!matched) {
      std::fprintf(stderr, "tripline: unknown or incomplete flag \"%s\"; see tripline --help\n",
                   arg.c_str());
      return 2;
    }
  }

  tripline::DriverEnv driver_env;
  for (size_t i = 0; i < driver_options.size(); ++i)
    driver_env.set(driver_options[i].name, driver_values[i]);

  if (cmd == "rotate-signing-key") {
    auto done = tripline::rotate_signing_key(data_dir, std::getenv("TRIPLINE_SECRET_KEY"),
                                             std::getenv("TRIPLINE_SECRET_KEY_PREVIOUS"), database);
    if (!done.ok()) {
      std::fprintf(stderr, "tripline: %s\n", done.status().message().c_str());
      return 1;
    }
    std::printf("%s\n", done->c_str());
    return 0;
  }

  if (cmd == "rotate-secret-key") {
    auto done =
        tripline::rotate_secret_key(data_dir, driver_env, std::getenv("TRIPLINE_SECRET_KEY"),
                                    std::getenv("TRIPLINE_SECRET_KEY_PREVIOUS"), database);
    if (!done.ok()) {
      std::fprintf(stderr, "tripline: %s\n", done.status().message().c_str());
      return 1;
    }
    std::printf("%s\n", done->c_str());
    return 0;
  }

  if (log_level == "debug")
    tripline::log::set_level(tripline::log::Level::kDebug);
  else if (log_level == "warn")
    tripline::log::set_level(tripline::log::Level::kWarn);
  else if (log_level == "error")
    tripline::log::set_level(tripline::log::Level::kError);
  else if (log_level != "info") {
    std::fprintf(stderr, "tripline: --log-level must be debug, info, warn or error\n");
    return 2;
  }

  tripline::ServiceOptions o;
  o.listen = listen;
  o.data_dir = data_dir;
  o.database = database;
  o.public_url = public_url;
  if (const char* t = std::getenv("TRIPLINE_ADMIN_TOKEN")) o.admin_token = t;
  o.drivers = driver_env;
  o.workers = std::max(1, to_int(workers, "--workers"));
  o.http_threads = std::max(1, to_int(http_threads, "--http-threads"));
  o.retry.max_attempts = std::max(1, to_int(max_attempts, "--max-attempts"));
  o.retry.base = std::chrono::milliseconds(to_int(retry_base, "--retry-base-ms"));
  o.retry.max = std::chrono::milliseconds(to_int(retry_max, "--retry-max-ms"));
  o.request_log.keep_per_receiver = std::max(0, to_int(request_log, "--request-log"));
  if (auto s = tripline::parse_retention(retention, &o.retention); !s.ok()) {
    std::fprintf(stderr, "tripline: %s\n", s.message().c_str());
    return 2;
  }
  if (auto s = tripline::parse_audit_retention(audit_retention, &o.audit_retention); !s.ok()) {
    std::fprintf(stderr, "tripline: %s\n", s.message().c_str());
    return 2;
  }
  {
    // The server's default limits, as a receiver's "limits" object would say them.
    nlohmann::json limits = {{"rate_per_minute", to_int(default_rate, "--default-rate-per-minute")},
                             {"burst", to_int(default_burst, "--default-burst")},
                             {"max_queued", to_int(default_max_queued, "--default-max-queued")}};
    auto parsed = tripline::Limits::parse(limits, tripline::Limits{});
    if (!parsed.ok()) {
      std::fprintf(stderr, "tripline: --default-*: %s\n", parsed.status().message().c_str());
      return 2;
    }
    o.default_limits = *parsed;
  }
  for (size_t start = 0; start < trusted_proxies.size();) {
    size_t comma = trusted_proxies.find(',', start);
    if (comma == std::string::npos) comma = trusted_proxies.size();
    std::string item = trusted_proxies.substr(start, comma - start);
    if (!item.empty()) o.trusted_proxies.push_back(item);
    start = comma + 1;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  ::umask(077);  // the database and keys are nobody else's business
  // Block the stop signals in every thread; one thread waits for them with sigwait, from before
  // the start on, so a stop during a long start-up (a large store loading) is honoured at once.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::atomic<int> stop_signal{0};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    stop_signal = sig;
  });
  o.stop_requested = [&] { return stop_signal.load() != 0; };

  auto svc = tripline::Service::start(o);
  if (!svc.ok()) {
    if (int sig = stop_signal.load();
        sig && svc.status().message() == tripline::kStartInterrupted) {
      tripline::log::info("stop signal received during start-up: exiting before serving",
                          {{"signal", sig}});
      signal_waiter.join();
      return 0;
    }
    tripline::log::error("cannot start", {{"error", svc.status().message()}});
    if (!stop_signal.load())
      pthread_kill(signal_waiter.native_handle(), SIGTERM);  // ends its sigwait
    signal_waiter.join();
    return 1;
  }
  if (const auto& token = (*svc)->generated_admin_token()) {
    // Printed once, to the terminal of whoever started the first run; only its hash is stored.
    std::printf(
        "\nNo admin token existed, so one was created. It is shown only this once:\n\n  %s\n\n"
        "Use it as 'Authorization: Bearer <token>' on %s/api/v1/...\n\n",
        token->c_str(), (*svc)->public_url().c_str());
    std::fflush(stdout);
  }
  signal_waiter.join();
  tripline::log::info("stopping", {{"signal", stop_signal.load()}});
  (*svc)->stop();
  return 0;
}
