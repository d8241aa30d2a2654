#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tripline::cli {

namespace {

constexpr size_t kMaxConfigBytes = 64 * 1024;  // two short lines are expected

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

std::string config_path(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (std::string p = env("TRIPLINE_CONFIG"); !p.empty()) return p;
  if (std::string x = env("XDG_CONFIG_HOME"); !x.empty()) return x + "/tripline/config";
  if (std::string h = env("HOME"); !h.empty()) return h + "/.config/tripline/config";
  return "";
}

Status read_config(const std::string& path, bool must_exist, std::string* server,
                   std::string* token) {
  // O_NONBLOCK: a FIFO in the file's place must not hang the command (refused below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT && !must_exist) return Status::Ok();
    return Status::Invalid("cannot read config file " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  std::string text;
  bool read_ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
                 size_t(st.st_size) <= kMaxConfigBytes;
  if (read_ok) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() <= kMaxConfigBytes)
      text.append(buf, size_t(n));
    read_ok = n == 0 && text.size() <= kMaxConfigBytes;
  }
  ::close(fd);
  if (!read_ok)
    return Status::Invalid("config file " + path + " is not a regular file of at most 64 KiB");

  std::string file_server, file_token;
  bool has_token = false;
  size_t line_no = 0;
  for (size_t start = 0; start <= text.size();) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = trim(text.substr(start, nl - start));
    start = nl + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    // The line is not repeated in the message: it may be a token.
    if (eq == std::string::npos)
      return Status::Invalid(path + ":" + std::to_string(line_no) + ": expected key = value");
    std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    if (key == "server") {
      file_server = value;
    } else if (key == "token") {
      file_token = value;
      has_token = true;
    } else {
      return Status::Invalid(path + ":" + std::to_string(line_no) + ": unknown key \"" + key +
                             "\" (known: server, token)");
    }
  }
  // Like ssh with a private key: a token others can read is already leaked, and one others can
  // write could point the CLI at their server with the caller's token.
  if (has_token && ((st.st_mode & 077) != 0 || st.st_uid != ::geteuid())) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
    return Status::Invalid("config file " + path + " holds a token but its permissions (" + mode +
                           ") or owner let others read or change it; run: chmod 600 " + path);
  }
  if (server && !file_server.empty()) *server = file_server;
  if (token && !file_token.empty()) *token = file_token;
  return Status::Ok();
}

Result<Settings> resolve_settings(const std::string& flag_server, const std::string& flag_token,
                                  const std::string& flag_config) {
  Settings s;
  std::string path = config_path(flag_config);
  std::string file_server, file_token;
  if (!path.empty()) {
    bool must_exist = !flag_config.empty() || !env("TRIPLINE_CONFIG").empty();
    if (Status st = read_config(path, must_exist, &file_server, &file_token); !st.ok()) return st;
    if (!file_server.empty() || !file_token.empty()) s.config_path = path;
  }
  auto pick = [](const std::string& flag, const std::string& environment, const std::string& file) {
    if (!flag.empty()) return flag;
    if (!environment.empty()) return environment;
    return file;
  };
  s.server = pick(flag_server, env("TRIPLINE_SERVER"), file_server);
  if (s.server.empty()) s.server = kDefaultServer;
  s.token = pick(flag_token, env("TRIPLINE_ADMIN_TOKEN"), file_token);
  while (!s.server.empty() && s.server.back() == '/') s.server.pop_back();
  if (s.server.rfind("http://", 0) != 0 && s.server.rfind("https://", 0) != 0)
    return Status::Invalid("server must be an http:// or https:// URL, got \"" + s.server + "\"");
  return s;
}

}  // namespace tripline::cli
