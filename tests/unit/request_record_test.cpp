// The request log's capture (trigger/request_record.h) and what a rule compared
// (RuleSet::explain): secrets out, bounds held, UTF-8 cut whole.
#include "request_record.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

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
  RequestLogRow row = capture_request(req, "10.0.0.7", 3, 1234, "");
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

TEST_CASE("request record: which header names are secret") {
  for (const char* name : {"Authorization", "X-Amz-Security-Token", "X-Goog-IAP-JWT-Assertion",
                           "X-Client-Assertion", "X-OIDC-Id", "X-Hmac-Sha256", "X-Functions-Key",
                           "Ocp-Apim-Subscription-Key", "x-api-key", "X-Webhook-Secret", "Cookie"})
    CHECK(is_secret_header(name));
  for (const char* name : {"Content-Type", "X-GitHub-Event", "User-Agent", "X-Keyboard-Layout",
                           "Referer", "X-Request-Id"})
    CHECK_FALSE(is_secret_header(name));
}

TEST_CASE("request record: the trigger token is taken out of the body and header values") {
  const std::string token = "eyJ2IjoxLCJyIjo3fQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
  const std::string url = "https://tripline.example/_webhooks/" + token;
  test::FakeRequest req;
  // GitHub's ping: the hook's config holds the trigger URL.
  req.body_ = R"({"zen":"Keep it simple.","hook":{"config":{"url":")" + url + R"("}}})";
  req.headers_ = {{"Referer", url},
                  {"X-Original-URI", "/_webhooks/" + token + "?x=1"},
                  {"X-Forwarded-Uri", "/_webhooks/" + token},
                  {"X-Envoy-Original-Path", "/_webhooks/" + token},
                  {"X-GitHub-Event", "ping"}};
  RequestLogRow row = capture_request(req, "::1", 1, 0, token);
  CHECK(row.token_redacted);
  CHECK(row.body.find(token) == std::string::npos);
  CHECK(row.headers.find(token) == std::string::npos);
  CHECK(row.body.find("_webhooks/[redacted]") != std::string::npos);
  json headers = json::parse(row.headers);
  CHECK(headers[0] == json({"Referer", "https://tripline.example/_webhooks/[redacted]"}));
  CHECK(headers[1][1] == "/_webhooks/[redacted]?x=1");
  CHECK(headers[4] == json({"X-GitHub-Event", "ping"}));
  CHECK(row.body_size == static_cast<int64_t>(req.body_.size()));

  // A token straddling the 4096-byte cut leaves no part of itself at the end.
  req.headers_.clear();
  req.body_ = std::string(4096 - 10, 'a') + token + "tail";
  row = capture_request(req, "::1", 1, 0, token);
  CHECK(row.token_redacted);
  CHECK(row.body == std::string(4086, 'a') + "[redacted]");
  CHECK(row.body.find(token.substr(0, 8)) == std::string::npos);

  // Nothing to take out: not marked. And an empty token takes out nothing.
  req.body_ = "{}";
  CHECK_FALSE(capture_request(req, "::1", 1, 0, token).token_redacted);
  CHECK_FALSE(capture_request(req, "::1", 1, 0, "").token_redacted);

  // In a decision's detail (a rule compared a body field holding the URL), keys and values.
  json detail = {{"compared", {{{"field", "body:hook.config.url"}, {"actual", url}}}}, {token, 1}};
  CHECK(redact_token(detail, token));
  CHECK(detail.dump().find(token) == std::string::npos);
  CHECK(detail["compared"][0]["actual"] == "https://tripline.example/_webhooks/[redacted]");
  CHECK_FALSE(redact_token(detail, token));
  // A detail without the token is left as it was.
  json plain = {{"reason", "rule"}, {"compared", {{{"field", "body:a"}, {"actual", "x"}}}}};
  const json copy = plain;
  CHECK_FALSE(redact_token(plain, token));
  CHECK(plain == copy);
}

