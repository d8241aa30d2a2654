#include "rules.h"

#include <catch2/catch.hpp>

#include "../support/fake_request.h"
#include "json_limits.h"

using namespace tripline;
using nlohmann::json;
using tripline::test::FakeRequest;

namespace {
std::shared_ptr<const RuleSet> compile(const char* text) {
  auto r = RuleSet::compile(json::parse(text));
  INFO(r.status().message());
  REQUIRE(r.ok());
  return *r;
}
Decision eval(const RuleSet& rs, FakeRequest& req, const std::string& source = "127.0.0.1") {
  json body = parse_body_json(req.body_);
  return rs.evaluate(RuleInput{req, body, source});
}
bool matches(const char* condition, FakeRequest& req, const std::string& source = "127.0.0.1") {
  auto rs = compile(
      (std::string(R"({"default":"ignore","rules":[{"when":)") + condition + "}]}").c_str());
  return eval(*rs, req, source).run;
}
}  // namespace

TEST_CASE("rules: every operator on body, header, query, method and source") {
  FakeRequest req;
  req.body_ =
      R"({"status":"firing","count":7,"alerts":[{"labels":{"severity":"critical"}}],"ref":"refs/heads/main","n":"12"})";
  req.headers_ = {{"X-GitHub-Event", "push"}};
  req.query_ = {{"env", "prod"}};
  CHECK(matches(R"({"field":"body:/status","op":"equals","value":"firing"})", req));
  CHECK_FALSE(matches(R"({"field":"body:/status","op":"equals","value":"resolved"})", req));
  CHECK(matches(R"({"field":"body:status","op":"not_equals","value":"resolved"})", req));
  CHECK(matches(
      R"({"field":"body:alerts[0].labels.severity","op":"in","value":["critical","page"]})", req));
  CHECK(matches(R"({"field":"body:/alerts/0/labels/severity","op":"regex","value":"^crit"})", req));
  CHECK_FALSE(matches(R"({"field":"body:/count","op":"regex","value":"7"})", req));  // not a string
  CHECK(matches(R"({"field":"body:/alerts/0/labels","op":"exists"})", req));
  CHECK(matches(R"({"field":"body:/nope","op":"exists","value":false})", req));
  CHECK(matches(R"({"field":"body:/count","op":"gt","value":6})", req));
  CHECK(matches(R"({"field":"body:/count","op":"gte","value":7})", req));
  CHECK(matches(R"({"field":"body:/count","op":"lt","value":7.5})", req));
  CHECK_FALSE(matches(R"({"field":"body:/count","op":"lte","value":6})", req));
  CHECK(matches(R"({"field":"body:/n","op":"gt","value":11})",
                req));  // numeric strings compare as numbers
  CHECK(matches(R"({"field":"header:x-github-event","op":"equals","value":"push"})", req));
  CHECK(matches(R"({"field":"query:env","op":"equals","value":"prod"})", req));
  CHECK(matches(R"({"field":"method","op":"equals","value":"POST"})", req));
  CHECK(matches(R"({"field":"source","op":"cidr","value":["10.0.0.0/8","127.0.0.0/8"]})", req));
  CHECK_FALSE(matches(R"({"field":"source","op":"cidr","value":"10.0.0.0/8"})", req));
  CHECK_FALSE(matches(R"({"field":"body:/alerts/5/labels","op":"exists"})", req));
  CHECK_FALSE(matches(R"({"field":"body:/alerts/x","op":"exists"})", req));
}

TEST_CASE("rules: all, any and not nest") {
  FakeRequest req;
  req.body_ = R"({"a":1,"b":2})";
  CHECK(matches(
      R"({"all":[{"field":"body:a","value":1},{"any":[{"field":"body:b","value":3},{"not":{"field":"body:b","value":5}}]}]})",
      req));
  CHECK_FALSE(matches(
      R"({"all":[{"field":"body:a","value":1},{"not":{"field":"body:b","value":2}}]})", req));
  CHECK_FALSE(
      matches(R"({"any":[{"field":"body:a","value":9},{"field":"body:b","value":9}]})", req));
}

TEST_CASE("rules: the first matching rule decides, otherwise the default") {
  auto rs = compile(R"({"default":"ignore","rules":[
      {"name":"skip tests","when":{"field":"body:/env","value":"test"},"then":"ignore"},
      {"name":"prod","when":{"field":"body:/env","value":"prod"},"then":"run","set":{"action":"down"}},
      {"when":{"field":"body:/env","value":"prod"},"then":"ignore"}]})");
  FakeRequest req;
  req.body_ = R"({"env":"prod"})";
  auto d = eval(*rs, req);
  CHECK(d.run);
  CHECK(d.rule_index == 1);
  CHECK(d.set == json{{"action", "down"}});
  req.body_ = R"({"env":"test"})";
  d = eval(*rs, req);
  CHECK_FALSE(d.run);
  CHECK(d.rule_name == "skip tests");
  req.body_ = R"({"env":"dev"})";
  d = eval(*rs, req);
  CHECK_FALSE(d.run);
  CHECK(d.rule_index == -1);
}

