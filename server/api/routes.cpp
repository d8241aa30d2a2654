#include "routes.h"

#include <algorithm>

#include "responses.h"

namespace tripline {

namespace {
constexpr Role kReadOnly = Role::kReadOnly;
constexpr Role kOperator = Role::kOperator;
constexpr Role kAdmin = Role::kAdmin;
}  // namespace

// One row per route (docs/security.md "Roles"). A row with a query comes before the row of the
// same route without it. Operator: reads, plus acts that change no configuration and grant no
// access: a dry run, testing rules, enable and disable, re-running, cancelling and re-sending,
// pausing the workers. Who holds which access (tokens) and what was changed (audit) is for
// operators and admins; a read-only token (a dashboard) sees receivers, executions, deliveries,
// the request log and workers, and of the peers' health only names and states. Listing a
// driver's targets (every service of the swarm, not only those a receiver acts on) is for the
// ones who fill in receivers' forms: operators (dry runs) and admins.
const std::vector<ApiRoute>& api_routes() {
  static const std::vector<ApiRoute> routes = {
      {"GET", "/api/v1/receivers", nullptr, kReadOnly},
      {"POST", "/api/v1/receivers", nullptr, kAdmin},
      {"GET", "/api/v1/receivers/{id}", nullptr, kReadOnly},
      {"PUT", "/api/v1/receivers/{id}", "dry_run=true", kOperator},
      {"PUT", "/api/v1/receivers/{id}", nullptr, kAdmin},
      {"DELETE", "/api/v1/receivers/{id}", nullptr, kAdmin},
      {"POST", "/api/v1/receivers/{id}/enable", nullptr, kOperator},
      {"POST", "/api/v1/receivers/{id}/disable", nullptr, kOperator},
      {"POST", "/api/v1/receivers/{id}/rotate", nullptr, kAdmin},
      {"POST", "/api/v1/receivers/{id}/test", nullptr, kOperator},
      {"POST", "/api/v1/receivers/{id}/rules/test", nullptr, kOperator},
      {"POST", "/api/v1/rules/test", nullptr, kOperator},
      {"GET", "/api/v1/receivers/{id}/notifications", nullptr, kReadOnly},
      {"POST", "/api/v1/receivers/{id}/notifications", nullptr, kAdmin},
      {"GET", "/api/v1/receivers/{id}/notifications/{sid}", nullptr, kReadOnly},
      {"PUT", "/api/v1/receivers/{id}/notifications/{sid}", nullptr, kAdmin},
      {"DELETE", "/api/v1/receivers/{id}/notifications/{sid}", nullptr, kAdmin},
      {"GET", "/api/v1/receivers/{id}/deliveries", nullptr, kReadOnly},
      {"GET", "/api/v1/receivers/{id}/deliveries/{did}", nullptr, kReadOnly},
      {"POST", "/api/v1/receivers/{id}/deliveries/{did}/redeliver", nullptr, kOperator},
      {"GET", "/api/v1/receivers/{id}/requests", nullptr, kReadOnly},
      {"GET", "/api/v1/receivers/{id}/requests/{rid}", nullptr, kReadOnly},
      {"POST", "/api/v1/receivers/{id}/requests/{rid}/redeliver", nullptr, kOperator},
      {"GET", "/api/v1/executions", nullptr, kReadOnly},
      {"GET", "/api/v1/executions/{id}", nullptr, kReadOnly},
      {"POST", "/api/v1/executions/{id}/retry", nullptr, kOperator},
      {"POST", "/api/v1/executions/{id}/cancel", nullptr, kOperator},
      {"GET", "/api/v1/tokens", nullptr, kOperator},
      {"POST", "/api/v1/tokens", nullptr, kAdmin},
      {"PUT", "/api/v1/tokens/{id}", nullptr, kAdmin},
      {"DELETE", "/api/v1/tokens/{id}", nullptr, kAdmin},
      {"GET", "/api/v1/workers", nullptr, kReadOnly},
      {"POST", "/api/v1/workers/pause", nullptr, kOperator},
      {"POST", "/api/v1/workers/resume", nullptr, kOperator},
      {"GET", "/api/v1/drivers", nullptr, kReadOnly},
      {"GET", "/api/v1/drivers/{name}/targets", nullptr, kOperator},
      {"GET", "/api/v1/whoami", nullptr, kReadOnly},
      {"GET", "/api/v1/peers", nullptr, kReadOnly},
      {"GET", "/api/v1/audit", nullptr, kOperator},
  };
  return routes;
}

RouteMatch match_route(std::string_view method, const std::vector<std::string_view>& segments,
                       const std::function<std::optional<std::string>(std::string_view)>& query) {
  RouteMatch out;
  std::vector<std::string> allowed;
  for (const ApiRoute& r : api_routes()) {
    auto pattern = split_path(r.path);
    if (pattern.size() != segments.size()) continue;
    bool same = true;
    for (size_t i = 0; i < pattern.size() && same; ++i)
      same = (!pattern[i].empty() && pattern[i].front() == '{') || pattern[i] == segments[i];
    if (!same) continue;
    if (std::find(allowed.begin(), allowed.end(), r.method) == allowed.end())
      allowed.push_back(r.method);
    if (out.route || method != r.method) continue;
    if (r.query) {
      std::string_view q = r.query;
      auto eq = q.find('=');
      auto value = query(q.substr(0, eq));
      if (!value || *value != q.substr(eq + 1)) continue;
    }
    out.route = &r;
  }
  for (const auto& m : allowed) out.allow += (out.allow.empty() ? "" : ", ") + m;
  return out;
}

}  // namespace tripline
