// `tripline migrate-data` (docs/migrate-data.md): a SQLite database copied into a new, empty
// PostgreSQL database, every row with its id. The store's own part of the command; the service
// layer (server/service/migrate_data.h) checks the arguments and prints the counts.
#pragma once

#include <string>

#include "status.h"
#include "table_copy.h"

namespace tripline {

// Reads the SQLite file `sqlite_path` in one snapshot, read-only (SqliteStore::export_tables),
// opens the PostgreSQL database `url` (migrating it to this build's schema, as `tripline serve`
// would) and writes every row into it in one transaction (PostgresStore::import_tables): all of
// it or nothing. Conflict when the target already holds rows; Invalid for a source that is not
// at this build's schema, or a table or column the target lacks. `progress`, when given, gets the
// rows copied per table. Messages may name `url`: the caller redacts them (database.h).
Status migrate_sqlite_to_postgres(const std::string& sqlite_path, const std::string& url,
                                  TableCounts* progress);

}  // namespace tripline