TEST_CASE("rules: set takes values from the request, and a missing one is an error") {
  auto rs = compile(
      R"({"rules":[{"set":{"by":{"from_request":"body:/commonAnnotations/scale_by"},"action":"up"}}]})");
  FakeRequest req;
  req.body_ = R"({"commonAnnotations":{"scale_by":3}})";
  auto d = eval(*rs, req);
  CHECK(d.set == json{{"by", 3}, {"action", "up"}});
  req.body_ = R"({})";
  d = eval(*rs, req);
  CHECK_FALSE(d.error.ok());
  CHECK(d.error.fields().at(0).field == "rules.rules[0].set.by");
}

TEST_CASE("rules: bad rules are refused with the rule's index and the reason") {
  auto field_of = [](const char* text) {
    auto r = RuleSet::compile(json::parse(text));
    REQUIRE_FALSE(r.ok());
    return r.status().fields().at(0).field;
  };
  CHECK(
      field_of(
          R"({"rules":[{"then":"run"},{"when":{"field":"body:/a","op":"regex","value":"(unclosed"}}]})") ==
      "rules.rules[1].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"bogus:x","value":1}}]})") == "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"body:a..b","value":1}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"body:/a","op":"gt","value":"ten"}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"body:/a","op":"in","value":"x"}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"source","op":"cidr","value":"300.0.0.0/8"}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"body:/a","op":"like","value":"x"}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"all":[]}}]})") == "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"when":{"field":"body:/a","value":1,"extra":2}}]})") ==
        "rules.rules[0].when");
  CHECK(field_of(R"({"rules":[{"then":"maybe"}]})") == "rules.rules[0].then");
  CHECK(field_of(R"({"rules":[{"then":"ignore","set":{"a":1}}]})") == "rules.rules[0].set");
  CHECK(field_of(R"({"rules":[{"colour":"red"}]})") == "rules.rules[0].colour");
  CHECK(field_of(R"({"colour":"red"})") == "rules.colour");
  CHECK(field_of(R"({"on_resolved":"inverse"})") == "rules.on_resolved");
  CHECK(field_of(R"({"ignore_status":500})") == "rules.ignore_status");
  std::string deep = R"({"field":"body:/a","value":1})";
  for (int i = 0; i < 20; ++i) deep = R"({"not":)" + deep + "}";
  CHECK(
      field_of((R"({"rules":[{"when":)" + deep + "}]}").c_str()).rfind("rules.rules[0].when", 0) ==
      0);
}

TEST_CASE("rules: every bad field is reported, the first one in the message") {
  auto r = RuleSet::compile(json::parse(
      R"({"default":"maybe","ignore_status":302,"rules":[{"then":"run","set":{"a":{"from_request":1,"b":2}}},
          {"name":3,"when":{"field":"body:/a","op":"like","value":"x"}},"run"]})"));
  REQUIRE_FALSE(r.ok());
  const Status s = r.status();
  CHECK(s.message() == "rules.default must be run or ignore (and 5 more)");
  std::vector<std::string> fields;
  for (const auto& f : s.fields()) fields.push_back(f.field);
  CHECK(fields == std::vector<std::string>{"rules.default", "rules.ignore_status",
                                           "rules.rules[0].set.a", "rules.rules[1].name",
                                           "rules.rules[1].when", "rules.rules[2]"});
}

