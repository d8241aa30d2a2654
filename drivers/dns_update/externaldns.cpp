#include "externaldns.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "http_client.h"
#include "json_limits.h"

namespace tripline::dns_update {

using nlohmann::json;

namespace {

constexpr std::chrono::milliseconds kConnectTimeout{2000};
constexpr std::chrono::milliseconds kTimeout{5000};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string strip_domain(std::string_view d) {
  std::string s = lower(d);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  s = s.substr(start);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// matchFilter in endpoint/domain_filter.go.
bool match_filter(const std::vector<std::string>& filters, const std::string& domain,
                  bool empty_value) {
  if (filters.empty()) return empty_value;
  const auto dots = std::count(domain.begin(), domain.end(), '.');
  for (const std::string& f : filters) {
    if (f.empty()) continue;
    if (f.front() == '.' && ends_with(domain, f)) return true;
    if (std::count(f.begin(), f.end(), '.') == dots && domain == f) return true;
    if (ends_with(domain, "." + f)) return true;
  }
  return false;
}

// At most 200 printable ASCII characters of a peer's answer, for a message.
std::string snippet(const std::string& body) {
  std::string out;
  for (char c : body) {
    if (out.size() >= 200) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : ' ';
  }
  return out;
}

Result<std::vector<std::string>> string_list(const json* j, const char* name) {
  std::vector<std::string> out;
  if (!j || j->is_null()) return out;
  if (!j->is_array()) return Status::Invalid(std::string(name) + " must be an array of strings");
  for (const json& e : *j) {
    if (!e.is_string()) return Status::Invalid(std::string(name) + " must be an array of strings");
    if (std::string d = strip_domain(e.get<std::string>()); !d.empty()) out.push_back(d);
  }
  return out;
}

Result<std::string> regex_string(const json* j, const char* name) {
  if (!j || j->is_null()) return std::string();
  if (!j->is_string()) return Status::Invalid(std::string(name) + " must be a string");
  return j->get<std::string>();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

}  // namespace

const json* go_field(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  if (auto it = object.find(key); it != object.end()) return &*it;
  const std::string want = lower(key);
  for (auto it = object.begin(); it != object.end(); ++it)
    if (lower(it.key()) == want) return &it.value();
  return nullptr;
}

json normalize_endpoint(const json& e) {
  static const char* kKeys[] = {"dnsName",   "targets", "recordType",      "setIdentifier",
                                "recordTTL", "labels",  "providerSpecific"};
  json out = json::object();
  if (!e.is_object()) return out;
  for (auto it = e.begin(); it != e.end(); ++it) {
    std::string key = it.key();
    for (const char* k : kKeys)
      if (lower(key) == lower(k)) key = k;
    if (!out.contains(key) || key == it.key()) out[key] = it.value();  // exact spelling wins
  }
  return out;
}

Result<DomainFilter> DomainFilter::parse(const json& j) {
  if (j.is_null()) return DomainFilter{};
  if (!j.is_object()) return Status::Invalid("the domain filter is not a JSON object");
  DomainFilter f;
  const json* include = go_field(j, "include");
  if (!include) include = go_field(j, "filters");  // v0.14.0 marshalled the struct as is
  auto inc = string_list(include, "include");
  auto exc = string_list(go_field(j, "exclude"), "exclude");
  auto rinc = regex_string(go_field(j, "regexInclude"), "regexInclude");
  auto rexc = regex_string(go_field(j, "regexExclude"), "regexExclude");
  for (const Status& s : {inc.status(), exc.status(), rinc.status(), rexc.status()})
    if (!s.ok()) return s;
  f.include_ = *inc;
  f.exclude_ = *exc;
  f.regex_include_ = *rinc;
  f.regex_exclude_ = *rexc;
  if (!f.regex_include_.empty() || !f.regex_exclude_.empty()) {
    if (!f.include_.empty() || !f.exclude_.empty())
      return Status::Invalid("the domain filter has both a domain list and a regex");
    auto compile = [](const std::string& pattern, std::shared_ptr<const re2::RE2>* out) {
      if (pattern.empty()) return std::string();
      auto re = std::make_shared<const re2::RE2>(pattern, re2::RE2::Quiet);
      if (!re->ok())
        return "the domain filter's regex " + pattern + " does not parse: " + re->error();
      *out = std::move(re);
      return std::string();
    };
    for (std::string why :
         {compile(f.regex_include_, &f.include_re_), compile(f.regex_exclude_, &f.exclude_re_)})
      if (!why.empty()) return Status::Invalid(why);
  }
  return f;
}

bool DomainFilter::matches(std::string_view name) const {
  const std::string domain = strip_domain(name);
  if (include_re_ || exclude_re_) {
    // Go's MatchString: a match anywhere, not anchored.
    if (exclude_re_ && re2::RE2::PartialMatch(domain, *exclude_re_)) return false;
    if (include_re_) return re2::RE2::PartialMatch(domain, *include_re_);
    return true;
  }
  return match_filter(include_, domain, true) && !match_filter(exclude_, domain, false);
}

std::string DomainFilter::to_string() const {
  std::string out;
  auto add = [&](const std::string& label, const std::string& v) {
    if (!v.empty()) out += (out.empty() ? "" : ", ") + label + " " + v;
  };
  add("include", join(include_));
  add("exclude", join(exclude_));
  add("regexInclude", regex_include_);
  add("regexExclude", regex_exclude_);
  return out.empty() ? "no filter (everything)" : out;
}

WebhookClient::Answer WebhookClient::negotiate(DomainFilter* out) const {
  OutboundRequest req;
  req.method = "GET";
  req.url = base_url_ + "/";
  req.headers.emplace_back("Accept", kWebhookMediaType);
  req.connect_timeout = kConnectTimeout;
  req.timeout = kTimeout;
  OutboundResponse r = http_request(req);
  if (r.status != 200)
    return http_failure(base_url_, "GET /", r.status, r.error, r.body, r.too_large);
  const std::string* type = r.header("content-type");
  if (!type || *type != kWebhookMediaType)
    return {Error::kRejected, "the ExternalDNS provider at " + base_url_ +
                                  " answered GET / with Content-Type \"" +
                                  snippet(type ? *type : "") + "\", not " + kWebhookMediaType +
                                  ": it does not speak version 1 of the webhook protocol"};
  return parse_domain_filter(base_url_, r.body, out);
}

WebhookClient::Answer WebhookClient::parse_domain_filter(const std::string& base_url,
                                                         std::string_view body, DomainFilter* out) {
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok())
    return {Error::kRejected,
            "the domain filter the ExternalDNS provider at " + base_url + " sent " + parsed.why()};
  auto filter = DomainFilter::parse(parsed.value);
  if (!filter.ok())
    return {Error::kRejected, "the ExternalDNS provider at " + base_url +
                                  " sent a bad domain filter: " + filter.status().message()};
  *out = std::move(filter).value();
  return {};
}

WebhookClient::Answer WebhookClient::records(json* endpoints) const {
  OutboundRequest req;
  req.method = "GET";
  req.url = base_url_ + "/records";
  req.headers.emplace_back("Accept", kWebhookMediaType);
  req.connect_timeout = kConnectTimeout;
  req.timeout = kTimeout;
  OutboundResponse r = http_request(req);
  if (r.status != 200)
    return http_failure(base_url_, "GET /records", r.status, r.error, r.body, r.too_large);
  return parse_records(base_url_, r.body, endpoints);
}

WebhookClient::Answer WebhookClient::parse_records(const std::string& base_url,
                                                   std::string_view body, json* endpoints) {
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok())
    return {Error::kRejected, "the answer of the ExternalDNS provider at " + base_url +
                                  " to GET /records " + parsed.why()};
  if (!parsed.value.is_array())
    return {Error::kRejected, "the ExternalDNS provider at " + base_url +
                                  " did not answer GET /records with a JSON array of endpoints"};
  *endpoints = json::array();
  for (const json& e : parsed.value)
    if (e.is_object()) endpoints->push_back(normalize_endpoint(e));
  return {};
}

WebhookClient::Answer WebhookClient::apply_changes(const json& changes) const {
  OutboundRequest req;
  req.method = "POST";
  req.url = base_url_ + "/records";
  req.body = changes.dump();
  req.headers.emplace_back("Content-Type", kWebhookMediaType);
  req.connect_timeout = kConnectTimeout;
  req.timeout = kTimeout;
  OutboundResponse r = http_request(req);
  if (r.status == 204) return {};
  return http_failure(base_url_, "POST /records", r.status, r.error, r.body, r.too_large);
}

WebhookClient::Answer http_failure(const std::string& base, const std::string& what, int status,
                                   const std::string& transport_error, const std::string& body,
                                   bool too_large) {
  using Error = WebhookClient::Error;
  if (too_large)
    return {Error::kRejected, "refused the answer of the ExternalDNS provider at " + base + " to " +
                                  what + ": " + transport_error};
  if (status == 0)
    return {Error::kUnreachable, "cannot reach the ExternalDNS provider at " + base + " (" + what +
                                     "): " + transport_error};
  std::string msg = "the ExternalDNS provider at " + base + " answered HTTP " +
                    std::to_string(status) + " to " + what;
  if (!body.empty()) msg += ": " + snippet(body);
  return {status >= 500 ? Error::kServer : Error::kRejected, msg};
}

Outcome to_outcome(const WebhookClient::Answer& a) {
  return a.error == WebhookClient::Error::kRejected ? Outcome::final(a.message)
                                                    : Outcome::retryable(a.message);
}

}  // namespace tripline::dns_update
