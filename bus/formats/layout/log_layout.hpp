// The disk log of a topic: segment files holding the stream bytes verbatim, and one chunk index
// per segment with a CRC32C for every recorded chunk. Spec: docs/formats/log.md.
//
// Log directory of topic T: <log_dir>/T/
//   00000000000000000000.log   segment: stream bytes [base, base + size) verbatim, so the
//   00000000000000000000.idx   file name (20 decimal digits) is the offset of its first byte;
//   00000000000001048576.log   frames in it are the ring's frames (frame_layout.hpp), commit
//   00000000000001048576.idx   words included; a frame never spans two segments
//   state.json                 durable position, log start, topic config, group positions;
//                              replaced atomically (write, fsync, rename, fsync directory)
//   00000000000000065536.corrupt  bytes [65536, 65536 + size) that failed their check at
//                              recovery, set aside: the segments do not hold those offsets,
//                              and readers that reach them get `corrupt`
//
// Chunk index file (<base>.idx), little-endian:
//   off  size  field
//     0     8  magic          "RBLOGIDX"
//     8     4  version        kLogIndexVersion
//    12     4  header_crc     CRC32C of bytes 0..11 and 16..31
//    16     8  base_position  the segment's first offset (equals its file name)
//    24     8  reserved (zero)
//    32     -  ChunkRecord[]  one per chunk appended to the segment, in order
//
// ChunkRecord (16 bytes): the chunk is the segment's bytes from the previous record's end (or
// base_position) to end_position; it always ends on a frame boundary.
//   off  size  field
//     0     8  end_position   stream offset just past the chunk
//     8     4  data_crc       CRC32C of the chunk's bytes
//    12     4  record_crc     CRC32C of bytes 0..11 of this record (a torn record fails it)
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace ringbus::layout {

inline constexpr std::uint64_t kLogIndexMagic = 0x58444947'4F4C4252ULL;  // "RBLOGIDX"
inline constexpr std::uint32_t kLogIndexVersion = 1;
inline constexpr std::size_t kSegmentNameDigits = 20;
inline constexpr const char* kSegmentSuffix = ".log";
inline constexpr const char* kIndexSuffix = ".idx";
inline constexpr const char* kDamagedSuffix = ".corrupt";
inline constexpr const char* kLogStateFile = "state.json";

struct LogIndexHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t header_crc;
  std::uint64_t base_position;
  std::uint64_t reserved;
};

struct ChunkRecord {
  std::uint64_t end_position;
  std::uint32_t data_crc;
  std::uint32_t record_crc;
};

static_assert(std::is_standard_layout_v<LogIndexHeader>);
static_assert(std::is_trivially_copyable_v<LogIndexHeader>);
static_assert(sizeof(LogIndexHeader) == 32);
static_assert(offsetof(LogIndexHeader, magic) == 0);
static_assert(offsetof(LogIndexHeader, version) == 8);
static_assert(offsetof(LogIndexHeader, header_crc) == 12);
static_assert(offsetof(LogIndexHeader, base_position) == 16);
static_assert(offsetof(LogIndexHeader, reserved) == 24);

static_assert(std::is_standard_layout_v<ChunkRecord>);
static_assert(std::is_trivially_copyable_v<ChunkRecord>);
static_assert(sizeof(ChunkRecord) == 16);
static_assert(offsetof(ChunkRecord, end_position) == 0);
static_assert(offsetof(ChunkRecord, data_crc) == 8);
static_assert(offsetof(ChunkRecord, record_crc) == 12);

}  // namespace ringbus::layout
