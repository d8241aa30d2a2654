// RFC 2136 dynamic updates signed with TSIG (RFC 8945), built, signed and sent with ldns over TCP
// (a refused connection fails at once; UDP would wait out the timeout). Reads are TSIG-signed
// queries to the same server, so a wrong key shows up on the first read.
//
// Thread safety: a client is immutable; every call makes its own ldns resolver and socket, so calls
// may run concurrently.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config.h"

struct ldns_struct_rr_list;
typedef struct ldns_struct_rr_list ldns_rr_list;

namespace tripline::dns_update {

// One record set as the server holds it. Values in canonical_value() form.
struct RecordSet {
  bool exists = false;
  int64_t ttl = 0;
  std::vector<std::string> values;
};

class Rfc2136Client {
 public:
  explicit Rfc2136Client(const Config& config,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));

  enum class Error {
    kNone,
    kUnreachable,  // no answer: connection refused, timed out, closed, name not resolved
                   // (retryable)
    kServer,       // SERVFAIL (retryable)
    kRejected,     // the server said no: NOTAUTH/BADSIG/BADKEY, REFUSED, NOTZONE, ... (final)
  };
  struct Answer {
    Error error = Error::kNone;
    std::string message;  // a sentence that says what to fix
    int rcode = 0;
    int tsig_error = 0;         // BADSIG 16, BADKEY 17, BADTIME 18
    std::string field;          // the config field to fix: "server", "zone", "tsig_secret", ...
    std::string other_field;    // a second one, when the answer cannot tell which of two
    bool signed_reply = false;  // the answer carried a TSIG record
  };

  // The record set (config.name, config.type).
  Answer read(RecordSet* out) const;
  // Whether config.zone has its SOA at the server, answered authoritatively.
  Answer check_zone() const;
  // One UPDATE that deletes the record set and adds `values` with `ttl`, atomically; with no
  // values it only deletes.
  Answer replace(const std::vector<std::string>& values, int64_t ttl) const;
  // Whether the key may update (config.name, config.type), asked without changing anything: an
  // UPDATE that deletes one RR the set does not hold (docs/dns.md "Checking the key at
  // creation"). Reads the set first; answers kNone without asking when the set holds the probe
  // value.
  Answer check_update() const;

  // "127.0.0.1:5353"
  const std::string& server() const { return config_.server; }

 private:
  Answer send_update(ldns_rr_list* updates) const;

  Config config_;
  std::chrono::milliseconds timeout_;
};

// The one mapping of an RFC 2136 answer to the driver's Outcome: kRejected (the server said no:
// NOTAUTH, REFUSED, NOTZONE, a bad TSIG...) is final; no answer and SERVFAIL are retryable.
Outcome to_outcome(const Rfc2136Client::Answer& a);

}  // namespace tripline::dns_update
