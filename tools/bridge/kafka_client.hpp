// librdkafka handles and configuration, shared by the Kafka sink and the Kafka source.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "bridge_config.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using KafkaConf = std::unique_ptr<rd_kafka_conf_t, KafkaDeleter>;

// The properties of one sink or source, in the order they apply: the connector's `defaults`,
// then bootstrap.servers (kafka.brokers), then [kafka] properties, then its `own` ("KEY=VALUE").
KafkaProperties kafka_properties(const KafkaConfig& config, const KafkaProperties& defaults,
                                 const std::vector<std::string>& own);

// A librdkafka configuration with `properties` set. Errors: invalid_argument, naming the
// property and librdkafka's reason.
Result<KafkaConf> make_kafka_conf(const KafkaProperties& properties);

// Builds a configuration from [kafka] and `own`, so that an unknown property or a bad value is
// an error at start. Errors: invalid_argument.
Result<void> check_kafka_properties(const KafkaConfig& config, const std::vector<std::string>& own);

// `name`, or when longer than `max`, its head and a hash of the whole (still unique).
std::string fit_name(const std::string& name, std::size_t max);

}  // namespace ringbus::bridge
