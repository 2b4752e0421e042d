// Topic patterns of the bridge's options (forward topics, accepted topics): a topic name or a
// shell glob over names (fnmatch: *, ?, [abc], [!abc]).
#pragma once

#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::bridge {

// Checks that `text` is a valid topic name, or a glob that could match one: name characters
// plus * ? [ ] ! ^, brackets closed. `what` names the option in errors. Errors: invalid_argument.
Result<void> validate_topic_pattern(std::string_view text, std::string_view what);

}  // namespace ringbus::bridge
