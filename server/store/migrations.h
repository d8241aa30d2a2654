// SQL migrations from migrations/NNN_name.sql (SQLite) and migrations/postgres/NNN_name.sql
// (PostgreSQL, the same versions in its dialect: docs/postgres.md), embedded into the binary at
// build time (CMakeLists.txt generates the tables), each list in ascending order.
#pragma once

#include <string_view>
#include <vector>

namespace tripline {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& embedded_migrations();
const std::vector<Migration>& embedded_postgres_migrations();

}  // namespace tripline
