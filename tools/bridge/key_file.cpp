// Key file checks: stat before reading, so a key other users can read is refused rather than
// used; the size is checked again on the bytes read.
#include "key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace ringbus::bridge {

namespace {

constexpr std::size_t kMinKey = 16;
constexpr std::size_t kMaxKey = 4096;

std::string prefix(const std::string& path, std::string_view what) {
  return std::string(what) + " '" + path + "'";
}

Result<void> check_size(const std::string& path, std::string_view what, std::size_t size) {
  if (size < kMinKey || size > kMaxKey) {
    return Error(Errc::invalid_argument, prefix(path, what) + " holds " + std::to_string(size) +
                                             " bytes; a key must be 16 to 4096 bytes");
  }
  return {};
}

}  // namespace

Result<void> check_key_file(const std::string& path, std::string_view what) {
  if (auto ok = check_private_file(path, what); !ok) return ok;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Error(Errc::io_error,
                 prefix(path, what) + ": " + std::generic_category().message(errno));
  }
  return check_size(path, what, static_cast<std::size_t>(st.st_size));
}

Result<void> check_private_file(const std::string& path, std::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Error(err == ENOENT ? Errc::not_found : Errc::io_error,
                 prefix(path, what) + ": " + std::generic_category().message(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Errc::invalid_argument, prefix(path, what) + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Errc::invalid_argument, prefix(path, what) + " is readable or writable by group " +
                                             "or others (mode " + mode + "): run `chmod 600 " +
                                             path + "`");
  }
  return {};
}

Result<std::string> read_key_file(const std::string& path, std::string_view what) {
  if (auto ok = check_key_file(path, what); !ok) return ok.error();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error(Errc::io_error,
                 prefix(path, what) + ": " + std::generic_category().message(errno));
  }
  std::string key(kMaxKey + 1, '\0');
  std::size_t size = 0;
  while (size < key.size()) {
    const ssize_t n = ::read(fd, key.data() + size, key.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Error(Errc::io_error,
                   prefix(path, what) + ": " + std::generic_category().message(err));
    }
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  key.resize(size);
  if (auto ok = check_size(path, what, size); !ok) return ok.error();
  return key;
}

}  // namespace ringbus::bridge
