#include "metrics.h"

#include <cstdio>
#include <memory>

namespace tripline {

const char* to_string(RejectReason r) {
  switch (r) {
    case RejectReason::kMalformedToken:
      return "malformed_token";
    case RejectReason::kUnknownKey:
      return "unknown_key";
    case RejectReason::kBadSignature:
      return "bad_signature";
    case RejectReason::kUnknownReceiver:
      return "unknown_receiver";
    case RejectReason::kRevoked:
      return "revoked";
    case RejectReason::kDisabled:
      return "disabled";
    case RejectReason::kOverloaded:
      return "overloaded";
    case RejectReason::kStorageFailed:
      return "storage_failed";
    case RejectReason::kBadRequest:
      return "bad_request";
    case RejectReason::kUnauthorized:
      return "unauthorized";
    case RejectReason::kRateLimited:
      return "rate_limited";
    case RejectReason::kQueueFull:
      return "queue_full";
    case RejectReason::kCount:
      break;
  }
  return "other";
}

const char* to_string(IgnoreReason r) {
  switch (r) {
    case IgnoreReason::kRule:
      return "rule";
    case IgnoreReason::kResolved:
      return "resolved";
    case IgnoreReason::kCooldown:
      return "cooldown";
    case IgnoreReason::kNoPush:
      return "no_push";
    case IgnoreReason::kUnmatched:
      return "unmatched";
    case IgnoreReason::kCount:
      break;
  }
  return "other";
}

namespace {
const char* route_name(size_t r) {
  static const char* kNames[] = {"trigger", "api", "health", "metrics", "ui", "other"};
  return kNames[r];
}
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
const std::vector<double> kDurationBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                             1,     2.5,  5,     10,   30,  60};
}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  std::lock_guard lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::lock_guard lock(mu_);
  std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + num(bounds_[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  cumulative += counts_.back();
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
  std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + num(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

Metrics::Metrics() : start_delay_(kDurationBounds) {}

void Metrics::execution_finished(const std::string& driver, const std::string& status,
                                 double seconds) {
  std::lock_guard lock(exec_mu_);
  ++executions_[{driver, status}];
  auto& h = durations_[driver];
  if (!h) h = std::make_unique<Histogram>(kDurationBounds);
  h->observe(seconds);
}

std::string Metrics::render() const {
  std::string out;
  out += "# HELP tripline_http_requests_total HTTP requests by route and status code.\n";
  out += "# TYPE tripline_http_requests_total counter\n";
  for (size_t r = 0; r < requests_.size(); ++r)
    for (size_t c = 0; c < requests_[r].size(); ++c)
      if (uint64_t n = requests_[r][c].load(std::memory_order_relaxed))
        out += "tripline_http_requests_total{route=\"" + std::string(route_name(r)) + "\",code=\"" +
               std::to_string(c + 100) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP tripline_triggers_accepted_total Triggers durably recorded as executions.\n";
  out += "# TYPE tripline_triggers_accepted_total counter\n";
  out += "tripline_triggers_accepted_total " + std::to_string(accepted_.load()) + "\n";
  out += "# HELP tripline_triggers_rejected_total Triggers refused, by reason.\n";
  out += "# TYPE tripline_triggers_rejected_total counter\n";
  for (size_t i = 0; i < rejected_.size(); ++i)
    out += "tripline_triggers_rejected_total{reason=\"" +
           std::string(to_string(static_cast<RejectReason>(i))) + "\"} " +
           std::to_string(rejected_[i].load()) + "\n";
  out +=
      "# HELP tripline_triggers_ignored_total Triggers answered without an execution, by reason.\n";
  out += "# TYPE tripline_triggers_ignored_total counter\n";
  for (size_t i = 0; i < ignored_.size(); ++i)
    out += "tripline_triggers_ignored_total{reason=\"" +
           std::string(to_string(static_cast<IgnoreReason>(i))) + "\"} " +
           std::to_string(ignored_[i].load()) + "\n";
  static const char* kAuthReasons[] = {"none",           "source_not_allowed", "missing_credential",
                                       "bad_credential", "bad_signature",      "stale_timestamp",
                                       "other"};
  out +=
      "# HELP tripline_inbound_auth_failures_total Requests refused by a receiver's inbound "
      "authentication.\n";
  out += "# TYPE tripline_inbound_auth_failures_total counter\n";
  for (size_t i = 1; i < 6; ++i)
    out += "tripline_inbound_auth_failures_total{reason=\"" + std::string(kAuthReasons[i]) +
           "\"} " + std::to_string(auth_failures_[i].load()) + "\n";
  {
    std::lock_guard lock(exec_mu_);
    out += "# HELP tripline_executions_total Finished executions by driver and final status.\n";
    out += "# TYPE tripline_executions_total counter\n";
    for (const auto& [k, n] : executions_)
      out += "tripline_executions_total{driver=\"" + k.first + "\",status=\"" + k.second + "\"} " +
             std::to_string(n) + "\n";
    out += "# HELP tripline_execution_duration_seconds Time from first attempt to final outcome.\n";
    out += "# TYPE tripline_execution_duration_seconds histogram\n";
    for (const auto& [driver, h] : durations_)
      h->render(out, "tripline_execution_duration_seconds", "driver=\"" + driver + "\"");
  }
  out +=
      "# HELP tripline_execution_start_delay_seconds Time from acceptance to the driver's first "
      "call.\n";
  out += "# TYPE tripline_execution_start_delay_seconds histogram\n";
  start_delay_.render(out, "tripline_execution_start_delay_seconds", "");
  out +=
      "# HELP tripline_execution_record_failures_total Execution outcomes the database refused "
      "(retried until written).\n";
  out += "# TYPE tripline_execution_record_failures_total counter\n";
  out += "tripline_execution_record_failures_total " +
         std::to_string(store_write_failures_.load()) + "\n";
  out +=
      "# HELP tripline_request_log_written_total Request log entries written by its background "
      "writer (accepted requests' too on SQLite, where their execution's commit defers them; on "
      "PostgreSQL they are written with their execution and not counted here).\n";
  out += "# TYPE tripline_request_log_written_total counter\n";
  out += "tripline_request_log_written_total " + std::to_string(log_written_.load()) + "\n";
  out +=
      "# HELP tripline_request_log_dropped_total Request log entries dropped: the writer's "
      "queue was full (a flood) or the write failed.\n";
  out += "# TYPE tripline_request_log_dropped_total counter\n";
  out += "tripline_request_log_dropped_total " + std::to_string(log_dropped_.load()) + "\n";
  out +=
      "# HELP tripline_request_log_capped_total Accepted requests' entries not written because "
      "newer ones of the same receiver were waiting and its cap keeps the newest (a flood).\n";
  out += "# TYPE tripline_request_log_capped_total counter\n";
  out += "tripline_request_log_capped_total " + std::to_string(log_capped_.load()) + "\n";
  out += "# HELP tripline_queue_depth Executions accepted and not yet finished.\n";
  out += "# TYPE tripline_queue_depth gauge\n";
  out += "tripline_queue_depth " + std::to_string(queue_depth_ ? queue_depth_() : 0) + "\n";
  return out;
}

}  // namespace tripline
