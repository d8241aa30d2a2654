// `tripline migrate-data --from FILE --to DATABASE` (docs/migrate-data.md): every row of an
// existing SQLite database copied into a new, empty PostgreSQL database, ids kept, so trigger URLs,
// execution histories and audit entries stay as they were.
//
// The copy itself is the store's (server/store/migrate_to_postgres.h): each implementation reads
// or writes its own tables. This layer checks the arguments, redacts the URL, and words the
// counts for the operator.
#pragma once

#include <string>
#include <vector>

#include "status.h"

namespace tripline {

struct MigrateDataArgs {
  std::string from;  // a SQLite file of tripline's
  std::string to;    // a postgres:// URL (what --database takes)
};

// Reads `--from FILE --to DATABASE` (or --from=FILE, --to=DATABASE); both are required. Invalid,
// saying what is wrong, for anything else.
Result<MigrateDataArgs> parse_migrate_data_args(const std::vector<std::string>& args);

// The checks made before anything is opened: the source is an existing SQLite database file
// (its header says so); the target is not the source. Invalid, saying why.
Status check_migrate_data_args(const MigrateDataArgs& args);

// Checks, then copies (migrate_sqlite_to_postgres). Answers the rows copied per table, for the
// operator. Invalid for a --to that is not a postgres:// URL (before anything is opened),
// Conflict for a target that already holds rows (nothing written); no message carries the URL's
// password.
Result<std::string> migrate_data(const MigrateDataArgs& args);

}  // namespace tripline
