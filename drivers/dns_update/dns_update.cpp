#include "dns_update.h"

#include <algorithm>
#include <cctype>

#include "externaldns.h"
#include "rfc2136.h"

namespace tripline {

using dns_update::Action;
using dns_update::Backend;
using dns_update::Config;
using dns_update::RecordSet;
using dns_update::RecordType;
using dns_update::Rfc2136Client;
using dns_update::ValueSource;
using dns_update::WebhookClient;
using nlohmann::json;

namespace {

const Config& typed(const DriverConfig& c) { return static_cast<const Config&>(c); }

// A value as this driver compares it: canonical when it parses for the type (providers may write
// an AAAA differently, or quote a TXT), else as given.
std::string comparable(RecordType type, std::string v) {
  if (type == RecordType::kTXT && v.size() >= 2 && v.front() == '"' && v.back() == '"')
    return v.substr(1, v.size() - 2);
  std::string why;
  if (auto c = dns_update::canonical_value(type, v, &why)) return *c;
  return v;
}

bool same_values(RecordType type, std::vector<std::string> a, std::vector<std::string> b) {
  for (auto& v : a) v = comparable(type, v);
  for (auto& v : b) v = comparable(type, v);
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

// Whether a record set already is what the plan asks for.
bool holds(RecordType type, bool exists, int64_t ttl, const std::vector<std::string>& values,
           const std::vector<std::string>& want, int64_t want_ttl) {
  if (want.empty()) return !exists;
  return exists && ttl == want_ttl && same_values(type, values, want);
}

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

// The endpoint for (name, type) in a provider's records: the one without a set identifier
// (weighted or geo routing sets are someone else's).
const json* find_endpoint(const json& endpoints, const Config& c) {
  for (const json& e : endpoints) {
    const json* name = dns_update::go_field(e, "dnsName");
    const json* type = dns_update::go_field(e, "recordType");
    const json* set_id = dns_update::go_field(e, "setIdentifier");
    if (!name || !name->is_string() || !type || !type->is_string()) continue;
    if (dns_update::normalize_name(name->get<std::string>()) != c.name) continue;
    if (upper(type->get<std::string>()) != dns_update::to_string(c.type)) continue;
    if (set_id && set_id->is_string() && !set_id->get<std::string>().empty()) continue;
    return &e;
  }
  return nullptr;
}

std::vector<std::string> targets_of(const json* endpoint) {
  std::vector<std::string> out;
  const json* t = endpoint ? dns_update::go_field(*endpoint, "targets") : nullptr;
  if (t && t->is_array())
    for (const json& v : *t)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

int64_t ttl_of(const json* endpoint) {
  const json* t = endpoint ? dns_update::go_field(*endpoint, "recordTTL") : nullptr;
  return t && t->is_number_integer() ? t->get<int64_t>() : 0;
}

std::string via(const Config& c) {
  return c.backend == Backend::kRfc2136 ? c.server : c.provider_url;
}

}  // namespace

Result<std::shared_ptr<const DriverConfig>> DnsUpdateDriver::validate(const json& j,
                                                                      bool check_peer) const {
  auto parsed = dns_update::parse_config(j);
  if (!parsed.ok()) return parsed.status();
  auto config = std::make_shared<Config>(std::move(parsed).value());
  if (check_peer && config->backend == Backend::kRfc2136) {
    Rfc2136Client dns(*config, dns_timeout_);
    auto a = dns.check_zone();
    // Then whether the key may change the record, by an update that changes nothing.
    if (a.error == Rfc2136Client::Error::kNone) a = dns.check_update();
    if (a.error != Rfc2136Client::Error::kNone) {
      std::string field = "config." + (a.field.empty() ? std::string("zone") : a.field);
      std::string why = "could not be checked: " + a.message;
      std::vector<FieldError> errors = {{field, why}};
      if (!a.other_field.empty()) errors.push_back({"config." + a.other_field, why});
      return Status::Invalid(field + " " + why, errors);
    }
  } else if (check_peer) {
    WebhookClient provider(config->provider_url);
    dns_update::DomainFilter filter;
    auto a = provider.negotiate(&filter);
    if (a.error != WebhookClient::Error::kNone) {
      std::string why = "could not be checked: " + a.message;
      return Status::Invalid("config.provider_url " + why, {{"config.provider_url", why}});
    }
    if (!filter.matches(config->name)) {
      std::string why = "lies outside the provider's domain filter (" + filter.to_string() + ")";
      return Status::Invalid("config.record.name " + why, {{"config.record.name", why}});
    }
  }
  return std::shared_ptr<const DriverConfig>(std::move(config));
}

std::string DnsUpdateDriver::describe(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  std::string record = c.name + " (" + dns_update::to_string(c.type) + ")";
  if (c.action == Action::kDelete) return "Delete " + record + " via " + via(c);
  std::string value = c.source == ValueSource::kCallerIp ? "the caller's address"
                      : c.source == ValueSource::kBody
                          ? "the value at " + c.pointer + " in the request body"
                          : c.value;
  if (c.type == RecordType::kTXT)
    return "Set " + record + " to " +
           (c.source == ValueSource::kFixed ? "\"" + value + "\"" : value) + " via " + via(c);
  return "Point " + record + " at " + value + " via " + via(c);
}

std::string DnsUpdateDriver::target(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  std::string where =
      c.backend == Backend::kRfc2136 ? "rfc2136:" + c.zone : "externaldns:" + c.provider_url;
  return where + "/" + c.name + "/" + dns_update::to_string(c.type);
}

std::string DnsUpdateDriver::action(const DriverConfig& c) const {
  return dns_update::to_string(typed(c).action);
}

bool DnsUpdateDriver::binds_request(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  return c.action == Action::kUpsert &&
         (c.source == ValueSource::kCallerIp || c.source == ValueSource::kBody);
}

Result<json> DnsUpdateDriver::bind(const json& stored, const TriggerRequest& request) const {
  return dns_update::bind_request(stored, request);
}

Result<json> DnsUpdateDriver::inverse(const json& config) const {
  auto action = config.is_object() ? config.find("action") : config.end();
  if (config.is_object() && action != config.end() && *action == "upsert") {
    json out = config;
    out["action"] = "delete";
    out.erase("value");
    return out;
  }
  return Status::Invalid(
      "only upsert has an inverse (delete); a deleted record has no value to "
      "put back",
      {{"config.action", "has no inverse"}});
}

namespace {
// A plan without its "before" side: what the config asks for.
json desired_of(const Config& c) {
  std::vector<std::string> after;
  if (c.action == Action::kUpsert) after.push_back(c.value);
  json desired = {{"backend", dns_update::to_string(c.backend)},
                  {"name", c.name},
                  {"type", dns_update::to_string(c.type)},
                  {"ttl", c.ttl},
                  {"after", after}};
  if (c.backend == Backend::kRfc2136) {
    desired["server"] = c.server;
    desired["zone"] = c.zone;
  } else {
    desired["provider"] = c.provider_url;
  }
  return desired;
}
}  // namespace

Plan DnsUpdateDriver::plan(const DriverConfig& dc) const {
  const Config& c = typed(dc);
  if (c.action == Action::kUpsert && c.source != ValueSource::kFixed)
    return Plan::failed(Outcome::final(
        "the value comes from the trigger request, but none was bound to this execution"));
  json desired = desired_of(c);
  if (c.backend == Backend::kRfc2136) {
    RecordSet now;
    auto a = Rfc2136Client(c, dns_timeout_).read(&now);
    if (a.error != Rfc2136Client::Error::kNone) return Plan::failed(dns_update::to_outcome(a));
    desired["before"] = now.values;
    desired["ttl_before"] = now.exists ? json(now.ttl) : json(nullptr);
  } else {
    json endpoints;
    auto a = WebhookClient(c.provider_url).records(&endpoints);
    if (a.error != WebhookClient::Error::kNone) return Plan::failed(dns_update::to_outcome(a));
    const json* current = find_endpoint(endpoints, c);
    desired["before"] = targets_of(current);
    desired["ttl_before"] = current ? json(ttl_of(current)) : json(nullptr);
  }
  return Plan::of(std::move(desired));
}

std::optional<json> DnsUpdateDriver::plan_after(const DriverConfig& dc,
                                                const json& previous) const {
  const Config& c = typed(dc);
  if (c.action == Action::kUpsert && c.source != ValueSource::kFixed) return std::nullopt;
  auto after = previous.find("after");
  auto ttl = previous.find("ttl");
  if (after == previous.end() || !after->is_array() || ttl == previous.end()) return std::nullopt;
  json desired = desired_of(c);
  desired["before"] = *after;
  desired["ttl_before"] = after->empty() ? json(nullptr) : *ttl;
  return desired;
}

Outcome DnsUpdateDriver::apply(const DriverConfig& dc, const json& plan) const {
  const Config& c = typed(dc);
  std::vector<std::string> want;
  int64_t ttl = 0;
  json result;
  try {
    want = plan.at("after").get<std::vector<std::string>>();
    ttl = plan.at("ttl").get<int64_t>();
    result = {{"name", plan.at("name")},
              {"type", plan.at("type")},
              {"ttl", ttl},
              {"before", plan.at("before")},
              {"ttl_before", plan.at("ttl_before")},
              {"after", want}};
  } catch (const json::exception& e) {
    return Outcome::final(std::string("the recorded plan is malformed: ") + e.what());
  }

  if (c.backend == Backend::kRfc2136) {
    Rfc2136Client dns(c, dns_timeout_);
    RecordSet now;
    if (auto a = dns.read(&now); a.error != Rfc2136Client::Error::kNone)
      return dns_update::to_outcome(a);
    if (holds(c.type, now.exists, now.ttl, now.values, want, ttl)) {
      result["changed"] = false;  // already there: a re-applied plan changes nothing
      return Outcome::succeeded(result);
    }
    if (auto a = dns.replace(want, ttl); a.error != Rfc2136Client::Error::kNone)
      return dns_update::to_outcome(a);
    // BIND answers NOERROR yet ignores a CNAME added beside other data (and other data beside a
    // CNAME), so read back what the server now holds.
    if (auto a = dns.read(&now); a.error != Rfc2136Client::Error::kNone)
      return dns_update::to_outcome(a);
    if (!holds(c.type, now.exists, now.ttl, now.values, want, ttl)) {
      std::string held;
      for (const auto& v : now.values) held += (held.empty() ? "" : ", ") + v;
      return Outcome::final(
          c.server + " accepted the update, but " + c.name + " " + dns_update::to_string(c.type) +
          " now holds [" + held +
          "]: a name with a CNAME can hold no other record, and the server ignores such an "
          "update; remove the conflicting record");
    }
    result["changed"] = true;
    return Outcome::succeeded(result);
  }

  WebhookClient provider(c.provider_url);
  json endpoints;
  if (auto a = provider.records(&endpoints); a.error != WebhookClient::Error::kNone)
    return dns_update::to_outcome(a);
  const json* current = find_endpoint(endpoints, c);
  if (holds(c.type, current != nullptr, ttl_of(current), targets_of(current), want, ttl)) {
    result["changed"] = false;
    return Outcome::succeeded(result);
  }
  json changes = json::object();
  if (want.empty()) {
    changes["delete"] = json::array({*current});
  } else if (!current) {
    changes["create"] = json::array({{{"dnsName", c.name},
                                      {"targets", want},
                                      {"recordType", dns_update::to_string(c.type)},
                                      {"recordTTL", ttl}}});
  } else {
    // Keep what the provider attached (labels, providerSpecific): only targets and TTL change.
    json updated = *current;
    updated["targets"] = want;
    updated["recordTTL"] = ttl;
    changes["updateOld"] = json::array({*current});
    changes["updateNew"] = json::array({updated});
  }
  if (auto a = provider.apply_changes(changes); a.error != WebhookClient::Error::kNone)
    return dns_update::to_outcome(a);
  result["changed"] = true;
  return Outcome::succeeded(result);
}

}  // namespace tripline
