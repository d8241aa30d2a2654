// tripline's own view of HTTP, free of any server library's types, so route handlers can be
// tested without a server and the HTTP layer (Pistache today) stays replaceable.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "status.h"

namespace tripline {

class HttpRequest {
 public:
  virtual ~HttpRequest() = default;
  virtual std::string_view method() const = 0;  // "GET", "POST", ...
  virtual std::string_view path() const = 0;    // without the query string
  virtual std::string_view body() const = 0;
  // Header value by case-insensitive name; the first when repeated.
  virtual std::optional<std::string> header(std::string_view name) const = 0;
  virtual std::optional<std::string> query(std::string_view name) const = 0;
  virtual std::string peer_address() const = 0;
  // Every header, in order (the request log: trigger/request_record.h); none when unknown.
  virtual std::vector<std::pair<std::string, std::string>> headers() const { return {}; }
  // The same, each header handed to `fn` as views into the request: nothing copied (the trigger
  // path's request log). The default goes through headers().
  using HeaderFn = void (*)(void* ctx, std::string_view name, std::string_view value);
  virtual void visit_headers(HeaderFn fn, void* ctx) const {
    for (const auto& [name, value] : headers()) fn(ctx, name, value);
  }
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends the response. Called exactly once per request, from any thread, possibly after the
// handler returned (the trigger path answers from the ingest thread after its commit).
using Responder = std::function<void(HttpResponse&&)>;

// What the server calls for every request (the route layer's App::handle). May throw: the server
// answers 500 then.
using HttpHandler = std::function<void(const HttpRequest&, Responder)>;

// The one error shape: {"error":"<code>","message":"<sentence>"} plus, for validation errors,
// "fields":[{"field","message"}].
HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            const std::vector<FieldError>& fields = {});

}  // namespace tripline
