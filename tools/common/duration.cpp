// Duration parsing for the tools: digits, then an optional unit. Garbage is rejected rather than
// truncated, as for sizes.
#include "duration.hpp"

#include <cctype>
#include <cstdint>
#include <string>

namespace ringbus::tools {

namespace {

Error invalid(const std::string& message) { return Error(Errc::invalid_argument, message); }

}  // namespace

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
    if (value > (UINT64_MAX / 10) - 10) return invalid(std::string(what) + " is too large");
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return invalid(std::string(what) + " '" + std::string(text) +
                   "' must be a number with an optional unit ms, s, m, h or d");
  }
  std::string_view unit = text.substr(i);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (unit == "d") scale = 86'400'000;
  if (scale == 0) {
    return invalid(std::string(what) + " '" + std::string(text) + "' has an unknown unit '" +
                   std::string(unit) + "' (use ms, s, m, h or d)");
  }
  if (value > UINT64_MAX / scale / 2) return invalid(std::string(what) + " is too large");
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * scale));
}

}  // namespace ringbus::tools
