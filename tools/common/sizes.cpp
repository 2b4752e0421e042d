// Size parsing for the tools: digits, then an optional binary suffix. Garbage is rejected rather
// than truncated (strtoull would accept "12abc", " 12" and "-1").
#include "sizes.hpp"

#include <array>
#include <limits>
#include <string>
#include <utility>

namespace ringbus::tools {
namespace {

constexpr std::string_view kAllowed =
    "a whole number of bytes, optionally followed by K, KB, KiB, M, MB, MiB, G, GB or GiB "
    "(powers of 1024, any case)";

struct Suffix {
  std::string_view name;  // lower case
  unsigned shift;
};

constexpr std::array<Suffix, 11> kSuffixes{{
    {"", 0},
    {"b", 0},
    {"k", 10},
    {"kb", 10},
    {"kib", 10},
    {"m", 20},
    {"mb", 20},
    {"mib", 20},
    {"g", 30},
    {"gb", 30},
    {"gib", 30},
}};

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// The suffix's power of two, or -1 when it is not one we know.
int shift_of(std::string_view suffix) {
  for (const auto& s : kSuffixes) {
    if (suffix.size() != s.name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < suffix.size() && same; ++i) same = lower(suffix[i]) == s.name[i];
    if (same) return static_cast<int>(s.shift);
  }
  return -1;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text, std::string_view what) {
  auto fail = [&](const std::string& why) {
    return Error(Errc::invalid_argument, std::string(what) + " '" + std::string(text) +
                                             "' is invalid: " + why + "; expected " +
                                             std::string(kAllowed));
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return fail(text.empty() ? "it is empty" : "it does not start with a digit");
  const std::string_view suffix = text.substr(digits);
  const int shift = shift_of(suffix);
  if (shift < 0) return fail("unknown suffix '" + std::string(suffix) + "'");

  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t value = 0;
  for (char c : text.substr(0, digits)) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (kMax - d) / 10) return fail("it is too large");
    value = value * 10 + d;
  }
  if (value == 0) return fail("it must be greater than zero");
  if (value > (kMax >> shift)) return fail("it is too large");
  return value << shift;
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::array<std::pair<unsigned, std::string_view>, 3> kUnits{
      {{30, "GiB"}, {20, "MiB"}, {10, "KiB"}}};
  for (const auto& [shift, unit] : kUnits) {
    const std::uint64_t one = std::uint64_t{1} << shift;
    if (bytes >= one && bytes % one == 0) return std::to_string(bytes >> shift) + std::string(unit);
  }
  return std::to_string(bytes);
}

}  // namespace ringbus::tools
