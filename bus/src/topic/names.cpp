// Name rules shared by topics, groups and persistent readers.
#include <cstdio>
#include <string>

#include "ringbus/topic.hpp"

namespace ringbus {

Result<void> validate_name(std::string_view name, std::string_view what) {
  auto fail = [&](const std::string& why) {
    return Error(Errc::invalid_argument,
                 std::string(what) + " '" + std::string(name.substr(0, 64)) +
                     (name.size() > 64 ? "...'" : "'") + " is invalid: " + why +
                     " (allowed: 1-200 characters of A-Z a-z 0-9 . _ -, not starting with '.')");
  };
  if (name.empty()) return fail("it is empty");
  if (name.size() > 200) return fail("it has " + std::to_string(name.size()) + " characters");
  if (name[0] == '.') return fail("it starts with '.' (hidden and temporary files do)");
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      char shown[8];
      if (c >= 0x21 && c < 0x7f) {
        std::snprintf(shown, sizeof shown, "'%c'", c);
      } else {
        std::snprintf(shown, sizeof shown, "0x%02x", static_cast<unsigned char>(c));
      }
      return fail(std::string("it contains ") + shown);
    }
  }
  return {};
}

}  // namespace ringbus
