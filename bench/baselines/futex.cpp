// The blocking wake-up limit: a bare futex ping-pong between two processes, where every hand-off
// is a FUTEX_WAKE by one side and a FUTEX_WAIT return on the other.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <ctime>
#include <new>

#include "baselines/baselines.hpp"

namespace ringbus::bench {
namespace {

using Word = std::atomic_ref<std::uint32_t>;
static_assert(Word::is_always_lock_free);

// The two futex words, one per writer, 128 bytes apart.
struct FutexWords {
  alignas(128) std::uint32_t ping = 0;  // written by A
  alignas(128) std::uint32_t pong = 0;  // written by B
};

// Sleeps until `*word` is no longer `old`. Shared (not FUTEX_PRIVATE) futexes: the two sides are
// processes. False when a single wait outlasts kStallTimeout (the other side is gone).
bool wait_for_change(std::uint32_t* word, std::uint32_t old) {
  const timespec timeout{static_cast<time_t>(kStallTimeout.count()), 0};
  // acquire: pairs with the release store in set_and_wake().
  while (Word(*word).load(std::memory_order_acquire) == old) {
    // EAGAIN (the word changed first) and EINTR simply re-check.
    if (syscall(SYS_futex, word, FUTEX_WAIT, old, &timeout, nullptr, 0) < 0 && errno == ETIMEDOUT) {
      return false;
    }
  }
  return true;
}

// Stores `value` and wakes the other side unconditionally: the bare cost, no waiter tracking.
void set_and_wake(std::uint32_t* word, std::uint32_t value) {
  Word(*word).store(value, std::memory_order_release);  // release: pairs with wait_for_change()
  syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

}  // namespace

LatencyStats futex_pingpong(const LatencyParams& p) {
  SharedRegion region(4096);
  auto* words = new (region.data()) FutexWords{};
  const std::uint64_t rounds = p.warmup + p.samples;

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    for (std::uint64_t i = 1; i <= rounds; ++i) {
      const auto seq = static_cast<std::uint32_t>(i);
      if (!wait_for_change(&words->ping, seq - 1)) return 1;
      set_and_wake(&words->pong, seq);
    }
    return 0;
  });
  if (child < 0) return {};
  pin(p.cores.a);

  std::vector<double> rtt;
  rtt.reserve(p.samples);
  bool ok = true;
  for (std::uint64_t i = 1; i <= rounds && ok; ++i) {
    const auto seq = static_cast<std::uint32_t>(i);
    const std::int64_t t0 = now_ns();
    set_and_wake(&words->ping, seq);
    ok = wait_for_change(&words->pong, seq - 1);
    const std::int64_t t1 = now_ns();
    if (i > p.warmup) rtt.push_back(static_cast<double>(t1 - t0));
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return one_way_stats(rtt);
}

}  // namespace ringbus::bench
