// Which database the service's store is (--database, TRIPLINE_DATABASE; docs/configuration.md)
// and how it is shown: a SQLite file's path, or a postgres:// URL whose password is never
// printed (docs/postgres.md).
#pragma once

#include <string>
#include <string_view>

#include "status.h"

namespace tripline {

// What Store::open is given: `database` as the operator wrote it, or DATA_DIR/tripline.db when
// it is empty (the default, as before --database existed).
std::string database_or_default(const std::string& data_dir, const std::string& database);

// `database` as logs and messages may show it: a URL's password replaced by "********"
// (postgres://user:********@host/db) and so is any password=VALUE (a URL's query parameter, or
// a libpq key=value string). Anything else, a file's path above all, as it is.
std::string redact_database(std::string_view database);

// `message` with every occurrence of `database` in it redacted as above: for the errors of
// Store::open, which may name what they could not open.
std::string redact_database_in(std::string message, const std::string& database);
// The same Status (code, field errors) with its message redacted so.
Status redact_database_in(const Status& status, const std::string& database);

}  // namespace tripline
