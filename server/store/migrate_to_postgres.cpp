// The one file besides open_store.cpp that names both store implementations
// (cmake/CheckLayering.cmake): a copy reads one and writes the other.
#include "migrate_to_postgres.h"

#include "postgres/postgres_store.h"
#include "sqlite/sqlite_store.h"

namespace tripline {

Status migrate_sqlite_to_postgres(const std::string& sqlite_path, const std::string& url,
                                  TableCounts* progress) {
  StoreOptions options;
  options.max_connections = 2;  // one for the copy's transaction, one for the migrations' checks
  // A name of its own in the logs; it owns no execution (the copied ones keep owner '', for the
  // first replica that starts: migrations/postgres/018_replicas.sql, docs/scale-out.md).
  options.replica = "migrate-data";
  auto target = PostgresStore::open(url, options);
  if (!target.ok()) return target.status();
  return (*target)->import_tables(
      [&](const TableSink& sink) { return SqliteStore::export_tables(sqlite_path, sink); },
      progress);
}

}  // namespace tripline
