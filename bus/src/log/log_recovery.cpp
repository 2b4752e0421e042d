// TopicLog::recover: what a writer does when it opens a log (docs/formats/log.md, "Recovery").
// Every byte that was valid stays readable at its offset; damaged bytes are set aside in
// "<offset>.corrupt" files (so readers get `corrupt` there, never silence); only a tail past
// the durable position (never promised to be on the device) is cut.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "layout/frame_layout.hpp"
#include "layout/log_layout.hpp"
#include "log/crc32c.hpp"
#include "log/log_files.hpp"
#include "log/segments.hpp"
#include "log/topic_log_files.hpp"
#include "sys/unique_fd.hpp"
#include "topic_log.hpp"

namespace ringbus::detail {

namespace {

using detail::segment_file;

constexpr std::uint64_t kRebuiltChunk = std::uint64_t{256} * 1024;  // chunk size of a rebuilt index

// A range of a segment as recovery judged it.
struct Piece {
  enum Kind : std::uint8_t { good, rebuilt, damaged };
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  Kind kind = good;
  std::string why;                           // damaged: what failed
  std::vector<layout::ChunkRecord> records;  // kept: its chunk records
};

struct SegmentCheck {
  std::uint64_t base = 0;
  std::uint64_t file_size = 0;
  std::vector<std::byte> bytes;  // the segment's bytes (empty when not read)
  std::vector<Piece> pieces;     // contiguous from the base
  std::string index_problem;     // the index is missing, empty or damaged
  bool read = false;
  bool has_sequence = false;
  std::uint64_t sequence = 0;  // after the last message of the kept pieces

