// The peers' answers mapped to the driver's Outcome: one table per client (rfc2136.h,
// externaldns.h) through the one mapping (to_outcome). Which answers retry and which are final
// is the contract the executor's retry policy reads (driver.h). The answers behind each Error
// are checked against real BIND, Knot and PowerDNS servers (rfc2136_integration_test.cpp,
// docs/dns.md).
#include <catch2/catch.hpp>

#include "externaldns.h"
#include "rfc2136.h"

using namespace tripline;
using namespace tripline::dns_update;
using Kind = Outcome::Kind;

TEST_CASE("rfc2136: which DNS answers retry and which are final") {
  using E = Rfc2136Client::Error;
  const std::pair<E, Kind> table[] = {
      {E::kUnreachable, Kind::kRetryable},  // refused, timed out, closed
      {E::kServer, Kind::kRetryable},       // SERVFAIL
      {E::kRejected, Kind::kFinal},         // NOTAUTH, REFUSED, NOTZONE, BADSIG, ...
  };
  for (auto [error, kind] : table) {
    Rfc2136Client::Answer a;
    a.error = error;
    a.message = "the server said so";
    Outcome o = to_outcome(a);
    CHECK(o.kind == kind);
    CHECK(o.reason == "the server said so");
  }
}

TEST_CASE("externaldns: which provider answers retry and which are final") {
  using E = WebhookClient::Error;
  struct Row {
    int status;
    std::string transport_error;
    bool too_large;
    E error;
    Kind kind;
  };
  const Row table[] = {
      {0, "connection refused", false, E::kUnreachable, Kind::kRetryable},
      {0, "answer larger than 1048576 bytes", true, E::kRejected, Kind::kFinal},
      {500, "", false, E::kServer, Kind::kRetryable},
      {503, "", false, E::kServer, Kind::kRetryable},
      {400, "", false, E::kRejected, Kind::kFinal},
      {404, "", false, E::kRejected, Kind::kFinal},
      {415, "", false, E::kRejected, Kind::kFinal},
  };
  for (const Row& row : table) {
    INFO("HTTP " << row.status << " " << row.transport_error);
    auto a = http_failure("http://127.0.0.1:8888", "POST /records", row.status, row.transport_error,
                          "provider says no", row.too_large);
    CHECK(a.error == row.error);
    Outcome o = to_outcome(a);
    CHECK(o.kind == row.kind);
    CHECK(o.reason.find("http://127.0.0.1:8888") != std::string::npos);
  }
  CHECK(to_outcome(http_failure("b", "GET /records", 502, "", "bad gateway", false))
            .reason.find("bad gateway") != std::string::npos);
}
