// --database: the default, and the one way its value is printed (database.h).
#include "database.h"

#include <algorithm>
#include <cctype>

#include "secrets.h"

namespace tripline {

std::string database_or_default(const std::string& data_dir, const std::string& database) {
  return database.empty() ? data_dir + "/tripline.db" : database;
}

std::string redact_database(std::string_view database) {
  std::string out(database);
  // A URL's user:password@: the user stays (it says which role connects), the password goes.
  // The authority ends at the first '/', '?' or '#' after "://"; its last '@' ends the userinfo
  // (a password may hold '@' when percent-encoding was forgotten).
  if (size_t scheme = out.find("://"); scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t end = out.find_first_of("/?#", start);
    if (end == std::string::npos) end = out.size();
    size_t at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at)
        out = out.substr(0, colon + 1) + kRedacted + out.substr(at);
    }
  }
  // password=VALUE: a URL's query parameter (?password=..., &password=...) or a key=value
  // conninfo's (password=... or password='...'), whatever the case of the key. sslpassword too:
  // it ends with "password=".
  std::string lower = out;
  for (char& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (size_t pos = lower.find("password="); pos != std::string::npos;
       pos = lower.find("password=", pos + 1)) {
    size_t value = pos + 9;
    size_t end = value;
    if (end < out.size() && out[end] == '\'') {  // a quoted conninfo value, \' escapes a quote
      for (++end; end < out.size() && out[end] != '\''; ++end)
        if (out[end] == '\\') ++end;
      end = std::min(end + 1, out.size());
    } else {
      while (end < out.size() && out[end] != '&' && out[end] != '#' && out[end] != ' ' &&
             out[end] != '\t' && out[end] != '\n')
        ++end;
    }
    out.replace(value, end - value, kRedacted);
    lower.replace(value, end - value, kRedacted);
  }
  return out;
}

std::string redact_database_in(std::string message, const std::string& database) {
  const std::string shown = redact_database(database);
  if (database.empty() || shown == database) return message;
  for (size_t pos = message.find(database); pos != std::string::npos;
       pos = message.find(database, pos + shown.size()))
    message.replace(pos, database.size(), shown);
  return message;
}

Status redact_database_in(const Status& status, const std::string& database) {
  std::string message = redact_database_in(status.message(), database);
  switch (status.code()) {
    case Status::Code::kOk:
      return status;
    case Status::Code::kInvalid:
      return Status::Invalid(std::move(message), status.fields());
    case Status::Code::kNotFound:
      return Status::NotFound(std::move(message));
    case Status::Code::kConflict:
      return Status::Conflict(std::move(message));
    case Status::Code::kUnavailable:
      return Status::Unavailable(std::move(message));
    case Status::Code::kInternal:
      break;
  }
  return Status::Internal(std::move(message));
}

}  // namespace tripline
