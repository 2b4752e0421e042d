// The table of bridge options: TOML key, flag, help and how a value in text form changes the
// configuration. load_config_file and parse_command_line both go through it.
#include "bridge_options.hpp"

#include <array>
#include <charconv>
#include <string>

#include "duration.hpp"
#include "host_port.hpp"
#include "key_file.hpp"
#include "sizes.hpp"
#include "topic_pattern.hpp"

namespace ringbus::bridge {

namespace {

using Ms = std::chrono::milliseconds;

Error invalid(const std::string& message) { return Error(Errc::invalid_argument, message); }

// An error of a check that names the option itself (reader_name, cpu): only the location added.
Result<void> located(Result<void> ok, const OptionSource& source) {
  if (ok) return ok;
  return invalid(source.prefix + ok.error().message());
}

Result<void> set_size(std::uint64_t& out, const std::string& text, const OptionSource& source) {
  auto v = tools::parse_size(text, source.where());
  if (!v) return v.error();
  out = *v;
  return {};
}

Result<void> set_duration(Ms& out, const std::string& text, const OptionSource& source) {
  auto v = tools::parse_duration(text, source.where());
  if (!v) return v.error();
  out = *v;
  return {};
}

Result<std::string> host_port(const std::string& text, const OptionSource& source, bool listen) {
  return parse_host_port(text, source.where(), listen);
}

Result<void> topic_pattern(const std::string& text, const OptionSource& source) {
  return validate_topic_pattern(text, source.where());
}

const std::array kOptions{
    BridgeOption{"bus_dir", "--bus-dir",
                 "Bus directory (default: $RINGBUS_DIR or /dev/shm/ringbus-$UID)", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.bus_dir = v;
                   return {};
                 }},
    BridgeOption{"log_dir", "--log-dir", "Directory for the logs: <log-dir>/<topic>/",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.log_dir = v;
                   return {};
                 }},
    BridgeOption{"record", "--record", "Topic name or glob to record (repeatable)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.record.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.record.clear(); }},
    BridgeOption{"segment_bytes", "--segment-bytes",
                 "Roll segments after this size (default 64MiB)", OptionKind::size,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_size(c.segment_bytes, v, s);
                 }},
    BridgeOption{"fsync.policy", "--fsync", "never | interval | bytes (default interval)",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   auto p = parse_fsync_policy(v);
                   if (!p) return invalid(s.where() + ": " + p.error().message());
                   c.fsync = *p;
                   return {};
                 }},
    BridgeOption{"fsync.interval", "--fsync-interval", "With --fsync interval (default 10ms)",
                 OptionKind::duration,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_duration(c.fsync_interval, v, s);
                 }},
    BridgeOption{"fsync.bytes", "--fsync-bytes", "With --fsync bytes (default 4MiB)",
                 OptionKind::size,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_size(c.fsync_bytes, v, s);
                 }},
    BridgeOption{"retention.bytes", "--retention-bytes",
                 "Keep at most this much per topic (0: no limit)", OptionKind::size,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (v == "0") {  // no limit, as the default
                     c.retention_bytes = 0;
                     return {};
                   }
                   return set_size(c.retention_bytes, v, s);
                 }},
    BridgeOption{"retention.age", "--retention-age",
                 "Delete segments older than this (e.g. 7d; 0: no limit)", OptionKind::duration,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_duration(c.retention_age, v, s);
                 }},
    BridgeOption{"reader_name", "--reader-name", "The bridge's reader name in each topic",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   c.reader_name = v;
                   return located(validate_reader_name(v), s);
                 }},
    BridgeOption{"scan_interval", "--scan-interval", "How often to look for new topics (1s)",
                 OptionKind::duration,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_duration(c.scan_interval, v, s);
                 }},
    BridgeOption{"cpu",
                 "--cpu",
                 "Pin the recording thread to this core",
                 OptionKind::integer,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   std::int64_t n = 0;
                   auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                   if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
                     return invalid(s.where() + " must be a core number");
                   }
                   c.cpu = n;
                   return located(validate_cpu(c.cpu), s);
                 },
                 nullptr,
                 {},
                 "-1"},
    BridgeOption{"retry_interval", "--retry-interval", "Wait after a failed write or open (1s)",
                 OptionKind::duration,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_duration(c.retry_interval, v, s);
                 }},
    BridgeOption{"restore_topics", "--no-restore",
                 "Do not re-create recorded topics missing from the bus directory",
                 OptionKind::boolean,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.restore_topics = v == "true";
                   return {};
                 },
                 nullptr, "false"},
    BridgeOption{"listen.address", "--listen",
                 "Accept links from other bridges at HOST:PORT (\":PORT\" or \"PORT\": "
                 "127.0.0.1:PORT)",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (v.empty()) {  // not listening, as the default
                     c.listen.address.clear();
                     return {};
                   }
                   auto a = host_port(v, s, true);
                   if (!a) return a.error();
                   c.listen.address = *a;
                   return {};
                 }},
    BridgeOption{"listen.accept", "--accept",
                 "Topic name or glob a sender may mirror here (repeatable; default *)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = topic_pattern(v, s); !ok) return ok;
                   c.listen.accept.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.listen.accept.clear(); }},
    // --forward GLOB=HOST:PORT is one rule; in TOML a [[forward]] table holds topics and to.
    BridgeOption{"", "--forward",
                 "Mirror topics matching GLOB to the bridge at HOST:PORT: GLOB=HOST:PORT "
                 "(repeatable)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   const std::size_t eq = v.find('=');
                   if (eq == std::string::npos) {
                     return invalid(s.where() + " '" + v + "' must be GLOB=HOST:PORT");
                   }
                   const std::string glob = v.substr(0, eq);
                   if (auto ok = topic_pattern(glob, s); !ok) return ok;
                   auto to = host_port(v.substr(eq + 1), s, false);
                   if (!to) return to.error();
                   c.forward.push_back(ForwardRule{{glob}, *to});
                   return {};
                 },
                 [](BridgeConfig& c) { c.forward.clear(); }},
    BridgeOption{"forward.topics", "", "", OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = topic_pattern(v, s); !ok) return ok;
                   c.forward.back().topics.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.forward.back().topics.clear(); }},
    BridgeOption{"forward.to", "", "", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   auto to = host_port(v, s, false);
                   if (!to) return to.error();
                   c.forward.back().to = *to;
                   return {};
                 }},
    BridgeOption{"key_file", "--key-file",
                 "Pre-shared key file of bridge links, mode 0600, 16 to 4096 bytes",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   c.key_file = v;
                   c.key.clear();
                   if (v.empty()) return {};
                   auto key = read_key_file(v, s.where());
                   if (!key) return Error(key.error().code(), s.prefix + key.error().message());
                   c.key = std::move(*key);
                   return {};
                 }},
    BridgeOption{"tls.cert", "--tls-cert",
                 "TLS on every link: PEM certificate chain this bridge presents (with tls.key "
                 "and tls.ca)",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.tls.cert = v;
                   return {};
                 }},
    BridgeOption{"tls.key", "--tls-key", "PEM private key of tls.cert, mode 0600", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.tls.key = v;
                   return {};
                 }},
    BridgeOption{"tls.ca", "--tls-ca",
                 "PEM CA bundle the other bridges' certificates must chain to (both ways)",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.tls.ca = v;
                   return {};
                 }},
    BridgeOption{"link_timeout", "--link-timeout",
                 "Drop a link when its peer sends nothing for this long (10s)",
                 OptionKind::duration,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_duration(c.link_timeout, v, s);
                 }},
    BridgeOption{"link_busy_spin", "--link-busy-spin",
                 "Links poll the ring and the socket without sleeping: lower latency, one busy "
                 "core per link on each side (default: they sleep)",
                 OptionKind::boolean,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.link_busy_spin = v == "true";
                   return {};
                 },
                 nullptr, "true"},
    BridgeOption{"kafka.brokers", "--kafka-brokers",
                 "Kafka bootstrap servers for the Kafka sinks: HOST:PORT[,HOST:PORT...]",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.kafka.brokers = v;
                   return {};
                 }},
    BridgeOption{"kafka.properties", "--kafka-property",
                 "A librdkafka property for every Kafka sink: KEY=VALUE (repeatable)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = validate_kafka_property(v, s.where()); !ok) return ok;
                   c.kafka.properties.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.properties.clear(); }},
    // --kafka-sink GLOB=KAFKA_TOPIC is one sink; in TOML a [[kafka.sink]] table holds them.
    BridgeOption{"", "--kafka-sink",
                 "Publish topics matching GLOB to Kafka: GLOB=KAFKA_TOPIC, {topic} standing for "
                 "the topic's name (repeatable)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   const std::size_t eq = v.find('=');
                   if (eq == std::string::npos) {
                     return invalid(s.where() + " '" + v + "' must be GLOB=KAFKA_TOPIC");
                   }
                   KafkaSinkRule rule{{v.substr(0, eq)}, v.substr(eq + 1), {}};
                   if (auto ok = validate_kafka_sink(rule, s.where()); !ok) return ok;
                   c.kafka.sinks.push_back(std::move(rule));
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.sinks.clear(); }},
    BridgeOption{"kafka.sink.topics", "", "", OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = topic_pattern(v, s); !ok) return ok;
                   c.kafka.sinks.back().topics.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.sinks.back().topics.clear(); }},
    BridgeOption{"kafka.sink.kafka_topic", "", "", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.kafka.sinks.back().kafka_topic = v;
                   return {};
                 }},
    BridgeOption{"kafka.sink.properties", "", "", OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = validate_kafka_property(v, s.where()); !ok) return ok;
                   c.kafka.sinks.back().properties.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.sinks.back().properties.clear(); }},
    BridgeOption{"kafka.group", "--kafka-group", "Consumer group (group.id) of the Kafka sources",
                 OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.kafka.group = v;
                   return {};
                 }},
    BridgeOption{"kafka.source_capacity", "--kafka-source-capacity",
                 "Ring size of a local topic a Kafka source creates (default 16MiB)",
                 OptionKind::size,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) {
                   return set_size(c.kafka.source_capacity, v, s);
                 }},
    // --kafka-source KAFKA_TOPIC=TOPIC is one source; in TOML a [[kafka.source]] table.
    BridgeOption{"", "--kafka-source",
                 "Consume a Kafka topic into a local topic (created if missing): "
                 "KAFKA_TOPIC=TOPIC (repeatable)",
                 OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   const std::size_t eq = v.find('=');
                   if (eq == std::string::npos) {
                     return invalid(s.where() + " '" + v + "' must be KAFKA_TOPIC=TOPIC");
                   }
                   KafkaSourceRule rule{v.substr(0, eq), v.substr(eq + 1), {}};
                   if (auto ok = validate_kafka_source(rule, s.where()); !ok) return ok;
                   c.kafka.sources.push_back(std::move(rule));
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.sources.clear(); }},
    BridgeOption{"kafka.source.kafka_topic", "", "", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.kafka.sources.back().kafka_topic = v;
                   return {};
                 }},
    BridgeOption{"kafka.source.topic", "", "", OptionKind::text,
                 [](BridgeConfig& c, const std::string& v, const OptionSource&) -> Result<void> {
                   c.kafka.sources.back().topic = v;
                   return {};
                 }},
    BridgeOption{"kafka.source.properties", "", "", OptionKind::list,
                 [](BridgeConfig& c, const std::string& v, const OptionSource& s) -> Result<void> {
                   if (auto ok = validate_kafka_property(v, s.where()); !ok) return ok;
                   c.kafka.sources.back().properties.push_back(v);
                   return {};
                 },
                 [](BridgeConfig& c) { c.kafka.sources.back().properties.clear(); }},
};

