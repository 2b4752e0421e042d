// ringbus-bridge configuration: the TOML file (toml++) and the command-line flags that override
// it, both parsed through one table of options (bridge_options.hpp). Every option is documented
// in docs/bridge.md; bridge.example.toml shows them all.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "duration.hpp"
#include "link_tls.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

enum class FsyncPolicy : std::uint8_t {
  never,     // page cache only: survives a bridge crash, not a power cut
  interval,  // fdatasync at most every fsync_interval
  bytes,     // fdatasync once fsync_bytes more were written
};

// Topics mirrored to another host: each topic matching `topics` is sent to the bridge at `to`.
struct ForwardRule {
  std::vector<std::string> topics;  // topic names or shell globs
  std::string to;                   // "HOST:PORT" of a receiving ringbus-bridge
};

// A Kafka sink: each topic matching `topics` is published to the Kafka topic `kafka_topic`, in
// which "{topic}" stands for the ringbus topic's name.
struct KafkaSinkRule {
  std::vector<std::string> topics;      // topic names or shell globs
  std::string kafka_topic;              // "{topic}" or a name such as "md.{topic}"
  std::vector<std::string> properties;  // "KEY=VALUE" librdkafka properties of this sink only
};

// A Kafka source: the Kafka topic `kafka_topic` consumed (in the bridge's consumer group) into
// the local topic `topic`, created if missing.
struct KafkaSourceRule {
  std::string kafka_topic;
  std::string topic;
  std::vector<std::string> properties;  // "KEY=VALUE" librdkafka properties of this source only
};

// Apache Kafka, through librdkafka (built in with RINGBUS_WITH_KAFKA).
struct KafkaConfig {
  std::string brokers;                  // bootstrap servers "HOST:PORT[,HOST:PORT...]"
  std::vector<std::string> properties;  // "KEY=VALUE" librdkafka properties of every sink/source
  std::vector<KafkaSinkRule> sinks;
  std::string group;  // the sources' consumer group (group.id); required with sources
  std::uint64_t source_capacity = std::uint64_t{16} << 20;  // of a local topic a source creates
  std::vector<KafkaSourceRule> sources;
};

// Links this bridge accepts from forwarding bridges.
struct ListenConfig {
  std::string address;                   // "HOST:PORT"; empty: not listening
  std::vector<std::string> accept{"*"};  // topic names or globs a sender may mirror here
};

struct BridgeConfig {
  std::string bus_dir;              // empty: $RINGBUS_DIR, else /dev/shm/ringbus-$UID
  std::string log_dir;              // required with `record`: <log_dir>/<topic>/ per topic
  std::vector<std::string> record;  // topic names or shell globs ("*", "md.*")
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  FsyncPolicy fsync = FsyncPolicy::interval;
  std::chrono::milliseconds fsync_interval{10};
  std::uint64_t fsync_bytes = std::uint64_t{4} << 20;
  std::uint64_t retention_bytes = 0;               // per topic; 0: keep everything
  std::chrono::milliseconds retention_age{0};      // 0: keep everything
  std::string reader_name = "ringbus-bridge";      // its persistent reader in each topic
  std::chrono::milliseconds scan_interval{1000};   // looking for new topics
  std::chrono::milliseconds retry_interval{1000};  // after a failed write or open
  std::optional<std::int64_t> cpu;                 // pin the recording thread to this core (hwloc)
  bool restore_topics = true;  // re-create a recorded topic missing from the bus directory
  ListenConfig listen;
  std::vector<ForwardRule> forward;
  std::string key_file;  // pre-shared key file for links (both sides); empty: none
  std::string key;       // its contents, loaded by load_config_file and the flags (never printed)
  TlsConfig tls;         // TLS on every link (both sides); empty: plain TCP
  // No bytes from a peer for this long: drop the link.
  std::chrono::milliseconds link_timeout{10000};
  // Links spin instead of sleeping while idle (forwarder on the ring, receiver on the socket):
  // saves two kernel wake-ups per message in latency, costs a core per link on each side.
  bool link_busy_spin = false;
  KafkaConfig kafka;
};

// Reads a TOML configuration file. Errors: not_found, invalid_argument (with the file, line and
// the option at fault).
Result<BridgeConfig> load_config_file(const std::string& path);

// Checks a complete configuration (after flags; the same checks for both): something to do
// (record, listen or forward), log_dir when recording, sizes, intervals, reader_name (1 to 63
// characters of A-Z a-z 0-9 . _ -, not starting with '.'), cpu (0 to INT_MAX), the link
// addresses, forward rules, the key file (checked again on disk; a listen address beyond
// loopback needs one) and the TLS files (all three or none; the key private). Does not load the
// key. Errors: invalid_argument, not_found (key file).
Result<void> validate_config(const BridgeConfig& config);

// The checks of single options that validate_config and the option table share; `what` names
// the option (or the [[forward]] table) in errors. Errors: invalid_argument.
Result<void> validate_reader_name(const std::string& name);
Result<void> validate_cpu(const std::optional<std::int64_t>& cpu);
Result<void> validate_forward_rule(const ForwardRule& rule, std::string_view what);
// A Kafka sink rule: topics, a Kafka topic name (1 to 249 characters of A-Z a-z 0-9 . _ - once
// "{topic}" is replaced), its properties. Errors: invalid_argument.
Result<void> validate_kafka_sink(const KafkaSinkRule& rule, std::string_view what);
// A Kafka source rule: a Kafka topic name and a ringbus topic name. Errors: invalid_argument.
Result<void> validate_kafka_source(const KafkaSourceRule& rule, std::string_view what);
// "KEY=VALUE" with a non-empty key. Errors: invalid_argument.
Result<void> validate_kafka_property(const std::string& property, std::string_view what);
// True when this bridge was built with Kafka sinks (RINGBUS_WITH_KAFKA).
bool kafka_built_in() noexcept;

// "10ms", "2s", "30m", "12h", "7d" (a bare number is milliseconds): duration.hpp.
using tools::parse_duration;

std::string_view to_string(FsyncPolicy policy) noexcept;
Result<FsyncPolicy> parse_fsync_policy(std::string_view text);

}  // namespace ringbus::bridge
