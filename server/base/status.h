// Error policy: library exceptions (nlohmann, SQLiteCpp, std) are caught at module edges;
// modules return Status or Result<T>. HTTP codes are chosen only in the route layer
// (server/api/responses.cpp, from_status) from Status::Code.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tripline {

struct FieldError {
  std::string field;    // e.g. "config.max"
  std::string message;  // e.g. "must be at least min (3)"
};

// [[nodiscard]]: an ignored Status is a bug (a failed write that nobody handles).
class [[nodiscard]] Status {
 public:
  enum class Code { kOk, kInvalid, kNotFound, kConflict, kUnavailable, kInternal };

  Status() = default;
  static Status Ok() { return {}; }
  static Status Invalid(std::string msg, std::vector<FieldError> fields = {}) {
    return Status(Code::kInvalid, std::move(msg), std::move(fields));
  }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Conflict(std::string msg) { return Status(Code::kConflict, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::vector<FieldError>& fields() const { return fields_; }

 private:
  Status(Code c, std::string m, std::vector<FieldError> f = {})
      : code_(c), message_(std::move(m)), fields_(std::move(f)) {}
  Code code_ = Code::kOk;
  std::string message_;
  std::vector<FieldError> fields_;
};

// A value or the Status that explains its absence.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool ok() const { return std::holds_alternative<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const { return value(); }
  const T* operator->() const { return &value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tripline
