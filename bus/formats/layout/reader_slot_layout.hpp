// A reader slot: one per attached (or persistent) reader, in the array after the topic header.
//
// ReaderSlot (256 bytes; the hot lines are written by the reader, or for a group's member slots
// also by the member that adopted the slot's batch; the cold lines rarely).
// A slot is a subscriber, a queue group (its shared state) or a member of a group (kind).
// A member's batch never leaves its slot: a member taking over a dead or late member's batch
// adopts it where it is (the epoch names the adopter), so a committed-position scan always
// finds every batch in flight.
//   off  size  field            writer          notes
//     0     8  position         reader          published in batches (release); for a group:
//                                               its committed position (all before it acked)
//     8     8  messages         reader          sequence number of the next message to read
//    16     8  lost_bytes       reader          stream bytes skipped after being lapped
//    24     8  lost_messages    reader          messages skipped after being lapped; group:
//                                               also batch messages found damaged on takeover
//    32     8  dispatch         group members   group: next position to hand out (CAS)
//    40     8  deadline_ns      group creator   group: processing deadline, 0 = none
//    48     4  group_slot       member          member: index of its group's slot
//    52     4  batch_count      handler         member: messages in its batch
//    56     4  delivery         handler         member: delivery count of its batch (1 = first)
//    60     4  serving          member          member: slot whose batch it adopted, or
//                                               kNotServing; written before the adopting CAS
//    64     8  batch_acked      handler         bit i: the batch's i-th message is acked  } one
//    72     8  batch_epoch      owner/adopter   count:48 | adopter:15 | adopted:1          } CAS16
//                                               count +1 on every new batch and adoption
//    80     8  batch_start      owner/handler   kNoBatch when the slot holds no batch; set by
//                                               the owner, cleared (CAS) by whoever finishes it
//    88     8  batch_end        owner
//    96     8  low_water        owner           the batch's start: the group's committed
//                                               position stays at or below it until the batch
//                                               is done, so a batch can always be rebuilt
//   104     8  low_water_seq    owner           sequence number of its first message
//   112     8  taken_ns         owner           CLOCK_MONOTONIC when the batch was taken
//   120     8  safe_from        group creator   group: members copy and check frames below
//                                               it (claims older than the group may overwrite
//                                               them); all ones until the creator sets it
//   128     8  state            attach/reaper   state:8 | generation:56, changed by CAS only;
//                                               the generation grows on every attach, so a
//                                               reaper's CAS cannot free a reused slot
//   136     4  flags            attach/reader   kDurable | kPersistent | kReplaying (the
//                                               reader sets and clears kReplaying)
//   140     4  pid              attach          0: no process (persistent reader detached)
//   144     4  kind             attach          kSubscriber, kGroup or kMember
//   148     4  sleeping         reader          1 while counted in the header's sleepers
//   152     8  start_time       attach          owner's start time, /proc/PID/stat field 22
//   160     8  dead_since_ns    reaper          CLOCK_REALTIME when found dead, 0 otherwise
//   168     8  expiry_ns        attach          persistent: free this long after death; 0 never
//   176     8  attached_unix_ns attach
//   184    64  name             attach          NUL-padded; empty for an ephemeral reader
//   248     8  serve_ns         member          CLOCK_MONOTONIC when it adopted `serving`'s
//                                               batch (the adopter's processing deadline)
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
// A new persistent name being created: visible to other creators of the same name (exactly one
// of them goes on to kSlotActive), invisible to joiners and producers until then.
inline constexpr std::uint64_t kSlotContending = 3;

inline constexpr std::uint32_t kSlotDurable = 1U << 0;
inline constexpr std::uint32_t kSlotPersistent = 1U << 1;
// A durable reader that reads the disk log for now (its position is older than the ring):
// producers do not wait for it until it clears this flag and takes up the ring again.
inline constexpr std::uint32_t kSlotReplaying = 1U << 2;

inline constexpr std::uint32_t kReaderSubscriber = 1;
inline constexpr std::uint32_t kReaderGroup = 2;
inline constexpr std::uint32_t kReaderMember = 3;
inline constexpr std::uint64_t kNoBatch = ~std::uint64_t{0};
inline constexpr std::uint32_t kMaxBatch = 64;  // bits in batch_acked
inline constexpr std::uint32_t kNotServing = ~std::uint32_t{0};

