// Durations on the command line and in configuration files: "10ms", "2s", "30m", "12h", "7d".
#pragma once

#include <chrono>
#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::tools {

// Parses a whole number with an optional unit ms, s, m, h or d (a bare number is milliseconds).
// `what` names the value in error messages ("--retention-age"). Errors: invalid_argument for
// anything but digits and one known unit, or a value too large for milliseconds in 63 bits.
Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what);

}  // namespace ringbus::tools
