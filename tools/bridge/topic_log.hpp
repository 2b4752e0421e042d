// The writing side of a topic's disk log: append chunks of whole frames to segment files with a
// CRC32C record per chunk, roll segments, sync, recover after a crash, apply retention.
// Format: docs/formats/log.md (bus/src/layout/log_layout.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "ringbus/bytes.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

struct TopicLogOptions {
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // roll after this many bytes
  std::uint64_t max_message = 0;                          // the topic's limits, to walk frames
  std::uint64_t frame_alignment = 64;
  // Flush a segment to the device when rolling to the next one, and the directory when a
  // segment is created (off with fsync policy `never`: page cache only).
  bool sync_on_roll = true;
};

class TopicLog {
 public:
  // Opens (creating) the log in `dir`, holding an exclusive lock on it, and recovers it: the
  // newest segment is cut after its last chunk whose CRC32C matches (a crash or a power cut can
  // leave a torn or garbage tail), and empty leftovers are removed. `recovery()` says what was
  // done. Errors: busy (another bridge holds the lock), io_error, corrupt.
  static Result<TopicLog> open(const std::string& dir, const TopicLogOptions& options);

  TopicLog(TopicLog&&) noexcept;
  TopicLog& operator=(TopicLog&&) noexcept;
  ~TopicLog();

  const std::string& directory() const noexcept { return dir_; }
  bool empty() const noexcept { return segments_.empty(); }
  std::uint64_t start() const noexcept;                // oldest offset in the log (end() if empty)
  std::uint64_t end() const noexcept { return end_; }  // next offset to append
  // Sequence number of the message after the last one in the log; false if it holds none.
  bool end_sequence(std::uint64_t& out) const noexcept;
  std::uint64_t segment_count() const noexcept { return segments_.size(); }
  std::uint64_t bytes() const noexcept;
  const std::string& recovery() const noexcept { return recovery_; }
  // Bytes the active segment takes before it rolls.
  std::uint64_t room() const noexcept;

  // Appends whole frames that start at stream offset `position`; `last_sequence` is the
  // sequence number of the last message among them (none: padding only). A position past
  // end() leaves a gap: a new segment starts there. On error nothing of the chunk stays in
  // the files, so the caller may simply try again. Errors: io_error, no_space.
  Result<void> append(std::uint64_t position, const std::byte* data, std::size_t size,
                      const std::uint64_t* last_sequence);
  // The same for a chunk in several pieces (a range of the ring that wraps), written with one
  // pwritev: the recorder writes frames straight from shared memory.
  Result<void> append(std::uint64_t position, std::span<const ConstBytes> pieces,
                      const std::uint64_t* last_sequence);

  // Flushes the active segment and its index to the device (fdatasync), then check_active().
  Result<void> sync();
  // Notices an active segment deleted from under the log (an error: its bytes are gone from
  // the disk; the next append starts a new segment).
  Result<void> check_active();

  // Deletes whole oldest segments (never the active one) while the log holds more than
  // max_bytes (0: no limit) or their newest byte is older than max_age (0: no limit).
  // Returns the removed segments' names.
  std::vector<std::string> apply_retention(std::uint64_t max_bytes,
                                           std::chrono::milliseconds max_age);

 private:
  struct Segment {
    std::uint64_t base = 0;
    std::uint64_t size = 0;
  };
  TopicLog() = default;
  Result<void> recover();
  Result<void> open_active(std::uint64_t base, bool create);
  void close_active() noexcept;

  std::string dir_;
  TopicLogOptions options_;
  int lock_fd_ = -1;
  int log_fd_ = -1;    // active segment
  int index_fd_ = -1;  // its chunk index
  std::uint64_t index_records_ = 0;
  std::vector<Segment> segments_;
  std::uint64_t end_ = 0;
  std::uint64_t end_sequence_ = 0;
  bool has_sequence_ = false;
  std::string recovery_;
};

}  // namespace ringbus::bridge
