// Byte sizes on the command line and in configuration files: "4096", "64K", "1MiB", "2gb" (every suffix is a power of 1024).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::tools {

// Parses a positive whole number of bytes with an optional, case-insensitive suffix: B, K, KB,
// KiB, M, MB, MiB, G, GB, GiB. K, KB and KiB all mean 1024 (sizes here are ring and message
// sizes, which are powers of two). `what` names the value in error messages ("--capacity").
// Errors: invalid_argument for an empty string, anything but digits and one known suffix, zero,
// or a value that does not fit in 64 bits.
Result<std::uint64_t> parse_size(std::string_view text, std::string_view what = "size");

// A byte count in the largest unit that divides it exactly: 4096 is "4KiB", 1000 stays
// "1000". Never rounds, so the text parses back to the same value.
std::string format_size(std::uint64_t bytes);

}  // namespace ringbus::tools

// The CLI (and its tests) name these ringbus::cli::..., from when they were the CLI's.
namespace ringbus::cli {
using tools::format_size;
using tools::parse_size;
}  // namespace ringbus::cli
