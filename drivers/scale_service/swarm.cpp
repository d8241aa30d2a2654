#include "swarm.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>

#include "json_limits.h"

namespace tripline::scale_service {

SwarmApi::SwarmApi(const std::string& docker_host) : host_(docker_host) {
  if (docker_host.rfind("unix://", 0) == 0) {
    unix_socket_ = docker_host.substr(7);
    base_url_ = "http://docker";
  } else if (docker_host.rfind("tcp://", 0) == 0) {
    base_url_ = "http://" + docker_host.substr(6);
  } else {
    base_url_ = docker_host;
  }
}

OutboundResponse SwarmApi::call(const std::string& method, const std::string& path,
                                const std::string& body, std::chrono::milliseconds timeout,
                                const std::string& registry_auth) const {
  OutboundRequest req;
  req.timeout = timeout;
  req.method = method;
  req.url = base_url_ + "/v1.41" + path;
  req.unix_socket = unix_socket_;
  req.body = body;
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  if (!registry_auth.empty()) req.headers.emplace_back("X-Registry-Auth", registry_auth);
  return http_request(req);
}

SwarmApi::Answer SwarmApi::classify(const OutboundResponse& r) {
  if (r.too_large) return {Error::kBadAnswer, r.error};
  if (r.transport_failed()) return {Error::kUnreachable, r.error};
  if (r.status >= 200 && r.status < 300) return {};
  std::string message = "HTTP " + std::to_string(r.status);
  auto j = parse_json_bounded(r.body).value;
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    message = j["message"].get<std::string>();
  if (r.status == 404) return {Error::kNotFound, message};
  if (message.find("update out of sequence") != std::string::npos)
    return {Error::kOutOfSequence, message};
  if (r.status >= 500) return {Error::kServer, message};
  return {Error::kRejected, message};
}

SwarmApi::Answer SwarmApi::inspect(const std::string& name, Service* out) const {
  char* escaped = curl_easy_escape(nullptr, name.c_str(), static_cast<int>(name.size()));
  std::string path = "/services/" + std::string(escaped ? escaped : "");
  curl_free(escaped);
  auto r = call("GET", path);
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  return parse_service(r.body, out);
}

namespace {
// Docker's integers. A float, or a number out of int64_t's range, is refused: nlohmann's
// conversion of such a value to int64_t would be undefined behaviour (found by fuzz_peer).
bool integer(const nlohmann::json& j, int64_t* out) {
  if (j.is_number_unsigned()) {
    if (j.get<uint64_t>() > uint64_t(INT64_MAX)) return false;
  } else if (!j.is_number_integer()) {
    return false;
  }
  *out = j.get<int64_t>();
  return true;
}
}  // namespace

SwarmApi::Answer SwarmApi::parse_service(std::string_view body, Service* out) {
  auto parsed = parse_json_bounded(body);
  if (!parsed.ok()) return {Error::kBadAnswer, "the service JSON from Docker " + parsed.why()};
  const nlohmann::json& j = parsed.value;
  try {
    out->id = j.at("ID").get<std::string>();
    if (!integer(j.at("Version").at("Index"), &out->version))
      return {Error::kBadAnswer,
              "unexpected service JSON from Docker: Version.Index is not an integer"};
    out->spec = j.at("Spec");
    const auto& mode = out->spec.at("Mode");
    out->replicated = mode.contains("Replicated");
    out->replicas = 0;  // Docker omits Replicas when it is 0
    if (out->replicated) {
      const auto& replicated = mode.at("Replicated");
      if (!replicated.is_object())
        return {Error::kBadAnswer,
                "unexpected service JSON from Docker: Mode.Replicated is not an object"};
      if (auto r = replicated.find("Replicas");
          r != replicated.end() && (!integer(*r, &out->replicas) || out->replicas < 0))
        return {Error::kBadAnswer, "unexpected service JSON from Docker: Replicas is not a count"};
    }
  } catch (const nlohmann::json::exception& e) {
    return {Error::kBadAnswer, std::string("unexpected service JSON from Docker: ") + e.what()};
  }
  return {};
}

SwarmApi::Answer SwarmApi::update(const Service& s, const std::string& registry_auth) const {
  return classify(call("POST", "/services/" + s.id + "/update?version=" + std::to_string(s.version),
                       s.spec.dump(), std::chrono::milliseconds(10000), registry_auth));
}

SwarmApi::Answer SwarmApi::list(const std::vector<std::string>& labels, size_t max,
                                std::vector<Service>* out) const {
  nlohmann::json filters = {{"label", labels}};
  std::string f = filters.dump();
  char* escaped = curl_easy_escape(nullptr, f.c_str(), static_cast<int>(f.size()));
  std::string path = "/services?filters=" + std::string(escaped ? escaped : "");
  curl_free(escaped);
  auto r = call("GET", path);
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  auto parsed = parse_json_bounded(r.body);
  if (!parsed.ok()) return {Error::kBadAnswer, "the service list from Docker " + parsed.why()};
  if (!parsed.value.is_array())
    return {Error::kBadAnswer, "unexpected service list from Docker: not an array"};
  if (parsed.value.size() > max)
    return {Error::kBadAnswer, "the label selector matches " + std::to_string(parsed.value.size()) +
                                   " services, more than " + std::to_string(max)};
  out->clear();
  for (const auto& item : parsed.value) {
    Service s;
    Answer one = parse_service(item.dump(), &s);
    if (one.error != Error::kNone) return one;
    out->push_back(std::move(s));
  }
  return {};
}

SwarmApi::Answer SwarmApi::list_names(size_t max, std::vector<Listed>* out, bool* more,
                                      std::chrono::steady_clock::time_point deadline) const {
  out->clear();
  *more = false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return {Error::kUnreachable, "no time left to list the services"};
  auto r = call("GET", "/services", {}, std::min(left, std::chrono::milliseconds(5000)));
  Answer a = classify(r);
  if (a.error != Error::kNone) return a;
  auto parsed = parse_json_bounded(r.body);
  if (!parsed.ok()) return {Error::kBadAnswer, "the service list from Docker " + parsed.why()};
  if (!parsed.value.is_array())
    return {Error::kBadAnswer, "unexpected service list from Docker: not an array"};
  for (const auto& item : parsed.value) {
    // Read field by field, never trusting a shape: a service without a name is skipped.
    const nlohmann::json* spec =
        item.is_object() && item.contains("Spec") ? &item["Spec"] : nullptr;
    if (!spec || !spec->is_object()) continue;
    auto n = spec->find("Name");
    if (n == spec->end() || !n->is_string() || n->get_ref<const std::string&>().empty() ||
        n->get_ref<const std::string&>().size() > 255)
      continue;
    Listed one{n->get<std::string>(), std::nullopt};
    if (auto mode = spec->find("Mode"); mode != spec->end() && mode->is_object()) {
      if (auto rep = mode->find("Replicated"); rep != mode->end() && rep->is_object()) {
        int64_t count = 0;  // Docker omits Replicas when it is 0
        if (auto c = rep->find("Replicas"); c != rep->end() && (!integer(*c, &count) || count < 0))
          continue;
        one.replicas = count;
      }
    }
    out->push_back(std::move(one));
  }
  std::sort(out->begin(), out->end(),
            [](const Listed& x, const Listed& y) { return x.name < y.name; });
  if (out->size() > max) {
    out->resize(max);
    *more = true;
  }
  return {};
}

// Bounded well below the default so a hung Docker holds the /readyz prober only briefly.
SwarmApi::Answer SwarmApi::ping() const {
  return classify(call("GET", "/_ping", {}, std::chrono::milliseconds(3000)));
}

// Connection problems and Docker's 5xx may pass; a missing service or a rejected spec will not.
Outcome to_outcome(const SwarmApi::Answer& a, const std::string& service, const std::string& host) {
  switch (a.error) {
    case SwarmApi::Error::kUnreachable:
      return Outcome::retryable("cannot reach Docker at " + host + ": " + a.message);
    case SwarmApi::Error::kNotFound:
      return Outcome::final("service \"" + service + "\" does not exist: " + a.message);
    case SwarmApi::Error::kServer:
    case SwarmApi::Error::kOutOfSequence:
      return Outcome::retryable("Docker answered: " + a.message);
    case SwarmApi::Error::kBadAnswer:
      // Final: a peer answering past the limits (or not Docker's JSON at all) answers the same
      // way next time; retrying would only hammer it.
      return Outcome::final("refused the answer of Docker at " + host +
                            " (not retried): " + a.message);
    default:
      return Outcome::final("Docker rejected the update: " + a.message);
  }
}

}  // namespace tripline::scale_service
