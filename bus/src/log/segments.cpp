// Segment names, directory listing and chunk index records (docs/formats/log.md).
#include "log/segments.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "log/crc32c.hpp"

namespace ringbus::detail {

namespace {

std::string errno_text(int err) { return std::generic_category().message(err); }

std::uint32_t header_crc(const layout::LogIndexHeader& h) noexcept {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&h);
  std::uint32_t crc = crc32c(bytes, 12);
  return crc32c(bytes + 16, 16, crc);
}

}  // namespace

std::string segment_file(const std::string& dir, std::uint64_t base, std::string_view suffix) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(base));
  return dir + "/" + digits + std::string(suffix);
}

std::optional<std::uint64_t> parse_segment_name(std::string_view file_name) {
  return parse_segment_name(file_name, layout::kSegmentSuffix);
}

std::optional<std::uint64_t> parse_segment_name(std::string_view file_name,
                                                std::string_view suffix) {
  if (file_name.size() != layout::kSegmentNameDigits + suffix.size() ||
      file_name.substr(layout::kSegmentNameDigits) != suffix) {
    return std::nullopt;
  }
  std::uint64_t base = 0;
  for (std::size_t i = 0; i < layout::kSegmentNameDigits; ++i) {
    char c = file_name[i];
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (base > (UINT64_MAX - digit) / 10) return std::nullopt;
    base = base * 10 + digit;
  }
  return base;
}

Result<std::vector<std::uint64_t>> list_segments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    int err = errno;
    return Error(err == ENOENT ? Errc::not_found : Errc::io_error,
                 "cannot read log directory " + dir + ": " + errno_text(err));
  }
  std::vector<std::uint64_t> bases;
  while (dirent* e = ::readdir(d)) {
    if (auto base = parse_segment_name(e->d_name)) bases.push_back(*base);
  }
  ::closedir(d);
  std::sort(bases.begin(), bases.end());
  return bases;
}

std::vector<DamagedRange> list_damaged(const std::string& dir) {
  std::vector<DamagedRange> ranges;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ranges;
  while (dirent* e = ::readdir(d)) {
    auto start = parse_segment_name(e->d_name, layout::kDamagedSuffix);
    struct stat st {};
    if (start && ::fstatat(::dirfd(d), e->d_name, &st, 0) == 0) {
      ranges.push_back(DamagedRange{*start, *start + static_cast<std::uint64_t>(st.st_size)});
    }
  }
  ::closedir(d);
  std::sort(ranges.begin(), ranges.end(),
            [](const DamagedRange& a, const DamagedRange& b) { return a.start < b.start; });
  return ranges;
}

layout::LogIndexHeader make_index_header(std::uint64_t base) noexcept {
  layout::LogIndexHeader h{};
  h.magic = layout::kLogIndexMagic;
  h.version = layout::kLogIndexVersion;
  h.base_position = base;
  h.header_crc = header_crc(h);
  return h;
}

layout::ChunkRecord make_chunk_record(std::uint64_t end, std::uint32_t data_crc) noexcept {
  layout::ChunkRecord r{};
  r.end_position = end;
  r.data_crc = data_crc;
  r.record_crc = crc32c(&r, 12);
  return r;
}

bool index_header_valid(const layout::LogIndexHeader& h, std::uint64_t base) noexcept {
  return h.magic == layout::kLogIndexMagic && h.version == layout::kLogIndexVersion &&
         h.base_position == base && h.header_crc == header_crc(h);
}

bool chunk_record_valid(const layout::ChunkRecord& r) noexcept {
  return r.record_crc == crc32c(&r, 12);
}

Result<std::vector<layout::ChunkRecord>> read_chunk_records(int fd, std::uint64_t base,
                                                            std::uint64_t first,
                                                            std::uint64_t after) {
  std::vector<layout::ChunkRecord> records;
  if (first == 0) {
    layout::LogIndexHeader h{};
    ssize_t n = ::pread(fd, &h, sizeof h, 0);
    if (n < 0) return Error(Errc::io_error, "cannot read chunk index: " + errno_text(errno));
    if (n == 0) return records;  // just created: the header is being written
    if (n != static_cast<ssize_t>(sizeof h) || !index_header_valid(h, base)) {
      return Error(Errc::corrupt,
                   "chunk index of segment " + std::to_string(base) + " has an invalid header");
    }
  }
  constexpr std::size_t kBatch = 256;
  layout::ChunkRecord buffer[kBatch];
  std::uint64_t next = first;
  for (;;) {
    auto offset = static_cast<off_t>(sizeof(layout::LogIndexHeader) + next * sizeof buffer[0]);
    ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0) return Error(Errc::io_error, "cannot read chunk index: " + errno_text(errno));
    std::size_t count = static_cast<std::size_t>(n) / sizeof buffer[0];
    for (std::size_t i = 0; i < count; ++i) {
      if (!chunk_record_valid(buffer[i]) || buffer[i].end_position <= after) return records;
      after = buffer[i].end_position;
      records.push_back(buffer[i]);
    }
    next += count;
    if (count < kBatch) return records;
  }
}

}  // namespace ringbus::detail