TEST_CASE("request record: the trigger token percent-encoded is taken out too") {
  const std::string token = "eyJ2IjoxLCJyIjo3fQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";
  const std::string head = token.substr(0, 18), tail = token.substr(19);  // around the '.'
  test::FakeRequest req;
  // '.' as %2E and %2e, a letter as %63 ('c') and %6A/%6a ('j'), and encoded twice (%252E).
  const std::string upper = head + "%2E" + tail;
  const std::string lower = head + "%2e" + tail;
  const std::string letters = "ey%4A" + token.substr(3, 15) + "%2e%63" + tail.substr(1);
  const std::string twice = head + "%252E" + tail;
  req.headers_ = {{"Referer", "https://ci.example/?next=%2F_webhooks%2F" + upper},
                  {"X-Original-URI", "/_webhooks/" + lower},
                  {"X-Forwarded-Uri", "/x?u=" + twice},
                  {"X-GitHub-Event", "ping"}};
  req.body_ = R"({"url":"https%3A%2F%2Ft%2F_webhooks%2F)" + letters + R"(","n":1})";
  RequestLogRow row = capture_request(req, "::1", 1, 0, token);
  CHECK(row.token_redacted);
  for (const std::string& form : {token, upper, lower, letters, twice, head, tail}) {
    CHECK(row.headers.find(form) == std::string::npos);
    CHECK(row.body.find(form) == std::string::npos);
  }
  json headers = json::parse(row.headers);
  CHECK(headers[0][1] == "https://ci.example/?next=%2F_webhooks%2F[redacted]");
  CHECK(headers[1][1] == "/_webhooks/[redacted]");
  CHECK(headers[2][1] == "/x?u=[redacted]");
  CHECK(row.body == R"({"url":"https%3A%2F%2Ft%2F_webhooks%2F[redacted]","n":1})");

  // Percent-encodings that spell something else are left alone, and so is a token cut short.
  std::string s = head + "%2F" + tail + " " + token.substr(0, 30) + "%2";
  const std::string before = s;
  CHECK_FALSE(redact_token(s, token));
  CHECK(s == before);
  // In a decision's detail too.
  json detail = {{"compared", {{{"field", "header:Referer"}, {"actual", "/h/" + lower}}}}};
  CHECK(redact_token(detail, token));
  CHECK(detail["compared"][0]["actual"] == "/h/[redacted]");
  // An encoded token straddling the 4096-byte cut leaves no part of itself.
  req.headers_.clear();
  req.body_ = std::string(4090, 'a') + upper + "tail";
  row = capture_request(req, "::1", 1, 0, token);
  CHECK(row.body == std::string(4090, 'a') + "[redac");
  CHECK(row.body_truncated);
}

TEST_CASE("request record: the body is cut at 4096 bytes on a UTF-8 boundary") {
  test::FakeRequest req;
  // 4095 ASCII bytes, then a 3-byte character straddling the limit.
  req.body_ = std::string(4095, 'a') + "\xE2\x82\xAC" + "tail";
  RequestLogRow row = capture_request(req, "::1", 1, 0, "");
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
  RequestLogRow row = capture_request(req, "::1", 1, 0, "");
  CHECK(row.headers.size() < kRequestLogHeaderBytes + 1024);
  json headers = json::parse(row.headers);
  CHECK(headers.back()[0] == "");
  CHECK(headers.back()[1].get<std::string>().find("more headers not kept") != std::string::npos);
}

namespace {
// The capture as it was first written, one byte at a time and through nlohmann's tree: the
// reference the fast capture (runs between candidate bytes, headers' JSON written directly) must
// match exactly.
bool reference_redact(std::string& s, std::string_view token) {
  if (token.empty()) return false;
  std::string out;
  bool found = false;
  for (size_t i = 0; i < s.size();) {
    // The token with each character as itself or percent-encoded once or twice.
    size_t at = i;
    bool match = true;
    for (char want : token) {
      auto hex = [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) ? std::stoi(std::string(1, c), 0, 16)
                                                            : -1;
      };
      if (at < s.size() && s[at] == want) {
        ++at;
        continue;
      }
      size_t p = at + 1;
      if (at >= s.size() || s[at] != '%') {
        match = false;
        break;
      }
      if (s.size() - p >= 4 && s[p] == '2' && s[p + 1] == '5' && hex(s[p + 2]) >= 0 &&
          hex(s[p + 3]) >= 0)
        p += 2;
      if (s.size() - p < 2 || hex(s[p]) < 0 || hex(s[p + 1]) < 0 ||
          hex(s[p]) * 16 + hex(s[p + 1]) != static_cast<unsigned char>(want)) {
        match = false;
        break;
      }
      at = p + 2;
    }
    if (match) {
      out += "[redacted]";
      i = at;
      found = true;
    } else {
      out += s[i++];
    }
  }
  s = out;
  return found;
}
}  // namespace

