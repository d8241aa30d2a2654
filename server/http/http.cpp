#include "http.h"

#include <nlohmann/json.hpp>

namespace tripline {

using nlohmann::json;

HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            const std::vector<FieldError>& fields) {
  json body = {{"error", code}, {"message", message}};
  if (!fields.empty()) {
    json list = json::array();
    for (const auto& f : fields) list.push_back({{"field", f.field}, {"message", f.message}});
    body["fields"] = std::move(list);
  }
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

}  // namespace tripline
