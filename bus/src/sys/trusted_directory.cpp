#include "sys/trusted_directory.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <vector>

namespace ringbus::detail {
namespace {

bool in_my_groups(gid_t gid) {
  if (gid == ::getegid()) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

}  // namespace

Result<void> check_trusted_directory(const std::string& dir, const char* what, DirectoryUse use) {
  const std::string named = std::string(what) + " " + dir;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return Error(Errc::io_error,
                 "cannot stat " + named + ": " + std::generic_category().message(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    return Error(Errc::invalid_argument,
                 named + " is a symbolic link: refused (use the real path)");
  }
  if (!S_ISDIR(st.st_mode)) return Error(Errc::invalid_argument, named + " is not a directory");
  if ((st.st_mode & S_IWOTH) != 0) {
    char mode[8] = {};
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Errc::invalid_argument,
                 named + " is writable by other users (mode " + mode + "): refused; chmod o-w it");
  }
  if (use == DirectoryUse::create && st.st_uid != ::geteuid() && st.st_uid != 0 &&
      !in_my_groups(st.st_gid)) {
    return Error(Errc::invalid_argument,
                 named + " belongs to uid " + std::to_string(st.st_uid) + " and group " +
                     std::to_string(st.st_gid) +
                     ", neither this user, root nor one of its groups: refused");
  }
  return {};
}

}  // namespace ringbus::detail
