// Shared pieces of ringbus-bench: results, statistics, pinned child processes, timing.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ringbus::bench {

// Percentiles of one-way latency in nanoseconds (round trip / 2).
struct LatencyStats {
  std::uint64_t samples = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
};

struct ThroughputStats {
  std::uint64_t messages = 0;
  double seconds = 0;
  double messages_per_second = 0;
  double bytes_per_second = 0;  // payload bytes only
};

// The cores a case runs on: side A (ping / producer) and side B (pong / consumer).
struct Cores {
  int a = -1;
  int b = -1;
};

// How a latency case waits for the other side.
enum class WaitMode { busy, blocking };

struct LatencyParams {
  std::size_t size = 64;
  std::uint64_t warmup = 10'000;
  std::uint64_t samples = 1'000'000;
  WaitMode wait = WaitMode::busy;
  Cores cores;
};

struct ThroughputParams {
  std::size_t size = 64;
  std::uint64_t messages = 2'000'000;
  Cores cores;
  // Scaling runs: one core per process (readers first, then producers), instead of `cores` for
  // the first pair and no pinning for the rest. Empty: `cores`.
  std::vector<int> spread;
};

// The core for process `k` of a scaling run, or -1 (unpinned) when `spread` is too short.
inline int spread_core(const ThroughputParams& p, std::size_t k, int otherwise) {
  if (p.spread.empty()) return otherwise;
  return k < p.spread.size() ? p.spread[k] : -1;
}

// Sorts the round-trip samples (ns) and returns one-way percentiles (halved).
LatencyStats one_way_stats(std::vector<double>& round_trips_ns);

ThroughputStats throughput_stats(std::uint64_t messages, std::size_t size, double seconds);

// Forks a child that pins itself to `cpu` (if >= 0), runs `body` and _exits with its result.
pid_t spawn_pinned(int cpu, const std::function<int()>& body);

// Waits for a child (bounded); returns its exit code, or -1 if it had to be killed.
int join(pid_t pid, std::chrono::seconds timeout = std::chrono::seconds(300));

// Pins the calling thread (ignores errors: a benchmark on fewer cores still runs).
void pin(int cpu);

// Monotonic nanoseconds for RTT samples.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// An anonymous MAP_SHARED region visible to forked children (for baselines and handshakes).
void* shared_anonymous(std::size_t bytes);

// Owns a shared_anonymous() region, zero-filled, and unmaps it when destroyed. A forked child
// sees the same bytes; children _exit, so only the parent's destructor runs.
class SharedRegion {
 public:
  explicit SharedRegion(std::size_t bytes);
  ~SharedRegion();
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return bytes_; }

 private:
  void* data_;
  std::size_t bytes_;
};

// How long a case waits without progress from the other side before giving up (it then reports
// samples = 0 or messages = 0): every wait in a case is bounded by this, so a case always ends.
inline constexpr std::chrono::seconds kStallTimeout{30};

// Ends a case's child: when the parent gave up (`parent_ok` false) the child may still be waiting
// on it, so it is killed first; otherwise it is joined (bounded). Returns join()'s result.
int end_child(pid_t pid, bool parent_ok);

// Waits for two children that work together. As soon as one ends badly (non-zero exit, signal)
// the other is killed, since it may be blocked on it forever (e.g. on a lock the dead one held).
// No timeout of its own: each side must bound its waits. True when both exited with 0.
bool join_pair(pid_t a, pid_t b);

// The handshake of a throughput case, placed in a SharedRegion: the consumer child marks itself
// ready once pinned and set up, and when done reports the time from its first to its last message.
struct alignas(128) ConsumerReport {
  std::uint64_t ready = 0;
  std::uint64_t elapsed_ns = 0;

  void mark_ready() noexcept {
    // release: pairs with the acquire in is_ready(), so setup is visible to the producer.
    std::atomic_ref<std::uint64_t>(ready).store(1, std::memory_order_release);
  }
  bool is_ready() noexcept {
    return std::atomic_ref<std::uint64_t>(ready).load(std::memory_order_acquire) != 0;
  }
  void report(std::int64_t ns) noexcept {
    std::atomic_ref<std::uint64_t>(elapsed_ns)
        .store(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  }
  // Read after joining the child: its exit and waitpid() order the report before this load.
  double seconds() noexcept {
    return static_cast<double>(
               std::atomic_ref<std::uint64_t>(elapsed_ns).load(std::memory_order_relaxed)) /
           1e9;
  }
};

// Busy-waits until `ready()` returns true (true), or `timeout` passes (false). Pauses between
// calls like ringbus's busy_spin wait, and reads the clock only every 1024 calls so the loop
// stays tight.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds timeout = kStallTimeout) {
  std::int64_t deadline = 0;
  for (;;) {
    for (int i = 0; i < 1024; ++i) {
      if (ready()) return true;
      __builtin_ia32_pause();
    }
    const std::int64_t now = now_ns();
    if (deadline == 0) {
      deadline = now + timeout.count();
    } else if (now > deadline) {
      return false;
    }
  }
}

}  // namespace ringbus::bench
