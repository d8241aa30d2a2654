// --database (server/service/database.h): the default, and a URL's password never shown; and
// `tripline migrate-data`'s arguments (server/service/migrate_data.h).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "../support/store_fixture.h"
#include "database.h"
#include "migrate_data.h"

using tripline::database_or_default;
using tripline::redact_database;
using tripline::redact_database_in;
using tripline::Status;

TEST_CASE("database option: empty means DATA_DIR/tripline.db, anything else is taken as written") {
  CHECK(database_or_default("/var/lib/tripline", "") == "/var/lib/tripline/tripline.db");
  CHECK(database_or_default("./data", "/srv/other.db") == "/srv/other.db");
  CHECK(database_or_default("./data", "postgres://t@db/tripline") == "postgres://t@db/tripline");
}

TEST_CASE("database option: a URL's password is redacted wherever it is, the rest kept") {
  // The userinfo: the user stays, the password goes, whatever it holds.
  CHECK(redact_database("postgres://tripline:s3cret@db.internal:5432/tripline") ==
        "postgres://tripline:********@db.internal:5432/tripline");
  CHECK(redact_database("postgresql://u:p%40ss@[::1]/db?sslmode=require") ==
        "postgresql://u:********@[::1]/db?sslmode=require");
  CHECK(redact_database("postgres://u:p@ss:w@rd@host/db") == "postgres://u:********@host/db");
  CHECK(redact_database("postgres://u:@host/db") == "postgres://u:********@host/db");
  // The query's password (and sslpassword), in any case, between other parameters.
  CHECK(redact_database("postgres://u@host/db?sslmode=verify-full&password=s3cret&x=1") ==
        "postgres://u@host/db?sslmode=verify-full&password=********&x=1");
  CHECK(redact_database("postgres://host/db?PASSWORD=s3cret") ==
        "postgres://host/db?PASSWORD=********");
  CHECK(redact_database("postgres://host/db?sslpassword=k3y") ==
        "postgres://host/db?sslpassword=********");
  CHECK(redact_database("postgres://a:b@host/db?password=c") ==
        "postgres://a:********@host/db?password=********");
  // A libpq key=value string, quoted or not.
  CHECK(redact_database("host=db user=u password=s3cret dbname=t") ==
        "host=db user=u password=******** dbname=t");
  CHECK(redact_database("host=db password='a b\\' c' dbname=t") ==
        "host=db password=******** dbname=t");
  // Nothing secret: as written. A user alone is not a password; a file's path is not a URL.
  for (const char* same : {"postgres://tripline@127.0.0.1:5432/t_1", "postgres://db/t",
                           "/var/lib/tripline/t.db", "./data/tripline.db", "/srv/a@b:c/t.db", ""})
    CHECK(redact_database(same) == same);
  // Whatever is left, the secret is not.
  for (const char* url : {"postgres://u:hunter2@h/d", "postgres://h/d?password=hunter2",
                          "password=hunter2", "postgres://u:hunter2@h?password=hunter2#f"})
    CHECK(redact_database(url).find("hunter2") == std::string::npos);
}

TEST_CASE("database option: a store's error naming the URL is redacted, its code kept") {
  const std::string url = "postgres://tripline:s3cret@127.0.0.1:1/t";
  Status s = redact_database_in(
      Status::Unavailable("cannot open " + url + ": connection refused (" + url + ")"), url);
  CHECK(s.code() == Status::Code::kUnavailable);
  CHECK(s.message() ==
        "cannot open postgres://tripline:********@127.0.0.1:1/t: connection refused "
        "(postgres://tripline:********@127.0.0.1:1/t)");
  Status file = redact_database_in(Status::Internal("cannot open /a/t.db"), "/a/t.db");
  CHECK(file.code() == Status::Code::kInternal);
  CHECK(file.message() == "cannot open /a/t.db");
}

TEST_CASE("migrate-data: --from and --to are both required, each once, nothing else taken") {
  using tripline::parse_migrate_data_args;
  auto ok = parse_migrate_data_args({"--from", "/a/t.db", "--to=postgres://u:p@h/d"});
  REQUIRE(ok.ok());
  CHECK(ok->from == "/a/t.db");
  CHECK(ok->to == "postgres://u:p@h/d");
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {},
           {"--from", "/a/t.db"},
           {"--to", "postgres://h/d"},
           {"--from", "/a/t.db", "--to"},
           {"--from=", "--to", "x"},
           {"--from", "a", "--from", "b", "--to", "c"},
           {"--from", "a", "--to", "b", "--force"},
           {"--from", "a", "--to", "b", "postgres://u:hunter2@h/d"}}) {
    auto r = parse_migrate_data_args(bad);
    INFO(r.status().message());
    CHECK(r.status().code() == Status::Code::kInvalid);
    CHECK(r.status().message().find("hunter2") == std::string::npos);
  }
}

TEST_CASE("migrate-data: the source must be a SQLite database, the target not the source") {
  using tripline::check_migrate_data_args;
  using tripline::migrate_data;
  tripline::test::TempDir dir;
  const std::string db = dir.path + "/t.db", other = dir.path + "/notes.txt";
  REQUIRE(tripline::Store::open(db).ok());  // a real tripline database
  std::ofstream(other) << "not a database at all\n";
  ::symlink(db.c_str(), (dir.path + "/link.db").c_str());

  CHECK(check_migrate_data_args({db, "postgres://tripline@127.0.0.1:1/t"}).ok());
  CHECK(check_migrate_data_args({db, dir.path + "/new.db"}).ok());
  for (tripline::MigrateDataArgs bad : std::vector<tripline::MigrateDataArgs>{
           {dir.path + "/missing.db", "postgres://h/d"},  // not there
           {dir.path, "postgres://h/d"},                  // a directory
           {other, "postgres://h/d"},                     // not SQLite's
           {"postgres://u:hunter2@h/d", "/x.db"},         // a URL
           {db, db},                                      // itself
           {db, dir.path + "/link.db"}}) {                // itself, by another name
    Status s = check_migrate_data_args(bad);
    INFO(bad.from << " -> " << bad.to << ": " << s.message());
    CHECK(s.code() == Status::Code::kInvalid);
    CHECK(s.message().find("hunter2") == std::string::npos);
  }
  // The target is PostgreSQL: a SQLite path is refused before anything is created.
  auto done = migrate_data({db, dir.path + "/new.db"});
  CHECK(done.status().code() == Status::Code::kInvalid);
  CHECK(::access((dir.path + "/new.db").c_str(), F_OK) != 0);
  // A server that is not there: an error that never shows the password.
  auto down = migrate_data({db, "postgres://tripline:hunter2@127.0.0.1:1/t"});
  CHECK_FALSE(down.ok());
  CHECK(down.status().code() != Status::Code::kInvalid);
  CHECK(down.status().message().find("hunter2") == std::string::npos);
  CHECK(migrate_data({other, dir.path + "/new.db"}).status().code() == Status::Code::kInvalid);
}
