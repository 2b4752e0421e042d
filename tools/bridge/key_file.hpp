// The pre-shared key of bridge links (--key-file): a private file of 16 to 4096 bytes that both
// ends of a link hold. Its contents are never printed.
#pragma once

#include <string>
#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::bridge {

// Checks that `path` is a regular file that group and others can neither read nor write
// (mode & 077 == 0). `what` names the option in errors.
// Errors: not_found, invalid_argument (saying what to fix), io_error.
Result<void> check_private_file(const std::string& path, std::string_view what);

// check_private_file, and the file holds 16 to 4096 bytes. `what` names the option in errors.
// Errors: not_found, invalid_argument (saying what to fix), io_error.
Result<void> check_key_file(const std::string& path, std::string_view what);

// check_key_file, then the file's bytes, verbatim.
Result<std::string> read_key_file(const std::string& path, std::string_view what);

}  // namespace ringbus::bridge
