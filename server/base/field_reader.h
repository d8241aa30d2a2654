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
  // A reader of the object at `key` in `parent` ("config.record."), whose errors go to the
  // parent's list, so one status() answers for the whole config. `parent` must outlive it.
  FieldReader(FieldReader& parent, const nlohmann::json& object, std::string_view key)
      : j_(object), prefix_(parent.prefix_ + std::string(key) + "."), sink_(parent.sink_) {}
  FieldReader(const FieldReader&) = delete;  // sink_ points into the reader it came from
  FieldReader& operator=(const FieldReader&) = delete;

  bool is_object() const { return j_.is_object(); }
  bool has(std::string_view key) const { return find(key) != nullptr; }
  const nlohmann::json* find(std::string_view key) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  // Every member not in `known` is an error with `message` ("is not a field of scale-service").
  void reject_unknown(const std::vector<std::string_view>& known, std::string_view message) {
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

  // A whole number in [min, max]: "must be a whole number", "must be between MIN and MAX",
  // or `invalid` for both when given.
  std::optional<int64_t> integer(std::string_view key, Need need, int64_t min, int64_t max,
                                 std::string_view invalid = {},
                                 std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_number_integer()) {
      error(key, invalid.empty() ? "must be a whole number" : std::string(invalid));
      return std::nullopt;
    }
    bool huge = v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX);
    int64_t n = huge ? 0 : v->get<int64_t>();
    if (huge || n < min || n > max) {
      error(key, invalid.empty()
                     ? "must be between " + std::to_string(min) + " and " + std::to_string(max)
                     : std::string(invalid));
      return std::nullopt;
    }
    return n;
  }

  // Any number (fractions too) in [min, max]; `invalid` otherwise.
  std::optional<double> number(std::string_view key, Need need, double min, double max,
                               std::string_view invalid,
                               std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_number() || v->get<double>() < min || v->get<double>() > max) {
      error(key, std::string(invalid));
      return std::nullopt;
    }
    return v->get<double>();
  }

  // The member at `key` when it is an object (read it with FieldReader(*this, *obj, key));
  // `invalid` when it is something else.
  const nlohmann::json* object(std::string_view key, Need need, std::string_view invalid,
                               std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return nullptr;
    if (!v->is_object()) {
      error(key, std::string(invalid));
      return nullptr;
    }
    return v;
  }

  // An array of strings for which `valid` holds; `invalid` for the array when it is something
  // else, and "KEY[i]" `invalid_item` (got ITEM) for each item that is not such a string.
  std::optional<std::vector<std::string>> strings(
      std::string_view key, Need need, std::string_view invalid, std::string_view invalid_item,
      const std::function<bool(const std::string&)>& valid = {},
      std::string_view required = "is required") {
    const nlohmann::json* v = present(key, need, required);
    if (!v) return std::nullopt;
    if (!v->is_array()) {
      error(key, std::string(invalid));
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool all = true;
    for (size_t i = 0; i < v->size(); ++i) {
      const nlohmann::json& item = (*v)[i];
      if (!item.is_string() || (valid && !valid(item.get_ref<const std::string&>()))) {
        std::string got = item.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (got.size() > 100) got = got.substr(0, 100) + "...";
        error(std::string(key) + "[" + std::to_string(i) + "]",
              std::string(invalid_item) + " (got " + got + ")");
        all = false;
      } else {
        out.push_back(item.get<std::string>());
      }
    }
    if (!all) return std::nullopt;
    return out;
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
    sink_->push_back({prefix_ + std::string(key), std::move(message)});
  }
  // The errors of a check that answers its own Status (a rule's condition), whose field names
  // are already whole ("rules.rules[0].when"); one without fields counts against the object.
  void add(const Status& s) {
    if (s.ok()) return;
    if (s.fields().empty())
      sink_->push_back(
          {prefix_.empty() ? prefix_ : prefix_.substr(0, prefix_.size() - 1), s.message()});
    for (const auto& f : s.fields()) sink_->push_back(f);
  }

  // Every error so far, a nested reader's included (it shares the list of its parent).
  const std::vector<FieldError>& errors() const { return *sink_; }
  bool ok() const { return sink_->empty(); }

  // Ok, or Invalid with every error and the message "FIELD MESSAGE (and N more)".
  Status status() const {
    if (sink_->empty()) return Status::Ok();
    std::string msg = sink_->front().field + " " + sink_->front().message;
    if (sink_->size() > 1) msg += " (and " + std::to_string(sink_->size() - 1) + " more)";
    return Status::Invalid(std::move(msg), *sink_);
  }

 private:
  const nlohmann::json* present(std::string_view key, Need need, std::string_view required) {
    const nlohmann::json* v = find(key);
    if (!v && need == Need::kRequired) error(key, std::string(required));
    return v;
  }

  const nlohmann::json& j_;
  std::string prefix_;
  std::vector<FieldError> errors_;  // a top-level reader's own list
  std::vector<FieldError>* sink_ = &errors_;
};

}  // namespace tripline
