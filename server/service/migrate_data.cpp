// tripline migrate-data (migrate_data.h, docs/migrate-data.md).
#include "migrate_data.h"

#include <sys/stat.h>

#include <cstring>
#include <fstream>

#include "database.h"
#include "migrate_to_postgres.h"

namespace tripline {

Result<MigrateDataArgs> parse_migrate_data_args(const std::vector<std::string>& args) {
  MigrateDataArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    std::string* target = nullptr;
    std::string name;
    for (auto [flag, field] : {std::pair{"--from", &out.from}, std::pair{"--to", &out.to}}) {
      if (arg == flag || arg.rfind(std::string(flag) + "=", 0) == 0) {
        target = field;
        name = flag;
      }
    }
    if (!target)
      return Status::Invalid("migrate-data: unknown argument \"" + redact_database(arg) +
                             "\"; usage: tripline migrate-data --from FILE --to DATABASE");
    if (!target->empty()) return Status::Invalid("migrate-data: " + name + " given twice");
    if (arg == name) {
      if (i + 1 >= args.size()) return Status::Invalid("migrate-data: " + name + " needs a value");
      *target = args[++i];
    } else {
      *target = arg.substr(name.size() + 1);
    }
    if (target->empty()) return Status::Invalid("migrate-data: " + name + " is empty");
  }
  if (out.from.empty() || out.to.empty())
    return Status::Invalid(
        "migrate-data: --from FILE (the SQLite database) and --to DATABASE (a postgres:// URL) "
        "are both required");
  return out;
}

Status check_migrate_data_args(const MigrateDataArgs& args) {
  if (args.from.find("://") != std::string::npos)
    return Status::Invalid("migrate-data: --from must be a SQLite file, not a URL (" +
                           redact_database(args.from) + ")");
  struct stat from_st {};
  if (::stat(args.from.c_str(), &from_st) != 0)
    return Status::Invalid("migrate-data: --from " + args.from + ": " + std::strerror(errno));
  if (!S_ISREG(from_st.st_mode))
    return Status::Invalid("migrate-data: --from " + args.from + " is not a file");
  // Every SQLite database file starts with this header (sqlite.org/fileformat.html): a typo'd
  // path to something else is refused before anything opens it (and would migrate it).
  char header[16] = {};
  std::ifstream in(args.from, std::ios::binary);
  if (!in.read(header, sizeof header) || std::memcmp(header, "SQLite format 3", 16) != 0)
    return Status::Invalid("migrate-data: --from " + args.from + " is not a SQLite database");
  if (args.to.find("://") == std::string::npos) {
    struct stat to_st {};
    if (::stat(args.to.c_str(), &to_st) == 0 && to_st.st_dev == from_st.st_dev &&
        to_st.st_ino == from_st.st_ino)
      return Status::Invalid("migrate-data: --to is the --from file itself");
  }
  return Status::Ok();
}

Result<std::string> migrate_data(const MigrateDataArgs& args) {
  if (Status s = check_migrate_data_args(args); !s.ok()) return s;
  if (args.to.rfind("postgres://", 0) != 0 && args.to.rfind("postgresql://", 0) != 0)
    return Status::Invalid("migrate-data: --to must be a postgres:// URL (" +
                           redact_database(args.to) +
                           "); a SQLite database is copied as a file (docs/operations.md)");
  TableCounts counts;
  Status s = migrate_sqlite_to_postgres(args.from, args.to, &counts);
  // The URL's password never reaches the operator's terminal or logs (docs/configuration.md).
  if (!s.ok()) return redact_database_in(s, args.to);
  std::string out = "copied " + args.from + " into " + redact_database(args.to) + ":";
  int64_t total = 0;
  for (const auto& [table, rows] : counts.tables) {
    out += "\n  " + table + ": " + std::to_string(rows) + (rows == 1 ? " row" : " rows");
    total += rows;
  }
  out += "\n" + std::to_string(total) + " rows in " + std::to_string(counts.tables.size()) +
         " tables, ids kept; start tripline with --database and the same --data-dir (its keys)";
  return out;
}

}  // namespace tripline