TEST_CASE("request record: the fast capture writes what a byte-at-a-time capture writes") {
  // Random headers and bodies from an alphabet rich in what the capture treats specially: the
  // token's characters, '%', hex digits, quotes, backslashes, control bytes and UTF-8 pieces.
  const std::string token = "eyJ2Ijo";
  const std::vector<std::string> pieces = {
      // The token whole, or with characters percent-encoded (once, twice), or nearly whole.
      "eyJ2Ijo",  "%65yJ2Ijo", "e%79J2I%6Ao", "%2565yJ2Ij%6f",
      "eyJ2I%6",  "e",         "eyJ",         "%65",
      "%2565",    "%",         "%2",          "%25",
      "y",        "J",         "2",           "I",
      "j",        "o",         "a",           " ",
      "\"",       "\\",        "\x01",        "\x7F",
      "\xC3\xA9", "\xE2\x82",  "\xFF",        "f",
      "F",        "0"};
  std::mt19937 rng(20261130);
  auto text = [&](size_t max_pieces) {
    std::string s;
    size_t n = rng() % (max_pieces + 1);
    for (size_t i = 0; i < n; ++i) s += pieces[rng() % pieces.size()];
    return s;
  };
  for (int round = 0; round < 3000; ++round) {
    test::FakeRequest req;
    size_t headers = rng() % 6;
    for (size_t i = 0; i < headers; ++i)
      req.headers_.emplace_back(rng() % 4 == 0 ? "Authorization" : "X-" + text(3), text(12));
    req.body_ = text(rng() % 8 == 0 ? 3000 : 40);
    std::string tok = rng() % 5 == 0 ? "" : token;
    RequestLogRow row = capture_request(req, "::1", 1, 0, tok);

    json expected = json::array();
    bool redacted = false;
    size_t bytes = 0;
    for (auto [name, value] : req.headers_) {
      bool secret = is_secret_header(name);
      redacted |= reference_redact(name, tok);
      if (!secret) redacted |= reference_redact(value, tok);
      size_t size = name.size() + (secret ? 10 : value.size()) + 8;
      if (bytes + size > kRequestLogHeaderBytes) continue;
      bytes += size;
      expected.push_back({name, secret ? std::string("[redacted]") : value});
    }
    INFO("round " << round);
    CHECK(row.headers == expected.dump(-1, ' ', false, json::error_handler_t::replace));
    std::string body = req.body_;
    redacted |= reference_redact(body, tok);
    if (tok.empty()) body = req.body_;
    CHECK(row.body == std::string(utf8_prefix(body, kRequestLogBodyBytes)));
    CHECK(row.token_redacted == redacted);
  }
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

TEST_CASE("rules explain: query values are never shown, sent or written in the rule") {
  auto rules = RuleSet::compile(
      {{"rules",
        {{{"name", "wrong key"},
          {"when",
           {{"all",
             {{{"field", "query:token"}, {"op", "not_equals"}, {"value", "rule-held-secret"}},
              {{"field", "query:missing"}, {"op", "exists"}, {"value", false}}}}}},
          {"then", "ignore"}}}}});
  REQUIRE(rules.ok());
  test::FakeRequest req;
  req.query_ = {{"token", "sent-query-secret"}};
  json body = json::object();
  RuleInput in{req, body, "10.0.0.1"};
  Decision d = (*rules)->evaluate(in);
  REQUIRE_FALSE(d.run);
  json compared = (*rules)->explain(in, d.rule_index);
  REQUIRE(compared.size() == 2);
  CHECK(compared[0]["actual"] == "[redacted]");
  CHECK(compared[0]["value"] == "[redacted]");
  CHECK(compared[0]["matched"] == true);
  CHECK(compared[1]["actual"].is_null());  // absent: shown as absent
  CHECK(compared[1]["value"] == false);
  std::string text = compared.dump();
  CHECK(text.find("sent-query-secret") == std::string::npos);
  CHECK(text.find("rule-held-secret") == std::string::npos);
}

TEST_CASE("rules explain: the trigger token is taken out of a compared value before it is cut") {
  // A value over 256 characters is cut: taken out after the cut, most of the token would stay.
  const std::string token = std::string(200, 't') + "." + std::string(100, 's');
  const std::string url = "https://tripline.example/_webhooks/" + token;
  auto rules = RuleSet::compile(
      {{"rules",
        {{{"name", "pings"},
          {"when", {{"field", "body:hook.config.url"}, {"op", "not_equals"}, {"value", "x"}}},
          {"then", "ignore"}}}}});
  REQUIRE(rules.ok());
  test::FakeRequest req;
  json body = {{"hook", {{"config", {{"url", url}}}}}};
  RuleInput in{req, body, "10.0.0.1", nullptr, token};
  Decision d = (*rules)->evaluate(in);
  REQUIRE_FALSE(d.run);
  json compared = (*rules)->explain(in, d.rule_index);
  REQUIRE(compared.size() == 1);
  CHECK(compared[0]["actual"] == "https://tripline.example/_webhooks/[redacted]");
  CHECK(compared.dump().find(std::string(50, 't')) == std::string::npos);
}
