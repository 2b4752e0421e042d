// Publishes one topic to one Apache Kafka topic through librdkafka: the frame pump into a Kafka
// sink, on its own thread. Each data frame becomes a Kafka message (the ringbus key as the Kafka
// key, the timestamp as its CreateTime, headers ringbus.offset and ringbus.sequence) sent by an
// idempotent producer with acks=all; the pump's persistent reader is committed only up to the
// highest offset below which every message has a successful delivery report. After kill -9 or a
// restart the sink resumes there, from the disk log when the ring no longer has it: at least
// once, never a gap; a duplicate carries a ringbus.offset its consumer has already seen.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bridge_config.hpp"
#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

struct KafkaSinkOptions {
  std::string kafka_topic;  // the Kafka topic, "{topic}" already replaced
  // librdkafka properties in the order they apply: the sink's defaults, then bootstrap.servers,
  // then [kafka] properties, then the sink's own.
  std::vector<std::pair<std::string, std::string>> properties;
  std::string reader_name;  // its persistent reader in the topic
  // This bridge records the topic too: the reader is lossy and, once lapped, reads the disk
  // log, so producers never wait on Kafka (only on the disk).
  bool log_covers = false;
};

// The options of the sink of `rule` for the ringbus topic `topic` under `config`.
KafkaSinkOptions kafka_sink_options(const BridgeConfig& config, const KafkaSinkRule& rule,
                                    const std::string& topic);

class KafkaSink {
 public:
  KafkaSink(const Topic& topic, KafkaSinkOptions options);
  ~KafkaSink();  // stops: waits up to 10 s for outstanding delivery reports, then joins
  KafkaSink(const KafkaSink&) = delete;
  KafkaSink& operator=(const KafkaSink&) = delete;
  void request_stop() noexcept;
  const std::string& kafka_topic() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// The sink's persistent reader name: "<base>-to-kafka-<kafka topic>" (cut to 200 characters).
std::string kafka_reader_name(const std::string& base, const std::string& kafka_topic);

// `pattern` with every "{topic}" replaced by `topic`.
std::string expand_kafka_topic(const std::string& pattern, const std::string& topic);

}  // namespace ringbus::bridge