  std::uint64_t end() const { return pieces.empty() ? base : pieces.back().end; }
  bool rewrite() const {
    return !index_problem.empty() || std::any_of(pieces.begin(), pieces.end(), [](const Piece& p) {
      return p.kind != Piece::good;
    });
  }
};

std::string range(std::uint64_t a, std::uint64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

// Walks the frames of check.bytes in [from, to); tracks the sequence number. Returns where the
// valid frames end. `continuity`: a message must follow the previous one's sequence number.
std::uint64_t walk_frames(SegmentCheck& check, std::uint64_t from, std::uint64_t to,
                          const TopicLogOptions& o, bool continuity) {
  std::uint64_t p = from;
  while (p < to) {
    layout::FrameHeader h{};
    const std::uint64_t stride = valid_frame(check.bytes.data() + (p - check.base), to - p, p,
                                             o.max_message, o.frame_alignment, h);
    if (stride == 0) break;
    if (layout::commit_kind(h.commit) == layout::FrameKind::kData) {
      if (continuity && check.has_sequence && h.sequence != check.sequence) break;
      check.sequence = h.sequence + 1;
      check.has_sequence = true;
    }
    p += stride;
  }
  return p;
}

void add_piece(SegmentCheck& check, Piece piece) {
  if (piece.end <= piece.start) return;
  if (!check.pieces.empty() && check.pieces.back().kind == Piece::damaged &&
      piece.kind == Piece::damaged) {
    check.pieces.back().end = piece.end;  // one range, one .corrupt file
    return;
  }
  check.pieces.push_back(std::move(piece));
}

// Judges segment `base` (at most `limit` bytes of it: the next segment starts there). An older
// segment with an index that covers it is trusted unread (it was synced before the next one
// began); the newest is read whole. Bytes without a valid record are rebuilt from their frames,
// except in the newest segment past the durable hint: that tail is left out (cut).
Result<SegmentCheck> check_segment(const std::string& dir, std::uint64_t base, std::uint64_t limit,
                                   bool newest, const TopicLogOptions& o) {
  SegmentCheck check;
  check.base = base;
  const std::string log_path = segment_file(dir, base, layout::kSegmentSuffix);
  const std::string index_path = segment_file(dir, base, layout::kIndexSuffix);
  const UniqueFd lfd(::open(log_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!lfd) return io_error("cannot open " + log_path, errno);
  struct stat st {};
  if (::fstat(lfd.get(), &st) != 0) {
    const int err = errno;  // before the message's allocations
    return io_error("cannot stat " + log_path, err);
  }
  check.file_size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t avail = std::min(check.file_size, limit);

  std::vector<layout::ChunkRecord> records;
  if (const UniqueFd ifd(::open(index_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW)); !ifd) {
    check.index_problem = "it was missing";
  } else {
    struct stat ist {};
    auto r = detail::read_chunk_records(ifd.get(), base, 0, base);
    if (::fstat(ifd.get(), &ist) == 0 && ist.st_size == 0) {
      check.index_problem = "it was empty";
    } else if (!r) {
      check.index_problem = "its header was damaged";
    } else {
      records = std::move(*r);
    }
  }
  while (!records.empty() && records.back().end_position > base + avail) records.pop_back();
  const bool covered = check.index_problem.empty() &&
                       (records.empty() ? avail == 0 : records.back().end_position == base + avail);
  if (!newest && covered) {
    Piece all{base, base + avail, Piece::good, {}, std::move(records)};
    add_piece(check, std::move(all));
    return check;
  }
  if (!newest && check.index_problem.empty()) check.index_problem = "it did not cover the segment";

  check.bytes.resize(avail);
  std::uint64_t got = 0;
  while (got < avail) {
    ssize_t n = ::pread(lfd.get(), check.bytes.data() + got, avail - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      return io_error("cannot read " + log_path, err);
    }
    got += static_cast<std::uint64_t>(n);
  }
  check.read = true;

  std::uint64_t pos = base;
  for (const auto& rec : records) {
    const std::uint64_t length = rec.end_position - pos;
    const std::byte* chunk = check.bytes.data() + (pos - base);
    if (detail::crc32c(chunk, length) == rec.data_crc) {
      walk_frames(check, pos, rec.end_position, o, false);
      Piece good{pos, rec.end_position, Piece::good, {}, {rec}};
      if (!check.pieces.empty() && check.pieces.back().kind == Piece::good) {
        check.pieces.back().end = rec.end_position;
        check.pieces.back().records.push_back(rec);
      } else {
        add_piece(check, std::move(good));
      }
    } else {
      // Past the durable position a bad chunk is a torn write: cut from here (the ring still
      // holds what was not durable, or it was never promised). Below it, set it aside.
      if (newest && pos >= o.durable_hint) return check;
      add_piece(check, Piece{pos, rec.end_position, Piece::damaged, "CRC32C mismatch", {}});
      check.has_sequence = false;
    }
    pos = rec.end_position;
  }
  // Bytes no valid record covers: rebuild the index from the frames, up to the durable hint in
  // the newest segment (past it, an unindexed tail is a torn write).
  const std::uint64_t to = newest ? std::clamp(o.durable_hint, pos, base + avail) : base + avail;
  const std::uint64_t valid_end = walk_frames(check, pos, to, o, true);
  if (valid_end > pos) {
    Piece rebuilt{pos, valid_end, Piece::rebuilt, {}, {}};
    std::uint64_t chunk_start = pos;
    std::uint64_t p = pos;
    while (p < valid_end) {
      layout::FrameHeader h{};
      p += valid_frame(check.bytes.data() + (p - base), valid_end - p, p, o.max_message,
                       o.frame_alignment, h);
      if (p - chunk_start >= kRebuiltChunk || p == valid_end) {
        rebuilt.records.push_back(detail::make_chunk_record(
            p, detail::crc32c(check.bytes.data() + (chunk_start - base), p - chunk_start)));
        chunk_start = p;
      }
    }
    add_piece(check, std::move(rebuilt));
  }
  add_piece(check, Piece{valid_end, to, Piece::damaged, "no valid chunk record or frame", {}});
  return check;
}

Result<void> write_file(const std::string& path, std::span<const ConstBytes> pieces, mode_t mode) {
  const UniqueFd fd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return io_error("cannot create " + path, errno);
  Result<void> ok = write_all(fd.get(), pieces, 0);
  if (ok) ok = sync_file(fd.get(), path);
  if (!ok) return Error(ok.code(), "cannot write " + path + ": " + ok.error().message());
  return {};
}

std::vector<std::byte> index_bytes(std::uint64_t base, const Piece& piece) {
  auto header = detail::make_index_header(base);
  std::vector<std::byte> out(sizeof header + piece.records.size() * sizeof(layout::ChunkRecord));
  std::memcpy(out.data(), &header, sizeof header);
  if (!piece.records.empty()) {
    std::memcpy(out.data() + sizeof header, piece.records.data(),
                piece.records.size() * sizeof(layout::ChunkRecord));
  }
  return out;
}

// Makes the files match the check: damaged ranges copied to .corrupt files, each later kept
// range written as a segment of its own, then the original cut (or removed). Each step is
// synced before the next, and a crash in between is repaired by the next recovery (a segment
// that runs into the next one is read only up to it).
Result<void> apply_check(const std::string& dir, const SegmentCheck& check, mode_t mode,
                         const std::function<void(const std::string&)>& note) {
  const std::uint64_t base = check.base;
  const std::string log_path = segment_file(dir, base, layout::kSegmentSuffix);
  const std::string index_path = segment_file(dir, base, layout::kIndexSuffix);
  auto slice = [&](const Piece& p) {
    return ConstBytes(check.bytes.data() + (p.start - base), p.end - p.start);
  };
  if (!check.rewrite() && check.file_size == check.end() - base) return {};
  if (!check.pieces.empty() && check.file_size > check.end() - base) {
    note("cut segment " + log_path + " from " + std::to_string(check.file_size) + " to " +
         std::to_string(check.end() - base) + " bytes (tail after offset " +
         std::to_string(check.end()) + ", past the durable position, failed its checksum or " +
         "was never indexed)");
  }
  // Notes per piece; adjacent kept pieces (verified and rebuilt) form one segment.
  std::vector<Piece> runs;
  for (const Piece& p : check.pieces) {
    if (p.kind == Piece::rebuilt) {
      note("rebuilt the chunk index of " + log_path + " for offsets " + range(p.start, p.end) +
           " from its frames (" +
           (check.index_problem.empty() ? std::string("records were damaged")
                                        : "the index: " + check.index_problem) +
           "); their bytes had no checksum to verify");
    }
    if (p.kind != Piece::damaged && !runs.empty() && runs.back().kind != Piece::damaged) {
      runs.back().end = p.end;
      runs.back().records.insert(runs.back().records.end(), p.records.begin(), p.records.end());
    } else {
      runs.push_back(p);
    }
  }
  for (const Piece& p : runs) {
    const std::string name = segment_file(dir, p.start, layout::kSegmentSuffix);
    if (p.kind == Piece::damaged) {
      const std::string aside = segment_file(dir, p.start, layout::kDamagedSuffix);
      const ConstBytes bytes = slice(p);
      if (auto ok = write_file(aside, std::span<const ConstBytes>(&bytes, 1), mode); !ok) return ok;
      std::string line = "offsets " + range(p.start, p.end) + " of segment " + log_path;
      line += " are damaged (" + p.why + "): set aside in " + aside;
      line += "; readers get 'corrupt' there";
      note(line);
      continue;
    }
    if (p.start == base) continue;  // stays in the original, cut below
    // A kept range after a damaged one: a segment of its own (index first: a segment without
    // its .log is not listed).
    const auto idx = index_bytes(p.start, p);
    const ConstBytes idx_piece(idx.data(), idx.size());
    if (auto ok = write_file(segment_file(dir, p.start, layout::kIndexSuffix),
                             std::span<const ConstBytes>(&idx_piece, 1), mode);
        !ok) {
      return ok;
    }
    const ConstBytes bytes = slice(p);
    if (auto ok = write_file(name + ".tmp", std::span<const ConstBytes>(&bytes, 1), mode); !ok) {
      return ok;
    }
    if (::rename((name + ".tmp").c_str(), name.c_str()) != 0) {
      return io_error("cannot rename " + name + ".tmp", errno);
    }
    note("kept offsets " + range(p.start, p.end) + " in a new segment " + name);
  }
  if (auto ok = sync_directory(dir); !ok) return ok;
  const Piece* first = runs.empty() ? nullptr : &runs.front();
  if (first == nullptr || first->kind == Piece::damaged) {
    ::unlink(log_path.c_str());
    ::unlink(index_path.c_str());
    if (first == nullptr) {
      note(check.file_size == 0 ? "removed empty segment " + log_path
                                : "removed segment " + log_path + ": none of its " +
                                      std::to_string(check.file_size) +
                                      " bytes was verified below the durable position (a torn "
                                      "or never indexed tail)");
    }
    return sync_directory(dir);
  }
  // The original keeps its first range: a new index (replaced atomically), then the cut.
  const auto idx = index_bytes(base, *first);
  const ConstBytes idx_piece(idx.data(), idx.size());
  if (check.rewrite()) {
    if (auto ok = write_file(index_path + ".tmp", std::span<const ConstBytes>(&idx_piece, 1), mode);
        !ok) {
      return ok;
    }
    if (::rename((index_path + ".tmp").c_str(), index_path.c_str()) != 0) {
      return io_error("cannot rename " + index_path + ".tmp", errno);
    }
  } else {
    const UniqueFd ifd(::open(index_path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!ifd || ::ftruncate(ifd.get(), static_cast<off_t>(idx.size())) != 0) {
      const int err = errno;
      return io_error("cannot truncate " + index_path, err);
    }
  }
  if (::truncate(log_path.c_str(), static_cast<off_t>(first->end - base)) != 0) {
    return io_error("cannot truncate " + log_path, errno);
  }
  return sync_directory(dir);
}

}  // namespace

Result<void> TopicLog::reload_segments() {
  segments_.clear();
  auto bases = detail::list_segments(dir_);
  if (!bases) return bases.error();
  for (std::uint64_t base : *bases) {
    struct stat st {};
    std::string path = segment_file(dir_, base, layout::kSegmentSuffix);
    if (::stat(path.c_str(), &st) != 0) return io_error("cannot stat " + path, errno);
    segments_.push_back(Segment{base, static_cast<std::uint64_t>(st.st_size)});
  }
  return {};
}

Result<void> TopicLog::recover() {
  auto note = [&](const std::string& line) {
    if (!recovery_.empty()) recovery_ += "; ";
    recovery_ += line;
  };
  auto bases = detail::list_segments(dir_);
  if (!bases) return bases.error();
  std::vector<std::uint64_t> all = std::move(*bases);
  constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();
  auto limit_of = [&](std::size_t i) {
    return i + 1 < all.size() ? all[i + 1] - all[i] : kNoLimit;
  };
  // The newest segment: read whole. If nothing of it is kept, the one before is the newest.
  std::size_t older = all.size();
  while (older > 0) {
    const std::uint64_t base = all[older - 1];
    auto check = check_segment(dir_, base, kNoLimit, true, options_);
    if (!check) return check.error();
    if (auto ok = apply_check(dir_, *check, options_.file_mode, note); !ok) return ok;
    --older;
    end_sequence_ = check->sequence;
    has_sequence_ = check->has_sequence;
    if (!check->pieces.empty()) break;
  }
  // Older segments: trusted when their index covers them, else rebuilt (and checked) now.
  for (std::size_t i = 0; i < older; ++i) {
    auto check = check_segment(dir_, all[i], limit_of(i), false, options_);
    if (!check) return check.error();
    if (auto ok = apply_check(dir_, *check, options_.file_mode, note); !ok) return ok;
  }
  if (auto ok = reload_segments(); !ok) return ok;
  end_ = segments_.empty() ? 0 : segments_.back().base + segments_.back().size;
  // Offsets set aside as damaged are never written again: the log continues after them.
  for (const auto& d : detail::list_damaged(dir_)) end_ = std::max(end_, d.end);
  // If the newest segment holds padding only, the message count stays unknown (recovery reads
  // no further back); the recorder learns it from the next message.
  if (!segments_.empty()) {
    const Segment& last = segments_.back();
    if (auto ok = open_active(last.base, false); !ok) return ok.error();
    struct stat st {};
    if (::fstat(files_->index.get(), &st) != 0) return io_error("cannot stat a chunk index", errno);
    index_records_ = (static_cast<std::uint64_t>(st.st_size) - sizeof(layout::LogIndexHeader)) /
                     sizeof(layout::ChunkRecord);
  }
  return {};
}

}  // namespace ringbus::detail
