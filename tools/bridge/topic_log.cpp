// TopicLog: segment files, chunk records, crash recovery and retention (docs/formats/log.md).
#include "topic_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "layout/frame_layout.hpp"
#include "layout/log_layout.hpp"
#include "log/crc32c.hpp"
#include "log/segments.hpp"

namespace ringbus::bridge {

namespace {

using detail::segment_file;

std::string errno_text(int err) { return std::strerror(err); }

Error io_error(const std::string& what, int err) {
  Errc code = (err == ENOSPC || err == EDQUOT || err == EFBIG) ? Errc::no_space : Errc::io_error;
  return Error(code, what + ": " + errno_text(err));
}

// Creates `dir` and its missing parents.
Result<void> make_directories(const std::string& dir) {
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0750) != 0 && errno != EEXIST) {
      return io_error("cannot create log directory " + part, errno);
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(Errc::io_error, "log directory " + dir + " is not a directory");
  }
  return {};
}

Result<void> write_all(int fd, const void* data, std::size_t size, std::uint64_t offset) {
  const auto* p = static_cast<const std::byte*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write failed", errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

// pwritev of every piece, resuming after partial writes.
Result<void> write_all(int fd, std::span<const ConstBytes> pieces, std::uint64_t offset) {
  std::vector<iovec> iov;
  for (const auto& p : pieces) {
    if (!p.empty()) iov.push_back(iovec{const_cast<std::byte*>(p.data()), p.size()});
  }
  std::size_t first = 0;
  while (first < iov.size()) {
    const int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = ::pwritev(fd, iov.data() + first, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write failed", errno);
    }
    offset += static_cast<std::uint64_t>(n);
    auto left = static_cast<std::size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) {
      left -= iov[first].iov_len;
      ++first;
    }
    if (left > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return {};
}

void sync_directory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The sequence number after the last message among the whole frames in [data, data + size).
bool last_sequence_in(const std::byte* data, std::uint64_t size, std::uint64_t alignment,
                      std::uint64_t& out) {
  bool found = false;
  std::uint64_t p = 0;
  while (p + layout::kFrameHeaderSize <= size) {
    layout::FrameHeader h{};
    std::memcpy(&h, data + p, sizeof h);
    std::uint64_t length = layout::commit_length(h.commit);
    std::uint64_t stride = 0;
    if (layout::commit_kind(h.commit) == layout::FrameKind::kData) {
      out = h.sequence + 1;
      found = true;
      stride = layout::frame_stride(length, alignment);
    } else if (layout::commit_kind(h.commit) == layout::FrameKind::kPadding) {
      stride = length;
    }
    if (stride == 0) break;
    p += stride;
  }
  return found;
}

}  // namespace

TopicLog::TopicLog(TopicLog&& o) noexcept { *this = std::move(o); }

TopicLog& TopicLog::operator=(TopicLog&& o) noexcept {
  if (this == &o) return *this;
  close_active();
  if (lock_fd_ >= 0) ::close(lock_fd_);
  dir_ = std::move(o.dir_);
  options_ = o.options_;
  lock_fd_ = std::exchange(o.lock_fd_, -1);
  log_fd_ = std::exchange(o.log_fd_, -1);
  index_fd_ = std::exchange(o.index_fd_, -1);
  index_records_ = o.index_records_;
  segments_ = std::move(o.segments_);
  end_ = o.end_;
  end_sequence_ = o.end_sequence_;
  has_sequence_ = o.has_sequence_;
  recovery_ = std::move(o.recovery_);
  return *this;
}

TopicLog::~TopicLog() {
  close_active();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void TopicLog::close_active() noexcept {
  if (log_fd_ >= 0) ::close(log_fd_);
  if (index_fd_ >= 0) ::close(index_fd_);
  log_fd_ = index_fd_ = -1;
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
  if (segments_.empty() || log_fd_ < 0) return options_.segment_bytes;
  const auto& active = segments_.back();
  return active.size >= options_.segment_bytes ? 0 : options_.segment_bytes - active.size;
}

Result<TopicLog> TopicLog::open(const std::string& dir, const TopicLogOptions& options) {
  if (auto ok = make_directories(dir); !ok) return ok.error();
  TopicLog log;
  log.dir_ = dir;
  log.options_ = options;
  std::string lock_path = dir + "/lock";
  log.lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (log.lock_fd_ < 0) return io_error("cannot open " + lock_path, errno);
  if (::flock(log.lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Errc::busy, "log directory " + dir + " is in use by another ringbus-bridge");
    }
    return io_error("cannot lock " + lock_path, errno);
  }
  if (auto ok = log.recover(); !ok) return ok.error();
  return log;
}

Result<void> TopicLog::recover() {
  auto bases = detail::list_segments(dir_);
  if (!bases) return bases.error();
  auto note = [&](const std::string& line) {
    if (!recovery_.empty()) recovery_ += "; ";
    recovery_ += line;
  };
  for (std::uint64_t base : *bases) {
    struct stat st {};
    std::string path = segment_file(dir_, base, layout::kSegmentSuffix);
    if (::stat(path.c_str(), &st) != 0) return io_error("cannot stat " + path, errno);
    segments_.push_back(Segment{base, static_cast<std::uint64_t>(st.st_size)});
  }
  // The newest segment may end in a torn or garbage tail: keep its chunks whose CRC matches.
  std::vector<std::byte> buffer;
  while (!segments_.empty()) {
    Segment& last = segments_.back();
    std::string log_path = segment_file(dir_, last.base, layout::kSegmentSuffix);
    std::string index_path = segment_file(dir_, last.base, layout::kIndexSuffix);
    int lfd = ::open(log_path.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) return io_error("cannot open " + log_path, errno);
    int ifd = ::open(index_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (ifd < 0) {
      int err = errno;
      ::close(lfd);
      return io_error("cannot open " + index_path, err);
    }
    std::vector<layout::ChunkRecord> records;
    if (auto r = detail::read_chunk_records(ifd, last.base, 0, last.base); r) {
      records = std::move(*r);
    } else {
      note("segment " + log_path + ": " + r.error().message());
    }
    std::uint64_t valid = last.base;
    std::size_t good = 0;
    for (const auto& rec : records) {
      std::uint64_t length = rec.end_position - valid;
      buffer.resize(length);
      ssize_t n = ::pread(lfd, buffer.data(), length, static_cast<off_t>(valid - last.base));
      if (n != static_cast<ssize_t>(length) ||
          detail::crc32c(buffer.data(), length) != rec.data_crc) {
        break;
      }
      std::uint64_t sequence = 0;
      if (last_sequence_in(buffer.data(), length, options_.frame_alignment, sequence)) {
        end_sequence_ = sequence;
        has_sequence_ = true;
      }
      valid = rec.end_position;
      ++good;
    }
    const std::uint64_t valid_size = valid - last.base;
    if (last.size != valid_size) {
      note("cut segment " + log_path + " from " + std::to_string(last.size) + " to " +
           std::to_string(valid_size) + " bytes (tail after offset " + std::to_string(valid) +
           " failed its checksum or was never indexed)");
    }
    bool ok = ::ftruncate(lfd, static_cast<off_t>(valid_size)) == 0 &&
              ::ftruncate(ifd, static_cast<off_t>(sizeof(layout::LogIndexHeader) +
                                                  good * sizeof(layout::ChunkRecord))) == 0;
    int err = errno;
    ::close(lfd);
    ::close(ifd);
    if (!ok) return io_error("cannot truncate " + log_path, err);
    if (good == 0) {
      // No valid chunk at all: a segment created just before a crash. Remove it.
      ::unlink(log_path.c_str());
      ::unlink(index_path.c_str());
      note("removed empty segment " + log_path);
      end_ = last.base;
      segments_.pop_back();
      continue;
    }
    last.size = valid_size;
    end_ = valid;
    index_records_ = good;
    break;
  }
  // If the newest segment holds padding only, the message count stays unknown (recovery reads
  // no further back); the recorder learns it from the next message.
  if (!segments_.empty()) {
    if (auto ok = open_active(segments_.back().base, false); !ok) return ok.error();
  }
  return {};
}

Result<void> TopicLog::open_active(std::uint64_t base, bool create) {
  close_active();
  std::string log_path = segment_file(dir_, base, layout::kSegmentSuffix);
  std::string index_path = segment_file(dir_, base, layout::kIndexSuffix);
  int flags = O_WRONLY | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
  log_fd_ = ::open(log_path.c_str(), flags, 0640);
  if (log_fd_ < 0) return io_error("cannot open segment " + log_path, errno);
  index_fd_ =
      ::open(index_path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0640);
  if (index_fd_ < 0) {
    int err = errno;
    close_active();
    return io_error("cannot open chunk index " + index_path, err);
  }
  if (create) {
    auto header = detail::make_index_header(base);
    if (auto ok = write_all(index_fd_, &header, sizeof header, 0); !ok) {
      close_active();
      ::unlink(log_path.c_str());
      ::unlink(index_path.c_str());
      return Error(ok.code(),
                   "cannot create chunk index " + index_path + ": " + ok.error().message());
    }
    index_records_ = 0;
    if (options_.sync_on_roll) sync_directory(dir_);
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
  const bool roll = log_fd_ < 0 || segments_.empty() || position != end_ ||
                    segments_.back().size >= options_.segment_bytes;
  if (roll) {
    // Whatever the previous segment holds must reach the device before a newer one exists.
    if (log_fd_ >= 0 && options_.sync_on_roll) {
      ::fdatasync(log_fd_);
      ::fdatasync(index_fd_);
    }
    if (auto ok = open_active(position, true); !ok) return ok.error();
    segments_.push_back(Segment{position, 0});
  }
  Segment& active = segments_.back();
  auto undo = [&](Error e) {
    // Leave no part of the chunk behind. Should a truncation fail too, nothing is lost: the
    // retry writes the chunk and its record again at the same offsets, and recovery cuts an
    // unindexed tail.
    (void)!::ftruncate(log_fd_, static_cast<off_t>(active.size));
    (void)!::ftruncate(index_fd_, static_cast<off_t>(sizeof(layout::LogIndexHeader) +
                                                     index_records_ * sizeof(layout::ChunkRecord)));
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
  if (auto ok = write_all(log_fd_, pieces, active.size); !ok) {
    return undo(Error(ok.code(), "cannot append to segment " +
                                     segment_file(dir_, active.base, layout::kSegmentSuffix) +
                                     ": " + ok.error().message()));
  }
  auto record = detail::make_chunk_record(position + size, crc);
  std::uint64_t record_offset =
      sizeof(layout::LogIndexHeader) + index_records_ * sizeof(layout::ChunkRecord);
  if (auto ok = write_all(index_fd_, &record, sizeof record, record_offset); !ok) {
    return undo(Error(ok.code(), "cannot append to chunk index of segment " +
                                     std::to_string(active.base) + ": " + ok.error().message()));
  }
  ++index_records_;
  active.size += size;
  end_ = position + size;
  if (last_sequence != nullptr) {
    end_sequence_ = *last_sequence + 1;
    has_sequence_ = true;
  }
  return {};
}

Result<void> TopicLog::sync() {
  if (log_fd_ < 0) return {};
  if (::fdatasync(log_fd_) != 0) return io_error("fdatasync of the active segment failed", errno);
  if (::fdatasync(index_fd_) != 0) return io_error("fdatasync of the chunk index failed", errno);
  return check_active();
}

Result<void> TopicLog::check_active() {
  if (log_fd_ < 0) return {};
  struct stat st {};
  if (::fstat(log_fd_, &st) == 0 && st.st_nlink == 0) {
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

std::vector<std::string> TopicLog::apply_retention(std::uint64_t max_bytes,
                                                   std::chrono::milliseconds max_age) {
  std::vector<std::string> removed;
  const auto now = std::chrono::system_clock::now();
  while (segments_.size() > 1) {
    const Segment& oldest = segments_.front();
    std::string log_path = segment_file(dir_, oldest.base, layout::kSegmentSuffix);
    bool too_big = max_bytes != 0 && bytes() > max_bytes;
    bool too_old = false;
    struct stat st {};
    if (max_age.count() > 0 && ::stat(log_path.c_str(), &st) == 0) {
      auto modified = std::chrono::system_clock::time_point(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
      too_old = now - modified > max_age;
    }
    if (!too_big && !too_old) break;
    // The segment first, so a reader never finds a segment without its index.
    ::unlink(log_path.c_str());
    ::unlink(segment_file(dir_, oldest.base, layout::kIndexSuffix).c_str());
    removed.push_back(log_path);
    segments_.erase(segments_.begin());
  }
  return removed;
}

}  // namespace ringbus::bridge
