// dns-update configuration, parsed and validated once into a typed struct, and the request-bound
// values (caller-ip, a JSON pointer into the body). No I/O here. Documented in README.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "../driver.h"

namespace tripline::dns_update {

enum class Backend { kRfc2136, kExternalDns };
enum class RecordType { kA, kAAAA, kCNAME, kTXT };
enum class Action { kUpsert, kDelete };
// Where an upsert's value comes from. kNone only for delete.
enum class ValueSource { kNone, kFixed, kCallerIp, kBody };

struct Config : DriverConfig {
  Backend backend = Backend::kRfc2136;

  // rfc2136
  std::string server;       // as written: "127.0.0.1:5353", "[::1]:53", "ns1.example.com"
  std::string server_host;  // without brackets
  uint16_t server_port = 53;
  std::string zone;  // lower case, no trailing dot
  std::string tsig_key_name;
  std::string tsig_algorithm = "hmac-sha256";
  std::string tsig_secret;  // base64; a writeOnly field (sealed at rest by tripline)

  // externaldns-webhook
  std::string provider_url;  // http(s)://host[:port][/path], no trailing slash

  // the record
  std::string name;  // lower case, no trailing dot
  RecordType type = RecordType::kA;
  int64_t ttl = 300;
  Action action = Action::kUpsert;

  ValueSource source = ValueSource::kNone;
  std::string value;    // kFixed: the value in canonical form (see canonical_value)
  std::string pointer;  // kBody: RFC 6901 JSON pointer into the trigger request's body
};

// Parses and checks shape, names and values (no peer access). Field names start with "config.".
Result<Config> parse_config(const nlohmann::json& config);
nlohmann::json config_schema();

const char* to_string(Backend b);
const char* to_string(RecordType t);
const char* to_string(Action a);

// The canonical text of `value` as rdata of `type` (addresses as inet_ntop writes them, host
// names in lower case without the final dot, TXT as is), or nullopt with *why set:
// an A record takes an IPv4 address and nothing else, and so on.
std::optional<std::string> canonical_value(RecordType type, std::string_view value,
                                           std::string* why);

// Lower case, without a final dot. Does not check syntax.
std::string normalize_name(std::string_view name);
// A DNS host name of up to 253 characters in labels of [a-z0-9_-] (A-labels for IDNs);
// with allow_wildcard, the first label may be "*".
bool valid_dns_name(std::string_view normalized, bool allow_wildcard);
// name == zone or name ends in "." + zone (both normalized).
bool in_zone(std::string_view name, std::string_view zone);

// The stored config with "value" replaced by the concrete string the request offers: the
// caller's address, or the string at the configured JSON pointer in the body (request.body's
// one bounded parse: kMaxJsonBytes, kMaxJsonDepth). Invalid, with a field error on
// "request.caller_ip" or "request.body", when the request does not hold one. No I/O.
Result<nlohmann::json> bind_request(const nlohmann::json& stored, const TriggerRequest& request);

}  // namespace tripline::dns_update
