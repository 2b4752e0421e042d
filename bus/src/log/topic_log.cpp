// TopicLog: segment files, chunk records, syncs, retention (docs/formats/log.md). Recovery is in
// log_recovery.cpp.
#include "topic_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "layout/frame_layout.hpp"
#include "layout/log_layout.hpp"
#include "log/crc32c.hpp"
#include "log/log_files.hpp"
#include "log/segments.hpp"
#include "log/topic_log_files.hpp"

namespace ringbus::detail {

TopicLog::TopicLog() : files_(std::make_unique<Files>()) {}
TopicLog::TopicLog(TopicLog&&) noexcept = default;
TopicLog& TopicLog::operator=(TopicLog&&) noexcept = default;
TopicLog::~TopicLog() = default;

namespace {

using detail::segment_file;

std::uint64_t index_size(std::uint64_t records) {
  return sizeof(layout::LogIndexHeader) + records * sizeof(layout::ChunkRecord);
}

// How many leading bytes of `pieces` (from byte `skip` on) are whole frames that fit in
// `limit`; with `at_least_one`, the first frame even if it is larger (a frame larger than a
// segment gets a segment of its own). `last` is the sequence number of the last message among
// them. Frames never span pieces (they never wrap the ring). nullopt if the bytes do not parse
// as frames (then nothing is split).
std::optional<std::size_t> whole_frames(std::span<const ConstBytes> pieces, std::size_t skip,
                                        std::size_t limit, bool at_least_one,
                                        std::uint64_t alignment, std::uint64_t& last,
                                        bool& has_last) {
  std::size_t taken = 0;
  std::size_t seen = 0;
  has_last = false;
  for (const auto& piece : pieces) {
    std::size_t at = skip > seen ? std::min(skip - seen, piece.size()) : 0;
    seen += piece.size();
    while (at < piece.size()) {
      if (piece.size() - at < layout::kFrameHeaderSize) return std::nullopt;
      layout::FrameHeader h{};
      std::memcpy(&h, piece.data() + at, sizeof h);
      const std::uint64_t length = layout::commit_length(h.commit);
      std::uint64_t stride = 0;
      if (layout::commit_kind(h.commit) == layout::FrameKind::kData) {
        stride = layout::frame_stride(length, alignment);
      } else if (layout::commit_kind(h.commit) == layout::FrameKind::kPadding) {
        stride = length;
      }
      if (stride == 0 || stride > piece.size() - at) return std::nullopt;
      if (taken + stride > limit && (taken > 0 || !at_least_one)) return taken;
      if (layout::commit_kind(h.commit) == layout::FrameKind::kData) {
        last = h.sequence;
        has_last = true;
      }
      taken += stride;
      at += stride;
    }
  }
  return taken;
}

// `size` bytes of `pieces` from byte `skip` on, as pieces.
std::vector<ConstBytes> sub_pieces(std::span<const ConstBytes> pieces, std::size_t skip,
                                   std::size_t size) {
  std::vector<ConstBytes> out;
  for (const auto& p : pieces) {
    if (size == 0) break;
    if (skip >= p.size()) {
      skip -= p.size();
      continue;
    }
    const std::size_t n = std::min(p.size() - skip, size);
    out.emplace_back(p.data() + skip, n);
    size -= n;
    skip = 0;
  }
  return out;
}

}  // namespace

void TopicLog::close_active() noexcept {
  files_->log.reset();
  files_->index.reset();
}

std::uint64_t TopicLog::start() const noexcept {
  return segments_.empty() ? end_ : segments_.front().base;
}

bool TopicLog::end_sequence(std::uint64_t& out) const noexcept {
  out = end_sequence_;
  return has_sequence_;
}

std::uint64_t TopicLog::bytes() const noexcept {
  std::uint64_t total = 0;
  for (const auto& s : segments_) total += s.size;
  return total;
}

std::uint64_t TopicLog::room() const noexcept {
  if (segments_.empty() || !files_->log.valid()) return options_.segment_bytes;
  const auto& active = segments_.back();
  return active.size >= options_.segment_bytes ? 0 : options_.segment_bytes - active.size;
}

Result<TopicLog> TopicLog::open(const std::string& dir, const TopicLogOptions& options) {
  if (auto ok = make_directories(dir, options.sync_on_roll, log_directory_mode(options.file_mode));
      !ok)
    return ok.error();
  TopicLog log;
  log.dir_ = dir;
  log.options_ = options;
  std::string lock_path = dir + "/lock";
  log.files_->lock.reset(
      ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, options.file_mode));
  if (!log.files_->lock.valid()) return io_error("cannot open " + lock_path, errno);
  if (::flock(log.files_->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Errc::busy, "log directory " + dir + " is in use by another ringbus-bridge");
    }
    return io_error("cannot lock " + lock_path, errno);
  }
  if (auto ok = log.recover(); !ok) return ok.error();
  // Whatever a previous writer left in the page cache is durable only once synced: until then
  // nothing past what a sync covered may be called durable (a kill -9 skips the last sync).
  log.synced_end_ = log.end_;
  log.synced_records_ = log.index_records_;
  log.synced_sequence_ = log.end_sequence_;
  log.synced_has_sequence_ = log.has_sequence_;
  if (options.sync_on_roll && log.files_->log.valid()) {
    const std::string name = segment_file(dir, log.segments_.back().base, layout::kSegmentSuffix);
    if (auto ok = sync_file(log.files_->log.get(), name); !ok) return ok.error();
    if (auto ok = sync_file(log.files_->index.get(), "the chunk index of " + name); !ok)
      return ok.error();
  }
  return log;
}

