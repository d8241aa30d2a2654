#include "webhook.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "flags.h"
#include "http_client.h"
#include "json_limits.h"
#include "net.h"
#include "webhook_signing.h"

namespace tripline {

using json = nlohmann::json;

namespace webhook {

enum class Payload { kRequest, kTemplate, kText };

struct Config : DriverConfig {
  std::string url;
  std::string host;  // for describe()
  Payload payload = Payload::kRequest;
  json templ;  // kTemplate
  bool templ_reads_request = false;
  std::string text;  // kText: the body as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string authorization;         // sent as Authorization when set
  std::vector<std::string> secrets;  // current first; a previous one during a rotation
  SignatureScheme scheme = SignatureScheme::kStandard;
  std::string resource_id;  // seed-002's X-Link-Webhook-Resource-ID
  int64_t timeout_seconds = 10;
};

namespace {

constexpr size_t kMaxUrl = 2048;
constexpr size_t kMaxHeaders = 20;
constexpr int kMaxTemplateDepth = 16;
// What an answer may cost us: its first bytes are kept in the result for the operator.
constexpr size_t kMaxAnswerBytes = 64 * 1024;
constexpr size_t kAnswerSnippet = 512;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

bool token_char(char c) {
  return isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Headers tripline writes itself, or that would change the request's framing.
bool reserved_header(const std::string& name) {
  std::string n = lower(name);
  static const char* kReserved[] = {
      "host",          "content-length", "content-type", "connection", "transfer-encoding",
      "authorization", "expect",         "te",           "upgrade",    "user-agent"};
  for (const char* r : kReserved)
    if (n == r) return true;
  return n.rfind("webhook-", 0) == 0 || n.rfind("x-link-webhook-", 0) == 0;
}

// The URL's scheme and host through curl's own parser, so what is checked is what is sent.
bool parse_url(const std::string& url, std::string* scheme, std::string* host) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> u(curl_url(), &curl_url_cleanup);
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return false;
  char* part = nullptr;
  if (curl_url_get(u.get(), CURLUPART_SCHEME, &part, 0) != CURLUE_OK) return false;
  *scheme = lower(part);
  curl_free(part);
  if (curl_url_get(u.get(), CURLUPART_HOST, &part, 0) != CURLUE_OK) return false;
  *host = part;
  curl_free(part);
  if (host->size() > 2 && host->front() == '[') *host = host->substr(1, host->size() - 2);
  return !host->empty();
}

// Checks a template's {"from_request": FIELD} values: only what TriggerRequest offers.
void check_template(const json& t, int depth, const std::string& where,
                    std::vector<FieldError>* errors, bool* reads) {
  if (depth > kMaxTemplateDepth) {
    errors->push_back({where, "is nested deeper than " + std::to_string(kMaxTemplateDepth)});
    return;
  }
  if (t.is_object() && t.size() == 1 && t.contains("from_request")) {
    *reads = true;
    const json& f = t["from_request"];
    std::string field = f.is_string() ? f.get<std::string>() : "";
    bool ok = field == "source" ||
              (field.rfind("body:", 0) == 0 && dotted_to_pointer(field.substr(5)).has_value());
    if (!ok)
      errors->push_back({where + ".from_request",
                         "must be \"source\", \"body:/json/pointer\" or \"body:dotted.path\""});
    return;
  }
  if (t.is_object())
    for (const auto& item : t.items())
      check_template(item.value(), depth + 1, where + "." + item.key(), errors, reads);
  if (t.is_array())
    for (size_t i = 0; i < t.size(); ++i)
      check_template(t[i], depth + 1, where + "[" + std::to_string(i) + "]", errors, reads);
}

json render(const json& t, const json& body, std::string_view source) {
  if (t.is_object() && t.size() == 1 && t.contains("from_request")) {
    std::string field = t["from_request"].get<std::string>();
    if (field == "source") return std::string(source);
    auto pointer = dotted_to_pointer(field.substr(5));
    if (body.is_discarded() || !pointer) return nullptr;
    json::json_pointer p(*pointer);
    return body.contains(p) ? body.at(p) : json(nullptr);  // absent: null, as in the rules
  }
  if (t.is_object()) {
    json out = json::object();
    for (const auto& item : t.items()) out[item.key()] = render(item.value(), body, source);
    return out;
  }
  if (t.is_array()) {
    json out = json::array();
    for (const auto& v : t) out.push_back(render(v, body, source));
    return out;
  }
  return t;
}

// The receiver's bytes go into the result and the reason, both stored as JSON: cut at a
// character boundary and made valid UTF-8 (utf8_text), or the store could not record them.
std::string snippet(const std::string& body) {
  bool cut = false;
  std::string out = utf8_text(body, kAnswerSnippet, &cut);
  return cut ? out + "..." : out;
}

}  // namespace

Result<Config> parse_config(const json& j, bool allow_local) {
  if (!j.is_object())
    return Status::Invalid("config must be a JSON object", {{"config", "must be an object"}});
  std::vector<FieldError> errors;
  Config c;
  static const char* kKnown[] = {"url",           "payload",     "headers",
                                 "authorization", "secret",      "previous_secret",
                                 "scheme",        "resource_id", "timeout_seconds"};
  for (const auto& item : j.items()) {
    const std::string& key = item.key();
    if (std::none_of(std::begin(kKnown), std::end(kKnown), [&](const char* k) { return key == k; }))
      errors.push_back({"config." + key, "is not a field of webhook"});
  }
  auto str = [&](const char* name, std::string* out, bool required, size_t max) {
    auto it = j.find(name);
    if (it == j.end()) {
      if (required) errors.push_back({std::string("config.") + name, "is required"});
      return;
    }
    if (!it->is_string() || it->get<std::string>().size() > max ||
        (required && it->get<std::string>().empty())) {
      errors.push_back({std::string("config.") + name,
                        "must be a " + std::string(required ? "non-empty " : "") +
                            "string of at most " + std::to_string(max) + " characters"});
      return;
    }
    *out = it->get<std::string>();
    if (out->find_first_of("\r\n") != std::string::npos) {
      errors.push_back({std::string("config.") + name, "must not contain line breaks"});
      out->clear();
    }
  };

  str("url", &c.url, true, kMaxUrl);
  if (!c.url.empty()) {
    std::string scheme;
    if (!parse_url(c.url, &scheme, &c.host) || (scheme != "http" && scheme != "https"))
      errors.push_back({"config.url", "must be an http:// or https:// URL with a host"});
    else if (!allow_local && canonical_ip(c.host) && is_local_address(c.host))
      errors.push_back({"config.url",
                        "is a loopback, link-local or metadata address, which webhooks may not "
                        "reach unless tripline runs with --allow-local-webhook-targets"});
  }

  std::string scheme = "standard";
  str("scheme", &scheme, false, 16);
  if (auto s = parse_signature_scheme(scheme))
    c.scheme = *s;
  else
    errors.push_back({"config.scheme", "must be standard or seed-002"});

  std::string secret, previous;
  str("secret", &secret, true, 512);
  str("previous_secret", &previous, false, 512);
  if (!secret.empty()) {
    if (auto why = check_signing_secret(c.scheme, secret))
      errors.push_back({"config.secret", *why});
    else
      c.secrets.push_back(secret);
  }
  if (!previous.empty()) {
    if (c.scheme != SignatureScheme::kStandard)
      errors.push_back({"config.previous_secret",
                        "is for Standard Webhooks only (seed-002 carries one signature)"});
    else if (auto why = check_signing_secret(c.scheme, previous))
      errors.push_back({"config.previous_secret", *why});
    else
      c.secrets.push_back(previous);
  }

  str("authorization", &c.authorization, false, 4096);
  str("resource_id", &c.resource_id, false, 256);

  if (auto it = j.find("timeout_seconds"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > 30)
      errors.push_back({"config.timeout_seconds", "must be an integer from 1 to 30"});
    else
      c.timeout_seconds = it->get<int64_t>();
  }

  if (auto it = j.find("headers"); it != j.end()) {
    if (!it->is_object() || it->size() > kMaxHeaders) {
      errors.push_back({"config.headers", "must be an object of at most " +
                                              std::to_string(kMaxHeaders) + " headers"});
    } else {
      for (const auto& item : it->items()) {
        const std::string& name = item.key();
        std::string where = "config.headers." + name;
        if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), token_char))
          errors.push_back({where, "is not a header name"});
        else if (reserved_header(name))
          errors.push_back({where, "is set by tripline (use \"authorization\" for credentials)"});
        else if (!item.value().is_string() || item.value().get<std::string>().size() > 1024 ||
                 item.value().get<std::string>().find_first_of("\r\n") != std::string::npos)
          errors.push_back({where, "must be a string of at most 1024 characters, one line"});
        else
          c.headers.emplace_back(name, item.value().get<std::string>());
      }
    }
  }

  auto p = j.find("payload");
  if (p == j.end() ||
      (p->is_object() && p->size() == 1 && p->contains("from") && (*p)["from"] == "request")) {
    c.payload = Payload::kRequest;
  } else if (p->is_object() && p->size() == 1 && p->contains("template")) {
    c.payload = Payload::kTemplate;
    c.templ = (*p)["template"];
    check_template(c.templ, 0, "config.payload.template", &errors, &c.templ_reads_request);
  } else if (p->is_object() && p->size() == 1 && p->contains("text") && (*p)["text"].is_string()) {
    c.payload = Payload::kText;
    c.text = (*p)["text"].get<std::string>();
    if (c.text.size() > kMaxJsonBytes)
      errors.push_back(
          {"config.payload.text", "is larger than " + std::to_string(kMaxJsonBytes) + " bytes"});
  } else {
    errors.push_back(
        {"config.payload",
         "must be {\"from\":\"request\"}, {\"template\": JSON} or {\"text\": string}"});
  }

  if (!errors.empty()) {
    std::string msg = errors.front().field + " " + errors.front().message;
    if (errors.size() > 1) msg += " (and " + std::to_string(errors.size() - 1) + " more)";
    return Status::Invalid(msg, std::move(errors));
  }
  return c;
}

