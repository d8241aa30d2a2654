// Serves the embedded web UI: correct content types, an ETag per file (If-None-Match -> 304),
// `Cache-Control: no-cache` (files have no content hash in their names, so browsers revalidate),
// and a strict Content-Security-Policy: no inline script, nothing from other origins.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>

#include "http.h"

namespace tripline {

class UiFiles {
 public:
  UiFiles();
  // The response for a GET of `path`, or nullopt when no UI file has that path.
  std::optional<HttpResponse> serve(std::string_view path,
                                    const std::optional<std::string>& if_none_match) const;

 private:
  struct File {
    std::string_view content;
    std::string content_type;
    std::string etag;
  };
  std::unordered_map<std::string, File> files_;
};

}  // namespace tripline
