// The bridge's main loop: find the topics to record (names or globs; topics created later are
// picked up), run one recorder per topic, restore topics lost from the bus directory from their
// logs, retry what failed, and stop cleanly with a final durable flush. Forwarders (one thread per
// topic and destination) and the receiver (--listen) run beside it.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "bridge_config.hpp"
#include "forwarder.hpp"
#ifdef RINGBUS_WITH_KAFKA
#include "kafka_sink.hpp"
#include "kafka_source.hpp"
#endif
#include "receiver.hpp"
#include "recorder.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

class Bridge {
 public:
  explicit Bridge(BridgeConfig config);
  // Records until `stop` becomes true, then flushes and detaches. Returns the exit status.
  int run(const std::atomic<bool>& stop);

 private:
  using Clock = std::chrono::steady_clock;
  void scan(Clock::time_point now);
  void start_recorder(const std::string& topic, Clock::time_point now);
  void restore_lost_topics(const std::vector<std::string>& present, Clock::time_point now);
  bool wanted(const std::string& topic) const;
  void report_once(const std::string& topic, const std::string& message);
  void scan_forwards(const std::vector<std::string>& topics);
  void scan_kafka_sinks(const std::vector<std::string>& topics);

  struct ForwardKey {
    std::string topic;
    std::string to;
    // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads a defaulted <=>.
    auto operator<=>(const ForwardKey&) const = default;
  };
  // A link to another bridge (forwarder) or to Kafka (kafka): one of the two.
  struct RunningForward {
    std::unique_ptr<Forwarder> forwarder;
#ifdef RINGBUS_WITH_KAFKA
    std::unique_ptr<KafkaSink> kafka;
#endif
    std::uint64_t inode = 0;  // of the topic file: a new file is a new topic
  };

  BridgeConfig config_;
  Bus bus_;
  std::map<std::string, std::unique_ptr<TopicRecorder>> recorders_;
  std::map<std::string, Clock::time_point> retry_at_;
  std::map<std::string, std::string> last_error_;
  // Topics removed while this bridge ran: deliberately, so they are not restored from their
  // logs (a topic missing when the bridge starts, after a reboot, is).
  std::set<std::string> removed_;
  std::unique_ptr<Receiver> receiver_;
  std::map<ForwardKey, RunningForward> forwards_;
  std::shared_ptr<const LinkTls> tls_;  // forwarders' TLS, loaded at start
#ifdef RINGBUS_WITH_KAFKA
  std::vector<std::unique_ptr<KafkaSource>> kafka_sources_;  // one per [[kafka.source]]
  bool kafka_rules_checked_ = false;  // sink rules matching no topic were reported (once)
#endif
};

}  // namespace ringbus::bridge