json config_schema() {
  return {
      {"$schema", "https://json-schema.org/draft/2020-12/schema"},
      {"title", "webhook"},
      {"type", "object"},
      {"additionalProperties", false},
      {"required", {"url", "secret"}},
      {"properties",
       {{"url",
         {{"type", "string"},
          {"title", "URL"},
          {"description", "http:// or https://; redirects are not followed"},
          {"maxLength", kMaxUrl}}},
        {"scheme",
         {{"type", "string"},
          {"title", "Signature scheme"},
          {"enum", {"standard", "seed-002"}},
          {"default", "standard"}}},
        {"secret",
         {{"type", "string"},
          {"title", "Signing secret"},
          {"description", "standard: whsec_ + base64 of 24-64 bytes; seed-002: 16-256 characters"},
          {"writeOnly", true}}},
        {"previous_secret",
         {{"type", "string"},
          {"title", "Previous secret (standard)"},
          {"description", "standard only: also signs while receivers move to the new secret"},
          {"writeOnly", true}}},
        {"authorization",
         {{"type", "string"},
          {"title", "Authorization header"},
          {"description", "sent as Authorization, e.g. \"Bearer ...\""},
          {"writeOnly", true}}},
        {"headers",
         {{"type", "object"},
          {"title", "Extra headers"},
          {"maxProperties", kMaxHeaders},
          {"additionalProperties", {{"type", "string"}, {"maxLength", 1024}}}}},
        {"resource_id",
         {{"type", "string"},
          {"title", "Resource id (seed-002)"},
          {"description", "seed-002 only: sent as X-Link-Webhook-Resource-ID"},
          {"maxLength", 256}}},
        {"timeout_seconds",
         {{"type", "integer"},
          {"title", "Timeout (s)"},
          {"minimum", 1},
          {"maximum", 30},
          {"default", 10}}},
        {"payload",
         {{"title", "Body"},
          {"oneOf",
           {{{"type", "object"},
             {"title", "The trigger request's body"},
             {"required", {"from"}},
             {"properties", {{"from", {{"const", "request"}}}}}},
            {{"type", "object"},
             {"title", "A template ({\"from_request\": \"body:/x\"} values)"},
             {"required", {"template"}},
             {"properties", {{"template", json::object()}}}},
            {{"type", "object"},
             {"title", "A fixed body"},
             {"required", {"text"}},
             {"properties", {{"text", {{"type", "string"}}}}}}}}}}}}};
}

}  // namespace webhook

