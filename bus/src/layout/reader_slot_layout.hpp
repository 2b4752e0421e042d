// A reader slot: one per attached (or persistent) reader, in the array after the topic header.
//
// ReaderSlot (256 bytes; the hot line is written by its reader only, the cold lines rarely)
//   off  size  field            writer          notes
//     0     8  position         reader          published in batches (release)
//     8     8  messages         reader          sequence number of the next message to read
//    16     8  lost_bytes       reader          stream bytes skipped after being lapped
//    24     8  lost_messages    reader          messages skipped after being lapped
//    32    96  (hot line and its prefetch neighbour)
//   128     8  state            attach/reaper   state:8 | generation:56, changed by CAS only;
//                                               the generation grows on every attach, so a
//                                               reaper's CAS cannot free a reused slot
//   136     4  flags            attach          kDurable | kPersistent
//   140     4  pid              attach          0: no process (persistent reader detached)
//   144     4  kind             attach          kSubscriber (groups come later)
//   148     4  sleeping         reader          1 while counted in the header's sleepers
//   152     8  start_time       attach          owner's start time, /proc/PID/stat field 22
//   160     8  dead_since_ns    reaper          CLOCK_REALTIME when found dead, 0 otherwise
//   168     8  expiry_ns        attach          persistent: free this long after death; 0 never
//   176     8  attached_unix_ns attach
//   184    64  name             attach          NUL-padded; empty for an ephemeral reader
//   248     8  reserved (zero)
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ringbus::layout {

inline constexpr std::uint32_t kSlotSize = 256;
inline constexpr std::size_t kReaderNameMax = 63;  // plus a NUL

inline constexpr std::uint64_t kSlotFree = 0;
inline constexpr std::uint64_t kSlotClaiming = 1;
inline constexpr std::uint64_t kSlotActive = 2;

inline constexpr std::uint32_t kSlotDurable = 1U << 0;
inline constexpr std::uint32_t kSlotPersistent = 1U << 1;

inline constexpr std::uint32_t kReaderSubscriber = 1;

struct ReaderSlot {
  std::uint64_t position;
  std::uint64_t messages;
  std::uint64_t lost_bytes;
  std::uint64_t lost_messages;
  std::uint8_t pad_hot[96];
  std::uint64_t state;
  std::uint32_t flags;
  std::uint32_t pid;
  std::uint32_t kind;
  std::uint32_t sleeping;
  std::uint64_t start_time;
  std::uint64_t dead_since_ns;
  std::uint64_t expiry_ns;
  std::uint64_t attached_unix_ns;
  char name[kReaderNameMax + 1];
  std::uint64_t reserved1;
};

static_assert(std::is_standard_layout_v<ReaderSlot>);
static_assert(std::is_trivially_copyable_v<ReaderSlot>);
static_assert(sizeof(ReaderSlot) == kSlotSize);
static_assert(offsetof(ReaderSlot, position) == 0);
static_assert(offsetof(ReaderSlot, messages) == 8);
static_assert(offsetof(ReaderSlot, lost_bytes) == 16);
static_assert(offsetof(ReaderSlot, lost_messages) == 24);
static_assert(offsetof(ReaderSlot, state) == 128);
static_assert(offsetof(ReaderSlot, flags) == 136);
static_assert(offsetof(ReaderSlot, pid) == 140);
static_assert(offsetof(ReaderSlot, kind) == 144);
static_assert(offsetof(ReaderSlot, start_time) == 152);
static_assert(offsetof(ReaderSlot, dead_since_ns) == 160);
static_assert(offsetof(ReaderSlot, expiry_ns) == 168);
static_assert(offsetof(ReaderSlot, attached_unix_ns) == 176);
static_assert(offsetof(ReaderSlot, name) == 184);
static_assert(offsetof(ReaderSlot, reserved1) == 248);

constexpr std::uint64_t slot_state(std::uint64_t word) { return word & 0xFF; }
constexpr std::uint64_t slot_generation(std::uint64_t word) { return word >> 8; }
constexpr std::uint64_t make_slot_state(std::uint64_t state, std::uint64_t generation) {
  return (generation << 8) | state;
}

}  // namespace ringbus::layout
