#include "session_loop.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>

namespace ringbus::bridge {

void run_sessions(const std::atomic<bool>& stop, const SessionHooks& hooks) {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  constexpr milliseconds kMinBackoff{100};
  constexpr milliseconds kMaxBackoff{5000};
  std::mt19937_64 random(std::random_device{}());
  milliseconds backoff = kMinBackoff;
  bool first = true;
  // relaxed: a flag; nothing is published through it.
  while (!stop.load(std::memory_order_relaxed)) {
    if (!first) hooks.reconnecting();
    first = false;
    auto ok = hooks.session();
    if (hooks.made_progress()) backoff = kMinBackoff;
    if (stop.load(std::memory_order_relaxed)) break;
    if (ok) continue;  // a session ends without an error only when stopped
    hooks.failed(ok.error());
    const auto half = static_cast<std::uint64_t>(backoff.count() / 2);
    const auto jittered = milliseconds(static_cast<std::int64_t>(half + random() % (half + 1)));
    const auto until = Clock::now() + jittered;
    while (!stop.load(std::memory_order_relaxed) && Clock::now() < until) ::usleep(10'000);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

}  // namespace ringbus::bridge
