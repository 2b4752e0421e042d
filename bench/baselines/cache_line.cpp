// The physical limits of shared memory between two processes: flag ping-pong over one or two
// cache lines, and a minimal SPSC copy ring of fixed slots.
#include <algorithm>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstring>
#include <new>

#include "baselines/baselines.hpp"

namespace ringbus::bench {
namespace {

using Flag = std::atomic_ref<std::uint64_t>;
static_assert(Flag::is_always_lock_free);

// Side A stores the sequence number to its flag; side B waits for it and stores it to its own
// flag; A waits to see it back. `b_offset` places B's flag 8 bytes after A's (one line) or 128
// bytes after it (two lines, clear of the adjacent-line prefetcher: the ring's pattern).
// The payload size and the wait mode do not apply: both sides always spin.
LatencyStats flag_ping_pong(const LatencyParams& p, std::size_t b_offset) {
  SharedRegion region(4096);
  auto* base = static_cast<std::byte*>(region.data());
  auto* a_word = new (base) std::uint64_t{0};
  auto* b_word = new (base + b_offset) std::uint64_t{0};
  const std::uint64_t rounds = p.warmup + p.samples;

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    Flag a(*a_word);
    Flag b(*b_word);
    for (std::uint64_t seq = 1; seq <= rounds; ++seq) {
      // acquire/release: nothing else is published, but the ordering matches a real hand-off.
      if (!spin_until([&] { return a.load(std::memory_order_acquire) == seq; })) return 1;
      b.store(seq, std::memory_order_release);  // release: pairs with A's acquire below
    }
    return 0;
  });
  if (child < 0) return {};
  pin(p.cores.a);

  std::vector<double> rtt;
  rtt.reserve(p.samples);
  Flag a(*a_word);
  Flag b(*b_word);
  bool ok = true;
  for (std::uint64_t seq = 1; seq <= rounds && ok; ++seq) {
    const std::int64_t t0 = now_ns();
    a.store(seq, std::memory_order_release);  // release: pairs with B's acquire above
    ok = spin_until([&] { return b.load(std::memory_order_acquire) == seq; });
    const std::int64_t t1 = now_ns();
    if (seq > p.warmup) rtt.push_back(static_cast<double>(t1 - t0));
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return one_way_stats(rtt);
}

// The copy ring's shared region: cursors of the two writers 128 bytes apart, then the slots.
//
//   0    write   u64  messages published by the producer (every 32, and before it waits)
//   128  read    u64  messages consumed by the consumer (every 32, and before it waits)
//   256  report  ConsumerReport (ready flag, consumer's elapsed time)
//   512  slots   capacity x slot bytes
struct CopyRingHeader {
  alignas(128) std::uint64_t write = 0;
  alignas(128) std::uint64_t read = 0;
  ConsumerReport report;
};
static_assert(offsetof(CopyRingHeader, read) == 128);
static_assert(offsetof(CopyRingHeader, report) == 256);
constexpr std::size_t kSlotsOffset = 512;
static_assert(sizeof(CopyRingHeader) <= kSlotsOffset);

constexpr std::uint64_t kPublishEvery = 32;
constexpr std::size_t kRingBytes = std::size_t{1} << 20;
// With cursors published every 32 messages (and before every wait), 64 slots never deadlock.
constexpr std::size_t kMinSlots = 2 * kPublishEvery;

// Keeps the copy into `p` from being optimised away although nothing reads it.
inline void escape(void* p) { asm volatile("" : : "g"(p) : "memory"); }

}  // namespace

LatencyStats cache_line_same(const LatencyParams& p) { return flag_ping_pong(p, 8); }

LatencyStats cache_line_split(const LatencyParams& p) { return flag_ping_pong(p, 128); }

ThroughputStats copy_ring(const ThroughputParams& p) {
  const std::uint64_t n = p.messages;
  if (n == 0) return {};
  const std::size_t size = p.size;
  const std::size_t slot = std::max<std::size_t>(8, (size + 7) / 8 * 8);
  const std::size_t capacity = std::max(kMinSlots, std::bit_floor(kRingBytes / slot));
  const std::uint64_t mask = capacity - 1;

  SharedRegion region(kSlotsOffset + capacity * slot);
  auto* base = static_cast<std::byte*>(region.data());
  auto* h = new (base) CopyRingHeader{};
  std::byte* slots = base + kSlotsOffset;
  // Fault the slots in now, so that the first lap is not slowed by page faults.
  std::memset(slots, 0, capacity * slot);

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    std::vector<std::byte> local(std::max<std::size_t>(size, 1));
    Flag write(h->write);
    Flag read(h->read);
    h->report.mark_ready();
    std::uint64_t published = 0;  // the producer's write cursor as last seen
    std::int64_t start = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (i == published) {
        read.store(i, std::memory_order_release);  // release: pairs with the producer's acquire
        // acquire: pairs with the producer's release of its write cursor; the slots are filled.
        if (!spin_until([&] { return (published = write.load(std::memory_order_acquire)) > i; })) {
          return 1;
        }
      }
      if (i == 0) start = now_ns();
      std::memcpy(local.data(), slots + (i & mask) * slot, size);
      escape(local.data());
      // release: the slot has been copied out before the producer may reuse it.
      if ((i + 1) % kPublishEvery == 0) read.store(i + 1, std::memory_order_release);
    }
    h->report.report(now_ns() - start);
    return 0;
  });
  if (child < 0) return {};
  pin(p.cores.a);

  std::vector<std::byte> payload(std::max<std::size_t>(size, 1), std::byte{0x5a});
  Flag write(h->write);
  Flag read(h->read);
  bool ok = spin_until([&] { return h->report.is_ready(); });
  std::uint64_t consumed = 0;  // the consumer's read cursor as last seen
  for (std::uint64_t i = 0; i < n && ok; ++i) {
    if (i - consumed >= capacity) {
      write.store(i, std::memory_order_release);  // release: pairs with the consumer's acquire
      // acquire: pairs with the consumer's release of its read cursor; the slot is free.
      ok = spin_until(
          [&] { return i - (consumed = read.load(std::memory_order_acquire)) < capacity; });
      if (!ok) break;
    }
    std::memcpy(slots + (i & mask) * slot, payload.data(), size);
    // release: the slots are filled before the consumer sees the cursor move past them.
    if ((i + 1) % kPublishEvery == 0) write.store(i + 1, std::memory_order_release);
  }
  if (ok) write.store(n, std::memory_order_release);  // release: the tail of the last batch
  if (end_child(child, ok) != 0 || !ok) return {};
  return throughput_stats(n, size, h->report.seconds());
}

}  // namespace ringbus::bench