TEST_CASE("rules: a catastrophic-backtracking pattern runs in linear time (RE2)") {
  FakeRequest req;
  req.body_ = R"({"s":")" + std::string(20000, 'a') + R"(!"})";
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(matches(R"({"field":"body:/s","op":"regex","value":"^(a+)+$"})", req));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("rules: deeply nested or invalid JSON bodies are treated as no body") {
  CHECK(parse_body_json(std::string(100000, '[')).is_discarded());
  CHECK(parse_body_json("{\"a\":\"\xff\"}").is_discarded());
  CHECK(parse_body_json("not json").is_discarded());
  CHECK(parse_body_json(R"({"a":"[[[["})")["a"] == "[[[[");
  FakeRequest req;
  req.body_ = "garbage";
  CHECK_FALSE(matches(R"({"field":"body:/a","op":"exists"})", req));
}

TEST_CASE("bounded parse: simdjson's documents are nlohmann's, value for value and type for type") {
  // parse_json_bounded reads with simdjson and builds nlohmann values; nlohmann's own parser is
  // the reference. dump() shows number types too (1 and 1.0 compare equal but dump apart).
  auto same = [](const std::string& text) {
    INFO(text);
    json want = json::parse(text, nullptr, false);
    BoundedJson got = parse_json_bounded(text);
    REQUIRE(got.ok() == !want.is_discarded());
    if (!got.ok()) return;
    CHECK(got.value == want);
    CHECK(got.value.dump() == want.dump());
    CHECK(got.value.type() == want.type());
  };
  for (const char* text :
       {R"({"a":1,"b":-1,"c":1.0,"d":1e2,"e":-0,"f":-0.0,"g":0,"h":18446744073709551615})",
        R"({"big":18446744073709551616,"neg":-9223372036854775808,"over":-9223372036854775809})",
        R"({"k":1,"k":2})",
        R"([true,false,null,"",[],{}])",
        R"("just a string")",
        "42",
        R"({"esc":"\u0026\u003c\n\t\"\\\/","pair":"\ud83d\ude00"})",
        R"({"lone":"\ud800"})",
        R"({"low":"\udc00x"})",
        R"({"bad":"\ud800\u0041"})",
        "{\"ctl\":\"\x01\"}",
        "{\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        "{\"bad\":\"\xed\xa0\x80\"}",
        R"({"a":[1,2,{"b":[3,{"c":null}]}]})",
        "[1,]",
        "{\"a\":1} x",
        " {\"a\" : 1 } ",
        "1e400",
        "-1e-400",
        "0.1",
        "123456789012345678901234567890",
        "1.7976931348623157e308",
        "4.9e-324",
        "[0.30000000000000004]"})
    same(text);
  // Past the per-thread parser's 64 KiB: a parser of its own, the same answer.
  std::string big = "{\"pad\":\"" + std::string(100000, 'x') + "\",\"n\":[1,2,3]}";
  same(big);
  CHECK(parse_json_bounded(big).value["n"][2] == 3);
  // The nesting limit holds for both paths.
  CHECK(parse_json_bounded(std::string(65, '[') + std::string(65, ']')).error ==
        BoundedJson::Error::kTooDeep);
  same(std::string(64, '[') + std::string(64, ']'));
}

TEST_CASE("LazyBody parses on first use, once, within the request limits") {
  std::string text = R"({"a":[1,2]})";
  LazyBody body(text);
  CHECK_FALSE(body.was_parsed());
  CHECK(body.text() == text);
  const BoundedJson& first = body.parsed();
  CHECK(body.was_parsed());
  CHECK(first.ok());
  CHECK(first.value["a"][1] == 2);
  CHECK(&body.parsed() == &first);  // the same parse, not a second one

  CHECK(LazyBody(std::string(kMaxJsonDepth + 1, '[')).parsed().error ==
        BoundedJson::Error::kTooDeep);
  CHECK(LazyBody(std::string(kMaxJsonBytes + 1, ' ')).parsed().error ==
        BoundedJson::Error::kTooLarge);
  CHECK(LazyBody("{\"a\":1}\0x").parsed().ok());  // a C string ends at its NUL
  CHECK(LazyBody(std::string_view("{}\0", 3)).parsed().error == BoundedJson::Error::kNotJson);
}

TEST_CASE("alertmanager: payload check and a dedupe key stable under re-sends") {
  json firing = json::parse(
      R"({"version":"4","status":"firing","groupKey":"{}:{alertname=\"Hi\"}","receiver":"t",
    "alerts":[{"status":"firing","fingerprint":"a1","startsAt":"2026-11-23T04:00:00Z"},
              {"status":"firing","fingerprint":"b2","startsAt":"2026-11-23T04:00:01Z"}]})");
  CHECK(is_alertmanager_payload(firing));
  CHECK_FALSE(is_alertmanager_payload(json::parse(R"({"status":"firing"})")));
  json reordered = firing;
  std::swap(reordered["alerts"][0], reordered["alerts"][1]);
  reordered["receiver"] = "other";  // not part of the key
  CHECK(alertmanager_key(firing) == alertmanager_key(reordered));
  json resolved = firing;
  resolved["status"] = "resolved";
  CHECK(alertmanager_key(firing) != alertmanager_key(resolved));
  json refired = firing;
  refired["alerts"][0]["startsAt"] = "2026-11-23T05:00:00Z";
  CHECK(alertmanager_key(firing) != alertmanager_key(refired));
}
