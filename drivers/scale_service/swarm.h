// Docker Engine API v1.41, Swarm services: just what scaling needs (PROTOCOLS.md §3).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "../../server/http_client.h"

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
  enum class Error { kNone, kUnreachable, kNotFound, kOutOfSequence, kServer, kRejected };
  struct Answer {
    Error error = Error::kNone;
    std::string message;  // Docker's message or the transport error
  };

  Answer inspect(const std::string& name_or_id, Service* out) const;
  Answer update(const Service& service) const;  // sends service.spec at service.version
  Answer ping() const;

  const std::string& host() const { return host_; }

 private:
  OutboundResponse call(const std::string& method, const std::string& path,
                        const std::string& body = {}) const;
  static Answer classify(const OutboundResponse& r);

  std::string host_;
  std::string base_url_;
  std::string unix_socket_;
};

}  // namespace tripline::scale_service
