// The web UI's files (ui/), embedded into the binary at build time by cmake/EmbedUi.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace tripline {

struct UiAsset {
  std::string_view path;  // "/index.html", "/app.js", ...
  std::string_view content;
};

const std::vector<UiAsset>& embedded_ui_assets();

}  // namespace tripline