std::unique_ptr<Driver> WebhookDriver::create(const DriverEnv& env) {
  return std::make_unique<WebhookDriver>(option_enabled(env.get(kAllowLocal)));
}

Result<std::shared_ptr<const DriverConfig>> WebhookDriver::validate(const json& config,
                                                                    bool /*check_peer*/) const {
  // No peer check: the only way to check a webhook's peer is to send it something.
  auto c = webhook::parse_config(config, allow_local_);
  if (!c.ok()) return c.status();
  return std::shared_ptr<const DriverConfig>(std::make_shared<webhook::Config>(std::move(*c)));
}

std::string WebhookDriver::describe(const DriverConfig& dc) const {
  const auto& c = static_cast<const webhook::Config&>(dc);
  const char* what = c.payload == webhook::Payload::kRequest    ? "the request's body"
                     : c.payload == webhook::Payload::kTemplate ? "a templated body"
                                                                : "a fixed body";
  return std::string("POST ") + what + " to " + c.host + ", signed (" + to_string(c.scheme) + ")";
}

std::string WebhookDriver::target(const DriverConfig& dc) const {
  return static_cast<const webhook::Config&>(dc).url;
}

std::string WebhookDriver::action(const DriverConfig&) const { return "post"; }

bool WebhookDriver::binds_request(const DriverConfig& dc) const {
  const auto& c = static_cast<const webhook::Config&>(dc);
  return c.payload == webhook::Payload::kRequest ||
         (c.payload == webhook::Payload::kTemplate && c.templ_reads_request);
}

