// `tripline migrate-data --from FILE --to DATABASE` (docs/migrate-data.md): every row of an
// existing SQLite database copied into a new, empty database of any store (a postgres:// URL
// above all), ids kept, so trigger URLs, execution histories and audit entries stay as they were.
//
// The copy itself needs a store-level export and import (each implementation reads and writes its
// own tables), which the store's contract (store.h) does not have yet: until it does, the command
// checks its arguments and answers Unavailable before opening anything.
#pragma once

#include <string>
#include <vector>

#include "status.h"

namespace tripline {

struct MigrateDataArgs {
  std::string from;  // a SQLite file of tripline's
  std::string to;    // what --database takes: a postgres:// URL or another SQLite file's path
};

// Reads `--from FILE --to DATABASE` (or --from=FILE, --to=DATABASE); both are required. Invalid,
// saying what is wrong, for anything else.
Result<MigrateDataArgs> parse_migrate_data_args(const std::vector<std::string>& args);

// The checks made before anything is opened: the source is an existing SQLite database file
// (its header says so); the target is not the source. Invalid, saying why.
Status check_migrate_data_args(const MigrateDataArgs& args);

// Checks, then copies. Answers a line for the operator. Today, after the checks: Unavailable
// (the store has no export/import yet), nothing opened and nothing written.
Result<std::string> migrate_data(const MigrateDataArgs& args);

}  // namespace tripline
