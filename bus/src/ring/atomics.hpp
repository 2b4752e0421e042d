// Shared-memory fields are plain integers; these name the std::atomic_ref accesses on them.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

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

// Compares *target with `expected` and, if equal, stores `desired`; returns the value found.
// Full barrier (lock cmpxchg16b). `target` must be 16-byte aligned.
inline TailPair cas_tail(std::uint64_t* target, TailPair expected, TailPair desired) noexcept {
  __extension__ using U128 = unsigned __int128;
  U128 e = (U128{expected.messages} << 64) | expected.position;
  U128 d = (U128{desired.messages} << 64) | desired.position;
  U128 old = __sync_val_compare_and_swap(reinterpret_cast<U128*>(target), e, d);
  return {static_cast<std::uint64_t>(old), static_cast<std::uint64_t>(old >> 64)};
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

inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

}  // namespace ringbus::detail
