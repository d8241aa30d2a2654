// The driver contract: everything tripline knows about an action's peer goes through this header.
//
// Life of an execution, as the worker drives it:
//   0. bind(config, request) only for configs that take values from the trigger request.
//   1. validate(config)      once, when the receiver is saved (check_peer = true) and again from
//                            the stored JSON on restart (check_peer = false). Typed config or
//                            field errors.
//   2. plan(config)          reads the current state and answers an ABSOLUTE desired state
//                            (e.g. {"replicas":5,"before":3}). The worker records the plan
//                            durably before anything changes. A dry run stops here.
//   3. apply(config, plan)   makes the world match the plan. Must be idempotent: after a crash
//                            or a retryable failure the same recorded plan is applied again, so
//                            "up by 2" can never happen twice.
//
// Outcomes say only whether a failure is worth retrying; the queue's retry policy reads nothing
// else. Drivers never choose HTTP codes.
//
// Thread safety: a Driver is shared by all workers; every method is const and may run
// concurrently for different targets. The executor never runs two executions with the same
// (driver, target) at once.
//
// What the UI makes of a driver's answers, so a new driver needs no UI code (ui/dom.js
// changeLines(), ui/schema-form.js):
//   - Plan::desired and Outcome::result are shown as "before -> after" lines: a key "X_before"
//     pairs with "X_after" (or with "X"), e.g. {"replicas_before":3,"replicas":5} reads
//     "replicas 3 -> 5"; "before"/"after" pair too, labelled "TYPE NAME" from "type" and "name"
//     (a DNS record). "clamped": true and "changed": false get a line each. Anything else is
//     shown only in the raw JSON.
//   - config_schema() builds the form: a property whose title ends in "(a/b)", or whose
//     description starts with "a only", is shown only while a sibling select has one of those
//     values ("By how many (up/down)" follows "action").
//
// Adding a driver: a folder under drivers/ (sources, tests, CMakeLists.txt) and one line in
// drivers/registry.cpp; see drivers/README.md. Driver names are stable identifiers: they are
// stored in the database and signed into trigger tokens.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json_limits.h"
#include "status.h"

namespace tripline {

// A process-level option a driver reads (where its peer is, e.g. the Docker Engine API),
// declared by the driver itself: `tripline serve` offers it as the flag --NAME and the
// environment variable ENV, and lists it in --help.
struct DriverOption {
  const char* name;           // "docker-host": the flag is --docker-host
  const char* env;            // "TRIPLINE_DOCKER_HOST"
  const char* default_value;  // used when neither the flag nor the variable is set
  const char* help;           // "Docker Engine API"
};

// The values of the drivers' options, filled from the command line and the environment.
class DriverEnv {
 public:
  // The value set for the option, else its default.
  std::string get(const DriverOption& option) const {
    auto it = values_.find(option.name);
    return it == values_.end() ? option.default_value : it->second;
  }
  DriverEnv& set(std::string_view name, std::string value) {
    values_[std::string(name)] = std::move(value);
    return *this;
  }
  bool is_set(std::string_view name) const { return values_.find(name) != values_.end(); }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// A driver's parsed, validated configuration. Each driver defines its own subtype.
struct DriverConfig {
  virtual ~DriverConfig() = default;
};

// What a trigger request offers to configs that take values from it (e.g. dns-update's
// "caller-ip"). Views into the request: valid only during bind().
struct TriggerRequest {
  std::string_view caller_ip;  // the peer, or the X-Forwarded-For client behind a trusted proxy
  // The body, parsed (bounded: json_limits.h) on first use and shared with the receiver's rules:
  // drivers read body.parsed() and never parse body.text() themselves.
  LazyBody body;
};

struct Outcome {
  enum class Kind { kSucceeded, kRetryable, kFinal };
  Kind kind = Kind::kSucceeded;
  std::string reason;  // for failures: a sentence that tells the operator what happened
  nlohmann::json
      result;  // for success: what changed, e.g. {"replicas_before":3,"replicas_after":5}

  static Outcome succeeded(nlohmann::json result) {
    return {Kind::kSucceeded, {}, std::move(result)};
  }
  static Outcome retryable(std::string why) { return {Kind::kRetryable, std::move(why), nullptr}; }
  static Outcome final(std::string why) { return {Kind::kFinal, std::move(why), nullptr}; }
  bool ok() const { return kind == Kind::kSucceeded; }
};

// The answer of plan(): an absolute desired state, or why none could be computed.
struct Plan {
  nlohmann::json desired;  // recorded in the execution before apply()
  Outcome failure;         // meaningful only when desired is null
  static Plan of(nlohmann::json desired) { return {std::move(desired), {}}; }
  static Plan failed(Outcome why) { return {nullptr, std::move(why)}; }
  bool ok() const { return !desired.is_null(); }
};

// One thing a driver can act on, as the UI's target picker lists it
// (GET /api/v1/drivers/{name}/targets, docs/api.md).
struct TargetInfo {
  std::string name;                 // shown, and what the config's target field takes: "web"
  nlohmann::json config;            // the config fields that name it: {"service":"web"}
  std::optional<int64_t> replicas;  // its current replicas, when it has any
};
struct TargetList {
  std::vector<TargetInfo> items;  // sorted by name, at most the `max` asked for
  bool truncated = false;         // the peer has more than were listed
};

// One peer a driver talks to, as its probe found it (the operations page's health table).
struct PeerCheck {
  std::string peer;     // what it is, for anyone: "docker", "kubernetes"
  std::string address;  // where: "unix:///var/run/docker.sock" (shown to operators and admins)
  Status status;        // the probe's answer; its message is shown to operators and admins
};

class Driver {
 public:
  virtual ~Driver() = default;

