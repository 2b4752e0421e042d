// File helpers of the disk log writer (log_files.hpp).
#include "log/log_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <system_error>
#include <vector>

#include "sys/trusted_directory.hpp"
#include "sys/unique_fd.hpp"
#include "testing/fault_point.hpp"

namespace ringbus::detail {

Error io_error(const std::string& what, int err) {
  Errc code = (err == ENOSPC || err == EDQUOT || err == EFBIG) ? Errc::no_space : Errc::io_error;
  return Error(code, what + ": " + std::generic_category().message(err));
}

Result<void> write_all(int fd, const void* data, std::size_t size, std::uint64_t offset) {
  const ConstBytes piece(static_cast<const std::byte*>(data), size);
  return write_all(fd, std::span<const ConstBytes>(&piece, 1), offset);
}

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

Result<void> sync_file(int fd, const std::string& what) {
  if (detail::fault_point_fails("log.fdatasync")) return io_error("fdatasync of " + what, EIO);
  if (::fdatasync(fd) != 0) return io_error("fdatasync of " + what, errno);
  return {};
}

Result<void> sync_directory(const std::string& dir) {
  const UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return io_error("cannot open directory " + dir + " to sync it", errno);
  const int rc = detail::fault_point_fails("log.fsync_dir") ? (errno = EIO, -1) : ::fsync(fd.get());
  if (rc != 0) {
    const int err = errno;
    return io_error("fsync of directory " + dir, err);
  }
  return {};
}

Result<void> make_directories(const std::string& dir, bool sync, mode_t mode) {
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), mode) == 0) {
      if (!sync) continue;
      // The new entry lives in its parent: sync that, or a power cut may lose the directory.
      std::string parent = part.substr(0, part.find_last_of('/'));
      if (auto ok = sync_directory(parent.empty() ? "/" : parent); !ok) return ok;
    } else if (errno != EEXIST) {
      return io_error("cannot create log directory " + part, errno);
    }
  }
  // The topic's own log directory: where segments are created, so it must be one that no other
  // user could have made or can write to.
  if (auto ok = detail::check_trusted_directory(dir, "log directory", detail::DirectoryUse::create);
      !ok) {
    return ok;
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(Errc::io_error, "log directory " + dir + " is not a directory");
  }
  return {};
}

std::uint64_t valid_frame(const std::byte* p, std::uint64_t available, std::uint64_t position,
                          std::uint64_t max_message, std::uint64_t alignment,
                          layout::FrameHeader& h) noexcept {
  if (position % alignment != 0 || available < layout::kFrameHeaderSize) return 0;
  std::memcpy(&h, p, sizeof h);
  const std::uint64_t length = layout::commit_length(h.commit);
  std::uint64_t stride = 0;
  switch (layout::commit_kind(h.commit)) {
    case layout::FrameKind::kData:
      if (length > max_message || h.key_length > length) return 0;
      stride = layout::frame_stride(length, alignment);
      break;
    case layout::FrameKind::kPadding:
      if (length == 0 || length % alignment != 0) return 0;
      stride = length;
      break;
    default: return 0;
  }
  return stride <= available ? stride : 0;
}

}  // namespace ringbus::detail