Result<void> TopicLog::open_active(std::uint64_t base, bool create) {
  close_active();
  std::string log_path = segment_file(dir_, base, layout::kSegmentSuffix);
  std::string index_path = segment_file(dir_, base, layout::kIndexSuffix);
  int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_TRUNC : 0);
  files_->log.reset(::open(log_path.c_str(), flags, options_.file_mode));
  if (!files_->log.valid()) return io_error("cannot open segment " + log_path, errno);
  files_->index.reset(::open(index_path.c_str(),
                             O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_TRUNC : 0),
                             options_.file_mode));
  if (!files_->index.valid()) {
    int err = errno;
    close_active();
    return io_error("cannot open chunk index " + index_path, err);
  }
  if (create) {
    auto header = detail::make_index_header(base);
    Result<void> ok = write_all(files_->index.get(), &header, sizeof header, 0);
    if (ok && options_.sync_on_roll) ok = sync_directory(dir_);
    if (!ok) {
      close_active();
      ::unlink(log_path.c_str());
      ::unlink(index_path.c_str());
      return Error(ok.code(), "cannot create segment " + log_path + ": " + ok.error().message());
    }
    index_records_ = 0;
  }
  return {};
}

Result<void> TopicLog::append(std::uint64_t position, const std::byte* data, std::size_t size,
                              const std::uint64_t* last_sequence) {
  const ConstBytes piece(data, size);
  return append(position, std::span<const ConstBytes>(&piece, 1), last_sequence);
}

Result<void> TopicLog::append(std::uint64_t position, std::span<const ConstBytes> pieces,
                              const std::uint64_t* last_sequence) {
  std::size_t size = 0;
  for (const auto& p : pieces) size += p.size();
  if (size == 0) return {};
  if (position < end_) {
    return Error(Errc::invalid_argument, "append at offset " + std::to_string(position) +
                                             " before the log's end " + std::to_string(end_));
  }
  std::size_t done = 0;
  while (done < size) {
    const std::uint64_t at = position + done;
    const bool fresh = roll_next_ || !files_->log.valid() || segments_.empty() ||
                       at != segments_.back().base + segments_.back().size ||
                       segments_.back().size >= options_.segment_bytes;
    const std::uint64_t limit = fresh ? options_.segment_bytes : room();
    std::size_t part = size - done;
    std::uint64_t sequence = last_sequence != nullptr ? *last_sequence : 0;
    bool has_sequence = last_sequence != nullptr;
    if (part > limit) {
      std::uint64_t part_sequence = 0;
      bool part_has_sequence = false;
      auto fit = whole_frames(pieces, done, limit, fresh, options_.frame_alignment, part_sequence,
                              part_has_sequence);
      if (fit && *fit == 0) {
        roll_next_ = true;  // not even one frame fits the room left: the next segment
        continue;
      }
      if (fit && *fit < part) {  // else unparsable: written whole
        part = *fit;
        sequence = part_sequence;
        has_sequence = part_has_sequence;
      }
    }
    auto chunk = sub_pieces(pieces, done, part);
    if (auto ok = append_chunk(at, chunk, part, has_sequence ? &sequence : nullptr); !ok) {
      return ok;
    }
    done += part;
  }
  return {};
}

