#include "ui.h"

#include "crypto.h"
#include "ui_assets.h"

namespace tripline {

namespace {
std::string content_type(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".json") || ends(".webmanifest")) return "application/json";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".yaml")) return "application/yaml";  // RFC 9512; the API reference
  return "application/octet-stream";
}

const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";
}  // namespace

UiFiles::UiFiles() {
  for (const auto& a : embedded_ui_assets()) {
    std::string etag =
        "\"" + crypto::hex(crypto::view(crypto::sha256(a.content))).substr(0, 20) + "\"";
    files_.emplace(std::string(a.path), File{a.content, content_type(a.path), std::move(etag)});
  }
}

std::optional<HttpResponse> UiFiles::serve(std::string_view path,
                                           const std::optional<std::string>& if_none_match) const {
  std::string key = path == "/" ? "/index.html" : std::string(path);
  auto it = files_.find(key);
  if (it == files_.end()) return std::nullopt;
  const File& f = it->second;
  HttpResponse r;
  r.headers = {{"ETag", f.etag},
               {"Cache-Control", "no-cache"},
               {"Content-Security-Policy", kCsp},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               {"X-Frame-Options", "DENY"}};
  r.content_type = f.content_type;
  if (if_none_match && *if_none_match == f.etag) {
    r.status = 304;
    return r;
  }
  r.status = 200;
  r.body = std::string(f.content);
  return r;
}

}  // namespace tripline
