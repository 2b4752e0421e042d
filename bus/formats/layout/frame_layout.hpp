// A frame in the data ring: a 32-byte header, then key and value, padded to 8 bytes.
//
// Frame (starts at a multiple of 8; never wraps past the end of the ring)
//   off  size  field          notes
//     0     8  commit         lap:32 | kind:2 | length:30, stored last (release); see below
//     8     8  sequence       message index in the topic (0, 1, 2, ...)
//    16     8  timestamp_ns   the producer's clock at commit (0: none), or the caller's
//    24     4  key_length     key bytes; value bytes = length - key_length
//    28     4  reserved       zero
//    32     -  key, value, zero to 7 bytes of alignment slack (never read)
//
// The commit word tells a reader at stream position p everything it needs before it trusts
// the rest: `lap` must equal lap_of(p) (otherwise the bytes are last lap's or not yet written:
// nobody zeroes consumed space when many readers share a ring), and `kind` says:
//   kNone     never written (zero memory)
//   kClaimed  a producer owns the space; length = key + value; commit pending (the first
//             frame of a batch: the length spans the batch's run of frames, see
//             docs/formats/topic.md; nothing reads past a claimed frame)
//   kData     committed message; length = key + value
//   kPadding  skip `length` bytes (the end of the ring, or an aborted claim). Padding lengths
//             are multiples of 8, so bit 0 is free: set (kGapBit), the padding is a gap, bytes
//             lost before they reached this ring (a mirror whose source lost them, written by
//             MirrorWriter::try_append_gap); readers skip it and count it as lost.
// A producer turns kClaimed into kData or kPadding with a CAS, and a reader turns a kClaimed
// frame whose producer died into kPadding with the same CAS, so exactly one of them wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ringbus::layout {

inline constexpr std::uint32_t kFrameHeaderSize = 32;
// Frames start at multiples of the topic's frame alignment: 8 (compact) or 64 (each frame
// starts on its own cache line, so consecutive frames never share a line).
inline constexpr std::uint32_t kFrameAlignment = 8;
inline constexpr std::uint32_t kCacheLineFrameAlignment = 64;
constexpr bool valid_frame_alignment(std::uint64_t a) {
  return a == kFrameAlignment || a == kCacheLineFrameAlignment;
}
inline constexpr std::uint64_t kMaxFrameLength = (std::uint64_t{1} << 30) - 1;
// Largest key + value any topic may allow (its stride must still fit the length field).
// (128 below 2^30: a frame's stride, header and 64-byte alignment included, stays below 2^30.)
inline constexpr std::uint64_t kMaxMessageLimit = (std::uint64_t{1} << 30) - 128;

enum class FrameKind : std::uint32_t { kNone = 0, kClaimed = 1, kData = 2, kPadding = 3 };

struct FrameHeader {
  std::uint64_t commit;
  std::uint64_t sequence;
  std::int64_t timestamp_ns;
  std::uint32_t key_length;
  std::uint32_t reserved;
};

static_assert(std::is_standard_layout_v<FrameHeader>);
static_assert(std::is_trivially_copyable_v<FrameHeader>);
static_assert(sizeof(FrameHeader) == kFrameHeaderSize);
static_assert(alignof(FrameHeader) == kFrameAlignment);
static_assert(offsetof(FrameHeader, commit) == 0);
static_assert(offsetof(FrameHeader, sequence) == 8);
static_assert(offsetof(FrameHeader, timestamp_ns) == 16);
static_assert(offsetof(FrameHeader, key_length) == 24);
static_assert(offsetof(FrameHeader, reserved) == 28);

// Bytes a data frame with `length` key + value bytes occupies in the ring.
constexpr std::uint64_t frame_stride(std::uint64_t length,
                                     std::uint64_t alignment = kFrameAlignment) {
  return (kFrameHeaderSize + length + alignment - 1) & ~(alignment - 1);
}

constexpr std::uint32_t lap_of(std::uint64_t position, std::uint32_t lap_shift) {
  return static_cast<std::uint32_t>(position >> lap_shift);
}
constexpr std::uint64_t make_commit(std::uint32_t lap, FrameKind kind, std::uint64_t length) {
  return (std::uint64_t{lap} << 32) | (std::uint64_t{static_cast<std::uint32_t>(kind)} << 30) |
         (length & kMaxFrameLength);
}
constexpr std::uint32_t commit_lap(std::uint64_t commit) {
  return static_cast<std::uint32_t>(commit >> 32);
}
constexpr FrameKind commit_kind(std::uint64_t commit) {
  return static_cast<FrameKind>((commit >> 30) & 3U);
}
constexpr std::uint64_t commit_length(std::uint64_t commit) { return commit & kMaxFrameLength; }

inline constexpr std::uint64_t kGapBit = 1;  // in a padding frame's length (see above)
constexpr bool is_gap(std::uint64_t commit) {
  return commit_kind(commit) == FrameKind::kPadding && (commit & kGapBit) != 0;
}
// The bytes a padding frame covers: its length without the gap bit.
constexpr std::uint64_t padding_stride(std::uint64_t commit) {
  return commit_length(commit) & ~kGapBit;
}

// Bytes a committed frame (kData or kPadding) described by `commit` occupies when it starts at
// ring index `index`; 0 if the word cannot describe a complete frame there (not committed,
// or lengths that are out of bounds: a corrupt segment must never make a reader overrun).
constexpr std::uint64_t committed_stride(std::uint64_t commit, std::uint64_t index,
                                         std::uint64_t capacity, std::uint64_t max_message,
                                         std::uint64_t alignment) {
  std::uint64_t stride = 0;
  if (commit_kind(commit) == FrameKind::kData) {
    if (commit_length(commit) > max_message) return 0;
    stride = frame_stride(commit_length(commit), alignment);
  } else if (commit_kind(commit) == FrameKind::kPadding) {
    stride = padding_stride(commit);
    if (stride == 0 || stride % alignment != 0) return 0;
  }
  return index + stride <= capacity ? stride : 0;
}

static_assert(committed_stride(make_commit(0, FrameKind::kData, 5), 0, 4096, 1024, 8) == 40);
static_assert(committed_stride(make_commit(0, FrameKind::kData, 5), 0, 4096, 1024, 64) == 64);
static_assert(committed_stride(make_commit(0, FrameKind::kPadding, 12), 0, 4096, 1024, 8) == 0);
static_assert(committed_stride(make_commit(0, FrameKind::kPadding, 8), 0, 4096, 1024, 64) == 0);
static_assert(committed_stride(make_commit(0, FrameKind::kData, 64), 4064, 4096, 1024, 8) == 0);
static_assert(committed_stride(make_commit(0, FrameKind::kClaimed, 8), 0, 4096, 1024, 8) == 0);
static_assert(committed_stride(make_commit(0, FrameKind::kPadding, 64 | kGapBit), 0, 4096, 1024,
                               64) == 64);
static_assert(is_gap(make_commit(3, FrameKind::kPadding, 8 | kGapBit)));
static_assert(!is_gap(make_commit(3, FrameKind::kPadding, 8)));
static_assert(!is_gap(make_commit(3, FrameKind::kData, 9)));
static_assert(commit_kind(make_commit(7, FrameKind::kPadding, 24)) == FrameKind::kPadding);
static_assert(commit_length(make_commit(7, FrameKind::kData, kMaxFrameLength)) == kMaxFrameLength);
static_assert(commit_lap(make_commit(0xFFFFFFFFU, FrameKind::kClaimed, 1)) == 0xFFFFFFFFU);

}  // namespace ringbus::layout
