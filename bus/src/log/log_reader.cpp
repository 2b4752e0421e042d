// LogReader: find the segment holding an offset, verify its chunks, validate its frames.
#include "log/log_reader.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "log/crc32c.hpp"
#include "log/segments.hpp"

namespace ringbus::detail {

LogReader::LogReader(std::string dir, std::uint64_t max_message, std::uint64_t alignment)
    : dir_(std::move(dir)), max_message_(max_message), alignment_(alignment) {}

LogReader::~LogReader() { close_segment(); }

void LogReader::close_segment() noexcept {
  if (!open_) return;
  seg_ = Segment{};  // unmaps and closes
  open_ = false;
}

bool LogReader::open_segment(std::uint64_t base) {
  close_segment();
  Segment s;
  s.base = base;
  s.verified_end = base;
  std::string log_path = segment_file(dir_, base, layout::kSegmentSuffix);
  s.log_fd.reset(::open(log_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  vanished_ = !s.log_fd && errno == ENOENT;
  if (!s.log_fd) {
    error_ = "cannot open segment " + log_path + ": " + std::generic_category().message(errno);
    return false;
  }
  std::string index_path = segment_file(dir_, base, layout::kIndexSuffix);
  s.index_fd.reset(::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!s.index_fd) {
    const int err = errno;
    error_ = "cannot open chunk index " + index_path + ": " + std::generic_category().message(err);
    struct stat st {};
    const bool sealed = !bases_.empty() && base < bases_.back();
    if (err == ENOENT && sealed && ::fstat(s.log_fd.get(), &st) == 0 && st.st_nlink > 0) {
      // Not a segment being created or deleted: its index is gone.
      error_ = "segment " + log_path + ": its chunk index " + index_path +
               " is missing, so offsets [" + std::to_string(base) + ", " +
               std::to_string(base + static_cast<std::uint64_t>(st.st_size)) +
               ") cannot be verified (ringbus-bridge rebuilds it from the segment when it next "
               "starts recording the topic)";
    } else {
      vanished_ = err == ENOENT;
    }
    return false;
  }
  seg_ = std::move(s);
  open_ = true;
  return true;
}

bool LogReader::map_up_to(std::uint64_t end) {
  if (end - seg_.base <= seg_.map.size()) return true;
  struct stat st {};
  if (::fstat(seg_.log_fd.get(), &st) != 0) {
    error_ = std::string("cannot stat segment: ") + std::generic_category().message(errno);
    return false;
  }
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < end - seg_.base) {
    error_ = "segment " + segment_file(dir_, seg_.base, layout::kSegmentSuffix) + " is " +
             std::to_string(size) + " bytes, shorter than its chunk index says (" +
             std::to_string(end - seg_.base) + ")";
    return false;
  }
  if (!seg_.map.map(seg_.log_fd.get(), size)) {
    error_ = std::string("cannot map segment: ") + std::generic_category().message(errno);
    return false;
  }
  return true;
}

bool LogReader::extend() {
  auto records =
      read_chunk_records(seg_.index_fd.get(), seg_.base, seg_.records, seg_.verified_end);
  if (!records) {
    error_ = segment_file(dir_, seg_.base, layout::kIndexSuffix) + ": " +
             records.error().message() +
             " (ringbus-bridge rebuilds it from the segment when it "
             "next starts recording the topic)";
    return false;
  }
  std::size_t verified = 0;
  for (const auto& r : *records) {
    if (!map_up_to(r.end_position)) return verified > 0;
    const std::byte* chunk = seg_.map.data() + (seg_.verified_end - seg_.base);
    if (crc32c(chunk, r.end_position - seg_.verified_end) != r.data_crc) {
      error_ = "segment " + segment_file(dir_, seg_.base, layout::kSegmentSuffix) +
               ": CRC32C mismatch in chunk [" + std::to_string(seg_.verified_end) + ", " +
               std::to_string(r.end_position) + ")";
      // The chunks before it are good: hand them out; a reader that reaches this one fails.
      return verified > 0;
    }
    ++verified;
    seg_.verified_end = r.end_position;
    ++seg_.records;
  }
  return true;
}

LogReader::Read LogReader::gap_or_corrupt(std::uint64_t position, std::uint64_t next) {
  // A segment that is not the newest must be covered by its index to its last byte (it was
  // complete before the next one began): bytes past its verified end are damage, not a gap.
  struct stat st {};
  if (open_ && position >= seg_.base && ::fstat(seg_.log_fd.get(), &st) == 0 &&
      position < seg_.base + static_cast<std::uint64_t>(st.st_size)) {
    const std::uint64_t file_end = seg_.base + static_cast<std::uint64_t>(st.st_size);
    return fail("segment " + segment_file(dir_, seg_.base, layout::kSegmentSuffix) + ": offsets [" +
                std::to_string(seg_.verified_end) + ", " + std::to_string(file_end) +
                ") cannot be verified: its chunk index " +
                segment_file(dir_, seg_.base, layout::kIndexSuffix) +
                " is damaged, truncated or empty (ringbus-bridge rebuilds it from the segment "
                "when it next starts recording the topic)");
  }
  // Offsets that recovery set aside as damaged are an error, not a loss to skip silently.
  for (const DamagedRange& d : list_damaged(dir_)) {
    if (d.start < next && d.end > position) {
      return fail("log " + dir_ + ": offsets [" + std::to_string(d.start) + ", " +
                  std::to_string(d.end) + ") are damaged and were set aside in " +
                  segment_file(dir_, d.start, layout::kDamagedSuffix) +
                  "; the log continues at offset " + std::to_string(next) + " (read on with " +
                  "--from " + std::to_string(next) + ")");
    }
  }
  return Read{Status::gap, nullptr, 0, next};
}

LogReader::Read LogReader::fail(std::string message) {
  error_ = std::move(message);
  return Read{Status::corrupt, nullptr, 0, 0};
}

bool LogReader::earliest(std::uint64_t& out) {
  auto bases = list_segments(dir_);
  if (!bases || bases->empty()) return false;
  out = bases->front();
  // A damaged range before the first segment is part of the log: reading from the earliest
  // offset must meet it (and fail), not start after it.
  for (const DamagedRange& d : list_damaged(dir_)) out = std::min(out, d.start);
  return true;
}

LogReader::Read LogReader::read(std::uint64_t position) {
  // Find and verify the segment holding `position`.
  for (int step = 0; step < 8; ++step) {
    if (open_ && position >= seg_.base && position < seg_.verified_end) break;
    if (open_ && position >= seg_.base && position == seg_.verified_end) {
      if (!extend()) return Read{Status::corrupt, nullptr, 0, 0};
      if (position < seg_.verified_end) break;
    }
    // Not in the open segment (or at its end): look at the directory again.
    auto bases = list_segments(dir_);
    if (!bases) return fail(bases.error().message());
    bases_ = std::move(*bases);
    if (bases_.empty()) return Read{Status::end, nullptr, 0, 0};
    if (position < bases_.front()) {
      for (const DamagedRange& d : list_damaged(dir_)) {  // damaged, not deleted by retention
        if (d.start < bases_.front() && d.end > position) return gap_or_corrupt(position, d.end);
      }
      return Read{Status::out_of_range, nullptr, 0, bases_.front()};
    }
    auto after = std::upper_bound(bases_.begin(), bases_.end(), position);
    const std::uint64_t base = *(after - 1);
    if (!open_ || seg_.base != base) {
      if (!open_segment(base)) {
        if (vanished_) continue;  // deleted by retention since we listed: list again
        return Read{Status::corrupt, nullptr, 0, 0};
      }
    }
    // Read the index again after listing: a newer segment exists only once this one's last
    // chunk record was written, so a gap is never inferred from a stale view of this one.
    if (position >= seg_.verified_end && !extend()) return Read{Status::corrupt, nullptr, 0, 0};
    if (position < seg_.verified_end) break;
    if (position > seg_.verified_end) {
      // Not recorded (yet): past the newest segment's end, or in a gap before the next one.
      if (after == bases_.end()) return Read{Status::end, nullptr, 0, 0};
      return gap_or_corrupt(position, *after);
    }
    // At the end of this segment: the next one continues here, later (a gap), or not yet.
    if (after == bases_.end()) return Read{Status::end, nullptr, 0, 0};
    if (*after != position) return gap_or_corrupt(position, *after);
    if (!open_segment(*after)) {
      if (vanished_) continue;
      return Read{Status::corrupt, nullptr, 0, 0};
    }
    if (!extend()) return Read{Status::corrupt, nullptr, 0, 0};
    if (position < seg_.verified_end) break;
    return Read{Status::end, nullptr, 0, 0};
  }
  if (!open_ || position < seg_.base || position >= seg_.verified_end) {
    return Read{Status::end, nullptr, 0, 0};
  }

  const std::uint64_t offset = position - seg_.base;
  const std::uint64_t available = seg_.verified_end - position;
  auto where = [&] { return " at offset " + std::to_string(position) + " of log " + dir_; };
  if (position % alignment_ != 0 || available < layout::kFrameHeaderSize) {
    return fail("misaligned or truncated frame" + where());
  }
  const auto* frame = reinterpret_cast<const layout::FrameHeader*>(seg_.map.data() + offset);
  const std::uint64_t word = frame->commit;
  const std::uint64_t length = layout::commit_length(word);
  std::uint64_t stride = 0;
  switch (layout::commit_kind(word)) {
    case layout::FrameKind::kData:
      if (length > max_message_ || frame->key_length > length) {
        return fail("frame length " + std::to_string(length) + " out of bounds" + where());
      }
      stride = layout::frame_stride(length, alignment_);
      break;
    case layout::FrameKind::kPadding:
      if (length == 0 || length % alignment_ != 0) return fail("invalid padding frame" + where());
      stride = length;
      break;
    default: return fail("uncommitted frame in the log" + where());
  }
  if (stride > available) return fail("frame crosses the end of its chunk" + where());
  return Read{Status::frame, frame, stride, position + stride};
}

}  // namespace ringbus::detail
