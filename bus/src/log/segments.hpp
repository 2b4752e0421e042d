// Naming and listing of a topic's log segments, and reading their chunk index files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "layout/log_layout.hpp"
#include "ringbus/result.hpp"

namespace ringbus::detail {

// "<20-digit base>" + suffix, e.g. segment_file(dir, 4096, ".log").
std::string segment_file(const std::string& dir, std::uint64_t base, std::string_view suffix);

// The base offset in a segment file name ("00000000000000004096.log"), if it is one; with
// `suffix`, in a file name "<20 digits><suffix>".
std::optional<std::uint64_t> parse_segment_name(std::string_view file_name);
std::optional<std::uint64_t> parse_segment_name(std::string_view file_name,
                                                std::string_view suffix);

// Bases of the segments (.log files) in `dir`, ascending. Errors: not_found, io_error.
Result<std::vector<std::uint64_t>> list_segments(const std::string& dir);

// Offsets [start, end) that recovery set aside as damaged: a "<start>.corrupt" file of
// end - start bytes (docs/formats/log.md).
struct DamagedRange {
  std::uint64_t start = 0;
  std::uint64_t end = 0;
};
// The damaged ranges of the log in `dir`, ascending. A missing directory has none.
std::vector<DamagedRange> list_damaged(const std::string& dir);

// The index header for a new segment starting at `base`.
layout::LogIndexHeader make_index_header(std::uint64_t base) noexcept;
// The record for a chunk ending at `end` whose bytes have CRC32C `data_crc`.
layout::ChunkRecord make_chunk_record(std::uint64_t end, std::uint32_t data_crc) noexcept;
bool index_header_valid(const layout::LogIndexHeader& h, std::uint64_t base) noexcept;
bool chunk_record_valid(const layout::ChunkRecord& r) noexcept;

// The index of segment `base` read from the open file `fd`, from record `first` on. Stops at
// the first torn or invalid record (or one that does not move forward from `after`). Errors:
// corrupt (bad header), io_error.
Result<std::vector<layout::ChunkRecord>> read_chunk_records(int fd, std::uint64_t base,
                                                            std::uint64_t first,
                                                            std::uint64_t after);

}  // namespace ringbus::detail
