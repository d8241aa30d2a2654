#include "config.h"

#include <catch2/catch.hpp>

using namespace tripline;
using namespace tripline::scale_service;
using nlohmann::json;

namespace {
json base() {
  return json::parse(R"({"backend":"swarm","service":"web","action":"up","by":2,"min":1,"max":5})");
}
bool has_field(const Status& s, const std::string& field) {
  for (const auto& f : s.fields())
    if (f.field == field) return true;
  return false;
}
}  // namespace

TEST_CASE("scale-service config: the documented example parses") {
  auto c = parse_config(base());
  REQUIRE(c.ok());
  CHECK(c->service == "web");
  CHECK(c->action == Action::kUp);
  CHECK(c->by == 2);
  CHECK(c->min == 1);
  CHECK(c->max == 5);
}

TEST_CASE("scale-service config: each bad field is named") {
  auto check = [](json j, const std::string& field) {
    auto c = parse_config(j);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == Status::Code::kInvalid);
    CHECK(has_field(c.status(), field));
  };
  auto j = base();
  j["min"] = 7;
  check(j, "config.min");
  j = base();
  j["by"] = 0;
  check(j, "config.by");
  j = base();
  j["by"] = 1.5;
  check(j, "config.by");
  j = base();
  j["colour"] = "red";
  check(j, "config.colour");
  j = base();
  j.erase("service");
  check(j, "config.service");
  j = base();
  j["service"] = "bad name!";
  check(j, "config.service");
  j = base();
  j["action"] = "sideways";
  check(j, "config.action");
  j = base();
  j["backend"] = "nomad";
  check(j, "config.backend");
  j = base();
  j.erase("max");
  check(j, "config.max");
  j = base();
  j["max"] = -1;
  check(j, "config.max");
  j = base();
  j["action"] = "set";
  j.erase("by");
  j["replicas"] = 9;
  check(j, "config.replicas");
  check(json::array(), "config");
}

TEST_CASE("scale-service config: desired replicas are clamped and say so") {
  auto c = *parse_config(base());
  CHECK(desired_replicas(c, 3).replicas == 5);
  CHECK_FALSE(desired_replicas(c, 3).clamped);
  CHECK(desired_replicas(c, 4).replicas == 5);
  CHECK(desired_replicas(c, 4).clamped);
  c.action = Action::kDown;
  CHECK(desired_replicas(c, 2).replicas == 1);
  CHECK(desired_replicas(c, 2).clamped);
  c.action = Action::kSet;
  c.replicas = 4;
  CHECK(desired_replicas(c, 1).replicas == 4);
}

TEST_CASE("scale-service config: the JSON schema lists every field the parser accepts") {
  auto schema = config_schema();
  for (const char* f : {"backend", "service", "action", "by", "replicas", "min", "max"})
    CHECK(schema["properties"].contains(f));
  CHECK(schema["additionalProperties"] == false);
}

#include "scale_service.h"

TEST_CASE(
    "scale-service: plan_after chains from the plan before, within the bounds, without the peer") {
  ScaleServiceDriver driver("unix:///nonexistent/docker.sock");  // plan_after does no I/O
  auto config = driver.validate(base(), /*check_peer=*/false);   // up by 2 within [1, 5]
  REQUIRE(config.ok());
  json previous = {{"service", "web"}, {"replicas_before", 1}, {"replicas", 3}, {"clamped", false}};
  auto next = driver.plan_after(**config, previous);
  REQUIRE(next);
  CHECK((*next)["replicas_before"] == 3);
  CHECK((*next)["replicas"] == 5);
  auto last = driver.plan_after(**config, *next);
  REQUIRE(last);
  CHECK((*last)["replicas_before"] == 5);
  CHECK((*last)["replicas"] == 5);  // at the bound
  CHECK((*last)["clamped"] == true);
  CHECK_FALSE(driver.plan_after(**config, json{{"service", "web"}}));  // no replicas: cannot say
}
