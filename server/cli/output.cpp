#include "output.h"

#include <algorithm>

namespace tripline::cli {

std::string printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out.push_back(c < 0x20 || c == 0x7f ? '?' : char(c));
  return out;
}

std::string cell(const nlohmann::json& v, size_t max) {
  std::string text;
  if (v.is_null())
    text = "-";
  else if (v.is_string())
    text = v.get<std::string>();
  else
    text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text = printable(text);
  if (max > 3 && text.size() > max) {
    size_t cut = max - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
    text = text.substr(0, cut) + "...";
  }
  return text.empty() ? "-" : text;
}

namespace {
// Width on a terminal: UTF-8 continuation bytes take no column.
size_t columns(const std::string& s) {
  return size_t(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
}  // namespace

void print_table(FILE* out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = columns(header[i]);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], columns(r[i]));
  auto line = [&](const std::vector<std::string>& r) {
    std::string text;
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      text += r[i];
      if (i + 1 < r.size()) text += std::string(width[i] - columns(r[i]) + 2, ' ');
    }
    std::fprintf(out, "%s\n", text.c_str());
  };
  line(header);
  for (const auto& r : rows) line(r);
}

void print_fields(FILE* out, const std::vector<std::pair<std::string, std::string>>& fields) {
  size_t width = 0;
  for (const auto& [k, v] : fields) width = std::max(width, k.size());
  for (const auto& [k, v] : fields)
    std::fprintf(out, "%-*s  %s\n", int(width), k.c_str(), v.c_str());
}

}  // namespace tripline::cli
