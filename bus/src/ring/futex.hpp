// Futex wait/wake on a word in the (shared) topic header. Cold path: readers that sleep.
#pragma once

#include <cstdint>

namespace ringbus::detail {

// Sleeps while *word == expected, at most timeout_ns (< 0: no limit). Spurious returns happen.
void futex_wait(std::uint32_t* word, std::uint32_t expected, std::int64_t timeout_ns) noexcept;
// Wakes every sleeper on *word.
void futex_wake_all(std::uint32_t* word) noexcept;

}  // namespace ringbus::detail