// batch_epoch: a count (low 48 bits), and once a member adopted the batch, that member's slot
// index and the adopted bit. The slot's owner starts every new batch with the bit clear.
inline constexpr std::uint64_t kEpochAdopted = std::uint64_t{1} << 63;
inline constexpr unsigned kEpochAdopterShift = 48;
inline constexpr std::uint64_t kEpochAdopterMask = 0x7FFF;
inline constexpr std::uint64_t kEpochCountMask = (std::uint64_t{1} << kEpochAdopterShift) - 1;
static_assert(kEpochAdopterMask >= 4096, "adopter index holds any slot index (kMaxReaders)");
constexpr std::uint64_t next_batch_epoch(std::uint64_t epoch) {
  return ((epoch & kEpochCountMask) + 1) & kEpochCountMask;
}
constexpr std::uint64_t adopted_batch_epoch(std::uint64_t epoch, std::uint32_t adopter) {
  return next_batch_epoch(epoch) | kEpochAdopted |
         ((std::uint64_t{adopter} & kEpochAdopterMask) << kEpochAdopterShift);
}
constexpr bool epoch_adopted(std::uint64_t epoch) { return (epoch & kEpochAdopted) != 0; }
constexpr std::uint32_t epoch_adopter(std::uint64_t epoch) {
  return static_cast<std::uint32_t>((epoch >> kEpochAdopterShift) & kEpochAdopterMask);
}
static_assert(epoch_adopter(adopted_batch_epoch(5, 4095)) == 4095);
static_assert(!epoch_adopted(next_batch_epoch(adopted_batch_epoch(5, 7))));

struct ReaderSlot {
  std::uint64_t position;
  std::uint64_t messages;
  std::uint64_t lost_bytes;
  std::uint64_t lost_messages;
  std::uint64_t dispatch;
  std::uint64_t deadline_ns;
  std::uint32_t group_slot;
  std::uint32_t batch_count;
  std::uint32_t delivery;
  std::uint32_t serving;
  alignas(16) std::uint64_t batch_acked;
  std::uint64_t batch_epoch;
  std::uint64_t batch_start;
  std::uint64_t batch_end;
  std::uint64_t low_water;
  std::uint64_t low_water_seq;
  std::uint64_t taken_ns;
  std::uint64_t safe_from;
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
  std::uint64_t serve_ns;
};

static_assert(std::is_standard_layout_v<ReaderSlot>);
static_assert(std::is_trivially_copyable_v<ReaderSlot>);
static_assert(sizeof(ReaderSlot) == kSlotSize);
static_assert(alignof(ReaderSlot) == 16);
static_assert(offsetof(ReaderSlot, position) == 0);
static_assert(offsetof(ReaderSlot, messages) == 8);
static_assert(offsetof(ReaderSlot, lost_bytes) == 16);
static_assert(offsetof(ReaderSlot, lost_messages) == 24);
static_assert(offsetof(ReaderSlot, dispatch) == 32);
static_assert(offsetof(ReaderSlot, deadline_ns) == 40);
static_assert(offsetof(ReaderSlot, group_slot) == 48);
static_assert(offsetof(ReaderSlot, batch_count) == 52);
static_assert(offsetof(ReaderSlot, delivery) == 56);
static_assert(offsetof(ReaderSlot, serving) == 60);
static_assert(offsetof(ReaderSlot, batch_acked) == 64);
static_assert(offsetof(ReaderSlot, batch_epoch) == 72);
static_assert(offsetof(ReaderSlot, batch_start) == 80);
static_assert(offsetof(ReaderSlot, batch_end) == 88);
static_assert(offsetof(ReaderSlot, low_water) == 96);
static_assert(offsetof(ReaderSlot, low_water_seq) == 104);
static_assert(offsetof(ReaderSlot, taken_ns) == 112);
static_assert(offsetof(ReaderSlot, safe_from) == 120);
static_assert(offsetof(ReaderSlot, state) == 128);
static_assert(offsetof(ReaderSlot, flags) == 136);
static_assert(offsetof(ReaderSlot, pid) == 140);
static_assert(offsetof(ReaderSlot, kind) == 144);
static_assert(offsetof(ReaderSlot, sleeping) == 148);
static_assert(offsetof(ReaderSlot, start_time) == 152);
static_assert(offsetof(ReaderSlot, dead_since_ns) == 160);
static_assert(offsetof(ReaderSlot, expiry_ns) == 168);
static_assert(offsetof(ReaderSlot, attached_unix_ns) == 176);
static_assert(offsetof(ReaderSlot, name) == 184);
static_assert(offsetof(ReaderSlot, serve_ns) == 248);

constexpr std::uint64_t slot_state(std::uint64_t word) { return word & 0xFF; }
constexpr std::uint64_t slot_generation(std::uint64_t word) { return word >> 8; }
constexpr std::uint64_t make_slot_state(std::uint64_t state, std::uint64_t generation) {
  return (generation << 8) | state;
}

}  // namespace ringbus::layout
