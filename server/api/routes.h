// Every management API route and the least role that may call it, in one table
// (routes.cpp). App::api() looks every request up here before any handler runs: a route missing
// from the table answers 404 (or 405, naming the methods the table lists), so none can be added
// without a role. docs/security.md "Roles" explains the roles; ctest "openapi" checks the table
// against docs/openapi.yaml both ways, and the integration test "every route, every role" calls
// each row with each role.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store.h"

namespace tripline {

struct ApiRoute {
  const char* method;  // GET, POST, PUT, DELETE
  const char* path;    // "/api/v1/receivers/{id}": a {name} matches one segment
  // Non-null: the row applies only when the request's query has this name=value (a PUT with
  // dry_run=true changes nothing, so an operator may send it).
  const char* query;
  Role role;  // the least role that may call it
};

const std::vector<ApiRoute>& api_routes();

// What the table says of a request. `segments`: the whole path split on '/'.
struct RouteMatch {
  const ApiRoute* route = nullptr;  // null: no row for this method (see allow) or path
  std::string allow;                // the methods the path has, "GET, POST"; empty: no such path
};
RouteMatch match_route(std::string_view method, const std::vector<std::string_view>& segments,
                       const std::function<std::optional<std::string>(std::string_view)>& query);

}  // namespace tripline
