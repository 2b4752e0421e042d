// How a blocking call waits: busy-spin, spin-then-yield, or sleep on a futex in the topic header.
#pragma once

#include <chrono>
#include <cstdint>

namespace ringbus {

enum class WaitKind : std::uint8_t {
  busy_spin,   // lowest latency, burns a core, never makes a system call
  spin_yield,  // spins a little, then sched_yield()s between checks
  futex,       // spins a little, then sleeps on the topic's futex (readers only; producers
               // waiting for space back off with short sleeps instead)
};

// A wait strategy and a timeout. The default waits forever with spin_yield.
struct Wait {
  WaitKind kind = WaitKind::spin_yield;
  std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max();

  static Wait busy_spin(std::chrono::nanoseconds t = std::chrono::nanoseconds::max()) {
    return {WaitKind::busy_spin, t};
  }
  static Wait spin_yield(std::chrono::nanoseconds t = std::chrono::nanoseconds::max()) {
    return {WaitKind::spin_yield, t};
  }
  static Wait futex(std::chrono::nanoseconds t = std::chrono::nanoseconds::max()) {
    return {WaitKind::futex, t};
  }
};

}  // namespace ringbus
