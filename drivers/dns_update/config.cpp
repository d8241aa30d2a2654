#include "config.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "field_reader.h"
#include "json_limits.h"

namespace tripline::dns_update {

using nlohmann::json;

const char* to_string(Backend b) {
  return b == Backend::kRfc2136 ? "rfc2136" : "externaldns-webhook";
}

const char* to_string(RecordType t) {
  switch (t) {
    case RecordType::kA:
      return "A";
    case RecordType::kAAAA:
      return "AAAA";
    case RecordType::kCNAME:
      return "CNAME";
    case RecordType::kTXT:
      return "TXT";
  }
  return "?";
}

const char* to_string(Action a) { return a == Action::kUpsert ? "upsert" : "delete"; }

namespace {

constexpr size_t kMaxTxtBytes = 2048;
constexpr int64_t kMaxTtl = 2147483647;  // RFC 2181 §8
constexpr const char* kAlgorithms[] = {"hmac-sha256", "hmac-sha384", "hmac-sha512",
                                       "hmac-sha224", "hmac-sha1",   "hmac-md5"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool valid_label(std::string_view l) {
  if (l.empty() || l.size() > 63 || l.front() == '-' || l.back() == '-') return false;
  return std::all_of(l.begin(), l.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool is_ipv4(const std::string& s) {
  in_addr a;
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
  in6_addr a;
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

bool valid_base64(const std::string& s) {
  static const re2::RE2 re("[A-Za-z0-9+/]+={0,2}", re2::RE2::Latin1);
  return !s.empty() && s.size() % 4 == 0 && s.size() <= 1024 && re2::RE2::FullMatch(s, re);
}

bool valid_pointer(const std::string& p) {
  if (p.size() > 256 || (!p.empty() && p.front() != '/')) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] == '~' && (i + 1 == p.size() || (p[i + 1] != '0' && p[i + 1] != '1'))) return false;
  return true;
}

// "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 literal.
bool parse_server(const std::string& s, std::string* host, uint16_t* port) {
  if (s.empty() || s.size() > 300) return false;
  std::string h, p;
  bool has_port = false;
  const auto colons = std::count(s.begin(), s.end(), ':');
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos) return false;
    h = s.substr(1, close - 1);
    if (!is_ipv6(h)) return false;
    std::string rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      p = rest.substr(1);
      has_port = true;
    }
  } else if (colons == 1) {
    auto colon = s.find(':');
    h = s.substr(0, colon);
    p = s.substr(colon + 1);
    has_port = true;
  } else if (colons > 1) {
    h = s;
    if (!is_ipv6(h)) return false;
  } else {
    h = s;
  }
  if (h.empty()) return false;
  if (!is_ipv4(h) && !is_ipv6(h) && !valid_dns_name(normalize_name(h), false)) return false;
  *port = 53;
  if (has_port) {
    if (p.empty() || p.size() > 5 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    int n = std::stoi(p);
    if (n < 1 || n > 65535) return false;
    *port = static_cast<uint16_t>(n);
  }
  *host = h;
  return true;
}

bool valid_url(const std::string& u) {
  static const re2::RE2 re(
      R"(https?://[A-Za-z0-9._~%!$&'()*+,;=:@\[\]-]+(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?)",
      re2::RE2::Latin1);
  return u.size() <= 2048 && re2::RE2::FullMatch(u, re);
}

const char* json_type(const json& j) {
  switch (j.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    default:
      return "a number";
  }
}

}  // namespace

std::string normalize_name(std::string_view name) {
  std::string n = lower(name);
  if (!n.empty() && n.back() == '.') n.pop_back();
  return n;
}

bool valid_dns_name(std::string_view n, bool allow_wildcard) {
  if (n.empty() || n.size() > 253) return false;
  size_t start = 0;
  bool first = true;
  while (true) {
    size_t dot = n.find('.', start);
    std::string_view label = n.substr(start, dot == std::string_view::npos ? n.npos : dot - start);
    if (!(first && allow_wildcard && label == "*") && !valid_label(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
    first = false;
  }
}

bool in_zone(std::string_view name, std::string_view zone) {
  if (name == zone) return true;
  return name.size() > zone.size() + 1 && name.substr(name.size() - zone.size()) == zone &&
         name[name.size() - zone.size() - 1] == '.';
}

std::optional<std::string> canonical_value(RecordType type, std::string_view value,
                                           std::string* why) {
  std::string v(value);
  switch (type) {
    case RecordType::kA: {
      in_addr a;
      char buf[INET_ADDRSTRLEN];
      if (v.size() <= 15 && inet_pton(AF_INET, v.c_str(), &a) == 1 &&
          inet_ntop(AF_INET, &a, buf, sizeof buf))
        return std::string(buf);
      *why = "must be an IPv4 address for an A record";
      return std::nullopt;
    }
    case RecordType::kAAAA: {
      in6_addr a;
      char buf[INET6_ADDRSTRLEN];
      if (v.size() <= 45 && inet_pton(AF_INET6, v.c_str(), &a) == 1 &&
          inet_ntop(AF_INET6, &a, buf, sizeof buf))
        return std::string(buf);
      *why = "must be an IPv6 address for an AAAA record";
      return std::nullopt;
    }
    case RecordType::kCNAME: {
      std::string n = normalize_name(v);
      if (valid_dns_name(n, false)) return n;
      *why = "must be a host name for a CNAME record";
      return std::nullopt;
    }
    case RecordType::kTXT:
      if (v.size() <= kMaxTxtBytes) return v;
      *why = "must be at most " + std::to_string(kMaxTxtBytes) + " bytes for a TXT record";
      return std::nullopt;
  }
  *why = "has an unknown record type";
  return std::nullopt;
}

Result<Config> parse_config(const json& j) {
  using Need = FieldReader::Need;
  Config c;
  if (!j.is_object())
    return Status::Invalid("config must be a JSON object", {{"config", "must be an object"}});
  FieldReader r(j, "config.");
  r.reject_unknown({"backend", "server", "zone", "tsig_key_name", "tsig_secret", "tsig_algorithm",
                    "provider_url", "record", "action", "value"},
                   "is not a field of dns-update");

  // backend and its peer
  auto backend = r.one_of("backend", Need::kRequired, {"rfc2136", "externaldns-webhook"},
                          "must be rfc2136 or externaldns-webhook",
                          "is required (rfc2136 or externaldns-webhook)");
  if (backend) c.backend = *backend == "rfc2136" ? Backend::kRfc2136 : Backend::kExternalDns;
  if (backend && c.backend == Backend::kRfc2136) {
    if (r.has("provider_url"))
      r.error("provider_url", "is for externaldns-webhook; rfc2136 takes server");
    if (auto server = r.string("server", Need::kRequired, "must be a string")) {
      c.server = *server;
      if (!parse_server(c.server, &c.server_host, &c.server_port))
        r.error("server", "must be host or host:port (an IPv6 address in brackets)");
    }
    if (auto zone = r.string("zone", Need::kRequired, "must be a string")) {
      c.zone = normalize_name(*zone);
      if (!valid_dns_name(c.zone, false))
        r.error("zone", "must be a DNS zone name such as example.com");
    }
    if (auto key = r.string("tsig_key_name", Need::kRequired, "must be a string")) {
      // Lower case: the MAC covers the key name in canonical form (RFC 8945 §4.3.3).
      c.tsig_key_name = normalize_name(*key);
      if (!valid_dns_name(c.tsig_key_name, false))
        r.error("tsig_key_name", "must be a key name such as tripline-key");
    }
    if (auto alg = r.string("tsig_algorithm", Need::kOptional, "must be a string")) {
      *alg = lower(*alg);
      if (*alg == "hmac-md5.sig-alg.reg.int") *alg = "hmac-md5";
      if (std::none_of(std::begin(kAlgorithms), std::end(kAlgorithms),
                       [&](const char* a) { return *alg == a; }))
        r.error("tsig_algorithm",
                "must be one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, "
                "hmac-sha1, hmac-md5");
      else
        c.tsig_algorithm = *alg;
    }
    if (auto secret = r.string("tsig_secret", Need::kRequired, "must be a string")) {
      c.tsig_secret = *secret;
      if (!valid_base64(c.tsig_secret))
        r.error("tsig_secret", "must be the key's base64 secret, as tsig-keygen prints it");
    }
  } else if (backend) {
    for (const char* f : {"server", "zone", "tsig_key_name", "tsig_secret", "tsig_algorithm"})
      if (r.has(f)) r.error(f, "is for rfc2136; externaldns-webhook takes provider_url");
    if (auto url = r.string("provider_url", Need::kRequired, "must be a string")) {
      c.provider_url = *url;
      while (c.provider_url.size() > 1 && c.provider_url.back() == '/') c.provider_url.pop_back();
      auto authority_end = c.provider_url.find('/', c.provider_url.find("://") + 3);
      if (c.provider_url.substr(0, authority_end).find('@') != std::string::npos)
        // The URL is part of the target, which is signed (readable) into every trigger URL.
        r.error("provider_url",
                "must not carry credentials (user:password@): the provider URL is part "
                "of the target, readable in every trigger URL");
      else if (!valid_url(c.provider_url))
        r.error("provider_url", "must be an http(s) URL such as http://127.0.0.1:8888");
    }
  }

  // the record
  bool have_name = false, have_type = false;
  if (const json* record =
          r.object("record", Need::kRequired, "must be an object with name, type and ttl",
                   "is required ({\"name\", \"type\", \"ttl\"})")) {
    FieldReader rec(r, *record, "record");
    rec.reject_unknown({"name", "type", "ttl"}, "is not a field of a record");
    if (auto name = rec.string("name", Need::kRequired, "must be a string")) {
      c.name = normalize_name(*name);
      have_name = valid_dns_name(c.name, true);
      if (!have_name) rec.error("name", "must be a fully qualified DNS name");
    }
    if (auto type = rec.string("type", Need::kRequired, "must be a string")) {
      *type = lower(*type);
      have_type = true;
      if (*type == "a")
        c.type = RecordType::kA;
      else if (*type == "aaaa")
        c.type = RecordType::kAAAA;
      else if (*type == "cname")
        c.type = RecordType::kCNAME;
      else if (*type == "txt")
        c.type = RecordType::kTXT;
      else {
        have_type = false;
        rec.error("type", "must be A, AAAA, CNAME or TXT");
      }
    }
    if (auto ttl = rec.integer("ttl", Need::kOptional, 0, kMaxTtl,
                               "must be a whole number of seconds, 0 to 2147483647"))
      c.ttl = *ttl;
  }
  if (have_name && backend && c.backend == Backend::kRfc2136 && !c.zone.empty() &&
      !in_zone(c.name, c.zone))
    r.error("record.name", "must lie inside the zone " + c.zone);
  if (have_name && have_type && c.type == RecordType::kCNAME && c.name == c.zone)
    r.error("record.name", "a CNAME cannot sit at the zone's apex");

  // action and value
  auto action = r.one_of("action", Need::kRequired, {"upsert", "delete"},
                         "must be upsert or delete", "is required (upsert or delete)");
  if (action) c.action = *action == "upsert" ? Action::kUpsert : Action::kDelete;
  const json* value = r.find("value");
  if (action && c.action == Action::kDelete) {
    if (value) r.error("value", "is for upsert; delete removes the whole record set");
  } else if (action && !value) {
    r.error("value",
            "is required: a fixed string, {\"from\":\"caller-ip\"} or "
            "{\"from\":\"body\",\"pointer\":\"/ip\"}");
  } else if (action && value->is_string()) {
    c.source = ValueSource::kFixed;
    std::string why;
    if (have_type) {
      if (auto v = canonical_value(c.type, value->get_ref<const std::string&>(), &why))
        c.value = *v;
      else
        r.error("value", why + " (got \"" + value->get<std::string>() + "\")");
    }
  } else if (action && value->is_object()) {
    FieldReader source(r, *value, "value");
    source.reject_unknown({"from", "pointer"}, "is not a field of a value source");
    auto from = source.one_of("from", Need::kRequired, {"caller-ip", "body"},
                              "must be caller-ip or body", "is required (caller-ip or body)");
    if (from && *from == "caller-ip") {
      c.source = ValueSource::kCallerIp;
      if (source.has("pointer")) source.error("pointer", "is for {\"from\":\"body\"}");
      if (have_type && c.type == RecordType::kCNAME)
        r.error("value", "caller-ip gives an address; a CNAME needs a host name");
    } else if (from) {
      c.source = ValueSource::kBody;
      if (auto pointer = source.string("pointer", Need::kRequired, "must be a string")) {
        c.pointer = *pointer;
        if (!valid_pointer(c.pointer))
          source.error("pointer", "must be a JSON pointer such as /ip (RFC 6901)");
      }
    }
  } else if (action) {
    r.error("value", "must be a string or an object such as {\"from\":\"caller-ip\"}");
  }

  if (!r.ok()) return r.status();
  return c;
}

namespace {

Result<json> bind_value(const json& stored, const TriggerRequest& request) {
  auto value = stored.find("value");
  if (value == stored.end() || !value->is_object()) return stored;  // nothing to bind
  json out = stored;
  const json* from = value->contains("from") ? &(*value)["from"] : nullptr;
  if (from && *from == "caller-ip") {
    std::string ip(request.caller_ip);
    if (ip.empty())
      return Status::Invalid("request.caller_ip is unknown", {{"request.caller_ip", "is unknown"}});
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    const json* record = stored.contains("record") ? &stored["record"] : nullptr;
    const json* type =
        record && record->is_object() && record->contains("type") ? &(*record)["type"] : nullptr;
    if (type && type->is_string() && lower(type->get<std::string>()) == "a" &&
        ip.rfind("::ffff:", 0) == 0 && is_ipv4(ip.substr(7)))
      ip = ip.substr(7);
    out["value"] = ip;
    return out;
  }
  const json* pointer_json = value->contains("pointer") ? &(*value)["pointer"] : nullptr;
  if (!from || *from != "body" || !pointer_json || !pointer_json->is_string())
    return Status::Invalid("config.value has no known source",
                           {{"config.value.from", "must be caller-ip or body"}});
  const std::string pointer = pointer_json->get<std::string>();
  auto invalid = [&](const std::string& why) {
    return Status::Invalid("request.body " + why, {{"request.body", why}});
  };
  // Parsed once per request, shared with the rules, bounded (json_limits.h).
  const BoundedJson& parsed = request.body.parsed();
  if (parsed.error == BoundedJson::Error::kTooLarge) return invalid(parsed.why());
  if (!parsed.ok())
    return invalid("is not JSON (or is nested deeper than " + std::to_string(kMaxJsonDepth) +
                   " levels); the value is read from " + pointer);
  const json& body = parsed.value;
  json::json_pointer ptr(pointer);
  if (!body.contains(ptr)) return invalid("has nothing at " + pointer);
  const json& v = body.at(ptr);
  if (!v.is_string())
    return invalid("has " + std::string(json_type(v)) + " at " + pointer + ", not a string");
  out["value"] = v.get<std::string>();
  return out;
}

}  // namespace

Result<json> bind_request(const json& stored, const TriggerRequest& request) {
  // Runs on the trigger path: nothing may escape.
  try {
    return bind_value(stored, request);
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("the request could not be read: ") + e.what(),
                           {{"request.body", std::string("could not be read: ") + e.what()}});
  }
}

json config_schema() {
  json value_source = {
      {"oneOf",
       {{{"type", "string"}, {"title", "A fixed value"}},
        {{"type", "object"},
         {"title", "The caller's address"},
         {"additionalProperties", false},
         {"required", {"from"}},
         {"properties", {{"from", {{"const", "caller-ip"}}}}}},
        {{"type", "object"},
         {"title", "A string in the request body"},
         {"additionalProperties", false},
         {"required", {"from", "pointer"}},
         {"properties",
          {{"from", {{"const", "body"}}},
           {"pointer",
            {{"type", "string"},
             {"title", "JSON pointer (RFC 6901)"},
             {"examples", {"/ip", "/alerts/0/labels/instance"}}}}}}}}},
      {"title", "Value"},
      {"description",
       "Upsert only: a fixed value, the address the trigger came from, or a string read from the "
       "trigger's JSON body. Checked against the record type (an A record takes an IPv4 "
       "address) before anything is sent."},
      {"x-tripline-per-request", true}};
  return {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "Update a DNS record"},
      {"description",
       "Set or delete one DNS record set through an RFC 2136 dynamic update signed with TSIG, or "
       "through an ExternalDNS webhook provider."},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"backend", "record", "action"}},
      // What each backend and action requires, as check() requires it, so a form built from the
      // schema marks these fields required where they apply (ui/schema-form.js).
      {"allOf",
       {{{"if", {{"properties", {{"backend", {{"const", "rfc2136"}}}}}, {"required", {"backend"}}}},
         {"then", {{"required", {"server", "zone", "tsig_key_name", "tsig_secret"}}}}},
        {{"if",
          {{"properties", {{"backend", {{"const", "externaldns-webhook"}}}}},
           {"required", {"backend"}}}},
         {"then", {{"required", {"provider_url"}}}}},
        {{"if", {{"properties", {{"action", {{"const", "upsert"}}}}}, {"required", {"action"}}}},
         {"then", {{"required", {"value"}}}}}}},
      {"properties",
       {{"backend",
         {{"type", "string"}, {"enum", {"rfc2136", "externaldns-webhook"}}, {"title", "Backend"}}},
        {"server",
         {{"type", "string"},
          {"title", "DNS server (rfc2136)"},
          {"description", "host or host:port of the zone's primary; port 53 by default"},
          {"examples", {"127.0.0.1:5353", "[2001:db8::53]:53", "ns1.example.com"}}}},
        {"zone", {{"type", "string"}, {"title", "Zone (rfc2136)"}, {"examples", {"example.com"}}}},
        {"tsig_key_name", {{"type", "string"}, {"title", "TSIG key name (rfc2136)"}}},
        {"tsig_algorithm",
         {{"type", "string"},
          {"title", "TSIG algorithm (rfc2136)"},
          {"enum",
           {"hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5"}},
          {"default", "hmac-sha256"}}},
        {"tsig_secret",
         {{"type", "string"},
          {"title", "TSIG secret (rfc2136)"},
          {"description", "base64, as tsig-keygen prints it"},
          {"writeOnly", true}}},
        {"provider_url",
         {{"type", "string"},
          {"title", "Provider URL (externaldns-webhook)"},
          {"format", "uri"},
          {"examples", {"http://127.0.0.1:8888"}}}},
        {"record",
         {{"type", "object"},
          {"title", "Record"},
          {"additionalProperties", false},
          {"required", {"name", "type"}},
          {"properties",
           {{"name",
             {{"type", "string"},
              {"title", "Name"},
              {"description", "Fully qualified; inside the zone or the provider's domain filter"},
              {"examples", {"api.example.com"}}}},
            {"type",
             {{"type", "string"}, {"enum", {"A", "AAAA", "CNAME", "TXT"}}, {"title", "Type"}}},
            {"ttl",
             {{"type", "integer"},
              {"minimum", 0},
              {"maximum", kMaxTtl},
              {"default", 300},
              {"title", "TTL (seconds)"}}}}}}},
        {"action",
         {{"type", "string"},
          {"enum", {"upsert", "delete"}},
          {"title", "Action"},
          {"description", "upsert replaces the record set with the value; delete removes it"}}},
        {"value", value_source}}}};
}

}  // namespace tripline::dns_update