Result<json> WebhookDriver::bind(const json& stored, const TriggerRequest& request) const {
  // Runs on the trigger path: no I/O, nothing may escape. The rendered body becomes the
  // execution's fixed body ({"text": ...}), recorded with it at acceptance.
  try {
    if (!stored.is_object()) return stored;
    auto p = stored.find("payload");
    json out = stored;
    if (p == stored.end() || (p->is_object() && p->contains("from"))) {
      out["payload"] = {{"text", std::string(request.body.text())}};
      // The execution's config is stored as JSON text: a body that is not UTF-8 cannot be, and
      // is answered 422 here rather than failing when it is recorded.
      static_cast<void>(out["payload"].dump());
      return out;
    }
    if (!p->is_object() || !p->contains("template")) return stored;
    // The rules' parse of the body, shared (driver.h); not JSON, or over the limits: discarded,
    // and every value read from it is null.
    const BoundedJson& parsed = request.body.parsed();
    const json discarded = json(json::value_t::discarded);
    const json& body = parsed.ok() ? parsed.value : discarded;
    out["payload"] = {{"text", webhook::render((*p)["template"], body, request.caller_ip).dump()}};
    return out;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("the request could not be read: ") + e.what(),
                           {{"request.body", std::string("could not be read: ") + e.what()}});
  }
}

Plan WebhookDriver::plan(const DriverConfig& dc) const {
  const auto& c = static_cast<const webhook::Config&>(dc);
  // The id is drawn once, here, and recorded with the plan: retries and a restart re-apply the
  // recorded plan, so the receiver sees one message id per execution (docs/webhooks.md).
  std::string body = c.payload == webhook::Payload::kText       ? c.text
                     : c.payload == webhook::Payload::kTemplate ? c.templ.dump()
                                                                : std::string();
  return Plan::of({{"url", c.url}, {"webhook_id", new_webhook_id()}, {"body", body}});
}

Outcome WebhookDriver::apply(const DriverConfig& dc, const json& plan) const {
  const auto& c = static_cast<const webhook::Config&>(dc);
  if (!plan.is_object() || !plan.value("webhook_id", json()).is_string() ||
      !plan.value("body", json()).is_string())
    return Outcome::final("the recorded plan has no webhook_id and body");
  std::string id = plan["webhook_id"].get<std::string>();
  OutboundRequest req;
  req.method = "POST";
  req.url = c.url;
  req.body = plan["body"].get<std::string>();
  req.timeout = std::chrono::seconds(c.timeout_seconds);
  req.connect_timeout =
      std::chrono::milliseconds(std::min<int64_t>(3000, c.timeout_seconds * 1000));
  req.max_response_bytes = webhook::kMaxAnswerBytes;
  // The status is the answer; a long body is only shown (cut), never a reason to fail.
  req.truncate_answer = true;
  req.refuse_local_addresses = !allow_local_;
  req.headers = {{"Content-Type", "application/json"}, {"User-Agent", "tripline-webhook/1"}};
  for (const auto& h : c.headers) req.headers.push_back(h);
  if (!c.authorization.empty()) req.headers.emplace_back("Authorization", c.authorization);
  if (c.scheme == SignatureScheme::kSeed002 && !c.resource_id.empty())
    req.headers.emplace_back("X-Link-Webhook-Resource-ID", c.resource_id);
  int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  auto signature = sign_webhook(c.scheme, c.secrets, id, now_s, req.body);
  // Never unsigned (validation checks the secrets; this holds whatever was stored before).
  if (signature.empty())
    return Outcome::final("POST " + c.host +
                          ": the secret cannot sign under the configured "
                          "scheme; nothing was sent");
  for (auto& h : signature) req.headers.push_back(std::move(h));

  auto t0 = std::chrono::steady_clock::now();
  OutboundResponse r = http_request(req);
  int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::string where = "POST " + c.host + " (webhook-id " + id + ")";
  if (r.address_refused) return Outcome::final(where + ": " + r.error);
  if (r.too_large) return Outcome::final(where + ": " + r.error);
  if (r.transport_failed()) return Outcome::retryable(where + ": " + r.error);
  if (r.status >= 200 && r.status < 300)
    return Outcome::succeeded({{"status", r.status},
                               {"webhook_id", id},
                               {"latency_ms", ms},
                               {"answer", webhook::snippet(r.body)}});
  std::string why = where + " answered " + std::to_string(r.status);
  if (!r.body.empty()) why += ": " + webhook::snippet(r.body);
  // 5xx and 429 are worth another try (the executor's backoff; Retry-After is honoured by
  // notifications, see docs/webhooks.md); any other answer, 3xx included, is final.
  if (r.status >= 500 || r.status == 429 || r.status == 408) return Outcome::retryable(why);
  return Outcome::final(why);
}

}  // namespace tripline
