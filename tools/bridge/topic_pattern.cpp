// Topic pattern checks: plain names go through the library's name rules; globs get the same
// character set plus the glob syntax.
#include "topic_pattern.hpp"

#include <string>

#include "ringbus/topic.hpp"

namespace ringbus::bridge {

Result<void> validate_topic_pattern(std::string_view text, std::string_view what) {
  if (text.find_first_of("*?[") == std::string_view::npos) return validate_name(text, what);
  auto fail = [&](const std::string& why) {
    return Error(Errc::invalid_argument, std::string(what) + " '" + std::string(text) +
                                             "' is not a topic name or glob: " + why);
  };
  if (text.size() > 200) return fail("it is longer than 200 characters");
  if (text[0] == '.') return fail("it starts with '.', which no topic name does");
  bool in_brackets = false;
  for (char c : text) {
    const bool name_char = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (c == '[') {
      if (in_brackets) return fail("'[' inside brackets");
      in_brackets = true;
    } else if (c == ']') {
      if (!in_brackets) return fail("']' without '['");
      in_brackets = false;
    } else if (c == '!' || c == '^') {
      if (!in_brackets) return fail(std::string("'") + c + "' outside brackets");
    } else if (!name_char && c != '*' && c != '?') {
      return fail(std::string("it contains '") + c + "' (allowed: A-Z a-z 0-9 . _ - and * ? [ ])");
    }
  }
  if (in_brackets) return fail("'[' is not closed");
  return {};
}

}  // namespace ringbus::bridge
