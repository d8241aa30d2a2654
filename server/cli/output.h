// What the client commands print for people: aligned tables and `key  value` lists. Text from
// the server (names, errors from a driver's peer) is shown through printable(), so an answer
// cannot send escape sequences to the terminal.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tripline::cli {

// `s` with control characters (and invalid UTF-8 bytes' C1 range) replaced by '?'.
std::string printable(const std::string& s);

// A JSON value as a cell: a string as is, null as "-", anything else as compact JSON;
// printable, and cut to `max` characters (0: no cut) with "..." at the end.
std::string cell(const nlohmann::json& v, size_t max = 0);

// Columns padded to their widest cell, two spaces apart, a header row in capitals.
void print_table(FILE* out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// One `key  value` line each, keys padded to the longest.
void print_fields(FILE* out, const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace tripline::cli
