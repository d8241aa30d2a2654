// Target "peer": answers from the peers tripline calls, which may be hostile or broken (trust 8).
//  - SwarmApi::parse_service (drivers/scale_service/swarm.h): a Docker GET /services/{id} answer.
//    (It found a float Version.Index or Replicas cast to int64_t: undefined behaviour.)
//  - WebhookClient::parse_records and parse_domain_filter (drivers/dns_update/externaldns.h): an
//    ExternalDNS provider's GET /records and GET / answers.
// Invariants: nothing throws; an answer nested deeper than kMaxJsonDepth or larger than
// kMaxJsonBytes (json_limits.h) is refused, never parsed; what is accepted can be copied,
// dumped and walked (what the drivers do next: Docker's spec is sent back on update, endpoints
// are searched and recorded in plans) and has the shape the driver relies on.
// Input: the whole input is the answer body, given to each of the three parsers.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "drivers/dns_update/externaldns.h"
#include "drivers/scale_service/swarm.h"
#include "fuzz.h"
#include "json_limits.h"

namespace tripline::fuzz {
namespace {

using nlohmann::json;

// Nesting depth by scanning the text the way a JSON reader sees it (strings skipped).
int text_depth(std::string_view text) {
  int depth = 0, max = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max = std::max(max, ++depth);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max;
}

void check_service(std::string_view body, bool over_limits) {
  scale_service::SwarmApi::Service s;
  auto a = scale_service::SwarmApi::parse_service(body, &s);
  using Error = scale_service::SwarmApi::Error;
  FUZZ_CHECK(a.error == Error::kNone || a.error == Error::kBadAnswer,
             "parse_service: unexpected error kind");
  if (over_limits)
    FUZZ_CHECK(a.error == Error::kBadAnswer, "parse_service accepted an answer over the limits");
  if (a.error != Error::kNone) {
    FUZZ_CHECK(!a.message.empty(), "parse_service refused without saying why");
    return;
  }
  FUZZ_CHECK(s.spec.is_object(), "an accepted service has a Spec that is not an object");
  // The numbers read are the integers Docker sent (a float or out-of-range number is refused).
  const json doc = parse_json_bounded(body).value;
  const json& index = doc["Version"]["Index"];
  FUZZ_CHECK(index.is_number_integer() && index == s.version, "Version.Index was not read as sent");
  FUZZ_CHECK(s.replicas >= 0, "negative replicas accepted");
  const json& mode = std::as_const(s.spec).at("Mode");
  FUZZ_CHECK(s.replicated == (mode.is_object() && mode.contains("Replicated")),
             "replicated does not follow Spec.Mode.Replicated");
  if (!s.replicated) {
    FUZZ_CHECK(s.replicas == 0, "a global service has replicas");
    return;  // apply() stops here: a global service is not scaled
  }
  // What apply() does with a replicated service: set the replicas and send the spec back.
  json spec = s.spec;
  spec["Mode"]["Replicated"]["Replicas"] = 3;
  auto round =
      json::parse(spec.dump(-1, ' ', false, json::error_handler_t::replace), nullptr, false);
  FUZZ_CHECK(!round.is_discarded(), "the spec sent back to Docker is not JSON");
}

void check_records(std::string_view body, bool over_limits) {
  json endpoints;
  auto a = dns_update::WebhookClient::parse_records("http://provider", body, &endpoints);
  using Error = dns_update::WebhookClient::Error;
  FUZZ_CHECK(a.error == Error::kNone || a.error == Error::kRejected,
             "parse_records: unexpected error kind");
  if (over_limits)
    FUZZ_CHECK(a.error == Error::kRejected, "parse_records accepted an answer over the limits");
  if (a.error != Error::kNone) {
    FUZZ_CHECK(a.message.find("http://provider") != std::string::npos,
               "the message does not name the provider");
    return;
  }
  FUZZ_CHECK(endpoints.is_array(), "endpoints are not an array");
  size_t objects = 0;
  for (const json& e : parse_json_bounded(body).value) objects += e.is_object();
  FUZZ_CHECK(endpoints.size() == objects, "an endpoint object was lost or invented");
  for (const json& e : endpoints) {
    FUZZ_CHECK(e.is_object(), "a normalized endpoint is not an object");
    for (const char* k : {"dnsName", "targets", "recordType", "setIdentifier", "recordTTL"}) {
      // A key spelled in any case reads under its canonical name (Go's decoder does the same).
      const json* g = dns_update::go_field(e, k);
      if (g) FUZZ_CHECK(e.contains(k), std::string("a ") + k + " key was not normalized");
    }
    json copy = e;  // plans copy endpoints: bounded depth keeps this off the stack's edge
    FUZZ_CHECK(copy == e, "an endpoint does not copy");
  }
}

void check_filter(std::string_view body, bool over_limits) {
  dns_update::DomainFilter f;
  auto a = dns_update::WebhookClient::parse_domain_filter("http://provider", body, &f);
  using Error = dns_update::WebhookClient::Error;
  FUZZ_CHECK(a.error == Error::kNone || a.error == Error::kRejected,
             "parse_domain_filter: unexpected error kind");
  if (over_limits)
    FUZZ_CHECK(a.error == Error::kRejected,
               "parse_domain_filter accepted an answer over the limits");
  if (a.error != Error::kNone) return;
  FUZZ_CHECK(!f.to_string().empty(), "an accepted filter cannot be described");
  for (const char* name : {"example.com", "www.example.com.", "", ".", "internal.example.com"})
    (void)f.matches(name);
}

}  // namespace

int fuzz_peer(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  const bool over_limits = size > kMaxJsonBytes || text_depth(body) > kMaxJsonDepth;
  check_service(body, over_limits);
  check_records(body, over_limits);
  check_filter(body, over_limits);
  return 0;
}

}  // namespace tripline::fuzz
