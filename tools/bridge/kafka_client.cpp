#include "kafka_client.hpp"

#include <charconv>
#include <cstring>

#include "event_log.hpp"

namespace ringbus::bridge {

KafkaProperties kafka_properties(const KafkaConfig& config, const KafkaProperties& defaults,
                                 const std::vector<std::string>& own) {
  KafkaProperties p = defaults;
  if (!config.brokers.empty()) p.emplace_back("bootstrap.servers", config.brokers);
  for (const auto* list : {&config.properties, &own}) {
    for (const std::string& property : *list) {
      const std::size_t eq = property.find('=');  // validate_kafka_property: there is one
      p.emplace_back(property.substr(0, eq), property.substr(eq + 1));
    }
  }
  return p;
}

namespace {

// librdkafka's own log, in the event log's format. Connection failures ("FAIL") also reach the
// connectors' error callbacks, which report each distinct one once: not logged twice.
void log_line(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  if (level > 4 || std::strcmp(facility, "FAIL") == 0) return;  // 4: warnings and worse
  log_event("", std::string("librdkafka ") + rd_kafka_name(rk) + " " + facility + ": " + text);
}

}  // namespace

Result<KafkaConf> make_kafka_conf(const KafkaProperties& properties) {
  KafkaConf conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &log_line);
  char why[512] = {};
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), why, sizeof why) !=
        RD_KAFKA_CONF_OK) {
      std::string message = "Kafka property ";
      message += key;
      message += '=';
      message += value;
      message += ": ";
      message += why;
      return Error(Errc::invalid_argument, message);
    }
  }
  return conf;
}

Result<void> check_kafka_properties(const KafkaConfig& config,
                                    const std::vector<std::string>& own) {
  auto conf = make_kafka_conf(kafka_properties(config, {}, own));
  if (!conf) return conf.error();
  return {};
}

std::string fit_name(const std::string& name, std::size_t max) {
  if (name.size() <= max) return name;
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  char hash[17] = {};
  std::to_chars(hash, hash + 16, h, 16);
  return name.substr(0, max - 17) + "-" + hash;
}

}  // namespace ringbus::bridge
