// The peers' answers mapped to the driver's Outcome: one table per client (swarm.h, kubernetes.h),
// from the HTTP answer (classify) through the one mapping (to_outcome). Which answers retry and
// which are final is the contract the executor's retry policy reads (driver.h).
#include <catch2/catch.hpp>

#include "kubernetes.h"
#include "swarm.h"

using namespace tripline;
using namespace tripline::scale_service;
using Kind = Outcome::Kind;

namespace {

OutboundResponse http(int status, std::string body = "") {
  OutboundResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}
OutboundResponse transport(std::string error, bool too_large = false, bool tls = false) {
  OutboundResponse r;
  r.error = std::move(error);
  r.too_large = too_large;
  r.tls_failed = tls;
  return r;
}

}  // namespace

TEST_CASE("swarm: which Docker answers retry and which are final") {
  struct Row {
    OutboundResponse response;
    SwarmApi::Error error;
    Kind kind;
  };
  const Row table[] = {
      {transport("connection refused"), SwarmApi::Error::kUnreachable, Kind::kRetryable},
      {transport("answer too large", /*too_large=*/true), SwarmApi::Error::kBadAnswer,
       Kind::kFinal},
      {http(404, R"({"message":"service web not found"})"), SwarmApi::Error::kNotFound,
       Kind::kFinal},
      {http(500, R"({"message":"rpc error: update out of sequence"})"),
       SwarmApi::Error::kOutOfSequence, Kind::kRetryable},
      {http(500, R"({"message":"boom"})"), SwarmApi::Error::kServer, Kind::kRetryable},
      {http(503), SwarmApi::Error::kServer, Kind::kRetryable},
      {http(400, R"({"message":"invalid spec"})"), SwarmApi::Error::kRejected, Kind::kFinal},
      {http(409), SwarmApi::Error::kRejected, Kind::kFinal},
  };
  for (const Row& row : table) {
    INFO("HTTP " << row.response.status << " " << row.response.error);
    SwarmApi::Answer a = SwarmApi::classify(row.response);
    CHECK(a.error == row.error);
    Outcome o = to_outcome(a, "web", "unix:///var/run/docker.sock");
    CHECK(o.kind == row.kind);
    CHECK_FALSE(o.reason.empty());
  }
  CHECK(SwarmApi::classify(http(200)).error == SwarmApi::Error::kNone);
  // Docker's message reaches the operator.
  CHECK(to_outcome(SwarmApi::classify(http(400, R"({"message":"invalid spec"})")), "web", "h")
            .reason.find("invalid spec") != std::string::npos);
  CHECK(to_outcome(SwarmApi::classify(http(404)), "web", "h").reason.find("\"web\"") !=
        std::string::npos);
}

TEST_CASE("kubernetes: which API answers retry and which are final") {
  struct Row {
    OutboundResponse response;
    KubernetesApi::Error error;
    Kind kind;
  };
  const Row table[] = {
      {transport("connection refused"), KubernetesApi::Error::kUnreachable, Kind::kRetryable},
      {transport("certificate verify failed", false, /*tls=*/true), KubernetesApi::Error::kTls,
       Kind::kFinal},
      {transport("answer too large", /*too_large=*/true), KubernetesApi::Error::kBadAnswer,
       Kind::kFinal},
      {http(401), KubernetesApi::Error::kUnauthorized, Kind::kFinal},
      {http(403), KubernetesApi::Error::kForbidden, Kind::kFinal},
      {http(404), KubernetesApi::Error::kNotFound, Kind::kFinal},
      {http(409), KubernetesApi::Error::kConflict, Kind::kRetryable},
      {http(422), KubernetesApi::Error::kInvalid, Kind::kFinal},
      {http(429), KubernetesApi::Error::kTooManyRequests, Kind::kRetryable},
      {http(500), KubernetesApi::Error::kServer, Kind::kRetryable},
      {http(503), KubernetesApi::Error::kServer, Kind::kRetryable},
      {http(400), KubernetesApi::Error::kRejected, Kind::kFinal},
  };
  for (const Row& row : table) {
    INFO("HTTP " << row.response.status << " " << row.response.error);
    KubernetesApi::Answer a = KubernetesApi::classify(row.response);
    CHECK(a.error == row.error);
    Outcome o = to_outcome(a, "deployment default/web", "https://10.0.0.1:6443");
    CHECK(o.kind == row.kind);
    CHECK_FALSE(o.reason.empty());
  }
  CHECK(to_outcome({KubernetesApi::Error::kNotConfigured, "no kubeconfig"}, "x", "y").kind ==
        Kind::kFinal);
  CHECK(to_outcome({KubernetesApi::Error::kBadAnswer, "not a Scale"}, "x", "y").kind ==
        Kind::kFinal);
  // The API's Status message reaches the operator.
  auto a = KubernetesApi::classify(
      http(403, R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"no RBAC",)"
                R"("reason":"Forbidden","code":403})"));
  CHECK(to_outcome(a, "deployment default/web", "h").reason.find("no RBAC") != std::string::npos);
}
