// Bridge configuration: TOML via toml++, validated with messages that name the option.
#include "bridge_config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <string>

#include <toml++/toml.h>

#include "layout/reader_slot_layout.hpp"
#include "ringbus/topic.hpp"
#include "sizes.hpp"

namespace ringbus::bridge {

namespace {

Error invalid(const std::string& message) { return Error(Errc::invalid_argument, message); }

// The bridge's reader name is a reader slot's name: at most 63 bytes.
constexpr std::size_t kReaderNameMax = layout::kReaderNameMax;

Result<void> validate_reader_name(const std::string& name) {
  const bool chars_ok = validate_name(name, "reader_name").has_value();
  if (name.empty() || name.size() > kReaderNameMax || !chars_ok) {
    return invalid("reader_name '" + name + "' is not valid: it must be 1 to " +
                   std::to_string(kReaderNameMax) +
                   " characters of A-Z a-z 0-9 . _ -, not starting with '.'");
  }
  return {};
}

Result<void> validate_cpu(const std::optional<std::int64_t>& cpu) {
  if (cpu && (*cpu < 0 || *cpu > INT_MAX)) {
    return invalid("cpu " + std::to_string(*cpu) + " is not a core number (0 to " +
                   std::to_string(INT_MAX) + "; `ringbus topo` lists the cores)");
  }
  return {};
}

// A size given as a number of bytes or as text with a unit ("64MiB").
Result<std::uint64_t> size_option(const toml::node& node, const std::string& where) {
  if (auto n = node.value<std::int64_t>()) {
    if (*n <= 0) return invalid(where + " must be positive");
    return static_cast<std::uint64_t>(*n);
  }
  if (auto s = node.value<std::string>()) return cli::parse_size(*s, where);
  return invalid(where + " must be a number of bytes or a size such as \"64MiB\"");
}

Result<std::chrono::milliseconds> duration_option(const toml::node& node,
                                                  const std::string& where) {
  if (auto n = node.value<std::int64_t>()) {
    if (*n < 0) return invalid(where + " must not be negative");
    return std::chrono::milliseconds(*n);
  }
  if (auto s = node.value<std::string>()) return parse_duration(*s, where);
  return invalid(where + " must be milliseconds or a duration such as \"10s\"");
}

std::string located(const std::string& path, const toml::node& node, const std::string& key) {
  const auto& src = node.source();
  return path + ":" + std::to_string(src.begin.line) + ": " + key;
}

}  // namespace

std::string_view to_string(FsyncPolicy policy) noexcept {
  switch (policy) {
    case FsyncPolicy::never: return "never";
    case FsyncPolicy::interval: return "interval";
    case FsyncPolicy::bytes: return "bytes";
  }
  return "?";
}

Result<FsyncPolicy> parse_fsync_policy(std::string_view text) {
  if (text == "never") return FsyncPolicy::never;
  if (text == "interval") return FsyncPolicy::interval;
  if (text == "bytes") return FsyncPolicy::bytes;
  return invalid("fsync policy '" + std::string(text) + "' must be never, interval or bytes");
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text, std::string_view what) {
  std::size_t i = 0;
  std::uint64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
    if (value > (UINT64_MAX / 10) - 10) return invalid(std::string(what) + " is too large");
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return invalid(std::string(what) + " '" + std::string(text) +
                   "' must be a number with an optional unit ms, s, m, h or d");
  }
  std::string_view unit = text.substr(i);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (unit == "d") scale = 86'400'000;
  if (scale == 0) {
    return invalid(std::string(what) + " '" + std::string(text) + "' has an unknown unit '" +
                   std::string(unit) + "' (use ms, s, m, h or d)");
  }
  if (value > UINT64_MAX / scale / 2) return invalid(std::string(what) + " is too large");
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * scale));
}