  // Stable identifier, e.g. "scale-service".
  virtual std::string_view name() const = 0;
  // JSON Schema (draft 2020-12) of the config object; the UI builds its form from it.
  // Secrets (TSIG secrets, passwords, tokens) are top-level properties marked "writeOnly": true:
  // tripline stores them encrypted, never returns them, and decrypts them only to hand the
  // config to validate().
  // Top-level properties marked "x-tripline-per-request": true (e.g. scale-service's "by", a DNS
  // value) are the only ones a receiver's rules may change per request ("set"), within the
  // schema's bounds; tripline refuses any other "set" when the receiver is saved. Never mark a
  // property that target() or action() reads: those are what the trigger URL grants.
  virtual nlohmann::json config_schema() const = 0;

  // Parses `config` into the driver's typed config, or answers Status::Invalid with one
  // FieldError per problem (field names start with "config."). With check_peer, also checks the
  // target against the live peer (the service exists and can be scaled); a peer that cannot be
  // reached is reported as a field error too.
  virtual Result<std::shared_ptr<const DriverConfig>> validate(const nlohmann::json& config,
                                                               bool check_peer) const = 0;

  // One sentence for people: "Scale up web by 2, between 1 and 5".
  virtual std::string describe(const DriverConfig& config) const = 0;
  // What the action touches ("swarm:web") and what it does ("up"). Signed into the token; the
  // target is also the serialization key for executions.
  virtual std::string target(const DriverConfig& config) const = 0;
  virtual std::string action(const DriverConfig& config) const = 0;

  // Whether executions of this config take values from the trigger request. Asked once when the
  // receiver is loaded, so receivers that take nothing cost nothing on the trigger path.
  virtual bool binds_request(const DriverConfig& /*config*/) const { return false; }
  // For configs that bind_request(): the stored config JSON with the request's values filled in
  // (e.g. "value": "caller-ip" -> "value": "203.0.113.7"). tripline validates the answer again
  // (check_peer = false) and records it as the execution's config; an Invalid status is answered
  // to the caller as 422. NotFound says the request carries nothing this config acts on (a push
  // of another repository): the request is ignored with that message as the reason, answered
  // with the receiver's ignore status, and nothing is recorded. Runs on the trigger path: no I/O.
  virtual Result<nlohmann::json> bind(const nlohmann::json& stored_config,
                                      const TriggerRequest& /*request*/) const {
    return stored_config;
  }

  // The config that undoes this one's action ("up" <-> "down", "upsert" <-> "delete"), for
  // receivers that run the inverse when an alert resolves. Default: there is none (Invalid).
  virtual Result<nlohmann::json> inverse(const nlohmann::json& /*config*/) const {
    return Status::Invalid("this driver's action has no inverse");
  }

  virtual Plan plan(const DriverConfig& config) const = 0;
  // The plan this config would make if the state were the one `previous` (a plan of the same
  // target, by this driver) asks for: what lets the executor plan a lane's queued executions
  // together with one peer read (server/engine/executor.h). No I/O. nullopt: this driver cannot say
  // (the default), and each execution is planned against the peer and applied on its own.
  // Answering it declares this driver's plans absolute states that fully replace each other:
  // of several recorded plans of one target, the executor may apply only the last. A driver
  // whose every execution must act (send a message, restart once) must not answer it.
  virtual std::optional<nlohmann::json> plan_after(const DriverConfig& /*config*/,
                                                   const nlohmann::json& /*previous*/) const {
    return std::nullopt;
  }
  virtual Outcome apply(const DriverConfig& config, const nlohmann::json& plan) const = 0;
  // When `plan` (of `config`, the last of a lane's chain) asks for the very state that `read`,
  // a plan() made just now, found at the peer: the outcome to record instead of apply(), which
  // would only read the peer again and change nothing (the executor skips it). nullopt: apply.
  // Only asked for plans made in this attempt, never for recorded plans re-applied after a
  // crash or a retry (the peer may have moved since their read). No I/O.
  virtual std::optional<Outcome> settled(const DriverConfig& /*config*/,
                                         const nlohmann::json& /*read*/,
                                         const nlohmann::json& /*plan*/) const {
    return std::nullopt;
  }

  // Cheap reachability check of the driver's peer for /readyz. Default: nothing to check.
  virtual Status probe() const { return Status::Ok(); }
  // The same check, one answer per process-level peer (Docker and the Kubernetes API are two),
  // for the operations page's health table (GET /api/v1/peers); probe() may join these. Default:
  // none (a DNS server or a webhook URL is per receiver, not a peer of the process), and
  // readiness asks probe() alone.
  virtual std::vector<PeerCheck> probe_peers() const { return {}; }

  // The targets of `backend` (a value of the config's "backend", or "" for the driver's only
  // one) that the peer holds now, at most `max` of them, read through the driver's peer client
  // within its bounds (json_limits.h): the UI's target picker. All of its peer calls end by
  // `deadline` (it runs on an HTTP thread triggers also use, docs/api.md "Driver targets").
  // Invalid: no such backend; NotFound: this driver cannot list (the default) or the backend is
  // not configured; Unavailable: the peer could not be reached, answered past the limits or not
  // by the deadline (its message says which). A driver adds a picker by answering this one
  // function.
  virtual Result<TargetList> list_targets(
      std::string_view /*backend*/, size_t /*max*/,
      std::chrono::steady_clock::time_point /*deadline*/) const {
    return Status::NotFound(std::string(name()) + " cannot list its targets");
  }
};

}  // namespace tripline
