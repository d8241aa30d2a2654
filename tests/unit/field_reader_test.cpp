// FieldReader (server/base/field_reader.h): one FieldError per problem, in reading order.
#include "field_reader.h"

#include <catch2/catch.hpp>

using namespace tripline;
using nlohmann::json;
using Need = FieldReader::Need;

TEST_CASE("FieldReader collects a field error per problem, and the values that are right") {
  json j = json::parse(
      R"({"name":"web","count":7,"big":20000,"neg":-1,"frac":1.5,"kind":"up","bad_kind":3,
          "flag":true,"huge":18446744073709551615,"extra":1})");
  FieldReader r(j, "config.");
  r.reject_unknown({"name", "count", "big", "neg", "frac", "kind", "bad_kind", "flag", "huge"},
                   "is not a field");
  CHECK(r.string("name", Need::kRequired, "must be a name") == "web");
  CHECK(r.integer("count", Need::kRequired, 0, 10) == 7);
  CHECK_FALSE(r.integer("big", Need::kRequired, 0, 10000));
  CHECK_FALSE(r.integer("neg", Need::kOptional, 0, 10));
  CHECK_FALSE(r.integer("frac", Need::kOptional, 0, 10));
  CHECK_FALSE(r.integer("huge", Need::kOptional, 0, 10));
  CHECK(r.one_of("kind", Need::kRequired, {"up", "down"}, "must be up or down") == "up");
  CHECK_FALSE(r.one_of("bad_kind", Need::kRequired, {"up", "down"}, "must be up or down"));
  CHECK(r.boolean("flag", Need::kRequired) == true);
  CHECK_FALSE(r.string("absent", Need::kOptional, "x"));
  CHECK_FALSE(r.string("missing", Need::kRequired, "x", {}, "is required (a name)"));
  CHECK_FALSE(r.string("name", Need::kRequired, "must be short",
                       [](const std::string& s) { return s.size() < 3; }));
  r.error("count", "must be even");

  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& e : r.errors()) got.emplace_back(e.field, e.message);
  CHECK(got == std::vector<std::pair<std::string, std::string>>{
                   {"config.extra", "is not a field"},
                   {"config.big", "must be between 0 and 10000"},
                   {"config.neg", "must be between 0 and 10"},
                   {"config.frac", "must be a whole number"},
                   {"config.huge", "must be between 0 and 10"},
                   {"config.bad_kind", "must be up or down"},
                   {"config.missing", "is required (a name)"},
                   {"config.name", "must be short"},
                   {"config.count", "must be even"},
               });
  Status s = r.status();
  CHECK(s.code() == Status::Code::kInvalid);
  CHECK(s.message() == "config.extra is not a field (and 8 more)");
  CHECK(s.fields().size() == 9);

  json one = {{"a", 1}}, array = json::array();
  FieldReader fine(one, "limits.");
  CHECK(fine.integer("a", Need::kRequired, 0, 1) == 1);
  CHECK(fine.status().ok());
  FieldReader not_object(array, "config.");
  CHECK_FALSE(not_object.is_object());
  CHECK_FALSE(not_object.has("a"));
  CHECK_FALSE(not_object.integer("a", Need::kRequired, 0, 1));
  CHECK(not_object.status().message() == "config.a is required");
}

TEST_CASE("FieldReader reads nested objects, arrays of strings and fractional numbers") {
  json j = json::parse(
      R"({"record":{"name":"a","ttl":-5,"odd":1},"value":"x","names":["a",3,"bb"],"ok":["a"],
          "notes":"a","rate":0.5,"far":2e6,"text":"1"})");
  FieldReader r(j, "config.");
  const json* record = r.object("record", Need::kRequired, "must be an object");
  REQUIRE(record);
  {
    FieldReader rec(r, *record, "record");
    rec.reject_unknown({"name", "ttl"}, "is not a field of a record");
    CHECK(rec.string("name", Need::kRequired, "must be a string") == "a");
    CHECK_FALSE(rec.integer("ttl", Need::kOptional, 0, 10, "must be 0 to 10 seconds"));
    CHECK_FALSE(rec.string("type", Need::kRequired, "must be a string"));
  }
  CHECK_FALSE(r.object("value", Need::kRequired, "must be an object"));
  CHECK_FALSE(r.object("absent", Need::kRequired, "must be an object", "is required ({...})"));
  CHECK_FALSE(r.strings("names", Need::kRequired, "must be a list", "must be a short string",
                        [](const std::string& s) { return s.size() < 2; }));
  CHECK(r.strings("ok", Need::kRequired, "must be a list", "must be a string") ==
        std::vector<std::string>{"a"});
  CHECK_FALSE(r.strings("notes", Need::kOptional, "must be a list", "must be a string"));
  CHECK(r.number("rate", Need::kRequired, 0, 1e6, "must be 0 to 1000000") == 0.5);
  CHECK_FALSE(r.number("far", Need::kRequired, 0, 1e6, "must be 0 to 1000000"));
  CHECK_FALSE(r.number("text", Need::kRequired, 0, 1e6, "must be 0 to 1000000"));

  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& e : r.errors()) got.emplace_back(e.field, e.message);
  CHECK(got == std::vector<std::pair<std::string, std::string>>{
                   {"config.record.odd", "is not a field of a record"},
                   {"config.record.ttl", "must be 0 to 10 seconds"},
                   {"config.record.type", "is required"},
                   {"config.value", "must be an object"},
                   {"config.absent", "is required ({...})"},
                   {"config.names[1]", "must be a short string (got 3)"},
                   {"config.names[2]", "must be a short string (got \"bb\")"},
                   {"config.notes", "must be a list"},
                   {"config.far", "must be 0 to 1000000"},
                   {"config.text", "must be 0 to 1000000"},
               });
  CHECK(r.status().message() == "config.record.odd is not a field of a record (and 9 more)");
}
