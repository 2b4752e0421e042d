// The checks a directory of topics or logs passes before ringbus uses it: another local user
// must not have been able to make it (for example /dev/shm/ringbus-<uid>, before its owner
// first ran) to read, replace or plant files in it.
#pragma once

#include <string>

#include "ringbus/result.hpp"

namespace ringbus::detail {

enum class DirectoryUse {
  read,    // open and list what is there: no ownership needed (root's monitor, a shared bus)
  create,  // create files in it: it must belong to this user, root, or one of its groups
};

// Refuses (invalid_argument, with a message naming `what` and `dir` and saying why) a directory
// that is a symbolic link, is not a directory, or is writable by other users; for `create`, also
// one that belongs to another user and to none of this user's groups. A missing directory
// passes: callers report it or create it. Only the last path component is checked, so a path
// through a link (/var/run -> /run) is fine.
Result<void> check_trusted_directory(const std::string& dir, const char* what, DirectoryUse use);

}  // namespace ringbus::detail
