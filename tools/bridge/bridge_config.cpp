// Bridge configuration: TOML via toml++, each key applied through the option table
// (bridge_options.cpp), and the checks of a complete configuration.
#include "bridge_config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <system_error>

#include <toml++/toml.h>

#include "bridge_options.hpp"
#include "host_port.hpp"
#include "key_file.hpp"
#include "layout/reader_slot_layout.hpp"
#include "ringbus/topic.hpp"
#include "topic_pattern.hpp"

#ifdef RINGBUS_WITH_KAFKA
#include "kafka_client.hpp"
#endif

namespace ringbus::bridge {

namespace {

Error invalid(const std::string& message) { return Error(Errc::invalid_argument, message); }

// The bridge's reader name is a reader slot's name: at most 63 bytes.
constexpr std::size_t kReaderNameMax = layout::kReaderNameMax;

OptionSource toml_source(const std::string& path, const toml::node& node, const std::string& key) {
  return OptionSource{path + ":" + std::to_string(node.source().begin.line) + ": ", key};
}

// A TOML value in the text form a flag would give, or the error for a value of another type.
Result<std::string> scalar_text(const toml::node& node, OptionKind kind,
                                const OptionSource& source) {
  if (auto s = node.value<std::string>()) {
    if (kind != OptionKind::integer && kind != OptionKind::boolean) return *s;
  }
  if (auto n = node.as_integer()) {
    if (kind == OptionKind::size || kind == OptionKind::duration || kind == OptionKind::integer) {
      return std::to_string(n->get());
    }
  }
  if (auto b = node.as_boolean(); b && kind == OptionKind::boolean) {
    return std::string(b->get() ? "true" : "false");
  }
  switch (kind) {
    case OptionKind::text: return invalid(source.where() + " must be a string");
    case OptionKind::list:
      return invalid(source.where() + " must be a string or a list of strings");
    case OptionKind::size:
      return invalid(source.where() + " must be a number of bytes or a size such as \"64MiB\"");
    case OptionKind::duration:
      return invalid(source.where() + " must be milliseconds or a duration such as \"10s\"");
    case OptionKind::integer: return invalid(source.where() + " must be a core number");
    case OptionKind::boolean: return invalid(source.where() + " must be true or false");
  }
  return invalid(source.where() + " has the wrong type");
}

Result<void> apply_node(BridgeConfig& c, const BridgeOption& option, const toml::node& node,
                        const std::string& path) {
  const std::string key(option.key);
  const OptionSource source = toml_source(path, node, key);
  if (option.kind == OptionKind::list) {
    option.reset(c);
    if (const auto* list = node.as_array()) {
      for (const auto& item : *list) {
        auto entry = item.value<std::string>();
        if (!entry) {
          return invalid(toml_source(path, item, key).where() + " entries must be strings");
        }
        if (auto ok = option.apply(c, *entry, toml_source(path, item, key)); !ok) return ok;
      }
      return {};
    }
  }
  auto text = scalar_text(node, option.kind, source);
  if (!text) return text.error();
  return option.apply(c, *text, source);
}

const BridgeOption* find_option(std::string_view key) {
  for (const BridgeOption& o : bridge_options()) {
    if (!o.key.empty() && o.key == key) return &o;
  }
  return nullptr;
}

// "(policy, interval, bytes)": the keys of a table, for the error on an unknown one.
std::string keys_of(std::string_view table) {
  std::string keys;
  for (const BridgeOption& o : bridge_options()) {
    if (o.key.starts_with(std::string(table) + ".")) {
      keys += (keys.empty() ? "" : ", ") + std::string(o.key.substr(table.size() + 1));
    }
  }
  return "(" + keys + ")";
}

const OptionTable* find_table(std::string_view name) {
  for (const OptionTable& t : option_tables()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<void> apply_section(BridgeConfig& c, const OptionTable& t, const toml::node& node,
                           const std::string& path);

Result<void> apply_table(BridgeConfig& c, const OptionTable& t, const toml::table& table,
                         const std::string& path) {
  for (const auto& [key, node] : table) {
    const std::string k = std::string(t.name) + "." + std::string(key.str());
    if (const OptionTable* inner = find_table(k); inner != nullptr) {  // [[kafka.sink]]
      if (auto ok = apply_section(c, *inner, node, path); !ok) return ok;
      continue;
    }
    const BridgeOption* option = find_option(k);
    if (option == nullptr) {
      return invalid(toml_source(path, node, k).where() + " is not " + std::string(t.what) + " " +
                     keys_of(t.name));
    }
    if (auto ok = apply_node(c, *option, node, path); !ok) return ok;
  }
  return {};
}

Result<void> apply_section(BridgeConfig& c, const OptionTable& t, const toml::node& node,
                           const std::string& path) {
  const std::string name(t.name);
  if (!t.array) {
    const auto* table = node.as_table();
    if (table == nullptr) {
      return invalid(toml_source(path, node, name).where() + " must be a table ([" + name + "])");
    }
    return apply_table(c, t, *table, path);
  }
  const auto* tables = node.as_array();
  if (tables == nullptr || !tables->is_array_of_tables()) {
    return invalid(toml_source(path, node, name).where() + " must be an array of tables ([[" +
                   name + "]])");
  }
  for (const auto& element : *tables) {
    t.begin(c);
    if (auto ok = apply_table(c, t, *element.as_table(), path); !ok) return ok;
    if (auto ok = t.finish(c, toml_source(path, element, "[[" + name + "]]")); !ok) return ok;
  }
  return {};
}

// The [kafka] section as a whole: sinks need brokers (or bootstrap.servers among the
// properties) and a bridge built with Kafka; librdkafka itself checks every property.
Result<void> validate_kafka(const KafkaConfig& k);

}  // namespace

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

Result<void> validate_forward_rule(const ForwardRule& rule, std::string_view what) {
  const std::string w(what);
  if (rule.topics.empty()) return invalid(w + " has no topics: set topics = [\"GLOB\", ...]");
  for (const std::string& t : rule.topics) {
    if (auto ok = validate_topic_pattern(t, w + " topics"); !ok) return ok;
  }
  if (rule.to.empty()) return invalid(w + " has no destination: set to = \"HOST:PORT\"");
  if (auto ok = parse_host_port(rule.to, w + " to", false); !ok) return ok.error();
  return {};
}

Result<void> validate_kafka_property(const std::string& property, std::string_view what) {
  const std::size_t eq = property.find('=');
  if (eq == std::string::npos || eq == 0) {
    return invalid(std::string(what) + " '" + property +
                   "' must be KEY=VALUE (a librdkafka property, e.g. security.protocol=ssl)");
  }
  return {};
}

namespace {

// Kafka topic names: 1 to 249 of A-Z a-z 0-9 . _ -
bool is_kafka_topic_name(const std::string& name) {
  return !name.empty() && name.size() <= 249 && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
  });
}

Result<void> validate_kafka_properties(const std::vector<std::string>& properties,
                                       const std::string& what) {
  for (const std::string& p : properties) {
    if (auto ok = validate_kafka_property(p, what + " property"); !ok) return ok;
  }
  return {};
}

}  // namespace

Result<void> validate_kafka_sink(const KafkaSinkRule& rule, std::string_view what) {
  const std::string w(what);
  if (rule.topics.empty()) return invalid(w + " has no topics: set topics = [\"GLOB\", ...]");
  for (const std::string& t : rule.topics) {
    if (auto ok = validate_topic_pattern(t, w + " topics"); !ok) return ok;
  }
  // ringbus names are at most 200 of the characters Kafka allows, so checking the pattern with
  // a one-letter name checks every expansion but the length.
  std::string sample = rule.kafka_topic;
  for (std::size_t at = sample.find("{topic}"); at != std::string::npos;
       at = sample.find("{topic}")) {
    sample.replace(at, 7, "x");
  }
  if (!is_kafka_topic_name(sample)) {
    return invalid(w + " kafka_topic '" + rule.kafka_topic +
                   "' is not a Kafka topic name: 1 to 249 characters of A-Z a-z 0-9 . _ -, "
                   "where {topic} stands for the ringbus topic's name");
  }
  return validate_kafka_properties(rule.properties, w);
}

Result<void> validate_kafka_source(const KafkaSourceRule& rule, std::string_view what) {
  const std::string w(what);
  if (!is_kafka_topic_name(rule.kafka_topic)) {
    return invalid(w + " kafka_topic '" + rule.kafka_topic +
                   "' is not a Kafka topic name: 1 to 249 characters of A-Z a-z 0-9 . _ -");
  }
  if (auto ok = validate_name(rule.topic, w + " topic"); !ok) return ok;
  return validate_kafka_properties(rule.properties, w);
}

bool kafka_built_in() noexcept {
#ifdef RINGBUS_WITH_KAFKA
  return true;
#else
  return false;
#endif
}

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
  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    if (const OptionTable* t = find_table(k); t != nullptr) {
      if (auto ok = apply_section(c, *t, node, path); !ok) return ok.error();
      continue;
    }
    const BridgeOption* option = find_option(k);
    if (option == nullptr) {
      return invalid(toml_source(path, node, k).where() +
                     " is not a bridge option (see docs/bridge.md)");
    }
    if (auto ok = apply_node(c, *option, node, path); !ok) return ok.error();
  }
  return c;
}

