// Process liveness: a pid plus the process start time, so a reused pid is not taken as alive.
#pragma once

#include <cstdint>
#include <optional>

namespace ringbus::detail {

struct ProcessIdentity {
  std::uint32_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/PID/stat field 22, clock ticks since boot
};

// This process (re-read after fork: the pid is checked on every call).
ProcessIdentity self_identity();

// The start time of `pid`, or nothing if it does not exist or is a zombie (killed, not reaped).
std::optional<std::uint64_t> process_start_time(std::uint32_t pid);

// True if `pid` runs and started at `start_time`.
bool is_alive(std::uint32_t pid, std::uint64_t start_time);

}  // namespace ringbus::detail