Result<void> TopicLog::append_chunk(std::uint64_t position, std::span<const ConstBytes> pieces,
                                    std::size_t size, const std::uint64_t* last_sequence) {
  const bool roll = roll_next_ || !files_->log.valid() || segments_.empty() ||
                    position != segments_.back().base + segments_.back().size ||
                    segments_.back().size >= options_.segment_bytes;
  if (roll) {
    // Whatever the previous segment holds must reach the device before a newer one exists.
    if (files_->log.valid() && options_.sync_on_roll) {
      if (auto ok = sync_active("before starting a new segment"); !ok) return ok;
    }
    if (auto ok = open_active(position, true); !ok) return ok.error();
    segments_.push_back(Segment{position, 0});
    roll_next_ = false;
    synced_records_ = 0;  // (with sync_on_roll, synced_end_ is now at or before its base)
  }
  Segment& active = segments_.back();
  auto undo = [&](Error e) {
    // Leave no part of the chunk behind. Should a truncation fail too, nothing is lost: the
    // retry writes the chunk and its record again at the same offsets, and recovery cuts an
    // unindexed tail.
    (void)!::ftruncate(files_->log.get(), static_cast<off_t>(active.size));
    (void)!::ftruncate(files_->index.get(), static_cast<off_t>(index_size(index_records_)));
    if (active.size == 0) {
      // A segment that never got a chunk: remove it, so recovery never sees it.
      ::unlink(segment_file(dir_, active.base, layout::kSegmentSuffix).c_str());
      ::unlink(segment_file(dir_, active.base, layout::kIndexSuffix).c_str());
      close_active();
      segments_.pop_back();
    }
    return e;
  };
  // Checksum, bytes, then the record that makes them part of the log.
  std::uint32_t crc = 0;
  for (const auto& p : pieces) crc = detail::crc32c(p.data(), p.size(), crc);
  if (auto ok = write_all(files_->log.get(), pieces, active.size); !ok) {
    return undo(Error(ok.code(), "cannot append to segment " +
                                     segment_file(dir_, active.base, layout::kSegmentSuffix) +
                                     ": " + ok.error().message()));
  }
  auto record = detail::make_chunk_record(position + size, crc);
  if (auto ok = write_all(files_->index.get(), &record, sizeof record, index_size(index_records_));
      !ok) {
    return undo(Error(ok.code(), "cannot append to chunk index of segment " +
                                     std::to_string(active.base) + ": " + ok.error().message()));
  }
  ++index_records_;
  active.size += size;
  end_ = position + size;
  if (!options_.sync_on_roll) synced_end_ = end_;
  if (last_sequence != nullptr) {
    end_sequence_ = *last_sequence + 1;
    has_sequence_ = true;
  }
  return {};
}

Result<void> TopicLog::sync_active(const char* when) {
  const std::string name = segment_file(dir_, segments_.back().base, layout::kSegmentSuffix);
  Result<void> ok = sync_file(files_->log.get(), name);
  if (ok) ok = sync_file(files_->index.get(), "the chunk index of " + name);
  if (!ok) {
    const std::uint64_t from = synced_end_;
    const std::uint64_t to = end_;
    rewind_unsynced();
    return Error(ok.code(), ok.error().message() + " (" + when + "); offsets [" +
                                std::to_string(from) + ", " + std::to_string(to) +
                                ") may not be on the device and are cut from the log to be "
                                "written again");
  }
  synced_end_ = end_;
  synced_records_ = index_records_;
  synced_sequence_ = end_sequence_;
  synced_has_sequence_ = has_sequence_;
  return {};
}

