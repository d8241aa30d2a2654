// Rows of a store's tables as they are, for `tripline migrate-data` (docs/migrate-data.md): the
// SQLite store exports them (SqliteStore::export_tables), the PostgreSQL store imports them
// (PostgresStore::import_tables), and migrate_to_postgres.cpp joins the two. Not part of the
// store's contract (store.h): the layers above never see a table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "status.h"

namespace tripline {

// One stored value, typed as the source stored it (SQLite's storage classes).
struct TableValue {
  enum class Type { kNull, kInteger, kReal, kText, kBlob };
  Type type = Type::kNull;
  int64_t integer = 0;
  double real = 0;
  std::string bytes;  // kText (UTF-8 as stored) and kBlob
};

// Up to a page of one table's rows. Each table comes as one or more pages in a row, the first
// with `first` set (also when the table has no rows at all, so that the importer sees every table
// that is copied); `columns` names each row's values in order.
struct TablePage {
  std::string table;
  std::vector<std::string> columns;
  std::vector<std::vector<TableValue>> rows;
  bool first = false;
  // The highest id the table's id sequence ever handed out (SQLite's sqlite_sequence, which an
  // AUTOINCREMENT keeps past deleted rows), 0 when it has none: the importer's sequence must go
  // past it too, so that no id of a deleted receiver or pruned execution is handed out again.
  int64_t sequence = 0;
};

// Takes each page in turn; an error stops the export (and the import it feeds).
using TableSink = std::function<Status(const TablePage&)>;

// How many rows of each table were copied, in the order they were.
struct TableCounts {
  std::vector<std::pair<std::string, int64_t>> tables;
};

}  // namespace tripline
