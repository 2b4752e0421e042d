// File helpers of the disk log writer: whole writes, syncs whose failures are errors (with the
// fault points tests arm: log.fdatasync, log.fsync_dir), directories, and frame validation.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "layout/frame_layout.hpp"
#include "ringbus/bytes.hpp"
#include "ringbus/result.hpp"

namespace ringbus::detail {

// io_error, or no_space for ENOSPC, EDQUOT and EFBIG; the message is `what: ` and the error's text.
Error io_error(const std::string& what, int err);

// pwrite / pwritev of everything, resuming after partial writes and EINTR.
Result<void> write_all(int fd, const void* data, std::size_t size, std::uint64_t offset);
Result<void> write_all(int fd, std::span<const ConstBytes> pieces, std::uint64_t offset);

// fdatasync(fd); `what` names the file in the error. Fault point "log.fdatasync".
Result<void> sync_file(int fd, const std::string& what);
// fsync of directory `dir`, so the entries created or renamed in it are on the device.
// Fault point "log.fsync_dir".
Result<void> sync_directory(const std::string& dir);

// Creates `dir` and its missing parents with `mode` (less the umask); each created directory's
// parent is synced (with `sync`), so the new entry survives a power cut.
Result<void> make_directories(const std::string& dir, bool sync, mode_t mode);

// The stride of the valid, committed frame at `p` (stream offset `position`, `available` bytes
// readable), or 0 if there is none: the checks of docs/formats/log.md, "Reading", step 5.
std::uint64_t valid_frame(const std::byte* p, std::uint64_t available, std::uint64_t position,
                          std::uint64_t max_message, std::uint64_t alignment,
                          layout::FrameHeader& header) noexcept;

}  // namespace ringbus::detail
