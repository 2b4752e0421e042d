// The bridge's options, one table for both sources: each entry names its TOML key and its flag
// and applies a value in text form to a BridgeConfig, so a flag and a key parse and validate
// alike and fail with the same message (only the location differs).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "bridge_config.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

// Where a value came from, for error messages: `prefix` is "FILE:LINE: " for TOML and empty for
// a flag; `name` is the key ("fsync.policy") or the flag ("--fsync").
struct OptionSource {
  std::string prefix;
  std::string name;
  std::string where() const { return prefix + name; }
};

// How a value is written. TOML values are turned into the text a flag would give (numbers in
// decimal, booleans as true/false); a TOML value of another type is an error naming the key.
enum class OptionKind : std::uint8_t {
  text,      // a string
  list,      // strings, one apply() per item: a repeatable flag, or a TOML string or array
  size,      // bytes: a number, or text with a unit ("64MiB")
  duration,  // milliseconds: a number, or text with a unit ("10s")
  integer,   // a whole number
  boolean,   // TOML true or false; the flag takes no value and applies `flag_value`
};

struct BridgeOption {
  std::string_view key;   // TOML key, "table.key" inside a [table] or [[table]]; empty: none
  std::string_view flag;  // "--segment-bytes"; empty: none
  std::string_view help;  // the flag's help line
  OptionKind kind;
  // Applies one value (one item of a list). Errors: invalid_argument, naming `source`.
  Result<void> (*apply)(BridgeConfig& config, const std::string& value, const OptionSource& source);
  // Lists: clears the list before the items of one source, so a flag or key replaces the
  // default or the file's value rather than adding to it.
  void (*reset)(BridgeConfig& config) = nullptr;
  std::string_view flag_value = {};  // boolean flags: the value the flag applies
  // A flag value that counts as not given, besides the empty one ("-1" for --cpu).
  std::string_view flag_none = {};
};

// Every option, in the order flags are applied (and listed by --help).
std::span<const BridgeOption> bridge_options();

// TOML tables that hold options ("fsync", "retention", "listen") and arrays of tables
// ("forward"): the text for an unknown key in them ("an fsync option") and the syntax.
struct OptionTable {
  std::string_view name;
  std::string_view what;  // "an fsync option"
  bool array;             // [[name]]: each table appends an element (see begin)
  // Arrays: appends the element the keys of one table then fill; checks it once they did.
  void (*begin)(BridgeConfig& config) = nullptr;
  Result<void> (*finish)(const BridgeConfig& config, const OptionSource& source) = nullptr;
};
std::span<const OptionTable> option_tables();

}  // namespace ringbus::bridge
