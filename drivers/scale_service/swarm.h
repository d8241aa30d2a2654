// Docker Engine API v1.41, Swarm services: just what scaling needs (PROTOCOLS.md §3).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../driver.h"
#include "http_client.h"

namespace tripline::scale_service {

class SwarmApi {
 public:
  // docker_host: "unix:///var/run/docker.sock", "tcp://host:port" or "http://host:port".
  explicit SwarmApi(const std::string& docker_host);

  struct Service {
    std::string id;
    int64_t version = 0;
    nlohmann::json spec;
    bool replicated = false;
    int64_t replicas = 0;
  };
  // kBadAnswer: Docker's answer broke tripline's limits for peer JSON (json_limits.h: nesting,
  // size) or is not the JSON it should be; to_outcome() makes it final (below).
  enum class Error {
    kNone,
    kUnreachable,
    kNotFound,
    kOutOfSequence,
    kServer,
    kRejected,
    kBadAnswer
  };
  struct Answer {
    Error error = Error::kNone;
    std::string message;  // Docker's message or the transport error
  };

  Answer inspect(const std::string& name_or_id, Service* out) const;
  // Sends service.spec at service.version. registry_auth, when set, goes as X-Registry-Auth (what
  // `docker service update --with-registry-auth` sends): the credentials the nodes pull with.
  Answer update(const Service& service, const std::string& registry_auth = {}) const;
  // The services carrying every label of `labels` ("key=value" or "key"), at most `max` of them
  // (more is kBadAnswer: a selector that broad is not what anyone meant).
  Answer list(const std::vector<std::string>& labels, size_t max, std::vector<Service>* out) const;
  Answer ping() const;
  // Every service's name and replica count (null for a global service), sorted by name, at most
  // `max` (*more set when Docker holds more): the UI's target picker. Docker cannot page its
  // list, so the whole answer is read within the limits for peer JSON (json_limits.h) and
  // anything past them is kBadAnswer.
  struct Listed {
    std::string name;
    std::optional<int64_t> replicas;
  };
  // One call, ended at 5 s or at `deadline`, whichever comes first.
  Answer list_names(size_t max, std::vector<Listed>* out, bool* more,
                    std::chrono::steady_clock::time_point deadline =
                        std::chrono::steady_clock::time_point::max()) const;

  // Reads a GET /services/{id} answer (exposed for tests and the peer fuzz target). Never throws;
  // a body over the limits, not JSON, or without ID / Version.Index / Spec.Mode is kBadAnswer.
  static Answer parse_service(std::string_view body, Service* out);

  const std::string& host() const { return host_; }

  // Maps an HTTP answer that is not a 2xx (or a transport failure) to an error, reading Docker's
  // {"message": ...} when there is one (exposed for tests).
  static Answer classify(const OutboundResponse& r);

 private:
  OutboundResponse call(const std::string& method, const std::string& path,
                        const std::string& body = {},
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(10000),
                        const std::string& registry_auth = {}) const;

  std::string host_;
  std::string base_url_;
  std::string unix_socket_;
};

// The one mapping of a Docker answer to the driver's Outcome: connection problems, Docker's 5xx
// and "update out of sequence" may pass (retryable); a missing service, a rejected spec or an
// answer past tripline's limits will not (final). `service` and `host` name them in the reason.
Outcome to_outcome(const SwarmApi::Answer& a, const std::string& service, const std::string& host);

}  // namespace tripline::scale_service
