// The client commands of the `tripline` binary (docs/cli.md): receivers, executions, tokens,
// trigger, status and completion, each a call to a running server's API. `serve` and the key
// commands stay in main.cpp.
#pragma once

#include <string_view>

namespace tripline::cli {

// Whether argv[1] names a client command that run() handles.
bool is_client_command(std::string_view command);

// Runs a client command (argv as main got it); answers the exit code (api_client.h, Exit).
// curl_global_init must have run.
int run(int argc, char** argv);

// The client commands' part of `tripline --help`.
extern const char* const kHelpText;

}  // namespace tripline::cli
