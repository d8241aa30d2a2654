// Reading a JSON config object into typed values while collecting one FieldError per problem,
// the way every config of tripline is validated (driver configs, receiver limits, ...): absent,
// wrong type, out of range, not one of the allowed values, unknown member. Field names are the
// prefix and the key ("config.max"). Each reader keeps its own wording: every message can be
// given, and the defaults are the phrases the configs already answered.
//
// Never throws (nlohmann's accessors are only used after a type check). Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace tripline {

class FieldReader {
 public:
  enum class Need { kOptional, kRequired };

  // `object` must outlive the reader. A non-object reads as having no members (check
  // is_object() first to answer that with its own error).
  FieldReader(const nlohmann::json& object, std::string prefix)
      : j_(object), prefix_(std::move(prefix)) {}
  FieldReader(nlohmann::json&&, std::string) = delete;  // would dangle

  bool is_object() const { return j_.is_object(); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const nlohmann::json* find(std::string_view key) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  // Every member not in `known` is an error with `message` ("is not a field of scale-service").
  void reject_unknown(std::initializer_list<std::string_view> known, std::string_view message) {
    if (!j_.is_object()) return;
    for (const auto& item : j_.items())
      if (std::find(known.begin(), known.end(), item.key()) == known.end())
        error(item.key(), std::string(message));
  }

  // A string for which `valid` holds (no check when null); `invalid` otherwise.
  std::optional<std::string> string(std::string_view key, Need need, std::string_view invalid,
                                    const std::function<bool(const std::string&)>& valid = {},
                                    std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_string() || (valid && !valid(v->get_ref<const std::string&>()))) {
      error(key, std::string(invalid));
      return std::nullopt;
    }
    return v->get<std::string>();
  }

  // A string equal to one of `values` (a value of any other type is not one of them either).
  std::optional<std::string> one_of(std::string_view key, Need need,
                                    std::initializer_list<std::string_view> values,
                                    std::string_view invalid,
                                    std::string_view required = "is required") {
    return string(
        key, need, invalid,
        [&](const std::string& s) {
          return std::find(values.begin(), values.end(), s) != values.end();
        },
        required);
  }

  // A whole number in [min, max]: "must be a whole number", "must be between MIN and MAX".
  std::optional<int64_t> integer(std::string_view key, Need need, int64_t min, int64_t max,
                                 std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      error(key, "must be a whole number");
      return std::nullopt;
    }
    bool huge = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX);
    int64_t n = huge ? 0 : v->get<int64_t>();
    if (huge || n < min || n > max) {
      error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    return n;
  }

  // true or false: "must be true or false".
  std::optional<bool> boolean(std::string_view key, Need need,
                              std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) {
      error(key, "must be true or false");
      return std::nullopt;
    }
    return v->get<bool>();
  }

  // An error of the reader's own (a rule between fields, a format only it knows).
  void error(std::string_view key, std::string message) {
    errors_.push_back({prefix_ + std::string(key), std::move(message)});
  }
  const std::vector<FieldError>& errors() const { return errors_; }
  bool ok() const { return errors_.empty(); }

  // Ok, or Invalid with every error and the message "FIELD MESSAGE (and N more)".
  Status status() const {
    if (errors_.empty()) return Status::Ok();
    std::string msg = errors_.front().field + " " + errors_.front().message;
    if (errors_.size() > 1) msg += " (and " + std::to_string(errors_.size() - 1) + " more)";
    return Status::Invalid(std::move(msg), errors_);
  }

 private:
  const nlohmann::json* present(std::string_view key, Need need, std::string_view required) {
    const nlohmann::json* v = find(key);
    if (!v && need == Need::kRequired) error(key, std::string(required));
    return v;
  }

  const nlohmann::json& j_;
  std::string prefix_;
  std::vector<FieldError> errors_;
};

}  // namespace tripline
