// Shared-memory fields are plain integers; these name the std::atomic_ref accesses on them.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>

#include "layout/topic_layout.hpp"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace ringbus::detail {

template <class T>
inline std::atomic_ref<T> atomic(T& field) noexcept {
  static_assert(std::atomic_ref<T>::is_always_lock_free);
  return std::atomic_ref<T>(field);
}

// A {position, messages} pair updated with one 16-byte CAS (cmpxchg16b), so every claim gets
// its stream position and its sequence number together.
struct TailPair {
  std::uint64_t position;
  std::uint64_t messages;
  bool operator==(const TailPair&) const = default;
};

// Two adjacent 64-bit words changed together by cas16().
struct WordPair {
  std::uint64_t low;
  std::uint64_t high;
  bool operator==(const WordPair&) const = default;
};

// Compares the 16 bytes at `target` with `expected` and, if equal, stores `desired`; returns the
// value found. Full barrier. `target` must be 16-byte aligned. Written as `lock cmpxchg16b`
// directly: compilers route 16-byte atomics through libatomic or, under ThreadSanitizer, through
// a process-local lock, neither of which is atomic across processes.
inline WordPair cas16(std::uint64_t* target, WordPair expected, WordPair desired) noexcept {
  struct alignas(16) Pair {
    std::uint64_t low, high;
  };
  std::uint64_t low = expected.low;
  std::uint64_t high = expected.high;
  asm volatile("lock cmpxchg16b %0"
               : "+m"(*reinterpret_cast<Pair*>(target)), "+a"(low), "+d"(high)
               : "b"(desired.low), "c"(desired.high)
               : "memory", "cc");
  return {low, high};
}

// The tail {position, messages} pair, claimed with cas16().
inline TailPair cas_tail(std::uint64_t* target, TailPair expected, TailPair desired) noexcept {
  WordPair seen =
      cas16(target, {expected.position, expected.messages}, {desired.position, desired.messages});
  return {seen.low, seen.high};
}

inline std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline std::int64_t realtime_coarse_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);  // vDSO: the last tick, no clock read
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Loads a commit word that a producer of a later lap may be overwriting with plain stores right
// now; the caller validates what it read (lap tag, then the tail or a CAS). On x86-64 a plain
// load is an acquire load (TSO). The race is by design, so the load is hidden from
// ThreadSanitizer, which is told about the acquire instead.
__attribute__((no_sanitize("thread"))) inline std::uint64_t load_racy_acquire(
    const std::uint64_t* word) noexcept {
  std::uint64_t value = *static_cast<const volatile std::uint64_t*>(word);
  std::atomic_signal_fence(std::memory_order_acquire);
#if defined(__SANITIZE_THREAD__)
  __tsan_acquire(const_cast<std::uint64_t*>(word));
#endif
  return value;
}

// Keeps the racy copy before it ordered before the loads after it (the read side of a
// seqlock). x86-64 never reorders a load with an older load (TSO), so stopping the compiler is
// enough; ringbus requires x86-64 anyway (cmpxchg16b). A thread fence would also do, but GCC
// cannot instrument one under ThreadSanitizer.
inline void load_load_barrier() noexcept { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Copies `words` 8-byte words that a producer may be overwriting right now. The caller
// re-checks the tail afterwards and discards the copy if it raced (a seqlock read); the race
// is by design, so it is hidden from ThreadSanitizer, and volatile keeps the loads real.
__attribute__((no_sanitize("thread"))) inline void copy_racy(std::uint64_t* dst,
                                                             const std::byte* src,
                                                             std::size_t words) noexcept {
  const volatile auto* from = reinterpret_cast<const volatile std::uint64_t*>(src);
  for (std::size_t i = 0; i < words; ++i) dst[i] = from[i];
}

// A consistent {position, messages} snapshot of the tail: both change together in one CAS and
// the position only grows, so an unchanged position brackets an unchanged pair.
inline TailPair read_tail(layout::TopicHeader& h) {
  for (;;) {
    // acquire: pairs with producers' CAS; the messages count belongs to this position.
    std::uint64_t p1 = atomic(h.tail_position).load(std::memory_order_seq_cst);
    std::uint64_t m = atomic(h.tail_messages).load(std::memory_order_seq_cst);
    std::uint64_t p2 = atomic(h.tail_position).load(std::memory_order_seq_cst);
    if (p1 == p2) return {p1, m};
  }
}

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

}  // namespace ringbus::detail
