// Reads frames from a topic's disk log: segments mapped read-only, every chunk's CRC32C checked
// before any frame in it is handed out. Used for replay by subscribers and the tools.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layout/frame_layout.hpp"
#include "sys/mapping.hpp"
#include "sys/unique_fd.hpp"

namespace ringbus::detail {

class LogReader {
 public:
  enum class Status : std::uint8_t {
    frame,         // `frame` is a complete data or padding frame of `stride` bytes
    end,           // nothing recorded at `position` yet
    gap,           // the log has no bytes at `position` (lost before they were recorded); it
                   // continues at `next`
    out_of_range,  // `position` is older than the log's earliest offset `next` (retention)
    corrupt,       // a chunk fails its CRC, a frame is invalid, a segment's index does not
                   // cover it, or the offsets were set aside as damaged: error() says where
  };
  struct Read {
    Status status = Status::end;
    const layout::FrameHeader* frame = nullptr;
    std::uint64_t stride = 0;
    std::uint64_t next = 0;
  };

  // `dir` is <log_dir>/<topic>; frames are validated against the topic's limits.
  LogReader(std::string dir, std::uint64_t max_message, std::uint64_t alignment);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // The frame starting at stream offset `position`. The frame stays readable until the next
  // call. Not a hot path: switching segments lists the directory and maps files.
  Read read(std::uint64_t position);

  // The oldest offset in the log (the first segment's base), or none if there is no segment.
  bool earliest(std::uint64_t& out);

  const std::string& error() const noexcept { return error_; }
  const std::string& directory() const noexcept { return dir_; }

 private:
  struct Segment {
    std::uint64_t base = 0;
    UniqueFd log_fd;
    UniqueFd index_fd;
    ReadOnlyMapping map;
    std::uint64_t records = 0;       // chunk records consumed from the index
    std::uint64_t verified_end = 0;  // stream offset up to which chunks passed their CRC
  };
  bool open_segment(std::uint64_t base);
  void close_segment() noexcept;
  // Verifies more chunks of the open segment, up to the first that fails. False if none could
  // be verified because of a CRC or I/O error (error_ says which).
  bool extend();
  bool map_up_to(std::uint64_t end);
  Read fail(std::string message);
  // `position` is not in the open segment and the next one starts at `next`: a gap (lost
  // before recording), or corrupt (bytes the index does not cover, or set aside as damaged).
  Read gap_or_corrupt(std::uint64_t position, std::uint64_t next);

  std::string dir_;
  std::uint64_t max_message_;
  std::uint64_t alignment_;
  Segment seg_;
  bool open_ = false;
  std::vector<std::uint64_t> bases_;
  std::string error_;
  bool vanished_ = false;  // the last segment we tried to open was deleted (retention)
};

}  // namespace ringbus::detail
