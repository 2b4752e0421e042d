// Reads /proc/PID/stat for a process's state and start time (cold path only).
#include "topic/liveness.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "sys/unique_fd.hpp"

namespace ringbus::detail {

std::optional<std::uint64_t> process_start_time(std::uint32_t pid) {
  if (pid == 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  const UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[1024];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<std::size_t>(n));
  // The command name (field 2) is in parentheses and may itself contain ") ".
  auto close_paren = text.rfind(')');
  if (close_paren == std::string_view::npos || close_paren + 2 >= text.size()) return std::nullopt;
  text.remove_prefix(close_paren + 2);
  char state = text[0];
  if (state == 'Z' || state == 'X' || state == 'x') return std::nullopt;
  // After ") " comes field 3 (state); field 22 (starttime) is 19 fields further.
  for (int field = 3; field < 22; ++field) {
    auto space = text.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    text.remove_prefix(space + 1);
  }
  std::uint64_t start = 0;
  for (char c : text) {
    if (c < '0' || c > '9') break;
    start = start * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return start;
}

ProcessIdentity self_identity() {
  static thread_local ProcessIdentity cached;
  auto pid = static_cast<std::uint32_t>(::getpid());
  if (cached.pid != pid) cached = {pid, process_start_time(pid).value_or(0)};
  return cached;
}

bool is_alive(std::uint32_t pid, std::uint64_t start_time) {
  auto start = process_start_time(pid);
  return start && *start == start_time;
}

}  // namespace ringbus::detail
