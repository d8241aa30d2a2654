#include "notifier.h"

#include <algorithm>
#include <ctime>
#include <random>

#include "http_client.h"
#include "json_limits.h"
#include "log.h"
#include "webhook_signing.h"

namespace tripline {

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view v, int64_t now) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  // A range compare: isdigit() on a byte above 0x7f (a negative char) is undefined behaviour.
  if (v.size() <= 9 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::chrono::seconds(std::stoll(std::string(v)));
  // An HTTP-date (RFC 9110 IMF-fixdate): "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  std::string text(v);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  int64_t at = int64_t(timegm(&tm)) * 1000;
  return std::chrono::milliseconds(std::max<int64_t>(0, at - now));
}

DeliveryVerdict judge_delivery(int status, bool address_refused, int attempt,
                               const std::string* retry_after, double jitter,
                               const NotifierOptions& o, int64_t now) {
  DeliveryVerdict v;
  if (status >= 200 && status < 300) {
    v.state = "delivered";
    return v;
  }
  if (status == 410) {
    v.state = "failed";
    v.disable = true;
    return v;
  }
  bool retry = !address_refused && (status == 0 || status >= 500 || status == 429 || status == 408);
  if (!retry || attempt >= o.max_attempts) {
    v.state = "failed";
    return v;
  }
  v.state = "pending";
  std::optional<std::chrono::milliseconds> asked;
  if (retry_after) asked = parse_retry_after(*retry_after, now);
  if (asked) {
    // "0" (or a date already past) would have every such delivery retry at once, in a loop.
    v.retry_in =
        std::clamp(*asked, o.min_retry_after, std::max(o.min_retry_after, o.max_retry_after));
    return v;
  }
  // Exponential: base, 2x base, 4x base ... up to max_backoff; "equal jitter" keeps at least half
  // of the step, so a crowd of deliveries spreads out but none retries at once.
  int shift = std::min(attempt - 1, 30);
  auto step = std::min<int64_t>(o.max_backoff.count(), o.base_backoff.count() << shift);
  v.retry_in = std::chrono::milliseconds(step / 2 + int64_t(double(step / 2) * jitter));
  return v;
}

Notifier::Notifier(Store& store, const SecretBox& secrets, NotifierOptions options)
    : store_(store), secrets_(secrets), options_(options) {}

Notifier::~Notifier() { stop(); }

void Notifier::start() {
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { work(); });
}

void Notifier::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Notifier::poke() {
  {
    std::lock_guard lock(mu_);
    ++pokes_;
  }
  cv_.notify_all();
}

void Notifier::work() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    uint64_t seen = pokes_;
    lock.unlock();
    bool sent = false;
    try {
      sent = send_one();
    } catch (const std::exception& e) {
      log::error("notification dispatcher: unexpected error", {{"error", e.what()}});
    }
    auto wait = options_.poll;
    if (!sent) {
      auto due = store_.next_delivery_due();
      if (due.ok() && due->has_value())
        wait = std::clamp(std::chrono::milliseconds(**due - store_.clock().now_ms()),
                          std::chrono::milliseconds(0), options_.poll);
    }
    lock.lock();
    if (sent) continue;
    cv_.wait_for(lock, wait, [&] { return stopping_ || pokes_ != seen; });
  }
}

bool Notifier::send_one() {
  int64_t now = store_.clock().now_ms();
  // The lease outlasts the request, so no other worker (or a restart) sends it meanwhile.
  auto claimed = store_.claim_due_delivery(now, options_.timeout.count() + 30000);
  if (!claimed.ok()) {
    log::warn("notification dispatcher: cannot read deliveries",
              {{"error", claimed.status().message()}});
    return false;
  }
  if (!claimed->has_value()) return false;
  const DeliveryRow& d = (*claimed)->delivery;
  const auto& sub = (*claimed)->subscription;
  DeliveryOutcome out;
  out.attempt.delivery_id = d.id;
  out.attempt.attempt = d.attempts + 1;
  out.attempt.started_at = now;
  auto fail_unsent = [&](const std::string& why) {
    out.attempt.error = why;
    out.state = "failed";
    if (Status s = store_.record_delivery_attempt(d.id, out); !s.ok())
      log::warn("notification dispatcher: cannot record an attempt", {{"error", s.message()}});
    return true;
  };
  if (!sub) return fail_unsent("the subscription was deleted");
  if (!sub->enabled) return fail_unsent("the subscription is disabled");
  auto scheme = parse_signature_scheme(sub->scheme);
  auto opened = open_config(sub->secrets, {"secret", "previous_secret"}, secrets_);
  if (!scheme || !opened.ok() || !opened->contains("secret"))
    return fail_unsent("the subscription's secret cannot be opened with the current keys");
  std::vector<std::string> keys = {(*opened)["secret"].get<std::string>()};
  if (opened->contains("previous_secret") && (*opened)["previous_secret"].is_string())
    keys.push_back((*opened)["previous_secret"].get<std::string>());

  OutboundRequest req;
  req.method = "POST";
  req.url = sub->url;
  req.body = d.payload;
  req.timeout = options_.timeout;
  req.connect_timeout = std::min(options_.timeout, std::chrono::milliseconds(3000));
  req.max_response_bytes = 64 * 1024;
  // A 2xx with a long body is delivered: without its status it would be sent again, 10 times.
  req.truncate_answer = true;
  req.refuse_local_addresses = !options_.allow_local;
  req.headers = {{"Content-Type", "application/json"}, {"User-Agent", "tripline-notify/1"}};
  auto signature = sign_webhook(*scheme, keys, d.webhook_id, now / 1000, d.payload);
  // Never unsigned: a secret that does not fit the scheme (stored before the API checked it)
  // signs nothing, and a receiver that does not check would take a forged-looking message.
  if (signature.empty())
    return fail_unsent("the subscription's secret cannot sign under the scheme " + sub->scheme +
                       ": give it a new secret");
  for (auto& h : signature) req.headers.push_back(std::move(h));
  auto t0 = std::chrono::steady_clock::now();
  OutboundResponse r = http_request(req);
  out.attempt.latency_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  if (r.status != 0) out.attempt.status = r.status;
  out.attempt.error = utf8_text(r.error);
  // Stored as JSON: a cut inside a character, or bytes that are not UTF-8, would not dump.
  out.attempt.answer = utf8_text(r.body, kAnswerSnippet);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double jitter = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  DeliveryVerdict v =
      judge_delivery(r.status, r.address_refused, out.attempt.attempt - d.budget_from,
                     r.header("retry-after"), jitter, options_, store_.clock().now_ms());
  if (r.status != 0 && v.state != "delivered" && out.attempt.error.empty())
    out.attempt.error = "answered " + std::to_string(r.status);
  out.state = v.state;
  out.next_attempt_at = store_.clock().now_ms() + v.retry_in.count();
  if (v.disable)
    out.disable_subscription =
        "the subscriber answered 410 Gone (delivery " + std::to_string(d.id) + ")";
  if (Status s = store_.record_delivery_attempt(d.id, out); !s.ok())
    // The lease runs out and the delivery is sent again, with the same webhook-id.
    log::warn("notification dispatcher: cannot record an attempt", {{"error", s.message()}});
  log::debug("notification attempt", {{"delivery_id", d.id},
                                      {"status", r.status},
                                      {"state", out.state},
                                      {"latency_ms", out.attempt.latency_ms}});
  return true;
}

}  // namespace tripline
