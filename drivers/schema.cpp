#include "schema.h"

namespace tripline {

std::vector<std::string> schema_fields_marked(const Driver& driver, const std::string& annotation) {
  std::vector<std::string> out;
  auto schema = driver.config_schema();
  if (auto props = schema.find("properties"); props != schema.end() && props->is_object())
    for (const auto& [name, prop] : props->items())
      if (prop.is_object() && prop.value(annotation, false)) out.push_back(name);
  return out;
}

std::vector<std::string> secret_fields(const Driver& driver) {
  return schema_fields_marked(driver, "writeOnly");
}

}  // namespace tripline
