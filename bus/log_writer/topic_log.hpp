// The writing side of a topic's disk log: append chunks of whole frames to segment files with a
// CRC32C record per chunk, roll segments, sync, recover after a crash, apply retention.
// Format: docs/formats/log.md (bus/formats/layout/log_layout.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ringbus/bytes.hpp"
#include "ringbus/result.hpp"

namespace ringbus::detail {

struct TopicLogOptions {
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;  // roll after this many bytes
  std::uint64_t max_message = 0;                          // the topic's limits, to walk frames
  std::uint64_t frame_alignment = 64;
  // Flush a segment to the device when rolling to the next one, and the directory when a
  // segment is created (off with fsync policy `never`: page cache only).
  bool sync_on_roll = true;
  // The durable position state.json recorded (0: none). Recovery never silently drops bytes
  // below it: a damaged chunk there is set aside as damaged, not cut as a torn tail.
  std::uint64_t durable_hint = 0;
  // Mode of the files the log creates (segments, indexes, the lock, set-aside damage, and
  // state.json through write_log_state); directories it creates get x where files get r.
  // Owner-only by default; log_file_mode() gives the mode that matches a topic's file.
  std::uint32_t file_mode = 0600;
};

// The log's file mode for a topic whose file has `topic_mode`: whoever may read the topic may
// replay its log (group or others read it where they read the topic); only the owner writes.
constexpr std::uint32_t log_file_mode(std::uint32_t topic_mode) noexcept {
  return 0600U | (topic_mode & 0044U);
}
// A log directory's mode for files of `file_mode`: 0600 -> 0700, 0640 -> 0750, 0644 -> 0755.
constexpr std::uint32_t log_directory_mode(std::uint32_t file_mode) noexcept {
  return 0700U | ((file_mode & 0040U) != 0 ? 0050U : 0U) | ((file_mode & 0004U) != 0 ? 0005U : 0U);
}

class TopicLog {
 public:
  // Opens (creating) the log in `dir`, holding an exclusive lock on it, and recovers it
  // (docs/formats/log.md, "Recovery"): every chunk of the newest segment is checked; a torn or
  // garbage tail past the durable hint is cut; damaged chunks below it are set aside in
  // `<offset>.corrupt` files and the valid chunks after them kept (the segment is split); the
  // chunk index of any segment that does not cover its segment is rebuilt from the frames.
  // Then (with sync_on_roll) the newest segment is synced, so synced_end() is true on disk.
  // `recovery()` says what was done. Errors: busy (another bridge holds the lock), io_error.
  static Result<TopicLog> open(const std::string& dir, const TopicLogOptions& options);

  TopicLog(TopicLog&&) noexcept;
  TopicLog& operator=(TopicLog&&) noexcept;
  ~TopicLog();

  const std::string& directory() const noexcept { return dir_; }
  bool empty() const noexcept { return segments_.empty(); }
  std::uint64_t start() const noexcept;                // oldest offset in the log (end() if empty)
  std::uint64_t end() const noexcept { return end_; }  // next offset to append
  // Offset up to which the log is on the device (the last successful sync; without
  // sync_on_roll, up to which it was written). Never moves back except by a failed sync.
  std::uint64_t synced_end() const noexcept { return synced_end_; }
  // Sequence number of the message after the last one in the log; false if it holds none.
  bool end_sequence(std::uint64_t& out) const noexcept;
  std::uint64_t segment_count() const noexcept { return segments_.size(); }
  std::uint64_t bytes() const noexcept;
  const std::string& recovery() const noexcept { return recovery_; }
  // Bytes the active segment takes before it rolls.
  std::uint64_t room() const noexcept;

  // Appends whole frames that start at stream offset `position`; `last_sequence` is the
  // sequence number of the last message among them (none: padding only). A position past
  // end() leaves a gap: a new segment starts there. A chunk that does not fit the active
  // segment is split between frames, so a segment exceeds segment_bytes only by holding a
  // single frame larger than that. On error, end() says how much of the chunk was written
  // (whole frames; usually none), and nothing else of it stays in the files, so the caller
  // continues from end(). A failed sync at a roll also rewinds the log to synced_end() (see
  // sync()). Errors: io_error, no_space.
  Result<void> append(std::uint64_t position, const std::byte* data, std::size_t size,
                      const std::uint64_t* last_sequence);
  // The same for a chunk in several pieces (a range of the ring that wraps), written with one
  // pwritev: the recorder writes frames straight from shared memory.
  Result<void> append(std::uint64_t position, std::span<const ConstBytes> pieces,
                      const std::uint64_t* last_sequence);

  // Flushes the active segment and its index to the device (fdatasync), then check_active().
  // After a failed sync the kernel may have dropped the unsynced pages (and a later sync would
  // then succeed without writing them), so the log is cut back to synced_end(): the caller
  // must write [synced_end(), old end) again, from the ring, or report them lost.
  Result<void> sync();
  // Notices an active segment deleted from under the log (an error: its bytes are gone from
  // the disk; the next append starts a new segment).
  Result<void> check_active();

  // Deletes whole oldest segments (never the active one) while the log holds more than
  // max_bytes (0: no limit) or their newest byte is older than max_age (0: no limit).
  // Segments already gone from the directory (removed by hand) are dropped from the log's
  // view and skipped. Returns what was removed.
  struct Retention {
    std::uint64_t segments = 0;  // removed by retention
    std::uint64_t bytes = 0;
    std::uint64_t from = 0;  // offsets [from, to) are no longer in the log
    std::uint64_t to = 0;
    std::uint64_t vanished = 0;  // segments found already deleted (by hand)
  };
  Retention apply_retention(std::uint64_t max_bytes, std::chrono::milliseconds max_age);

 private:
  struct Segment {
    std::uint64_t base = 0;
    std::uint64_t size = 0;
  };
  struct Files;  // the lock, the active segment and its index (descriptors; topic_log.cpp)
  TopicLog();
  Result<void> recover();          // log_recovery.cpp
  Result<void> reload_segments();  // segments_ from the directory
  Result<void> open_active(std::uint64_t base, bool create);
  void close_active() noexcept;
  Result<void> append_chunk(std::uint64_t position, std::span<const ConstBytes> pieces,
                            std::size_t size, const std::uint64_t* last_sequence);
  // fdatasync of the active segment and its index; on failure, rewind_unsynced().
  Result<void> sync_active(const char* when);
  void rewind_unsynced() noexcept;

  std::string dir_;
  TopicLogOptions options_;
  std::unique_ptr<Files> files_;
  std::uint64_t index_records_ = 0;
  std::vector<Segment> segments_;
  std::uint64_t end_ = 0;
  std::uint64_t end_sequence_ = 0;
  bool has_sequence_ = false;
  std::uint64_t synced_end_ = 0;
  std::uint64_t synced_records_ = 0;  // index records of the active segment at synced_end_
  std::uint64_t synced_sequence_ = 0;
  bool synced_has_sequence_ = false;
  bool roll_next_ = false;  // the active segment has no room for the next frame
  std::string recovery_;
};

}  // namespace ringbus::detail

// The bridge and its tests name these ringbus::bridge::..., from when the writer lived in
// tools/bridge/.
namespace ringbus::bridge {
using detail::log_file_mode;
using detail::TopicLog;
using detail::TopicLogOptions;
}  // namespace ringbus::bridge
