#include "pruner.h"

#include <charconv>

#include "log.h"

namespace tripline {

Pruner::Pruner(Store& store, Options options, std::function<void(int)> on_pruned)
    : store_(store), options_(options), on_pruned_(std::move(on_pruned)) {}

Pruner::~Pruner() { stop(); }

void Pruner::start() {
  if (options_.policy.max_age_ms <= 0 && options_.policy.keep_per_receiver <= 0 &&
      options_.audit.max_age_ms <= 0 && options_.audit.keep <= 0)
    return;
  thread_ = std::thread([this] { loop(); });
}

void Pruner::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<int64_t> Pruner::run_once() {
  int64_t total = 0;
  int64_t now = store_.clock().now_ms();
  // The audit log first, in batches like the executions; its rows are not counted in the
  // answer (executions pruned).
  if (options_.audit.max_age_ms > 0 || options_.audit.keep > 0) {
    for (;;) {
      auto n = store_.prune_audit(options_.audit, now, options_.batch);
      if (!n.ok()) return n.status();
      if (*n > 0) log::info("pruned audit log rows", {{"count", *n}});
      if (*n < options_.batch) break;
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, options_.pause, [&] { return stopping_; })) return total;
    }
  }
  if (options_.policy.max_age_ms <= 0 && options_.policy.keep_per_receiver <= 0) return total;
  int64_t protect_since = now - (options_.protect_ms ? options_.protect_ms() : 0);
  std::vector<int64_t> over;
  if (options_.policy.keep_per_receiver > 0) {
    auto found = store_.receivers_over(options_.policy.keep_per_receiver);  // once per pass
    if (!found.ok()) return found.status();
    over = std::move(found).value();
  }
  for (;;) {
    auto ids =
        store_.prunable_executions(options_.policy, now, protect_since, over, options_.batch);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return total;
    auto n = store_.delete_executions(*ids);
    if (!n.ok()) return n.status();
    total += *n;
    if (on_pruned_) on_pruned_(*n);
    if (int(ids->size()) < options_.batch) return total;
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.pause, [&] { return stopping_; })) return total;
  }
}

Result<int64_t> Pruner::prune_request_log() {
  if (options_.policy.max_age_ms <= 0) return int64_t(0);
  int64_t total = 0;
  int64_t before = store_.clock().now_ms() - options_.policy.max_age_ms;
  for (;;) {
    auto n = store_.prune_request_logs(before, options_.batch);
    if (!n.ok()) return n.status();
    total += *n;
    if (*n < options_.batch) return total;
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.pause, [&] { return stopping_; })) return total;
  }
}

void Pruner::loop() {
  for (;;) {
    auto n = run_once();
    if (!n.ok())
      log::warn("pruning executions failed; will try again", {{"error", n.status().message()}});
    else if (*n > 0)
      log::info("pruned finished executions", {{"count", *n}});
    auto logged = prune_request_log();
    if (!logged.ok())
      log::warn("pruning the request log failed; will try again",
                {{"error", logged.status().message()}});
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.interval, [&] { return stopping_; })) return;
  }
}

Status parse_retention(std::string_view text, RetentionPolicy* policy) {
  auto bad = [&] {
    return Status::Invalid(
        "--retention takes an age (30d, 12h), a count per receiver (100000), "
        "both (30d,100000) or off; got \"" +
        std::string(text) + "\"");
  };
  if (text == "off") {
    policy->max_age_ms = 0;
    policy->keep_per_receiver = 0;
    return Status::Ok();
  }
  bool age = false, count = false;
  if (!text.empty() && text.back() == ',') return bad();
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (part.empty()) return bad();
    char unit = part.back();
    std::string_view digits = (unit == 'd' || unit == 'h') ? part.substr(0, part.size() - 1) : part;
    int64_t n = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || p != digits.data() + digits.size() || n <= 0 || n > 100000000)
      return bad();
    if (unit == 'd' || unit == 'h') {
      if (age) return bad();
      age = true;
      policy->max_age_ms = n * (unit == 'd' ? 24 : 1) * 3600 * 1000;
    } else {
      if (count) return bad();
      count = true;
      policy->keep_per_receiver = n;
    }
  }
  if (!age && !count) return bad();
  if (!age) policy->max_age_ms = 0;
  if (!count) policy->keep_per_receiver = 0;
  return Status::Ok();
}

Status parse_audit_retention(std::string_view text, AuditRetention* retention) {
  RetentionPolicy p;
  if (Status s = parse_retention(text, &p); !s.ok())
    return Status::Invalid(
        "--audit-retention takes an age (400d, 12h), a count of rows (100000), both "
        "(400d,100000) or off; got \"" +
        std::string(text) + "\"");
  retention->max_age_ms = p.max_age_ms;
  retention->keep = p.keep_per_receiver;
  return Status::Ok();
}

}  // namespace tripline