void TopicLog::rewind_unsynced() noexcept {
  if (segments_.empty() || !files_->log.valid()) return;
  Segment& active = segments_.back();
  if (synced_end_ <= active.base) {
    // Nothing of the active segment is known to be on the device.
    ::unlink(segment_file(dir_, active.base, layout::kSegmentSuffix).c_str());
    ::unlink(segment_file(dir_, active.base, layout::kIndexSuffix).c_str());
    close_active();
    segments_.pop_back();
  } else {
    // Truncating drops the suspect pages; a rewrite makes fresh dirty ones that the next
    // fdatasync writes (or fails on, loudly).
    (void)!::ftruncate(files_->log.get(), static_cast<off_t>(synced_end_ - active.base));
    (void)!::ftruncate(files_->index.get(), static_cast<off_t>(index_size(synced_records_)));
    active.size = synced_end_ - active.base;
    index_records_ = synced_records_;
  }
  end_ = synced_end_;
  end_sequence_ = synced_sequence_;
  has_sequence_ = synced_has_sequence_;
}

Result<void> TopicLog::sync() {
  if (!files_->log.valid()) return {};
  if (auto ok = sync_active("periodic sync"); !ok) return ok;
  return check_active();
}

Result<void> TopicLog::check_active() {
  if (!files_->log.valid()) return {};
  struct stat st {};
  if (::fstat(files_->log.get(), &st) == 0 && st.st_nlink == 0) {
    std::uint64_t base = segments_.back().base;
    close_active();
    segments_.pop_back();
    ::unlink(segment_file(dir_, base, layout::kIndexSuffix).c_str());  // its index is useless
    return Error(Errc::io_error, "active segment " +
                                     segment_file(dir_, base, layout::kSegmentSuffix) +
                                     " was deleted; its bytes are lost from the log, recording "
                                     "continues in a new segment");
  }
  return {};
}

TopicLog::Retention TopicLog::apply_retention(std::uint64_t max_bytes,
                                              std::chrono::milliseconds max_age) {
  Retention removed;
  const auto now = std::chrono::system_clock::now();
  while (segments_.size() > 1) {
    const Segment oldest = segments_.front();
    std::string log_path = segment_file(dir_, oldest.base, layout::kSegmentSuffix);
    struct stat st {};
    if (::stat(log_path.c_str(), &st) != 0 && errno == ENOENT) {
      // Deleted by hand: it is no longer part of the log; look at the next one.
      ::unlink(segment_file(dir_, oldest.base, layout::kIndexSuffix).c_str());
      segments_.erase(segments_.begin());
      ++removed.vanished;
      continue;
    }
    bool too_big = max_bytes != 0 && bytes() > max_bytes;
    bool too_old = false;
    if (max_age.count() > 0) {
      auto modified = std::chrono::system_clock::time_point(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
      too_old = now - modified > max_age;
    }
    if (!too_big && !too_old) break;
    // The segment first, so a reader never finds a segment without its index.
    ::unlink(log_path.c_str());
    ::unlink(segment_file(dir_, oldest.base, layout::kIndexSuffix).c_str());
    if (removed.segments == 0) removed.from = oldest.base;
    removed.to = oldest.base + oldest.size;
    ++removed.segments;
    removed.bytes += oldest.size;
    segments_.erase(segments_.begin());
  }
  // Damaged ranges set aside below what retention removed go with it.
  if (removed.segments > 0) {
    for (const auto& d : detail::list_damaged(dir_)) {
      if (d.end <= removed.to) {
        ::unlink(segment_file(dir_, d.start, layout::kDamagedSuffix).c_str());
      }
    }
  }
  return removed;
}

}  // namespace ringbus::detail
