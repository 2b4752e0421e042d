// The topic file: header, reader slots, data ring. Every byte offset of the header is fixed here.
//
// Topic file (one per topic, in the bus directory)
// +--------------------+ 0
// | TopicHeader        |   4096 bytes (kHeaderSize)
// +--------------------+ 4096 = slots_offset
// | ReaderSlot[0]      |   256 bytes each (reader_slot_layout.hpp)
// | ...                |
// | ReaderSlot[max-1]  |
// +--------------------+ ring_offset = round_up(4096 + max_readers * 256, 4096)
// | data ring          |   capacity bytes (a power of two) of frames (frame_layout.hpp)
// +--------------------+ file_size = ring_offset + capacity
//
// TopicHeader (little-endian, native x86-64)
//   off  size  field                      writer            notes
//     0     8  magic                      creator           "RINGBUS\0"
//     8     4  layout_version             creator           kLayoutVersion
//    12     4  ready                      creator           kReady, stored last (release)
//    16     8  file_size                  creator           ring_offset + capacity, rounded up
//                                                         to the file system block (hugetlbfs)
//    24     8  capacity                   creator           power of two
//    32     8  max_message                creator           key + value bytes
//    40     4  max_readers                creator
//    44     4  policy                     creator           0 block, 1 overwrite
//    48     4  header_size                creator           4096
//    52     4  slot_size                  creator           256
//    56     8  slots_offset               creator           4096
//    64     8  ring_offset                creator
//    72     4  frame_header_size          creator           32
//    76     4  frame_alignment            creator           8 or 64
//    80     8  stuck_claim_timeout_ns     creator
//    88     8  created_unix_ns            creator
//    96     4  creator_pid                creator
//   100     4  reserved (zero)
//   104     8  base_position              creator           the stream's first offset: 0, or
//                                                         where a topic re-created from its
//                                                         disk log continues (frame aligned)
//   112     8  base_messages              creator           sequence number of its first message
//   120     8  reserved (zero)
//   128     8  tail_position              producers (CAS16) next byte position to claim
//   136     8  tail_messages              producers (CAS16) messages claimed so far
//   144     8  reclaimed                  producers (CAS)   frames of the previous lap below this
//                                                         boundary are committed, so their space
//                                                         may be reused; also the oldest frame
//                                                         boundary still in the ring ("earliest")
//   152   104  (tail line and its prefetch neighbour)
//   256     4  futex_word                 producers         bumped before each wake-up
//   260     4  sleepers                   readers           readers asleep on futex_word
//   264   120  (futex line and its prefetch neighbour)
//   384     8  aborted_claims             readers/producers claims turned into padding
//   392     8  reaped_readers             reapers           slots freed for dead readers
//   400     8  readers_epoch              attach            +1 when a durable reader or group
//                                                         registers; producers then rescan
//   408   104  reserved (zero)
//   512   512  RecorderCounters           ringbus-bridge    the topic's disk log, see below;
//                                                         all zero until a bridge records it
//  1024   256  Mirror                     receiving bridge  see below; zero unless a mirror
//  1280  2048  ForwardLink[8]             forwarding bridge see below; zero until forwarded
//  3328   768  reserved (zero)
//
// RecorderCounters (at 512; written by the one bridge recording the topic, read by anyone)
//   off  size  field                      notes
//   512     4  recorder_pid               0: no bridge attached now
//   516     4  recorder_state             0 none, 1 recording, 2 failing (retrying), 3 stopped
//   520     8  recorder_start_time        /proc/PID/stat field 22 of recorder_pid
//   528     8  recorded_position          stream bytes written to segment files (release)
//   536     8  durable_position           bytes fsynced and persisted in the state file
//   544     8  log_start                  oldest offset still in the log (after retention)
//   552     8  log_segments               segment files
//   560     8  log_bytes                  bytes in segment files
//   568     8  recorder_errors            failures so far (write, fsync, open...); the
//                                         message of the last one is in last_error
//   576     8  last_error_unix_ns
//   584     8  recorded_messages          messages recorded (sequence of the next one)
//   592     8  durable_messages           messages before durable_position (stored before it)
//   600    40  reserved (zero)
//   640   128  last_error                 NUL-padded text, rewritten before recorder_errors
//                                         grows (readers re-check the count around the copy)
//   768   256  log_dir                    NUL-padded absolute path of <log_dir>/<topic>
//
// Mirror (at 1024; a topic that ringbus-bridge mirrors from another host, see
// docs/formats/forward.md). `mirror` is written by the creator before `ready`; the rest by the
// one receiving bridge.
//  1024     4  mirror                     creator           0: an ordinary topic; 1: a mirror,
//                                                         producers get read_only
//  1028     4  receiver_pid               receiver          0: no bridge applying frames now
//  1032     8  receiver_start_time        receiver          /proc/PID/stat field 22
//  1040     8  applied_position           receiver          frames below are written (release)
//  1048     8  applied_messages           receiver          sequence of the next message
//  1056     8  last_contact_unix_ns       receiver          last bytes from the source
//  1064    88  reserved (zero)
//  1152   128  mirror_source              creator           NUL-padded "HOST:PORT" of the source
//
// Forward links (at 1280; kForwardLinks entries of 256 bytes, written by the bridge that forwards
// the topic; an entry with destination "" is free)
//   +0     4  pid                         0: no bridge forwarding on this link now
//   +4     4  state                       0 none, 1 connecting, 2 streaming, 3 backing off,
//                                         4 failing, 5 stopped
//   +8     8  start_time                  /proc/PID/stat field 22 of pid
//  +16     8  sent_position               stream bytes sent on the link
//  +24     8  acked_position              acknowledged by the receiver (durable there if it
//                                         records the mirror); release, read by wait_mirrored()
//  +32     8  acked_messages              sequence of the next message after acked_position
//  +40     8  reconnects
//  +48     8  bytes_sent
//  +56     8  errors                      failures so far; the last one's text is last_error
//  +64    64  destination                 NUL-padded "HOST:PORT"
// +128   128  last_error                  NUL-padded text, rewritten before errors grows
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ringbus::layout {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::uint64_t kMagic = 0x0053554247'4E4952ULL;  // "RINGBUS\0" little-endian
inline constexpr std::uint32_t kLayoutVersion = 1;
inline constexpr std::uint32_t kReady = 1;
inline constexpr std::uint32_t kHeaderSize = 4096;
inline constexpr std::uint64_t kPageSize = 4096;
inline constexpr std::uint64_t kMinCapacity = 4096;
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 34;  // 16 GiB
inline constexpr std::uint32_t kMaxReaders = 4096;
inline constexpr std::uint32_t kPolicyBlock = 0;
inline constexpr std::uint32_t kPolicyOverwrite = 1;
inline constexpr std::uint32_t kRecorderNone = 0;
inline constexpr std::uint32_t kRecorderRecording = 1;
inline constexpr std::uint32_t kRecorderFailing = 2;
inline constexpr std::uint32_t kRecorderStopped = 3;
inline constexpr std::size_t kRecorderTextSize = 128;
inline constexpr std::size_t kLogDirSize = 256;
inline constexpr std::uint32_t kMirror = 1;
inline constexpr std::size_t kMirrorSourceSize = 128;
inline constexpr std::size_t kForwardLinks = 8;
inline constexpr std::size_t kDestinationSize = 64;
inline constexpr std::uint32_t kForwardNone = 0;
inline constexpr std::uint32_t kForwardConnecting = 1;
inline constexpr std::uint32_t kForwardStreaming = 2;
inline constexpr std::uint32_t kForwardBackingOff = 3;
inline constexpr std::uint32_t kForwardFailing = 4;
inline constexpr std::uint32_t kForwardStopped = 5;

// One forward link's counters (see the header diagram, at 1280 + 256 * i).
struct ForwardLink {
  std::uint32_t pid;
  std::uint32_t state;
  std::uint64_t start_time;
  std::uint64_t sent_position;
  std::uint64_t acked_position;
  std::uint64_t acked_messages;
  std::uint64_t reconnects;
  std::uint64_t bytes_sent;
  std::uint64_t errors;
  char destination[kDestinationSize];
  char last_error[kRecorderTextSize];
};
static_assert(sizeof(ForwardLink) == 256);
static_assert(offsetof(ForwardLink, acked_position) == 24);
static_assert(offsetof(ForwardLink, errors) == 56);
static_assert(offsetof(ForwardLink, destination) == 64);
static_assert(offsetof(ForwardLink, last_error) == 128);

struct TopicHeader {
  // Cold, written once by the creator before `ready`.
  std::uint64_t magic;
  std::uint32_t layout_version;
  std::uint32_t ready;
  std::uint64_t file_size;
  std::uint64_t capacity;
  std::uint64_t max_message;
  std::uint32_t max_readers;
  std::uint32_t policy;
  std::uint32_t header_size;
  std::uint32_t slot_size;
  std::uint64_t slots_offset;
  std::uint64_t ring_offset;
  std::uint32_t frame_header_size;
  std::uint32_t frame_alignment;
  std::uint64_t stuck_claim_timeout_ns;
  std::uint64_t created_unix_ns;
  std::uint32_t creator_pid;
  std::uint32_t reserved0;
  std::uint64_t base_position;
  std::uint64_t base_messages;
  std::uint64_t reserved0b;
  // Hot, producers: the pair is claimed with one 16-byte CAS, so it is 16-byte aligned.
  alignas(16) std::uint64_t tail_position;
  std::uint64_t tail_messages;
  std::uint64_t reclaimed;
  std::uint8_t pad_tail[104];
  // Futex wake-ups: readers that sleep count themselves in `sleepers`.
  std::uint32_t futex_word;
  std::uint32_t sleepers;
  std::uint8_t pad_futex[120];
  // Cold counters.
  std::uint64_t aborted_claims;
  std::uint64_t reaped_readers;
  std::uint64_t readers_epoch;
  std::uint8_t reserved1[104];
  // Disk log counters, written by ringbus-bridge.
  std::uint32_t recorder_pid;
  std::uint32_t recorder_state;
  std::uint64_t recorder_start_time;
  std::uint64_t recorded_position;
  std::uint64_t durable_position;
  std::uint64_t log_start;
  std::uint64_t log_segments;
  std::uint64_t log_bytes;
  std::uint64_t recorder_errors;
  std::uint64_t last_error_unix_ns;
  std::uint64_t recorded_messages;
  std::uint64_t durable_messages;
  std::uint8_t reserved2[40];
  char last_error[kRecorderTextSize];
  char log_dir[kLogDirSize];
  // Mirror (cold; written by the creator, then by the receiving bridge).
  std::uint32_t mirror;
  std::uint32_t receiver_pid;
  std::uint64_t receiver_start_time;
  std::uint64_t applied_position;
  std::uint64_t applied_messages;
  std::uint64_t last_contact_unix_ns;
  std::uint8_t reserved3[88];
  char mirror_source[kMirrorSourceSize];
  ForwardLink forward[kForwardLinks];
  std::uint8_t reserved4[768];
};

static_assert(std::is_standard_layout_v<TopicHeader>);
static_assert(std::is_trivially_copyable_v<TopicHeader>);
static_assert(sizeof(TopicHeader) == kHeaderSize);
static_assert(alignof(TopicHeader) == 16);
static_assert(offsetof(TopicHeader, magic) == 0);
static_assert(offsetof(TopicHeader, layout_version) == 8);
static_assert(offsetof(TopicHeader, ready) == 12);
static_assert(offsetof(TopicHeader, file_size) == 16);
static_assert(offsetof(TopicHeader, capacity) == 24);
static_assert(offsetof(TopicHeader, max_message) == 32);
static_assert(offsetof(TopicHeader, max_readers) == 40);
static_assert(offsetof(TopicHeader, policy) == 44);
static_assert(offsetof(TopicHeader, header_size) == 48);
static_assert(offsetof(TopicHeader, slot_size) == 52);
static_assert(offsetof(TopicHeader, slots_offset) == 56);
static_assert(offsetof(TopicHeader, ring_offset) == 64);
static_assert(offsetof(TopicHeader, frame_header_size) == 72);
static_assert(offsetof(TopicHeader, frame_alignment) == 76);
static_assert(offsetof(TopicHeader, stuck_claim_timeout_ns) == 80);
static_assert(offsetof(TopicHeader, created_unix_ns) == 88);
static_assert(offsetof(TopicHeader, creator_pid) == 96);
static_assert(offsetof(TopicHeader, base_position) == 104);
static_assert(offsetof(TopicHeader, base_messages) == 112);
static_assert(offsetof(TopicHeader, tail_position) == 128);
static_assert(offsetof(TopicHeader, tail_messages) == 136);
static_assert(offsetof(TopicHeader, reclaimed) == 144);
static_assert(offsetof(TopicHeader, futex_word) == 256);
static_assert(offsetof(TopicHeader, sleepers) == 260);
static_assert(offsetof(TopicHeader, aborted_claims) == 384);
static_assert(offsetof(TopicHeader, reaped_readers) == 392);
static_assert(offsetof(TopicHeader, readers_epoch) == 400);
static_assert(offsetof(TopicHeader, recorder_pid) == 512);
static_assert(offsetof(TopicHeader, recorder_state) == 516);
static_assert(offsetof(TopicHeader, recorder_start_time) == 520);
static_assert(offsetof(TopicHeader, recorded_position) == 528);
static_assert(offsetof(TopicHeader, durable_position) == 536);
static_assert(offsetof(TopicHeader, log_start) == 544);
static_assert(offsetof(TopicHeader, log_segments) == 552);
static_assert(offsetof(TopicHeader, log_bytes) == 560);
static_assert(offsetof(TopicHeader, recorder_errors) == 568);
static_assert(offsetof(TopicHeader, last_error_unix_ns) == 576);
static_assert(offsetof(TopicHeader, recorded_messages) == 584);
static_assert(offsetof(TopicHeader, durable_messages) == 592);
static_assert(offsetof(TopicHeader, last_error) == 640);
static_assert(offsetof(TopicHeader, log_dir) == 768);
static_assert(offsetof(TopicHeader, mirror) == 1024);
static_assert(offsetof(TopicHeader, receiver_pid) == 1028);
static_assert(offsetof(TopicHeader, receiver_start_time) == 1032);
static_assert(offsetof(TopicHeader, applied_position) == 1040);
static_assert(offsetof(TopicHeader, applied_messages) == 1048);
static_assert(offsetof(TopicHeader, last_contact_unix_ns) == 1056);
static_assert(offsetof(TopicHeader, mirror_source) == 1152);
static_assert(offsetof(TopicHeader, forward) == 1280);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<std::uint32_t>::is_always_lock_free);

// Where the ring starts for a given number of reader slots (page aligned, for hugetlbfs too).
constexpr std::uint64_t ring_offset_for(std::uint32_t max_readers, std::uint32_t slot_size) {
  std::uint64_t end = kHeaderSize + std::uint64_t{max_readers} * slot_size;
  return (end + kPageSize - 1) / kPageSize * kPageSize;
}

}  // namespace ringbus::layout