Result<void> validate_config(const BridgeConfig& c) {
  if (c.record.empty() && c.listen.address.empty() && c.forward.empty() && c.kafka.sinks.empty() &&
      c.kafka.sources.empty()) {
    return invalid(
        "nothing to do: set record (--record), listen (--listen), forward (--forward), a Kafka "
        "sink (--kafka-sink) or a Kafka source (--kafka-source)");
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
  if (auto ok = validate_cpu(c.cpu); !ok) return ok;
  if (c.link_timeout.count() <= 0) return invalid("link_timeout must be positive");
  if (!c.listen.address.empty()) {
    auto address = parse_host_port(c.listen.address, "listen address", true);
    if (!address) return address.error();
    if (!is_loopback(*address) && c.key_file.empty() && !c.tls.enabled()) {
      return invalid("listen address " + *address +
                     " is beyond loopback: binding beyond loopback needs --key-file (key_file) "
                     "or TLS (--tls-cert, --tls-key, --tls-ca)");
    }
  }
  for (const std::string& a : c.listen.accept) {
    if (auto ok = validate_topic_pattern(a, "listen accept"); !ok) return ok;
  }
  for (const ForwardRule& rule : c.forward) {
    if (auto ok = validate_forward_rule(rule, "forward rule"); !ok) return ok;
  }
  if (auto ok = validate_kafka(c.kafka); !ok) return ok;
  if (c.tls.enabled()) {
    if (c.tls.cert.empty() || c.tls.key.empty() || c.tls.ca.empty()) {
      return invalid(
          "TLS needs all of tls.cert, tls.key and tls.ca (--tls-cert, --tls-key, "
          "--tls-ca)");
    }
    for (const auto& [file, what] : {std::pair{&c.tls.cert, "tls.cert"}, {&c.tls.ca, "tls.ca"}}) {
      if (::access(file->c_str(), R_OK) != 0) {
        return Error(
            errno == ENOENT ? Errc::not_found : Errc::invalid_argument,
            std::string(what) + " '" + *file + "': " + std::generic_category().message(errno));
      }
    }
    if (auto ok = check_private_file(c.tls.key, "tls.key"); !ok) return ok;
  }
  if (!c.key_file.empty()) return check_key_file(c.key_file, "key_file");
  return {};
}

namespace {

Result<void> validate_kafka(const KafkaConfig& k) {
  for (const std::string& p : k.properties) {
    if (auto ok = validate_kafka_property(p, "kafka property"); !ok) return ok;
  }
  for (const KafkaSinkRule& rule : k.sinks) {
    if (auto ok = validate_kafka_sink(rule, "kafka sink"); !ok) return ok;
  }
  for (const KafkaSourceRule& rule : k.sources) {
    if (auto ok = validate_kafka_source(rule, "kafka source"); !ok) return ok;
  }
  if (k.sinks.empty() && k.sources.empty()) return {};
  if (!kafka_built_in()) {
    return invalid(
        "this ringbus-bridge was built without Kafka support (librdkafka was not found at build "
        "time; build with -DRINGBUS_WITH_KAFKA=ON)");
  }
  const auto names_servers = [](const std::vector<std::string>& props) {
    return std::any_of(props.begin(), props.end(), [](const std::string& p) {
      return p.starts_with("bootstrap.servers=") || p.starts_with("metadata.broker.list=");
    });
  };
  const bool brokers = !k.brokers.empty() || names_servers(k.properties);
  for (const KafkaSinkRule& rule : k.sinks) {
    if (!brokers && !names_servers(rule.properties)) {
      return invalid("a Kafka sink needs brokers: set kafka.brokers (--kafka-brokers HOST:PORT)");
    }
  }
  for (const KafkaSourceRule& rule : k.sources) {
    if (!brokers && !names_servers(rule.properties)) {
      return invalid("a Kafka source needs brokers: set kafka.brokers (--kafka-brokers HOST:PORT)");
    }
  }
  if (!k.sources.empty() && k.group.empty()) {
    return invalid("a Kafka source needs a consumer group: set kafka.group (--kafka-group GROUP)");
  }
  if (!k.sources.empty() &&
      (k.source_capacity < 4096 || (k.source_capacity & (k.source_capacity - 1)) != 0)) {
    return invalid("kafka source_capacity must be a power of two of at least 4KiB");
  }
#ifdef RINGBUS_WITH_KAFKA
  for (const KafkaSinkRule& rule : k.sinks) {
    if (auto ok = check_kafka_properties(k, rule.properties); !ok) return ok;
  }
  for (const KafkaSourceRule& rule : k.sources) {
    if (auto ok = check_kafka_properties(k, rule.properties); !ok) return ok;
  }
#endif
  return {};
}

}  // namespace

}  // namespace ringbus::bridge