const std::array kTables{
    OptionTable{"fsync", "an fsync option", false},
    OptionTable{"retention", "a retention option", false},
    OptionTable{"listen", "a listen option", false},
    OptionTable{"tls", "a tls option", false},
    OptionTable{"forward", "a forward option", true,
                [](BridgeConfig& c) { c.forward.emplace_back(); },
                [](const BridgeConfig& c, const OptionSource& s) {
                  return validate_forward_rule(c.forward.back(), s.where());
                }},
    OptionTable{"kafka", "a kafka option", false},
    OptionTable{"kafka.sink", "a kafka.sink option", true,
                [](BridgeConfig& c) { c.kafka.sinks.emplace_back(); },
                [](const BridgeConfig& c, const OptionSource& s) {
                  return validate_kafka_sink(c.kafka.sinks.back(), s.where());
                }},
    OptionTable{"kafka.source", "a kafka.source option", true,
                [](BridgeConfig& c) { c.kafka.sources.emplace_back(); },
                [](const BridgeConfig& c, const OptionSource& s) {
                  return validate_kafka_source(c.kafka.sources.back(), s.where());
                }},
};

}  // namespace

std::span<const BridgeOption> bridge_options() { return kOptions; }

std::span<const OptionTable> option_tables() { return kTables; }

}  // namespace ringbus::bridge
