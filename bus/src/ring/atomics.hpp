// Shared-memory fields are plain integers; these name the std::atomic_ref accesses on them.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

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

// Compares the 16 bytes at `target` with `expected` and, if equal, stores `desired`; returns the
// value found. Full barrier. `target` must be 16-byte aligned. Written as `lock cmpxchg16b`
// directly: compilers route 16-byte atomics through libatomic or, under ThreadSanitizer, through
// a process-local lock, neither of which is atomic across processes.
inline TailPair cas_tail(std::uint64_t* target, TailPair expected, TailPair desired) noexcept {
  struct alignas(16) Pair {
    std::uint64_t low, high;
  };
  std::uint64_t low = expected.position;
  std::uint64_t high = expected.messages;
  asm volatile("lock cmpxchg16b %0"
               : "+m"(*reinterpret_cast<Pair*>(target)), "+a"(low), "+d"(high)
               : "b"(desired.position), "c"(desired.messages)
               : "memory", "cc");
  return {low, high};
}

inline std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
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

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

}  // namespace ringbus::detail
