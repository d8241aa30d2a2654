// The trigger decision for one request to one receiver, as a plain function: inbound auth, rules,
// the Alertmanager preset, values taken from the request, and the check that nothing a request
// carries changes what the trigger URL grants. No I/O, no HTTP, no clock (the time comes in):
// tested without a server (tests/unit/decide_test.cpp). The route layer (api/app.cpp) maps the
// answer to a status code; limits and the durable insert come after it.
//
// Thread safety: reads only its arguments; the Receiver is immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "inbound_auth.h"
#include "metrics.h"
#include "receivers.h"
#include "request.h"
#include "rules.h"
#include "secrets.h"
#include "status.h"

namespace tripline {

struct TriggerInput {
  const InboundRequest& request;
  std::string_view caller;  // the peer, or the client behind trusted proxies
  int64_t now_ms = 0;
  std::string idempotency_key;  // the request's Idempotency-Key (already checked), or empty
  // Null on triggers; the rules tester's record of what the rules compared (rules.h).
  RuleTrace* trace = nullptr;
  // Fill Ignore::compared (the request log is on): what the deciding rule compared.
  bool explain = false;
  // A redelivery by an admin of a logged request (docs/requests-log.md): its credentials were
  // redacted from the log, so inbound auth is not checked (the admin token authorises it), and
  // no idempotency key is drawn from the payload (the replay is a new execution).
  bool replay = false;
  // With explain: taken out of the compared values (the trigger token, request_record.h).
  std::string_view redact;
};

// Run the action. Fields left empty mean "as the receiver is configured".
struct Accept {
  std::string idempotency_key;  // signed message key, Alertmanager key or the request's
  std::shared_ptr<const DriverConfig> config;  // the request changed the config: this one runs
  std::string config_text;                     // ... recorded sealed, as the execution's config
  std::string action;                          // the inverse's action, when it differs
  nlohmann::json rule;  // the rule that decided to run: {"index", "name"}; null: none did
};

// Do nothing, successfully (answered with the receiver's ignore status).
struct Ignore {
  IgnoreReason why;
  std::string reason;   // a sentence for the sender
  int rule_index = -1;  // the rule that ignored the request, -1 otherwise
  std::string rule_name;
  nlohmann::json compared;  // with TriggerInput::explain: RuleSet::explain's answer
};

// Refuse: the sender is not allowed (auth != kNone) or the request is not acceptable (status).
struct Reject {
  AuthFailure auth = AuthFailure::kNone;
  Status status;  // Invalid, when auth == kNone
};

using TriggerDecision = std::variant<Accept, Ignore, Reject>;

TriggerDecision decide(const TriggerInput& in, const Receiver& r, const SecretBox& secrets);

// A sentence for the sender about an authentication failure.
const char* auth_message(AuthFailure f);

}  // namespace tripline
