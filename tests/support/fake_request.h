// An InboundRequest built in memory, for unit tests of code that reads requests (rules, auth).
#pragma once

#include <strings.h>

#include <map>

#include "request.h"

namespace tripline::test {

struct FakeRequest : InboundRequest {
  std::string method_ = "POST", body_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::map<std::string, std::string> query_;

  std::string_view method() const override { return method_; }
  std::string_view body() const override { return body_; }
  std::optional<std::string> header(std::string_view name) const override {
    for (const auto& [k, v] : headers_)
      if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
    return std::nullopt;
  }
  std::optional<std::string> query(std::string_view name) const override {
    auto it = query_.find(std::string(name));
    return it == query_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::vector<std::pair<std::string, std::string>> headers() const override { return headers_; }
};

}  // namespace tripline::test