Result<BridgeConfig> load_config_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return invalid("config " + path + " is a directory, not a TOML file");
  }
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    if (src.begin.line == 0) {
      return Error(Errc::not_found,
                   "cannot read config " + path + ": " + std::string(e.description()));
    }
    return invalid(path + ":" + std::to_string(src.begin.line) + ": " +
                   std::string(e.description()));
  }
  BridgeConfig c;
  const std::vector<std::string> known = {"bus_dir",       "log_dir",       "record",
                                          "segment_bytes", "fsync",         "retention",
                                          "reader_name",   "scan_interval", "retry_interval",
                                          "cpu",           "restore_topics"};
  for (const auto& [key, node] : table) {
    std::string k(key.str());
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return invalid(located(path, node, k) + " is not a bridge option (see docs/bridge.md)");
    }
  }
  auto text = [&](const char* key, std::string& out) -> Result<void> {
    if (const auto* node = table.get(key)) {
      auto v = node->value<std::string>();
      if (!v) return invalid(located(path, *node, key) + " must be a string");
      out = *v;
    }
    return {};
  };
  if (auto ok = text("bus_dir", c.bus_dir); !ok) return ok.error();
  if (auto ok = text("log_dir", c.log_dir); !ok) return ok.error();
  if (auto ok = text("reader_name", c.reader_name); !ok) return ok.error();
  if (const auto* node = table.get("reader_name")) {
    if (auto ok = validate_reader_name(c.reader_name); !ok) {
      return invalid(located(path, *node, ok.error().message()));
    }
  }
  if (const auto* node = table.get("record")) {
    if (auto s = node->value<std::string>()) {
      c.record.push_back(*s);
    } else if (const auto* list = node->as_array()) {
      for (const auto& item : *list) {
        auto entry = item.value<std::string>();
        if (!entry) return invalid(located(path, item, "record") + " entries must be strings");
        c.record.push_back(*entry);
      }
    } else {
      return invalid(located(path, *node, "record") + " must be a string or a list of strings");
    }
  }
  if (const auto* node = table.get("segment_bytes")) {
    auto v = size_option(*node, located(path, *node, "segment_bytes"));
    if (!v) return v.error();
    c.segment_bytes = *v;
  }
  for (auto [key, field] : {std::pair{"scan_interval", &c.scan_interval},
                            std::pair{"retry_interval", &c.retry_interval}}) {
    if (const auto* node = table.get(key)) {
      auto v = duration_option(*node, located(path, *node, key));
      if (!v) return v.error();
      *field = *v;
    }
  }
  if (const auto* node = table.get("cpu")) {
    auto v = node->value<std::int64_t>();
    if (!v) return invalid(located(path, *node, "cpu") + " must be a core number");
    c.cpu = *v;
    if (auto ok = validate_cpu(c.cpu); !ok) return invalid(located(path, *node, ok.error().message()));
  }
  if (const auto* node = table.get("restore_topics")) {
    auto v = node->value<bool>();
    if (!v) return invalid(located(path, *node, "restore_topics") + " must be true or false");
    c.restore_topics = *v;
  }
  if (const auto* fsync = table.get_as<toml::table>("fsync")) {
    for (const auto& [key, node] : *fsync) {
      std::string k(key.str());
      std::string where = located(path, node, "fsync." + k);
      if (k == "policy") {
        auto s = node.value<std::string>();
        if (!s) return invalid(where + " must be a string");
        auto p = parse_fsync_policy(*s);
        if (!p) return invalid(where + ": " + p.error().message());
        c.fsync = *p;
      } else if (k == "interval") {
        auto v = duration_option(node, where);
        if (!v) return v.error();
        c.fsync_interval = *v;
      } else if (k == "bytes") {
        auto v = size_option(node, where);
        if (!v) return v.error();
        c.fsync_bytes = *v;
      } else {
        return invalid(where + " is not an fsync option (policy, interval, bytes)");
      }
    }
  } else if (const auto* node = table.get("fsync")) {
    return invalid(located(path, *node, "fsync") + " must be a table ([fsync])");
  }
  if (const auto* retention = table.get_as<toml::table>("retention")) {
    for (const auto& [key, node] : *retention) {
      std::string k(key.str());
      std::string where = located(path, node, "retention." + k);
      if (k == "bytes") {
        // 0 (or "0") means no limit, as the default, and as --retention-bytes 0.
        const bool zero = node.value<std::int64_t>() == std::optional<std::int64_t>(0) ||
                          node.value<std::string>() == std::optional<std::string>("0");
        auto v = zero ? Result<std::uint64_t>(std::uint64_t{0}) : size_option(node, where);
        if (!v) return v.error();
        c.retention_bytes = *v;
      } else if (k == "age") {
        auto v = duration_option(node, where);
        if (!v) return v.error();
        c.retention_age = *v;
      } else {
        return invalid(where + " is not a retention option (bytes, age)");
      }
    }
  } else if (const auto* node = table.get("retention")) {
    return invalid(located(path, *node, "retention") + " must be a table ([retention])");
  }
  return c;
}

Result<void> validate_config(const BridgeConfig& c) {
  if (c.record.empty() && c.listen.address.empty() && c.forward.empty()) {
    return invalid("nothing to do: set record/--record, listen/--listen or forward/--forward");
  }
  if (!c.record.empty() && c.log_dir.empty()) {
    return invalid("no log directory: set log_dir or --log-dir");
  }
  if (c.segment_bytes < 4096) return invalid("segment_bytes must be at least 4KiB");
  if (c.fsync == FsyncPolicy::bytes && c.fsync_bytes == 0) {
    return invalid("fsync bytes must be positive");
  }
  if (c.fsync == FsyncPolicy::interval && c.fsync_interval.count() <= 0) {
    return invalid("fsync interval must be positive");
  }
  if (c.scan_interval.count() <= 0 || c.retry_interval.count() <= 0) {
    return invalid("scan and retry intervals must be positive");
  }
  if (auto ok = validate_reader_name(c.reader_name); !ok) return ok;
  return validate_cpu(c.cpu);
}

}  // namespace ringbus::bridge
