// Consumes one Apache Kafka topic into one local topic through librdkafka: a consumer in the
// bridge's consumer group, on its own thread. Each record is published into the local topic with
// the Kafka key as its key, the Kafka timestamp, and a value that starts with the record's
// partition and offset in decimal, each followed by ':' ("2:1045:" then the Kafka value). A
// record's offset is stored for commit only after its publish succeeded; librdkafka commits
// stored offsets every second, on a rebalance and at a clean stop, so a restart resumes after
// the last committed record: at least once, in per-partition order. A duplicate repeats a
// partition and offset already seen.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "bridge_config.hpp"
#include "kafka_client.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

struct KafkaSourceOptions {
  std::string kafka_topic;
  std::string topic;           // the local topic, created with `capacity` if missing
  std::uint64_t capacity = 0;  // ring size of the local topic if the source creates it
  KafkaProperties properties;  // consumer defaults, then [kafka], then the source's own
};

KafkaSourceOptions kafka_source_options(const BridgeConfig& config, const KafkaSourceRule& rule);

class KafkaSource {
 public:
  KafkaSource(const Bus& bus, KafkaSourceOptions options);
  ~KafkaSource();  // stops: commits what was published, leaves the group, joins
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;
  void request_stop() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace ringbus::bridge
