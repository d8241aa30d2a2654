// The contract's value helpers, and the one place that chooses a store implementation.
#include <utility>

#include "postgres/postgres_store.h"
#include "sqlite/sqlite_store.h"
#include "store.h"

namespace tripline {

const char* to_string(ExecutionStatus s) {
  switch (s) {
    case ExecutionStatus::kQueued:
      return "queued";
    case ExecutionStatus::kRunning:
      return "running";
    case ExecutionStatus::kSucceeded:
      return "succeeded";
    case ExecutionStatus::kFailed:
      return "failed";
  }
  return "?";
}

const char* to_string(Role r) {
  switch (r) {
    case Role::kReadOnly:
      return "read-only";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view s) {
  if (s == "read-only") return Role::kReadOnly;
  if (s == "operator") return Role::kOperator;
  if (s == "admin") return Role::kAdmin;
  return std::nullopt;
}

std::optional<ExecutionStatus> parse_execution_status(std::string_view s) {
  if (s == "queued") return ExecutionStatus::kQueued;
  if (s == "running") return ExecutionStatus::kRunning;
  if (s == "succeeded") return ExecutionStatus::kSucceeded;
  if (s == "failed") return ExecutionStatus::kFailed;
  return std::nullopt;
}

// A postgres:// or postgresql:// URL (libpq's connection URI schemes) is a PostgreSQL database
// (docs/postgres.md); anything else is the path of a SQLite file. The one place that chooses.
Result<std::unique_ptr<Store>> Store::open(const std::string& database, StoreOptions options) {
  if (database.rfind("postgres://", 0) == 0 || database.rfind("postgresql://", 0) == 0) {
    auto store = PostgresStore::open(database, options);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(store).value());
  }
  auto store = SqliteStore::open(database, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(store).value());
}

}  // namespace tripline
