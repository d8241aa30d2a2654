// The request log's capture (trigger/request_record.h) and what a rule compared
// (RuleSet::explain): secrets out, bounds held, UTF-8 cut whole.
#include "request_record.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rules.h"
#include "tests/support/fake_request.h"

using namespace tripline;
using nlohmann::json;

TEST_CASE("request record: secret headers are redacted, others kept in order") {
  test::FakeRequest req;
  req.body_ = R"({"severity":"warning"})";
  req.headers_ = {{"Content-Type", "application/json"}, {"Authorization", "Bearer s3cret-bearer"},
                  {"X-Tripline-Token", "tok.en.value"}, {"X-Hub-Signature-256", "sha256=abcdef"},
                  {"webhook-signature", "v1,xyz"},      {"Cookie", "session=c00kie"},
                  {"X-Custom-Api-Key", "k3y"},          {"X-GitHub-Event", "push"}};
  RequestLogRow row = capture_request(req, "10.0.0.7", 3, 1234);
  CHECK(row.receiver_id == 3);
  CHECK(row.received_at == 1234);
  CHECK(row.source == "10.0.0.7");
  CHECK(row.method == "POST");
  CHECK(row.body == req.body_);
  CHECK_FALSE(row.body_truncated);
  json headers = json::parse(row.headers);
  REQUIRE(headers.size() == 8);
  CHECK(headers[0] == json({"Content-Type", "application/json"}));
  CHECK(headers[7] == json({"X-GitHub-Event", "push"}));
  for (int i = 1; i <= 6; ++i) CHECK(headers[i][1] == "[redacted]");
  for (const char* secret : {"s3cret-bearer", "tok.en.value", "abcdef", "xyz", "c00kie", "k3y"})
    CHECK(row.headers.find(secret) == std::string::npos);
}

TEST_CASE("request record: the body is cut at 4096 bytes on a UTF-8 boundary") {
  test::FakeRequest req;
  // 4095 ASCII bytes, then a 3-byte character straddling the limit.
  req.body_ = std::string(4095, 'a') + "\xE2\x82\xAC" + "tail";
  RequestLogRow row = capture_request(req, "::1", 1, 0);
  CHECK(row.body == std::string(4095, 'a'));
  CHECK(row.body_truncated);
  CHECK(row.body_size == 4095 + 3 + 4);
  CHECK(utf8_prefix("ab\xC3\xA9", 3) == "ab");
  CHECK(utf8_prefix("ab\xC3\xA9", 4) == "ab\xC3\xA9");
  CHECK(utf8_prefix("abc", 10) == "abc");
  CHECK(utf8_prefix("\xF0\x9F\x98\x80x", 3).empty());
}

TEST_CASE("request record: headers are bounded") {
  test::FakeRequest req;
  for (int i = 0; i < 200; ++i)
    req.headers_.emplace_back("X-H" + std::to_string(i), std::string(100, 'v'));
  RequestLogRow row = capture_request(req, "::1", 1, 0);
  CHECK(row.headers.size() < kRequestLogHeaderBytes + 1024);
  json headers = json::parse(row.headers);
  CHECK(headers.back()[0] == "");
  CHECK(headers.back()[1].get<std::string>().find("more headers not kept") != std::string::npos);
}

TEST_CASE("rules explain: what the deciding rule compared, secrets redacted") {
  auto rules = RuleSet::compile(
      {{"rules",
        {{{"name", "not critical"},
          {"when",
           {{"all",
             {{{"field", "body:severity"}, {"op", "not_equals"}, {"value", "critical"}},
              {{"field", "header:X-Api-Token"}, {"op", "exists"}}}}}},
          {"then", "ignore"}}}}});
  REQUIRE(rules.ok());
  test::FakeRequest req;
  req.headers_ = {{"X-Api-Token", "very-secret"}};
  json body = {{"severity", "warning"}};
  RuleInput in{req, body, "10.0.0.1"};
  Decision d = (*rules)->evaluate(in);
  REQUIRE_FALSE(d.run);
  json compared = (*rules)->explain(in, d.rule_index);
  REQUIRE(compared.size() == 2);
  CHECK(compared[0] == json({{"rule", 0},
                             {"field", "body:severity"},
                             {"op", "not_equals"},
                             {"value", "critical"},
                             {"actual", "warning"},
                             {"matched", true}}));
  CHECK(compared[1]["actual"] == "[redacted]");
  CHECK(compared.dump().find("very-secret") == std::string::npos);
}
