// The ExternalDNS webhook provider protocol, client side (kubernetes-sigs/external-dns
// provider/webhook): negotiate with GET / (exact media type, domain filter), read with
// GET /records, change with POST /records. Wire facts in README.md.
//
// Reading is lenient the way external-dns's Go decoder is: object keys match exactly first, then
// case-insensitively, so both the camelCase of v0.17+ and the capitalised names of v0.14-0.16
// (`Create`, `UpdateOld`, ...) read. Writing uses camelCase, which every Go provider decodes.
//
// Thread safety: a client is immutable; calls may run concurrently.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "../driver.h"
#include "status.h"

namespace re2 {
class RE2;
}

namespace tripline::dns_update {

inline constexpr const char* kWebhookMediaType = "application/external.dns.webhook+json;version=1";

// A provider's domain filter, matched as endpoint/domain_filter.go does (regexes with RE2, the
// syntax of Go's regexp).
class DomainFilter {
 public:
  // {"include":[...],"exclude":[...]} or {"regexInclude":"...","regexExclude":"..."}, empty
  // fields omitted; {} matches everything. v0.14.0's {"Filters":[...]} reads as include.
  static Result<DomainFilter> parse(const nlohmann::json& j);
  bool matches(std::string_view name) const;
  std::string to_string() const;  // for messages: "include example.com, exclude ..."

 private:
  std::vector<std::string> include_, exclude_;  // lower case, no final dot
  std::string regex_include_, regex_exclude_;
  std::shared_ptr<const re2::RE2> include_re_, exclude_re_;
};

// The member `key` of a JSON object as Go's encoding/json finds it: exact, then ignoring case.
const nlohmann::json* go_field(const nlohmann::json& object, std::string_view key);
// An Endpoint with its known keys (dnsName, targets, recordType, setIdentifier, recordTTL,
// labels, providerSpecific) spelled as today; unknown keys kept as they are.
nlohmann::json normalize_endpoint(const nlohmann::json& endpoint);

class WebhookClient {
 public:
  explicit WebhookClient(std::string base_url) : base_url_(std::move(base_url)) {}

  enum class Error {
    kNone,
    kUnreachable,  // transport failure (retryable)
    kServer,       // 5xx (retryable)
    kRejected,     // any other answer, or one that breaks the protocol or tripline's limits
                   // for peer JSON (final)
  };
  struct Answer {
    Error error = Error::kNone;
    std::string message;
  };

  // GET / with the media type in Accept; the answer must carry exactly that Content-Type.
  Answer negotiate(DomainFilter* out) const;
  // GET /records: a bare JSON array of endpoints, normalized.
  Answer records(nlohmann::json* endpoints) const;
  // POST /records with {"create","updateOld","updateNew","delete"}; success is 204.
  Answer apply_changes(const nlohmann::json& changes) const;

  const std::string& url() const { return base_url_; }

  // The bodies of GET / and GET /records as read above, exposed for tests and the peer fuzz
  // target. Never throw; an answer over the limits of json_limits.h (nesting, size), not JSON or
  // not of the protocol's shape is kRejected with a message naming the provider `base_url`.
  static Answer parse_domain_filter(const std::string& base_url, std::string_view body,
                                    DomainFilter* out);
  static Answer parse_records(const std::string& base_url, std::string_view body,
                              nlohmann::json* endpoints);

 private:
  std::string base_url_;
};

// A webhook provider's answer that is not the 2xx it should be: no answer is kUnreachable, a 5xx
// kServer, an answer past the limits or any other status kRejected. `what` names the call.
WebhookClient::Answer http_failure(const std::string& base, const std::string& what, int status,
                                   const std::string& transport_error, const std::string& body,
                                   bool too_large);

// The one mapping of a webhook provider's answer to the driver's Outcome: kRejected is final,
// kUnreachable and kServer are retryable.
Outcome to_outcome(const WebhookClient::Answer& a);

}  // namespace tripline::dns_update
