// The inbound request as the trigger decision reads it (rules, inbound auth): no HTTP server
// types, no routing. The route layer adapts its HttpRequest to this; tests build one in memory
// (tests/support/fake_request.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tripline {

class InboundRequest {
 public:
  virtual ~InboundRequest() = default;
  virtual std::string_view method() const = 0;  // "GET", "POST", ...
  virtual std::string_view body() const = 0;
  // Header value by case-insensitive name; the first when repeated.
  virtual std::optional<std::string> header(std::string_view name) const = 0;
  virtual std::optional<std::string> query(std::string_view name) const = 0;
  // Every header as sent, in order (for the request log, request_record.h). Requests that
  // cannot list theirs answer none.
  virtual std::vector<std::pair<std::string, std::string>> headers() const { return {}; }
  // The same, each header handed to `fn` as views into the request: nothing copied (the trigger
  // path's request log). The default goes through headers().
  using HeaderFn = void (*)(void* ctx, std::string_view name, std::string_view value);
  virtual void visit_headers(HeaderFn fn, void* ctx) const {
    for (const auto& [name, value] : headers()) fn(ctx, name, value);
  }
};

}  // namespace tripline
