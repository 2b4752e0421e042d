// ringbus-bridge's command line: --config FILE, then flags that override it, every flag taken
// from the option table (bridge_options.hpp). main.cpp only prints and runs what this returns.
#pragma once

#include <string>

#include "bridge_config.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

// A configuration to run, or help to print.
struct CommandLine {
  BridgeConfig config;
  std::string help;  // not empty: --help was given; print this and exit 0
};

// Parses the flags, loads --config if given, applies the flags over it, validates the result
// (validate_config) and makes log_dir absolute (readers find the log through the path the bridge
// publishes). Errors: invalid_argument (one line naming the option; also CLI11's own errors,
// such as an unknown flag), not_found (the config or key file).
Result<CommandLine> parse_command_line(int argc, const char* const* argv);

}  // namespace ringbus::bridge
