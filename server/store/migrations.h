// SQL migrations from migrations/NNN_name.sql, embedded into the binary at build time
// (CMakeLists.txt generates the table), in ascending order.
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

}  // namespace tripline
