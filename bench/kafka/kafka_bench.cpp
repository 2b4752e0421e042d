// ringbus-kafka-bench: the bridge's Kafka sink and source against raw librdkafka clients moving
// the same messages to and from the same cluster, in the same run. The cluster is librdkafka's
// mock cluster (a broker in this process on 127.0.0.1, acknowledging at once), not a real Kafka:
// absolute rates say little about a real cluster, where the brokers, the network and replication
// set the pace; the ratio says what the connector costs on top of the client library.
//   sink:   N messages published into a ringbus topic, streamed by a running KafkaSink until
//           all are reported delivered, against a raw idempotent acks=all producer sending the
//           same keys, values and headers and flushing. Both have delivered one message before
//           the clock starts (the client's start is not the rate measured). Twice: a ring that
//           holds the whole run, and a 4 MiB ring, which the sink's reader (committed only as
//           deliveries are reported) makes the window of messages in flight.
//   source: N + 1 records in a Kafka topic, consumed by a KafkaSource into a local topic,
//           against a raw consumer of its own group reading them all; both timed from the
//           first record to the last (the group join is not timed).
// Each case is the best of --repeat runs; which side runs first alternates.
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bridge_config.hpp"
#include "kafka_sink.hpp"
#include "kafka_source.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void die(const std::string& message) {
  std::fprintf(stderr, "ringbus-kafka-bench: %s\n", message.c_str());
  std::exit(1);
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

rd_kafka_conf_t* conf_with(const std::vector<std::pair<std::string, std::string>>& props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char why[256] = {};
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), why, sizeof why) != RD_KAFKA_CONF_OK) {
      die(k + ": " + why);
    }
  }
  return conf;
}

// Partitions per topic: the mock keeps about 4 MiB and 100,000 messages a partition (older data
// is dropped), so the default runs stay at under 3.5 MiB and 15,000 messages a partition.
constexpr int kPartitions = 12;

class MockCluster {
 public:
  MockCluster() {
    char why[256] = {};
    owner_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf_with({{"log_level", "3"}}), why, sizeof why);
    if (owner_ == nullptr) die(why);
    cluster_ = rd_kafka_mock_cluster_new(owner_, 1);
    if (cluster_ == nullptr) die("cannot start a mock cluster");
    bootstraps_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(owner_);
  }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;
  const std::string& bootstraps() const { return bootstraps_; }
  void create_topic(const std::string& name) {
    rd_kafka_mock_topic_create(cluster_, name.c_str(), kPartitions, 1);
  }

 private:
  rd_kafka_t* owner_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstraps_;
};

std::string key_of(std::uint64_t i) { return "k" + std::to_string(i % 64); }

// Sends message i of a run; waits (polling) while librdkafka's queue is full.
void produce_one(rd_kafka_t* p, const std::string& topic, std::uint64_t i,
                 const std::vector<char>& value) {
  const std::string key = key_of(i);
  const std::string offset = std::to_string(i * (value.size() + 64));
  const std::string sequence = std::to_string(i);
  for (;;) {
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(0),
        RD_KAFKA_V_HEADER("ringbus.offset", offset.data(), static_cast<ssize_t>(offset.size())),
        RD_KAFKA_V_HEADER("ringbus.sequence", sequence.data(),
                          static_cast<ssize_t>(sequence.size())),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(rd_kafka_err2str(err));
    rd_kafka_poll(p, 1);
  }
  if (i % 1024 == 0)
    rd_kafka_poll(p, 0);  // delivery reports, as the sink serves them: now and then
}

// The raw baseline of the sink: the same messages (key, value, the two ringbus headers) from an
// idempotent acks=all producer, timed from the first send to the last delivery report. A first
// message is delivered before the clock starts: the client's start (connection, producer id,
// the topic's metadata, which librdkafka 2.0 sometimes fetches only on its 1 s timer) is not
// the steady rate either side is measured for.
double raw_produce(const MockCluster& cluster, const std::string& topic, std::uint64_t n,
                   std::size_t size) {
  char why[256] = {};
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER,
                               conf_with({{"bootstrap.servers", cluster.bootstraps()},
                                          {"enable.idempotence", "true"},
                                          {"acks", "all"},
                                          {"log_level", "3"}}),
                               why, sizeof why);
  if (p == nullptr) die(why);
  const std::vector<char> value(size, 'v');
  produce_one(p, topic, 0, value);
  if (rd_kafka_flush(p, 60'000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw warm-up timed out");
  const auto start = Clock::now();
  for (std::uint64_t i = 1; i <= n; ++i) produce_one(p, topic, i, value);
  if (rd_kafka_flush(p, 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("raw flush timed out");
  const double s = seconds_since(start);
  rd_kafka_destroy(p);
  return static_cast<double>(n) / s;
}

std::uint64_t sink_acked(const Topic& topic, const std::string& kafka_topic) {
  for (const ForwardInfo& f : topic.snapshot().forwards) {
    if (f.destination == "kafka:" + kafka_topic) return f.acked_position;
  }
  return 0;
}

// Waits until the sink has committed up to `position`.
void wait_acked(const Topic& topic, const std::string& kafka_topic, std::uint64_t position) {
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (sink_acked(topic, kafka_topic) < position) {
    if (Clock::now() > deadline) die("the sink did not deliver everything in 300 s");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// The sink: a KafkaSink on a ringbus topic delivers a first message (its client's start, as
// the raw producer's, is not timed); then n messages are published as fast as the sink lets
// the producer go, and the sink is timed until its link reports them all delivered.
double sink_run(const MockCluster& cluster, const std::string& root, const std::string& kafka_topic,
                std::uint64_t n, std::size_t size, std::uint64_t ring) {
  const std::string dir = root + "/" + kafka_topic;
  std::filesystem::create_directories(dir);
  Bus bus(dir);
  TopicOptions o;
  o.capacity = ring;
  auto topic = bus.create_topic("bench", o);
  if (!topic) die(topic.error().message());
  Producer producer(*topic);
  const std::vector<std::byte> value(size, std::byte{'v'});
  auto publish = [&](std::uint64_t i) {
    const std::string key = key_of(i);
    auto published =
        producer.publish(ConstBytes(reinterpret_cast<const std::byte*>(key.data()), key.size()),
                         value, Wait::futex(std::chrono::seconds(60)));
    if (!published) die("publish: " + published.error().message());
  };
  bridge::BridgeConfig config;
  config.kafka.brokers = cluster.bootstraps();
  config.kafka.properties = {"log_level=3"};
  const bridge::KafkaSinkRule rule{{"bench"}, kafka_topic, {}};
  publish(0);
  bridge::KafkaSink sink(*topic, bridge::kafka_sink_options(config, rule, "bench"));
  wait_acked(*topic, kafka_topic, topic->snapshot().tail);
  const auto start = Clock::now();
  for (std::uint64_t i = 1; i <= n; ++i) publish(i);
  wait_acked(*topic, kafka_topic, topic->snapshot().tail);
  return static_cast<double>(n) / seconds_since(start);
}

// The raw baseline of the source: a consumer subscribed in a group of its own, as the source's
// is, reading all n + 1 records; timed from the first record to the last (the group join is not
// timed, for either side).
double raw_consume(const MockCluster& cluster, const std::string& topic, std::uint64_t n) {
  char why[256] = {};
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER,
                               conf_with({{"bootstrap.servers", cluster.bootstraps()},
                                          {"group.id", "raw-" + topic},
                                          {"auto.offset.reset", "earliest"},
                                          {"log_level", "3"}}),
                               why, sizeof why);
  if (c == nullptr) die(why);
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(c, list);
  rd_kafka_topic_partition_list_destroy(list);
  std::uint64_t got = 0;
  std::uint64_t bytes = 0;
  Clock::time_point start{};
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  while (got < n + 1) {
    if (Clock::now() > deadline) die("the raw consumer did not read everything in 300 s");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 100);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (got == 0) start = Clock::now();
      bytes += m->len;
      ++got;
    }
    rd_kafka_message_destroy(m);
  }
  const double s = seconds_since(start);
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
  return bytes == 0 ? 0 : static_cast<double>(n) / s;
}

// The source: consumes the n + 1 records into a local topic; timed from the first message
// published to the last (the group join excluded, as the raw consumer's is).
double source_run(const MockCluster& cluster, const std::string& root, const std::string& topic,
                  std::uint64_t n) {
  const std::string dir = root + "/" + topic;
  std::filesystem::create_directories(dir);
  Bus bus(dir);
  bridge::BridgeConfig config;
  config.kafka.brokers = cluster.bootstraps();
  config.kafka.group = "source-" + topic;
  // A ring the run wraps many times (no reader holds it back), as a long-running source's does:
  // the timed stretch writes to pages already touched, not a fresh file's.
  config.kafka.source_capacity = std::uint64_t{4} << 20;
  config.kafka.properties = {"log_level=3"};
  const bridge::KafkaSourceRule rule{topic, "local", {}};
  bridge::KafkaSource source(bus, bridge::kafka_source_options(config, rule));
  const auto deadline = Clock::now() + std::chrono::seconds(300);
  // Opened once: mapping and unmapping it every look would interrupt the source's thread.
  std::optional<Topic> local;
  while (!local) {
    if (auto t = bus.open_topic("local")) local.emplace(*t);
    if (Clock::now() > deadline) die("the source did not create its topic in 300 s");
    std::this_thread::sleep_for(milliseconds(1));
  }
  Clock::time_point first{};
  for (;;) {
    const std::uint64_t messages = local->snapshot().messages;
    if (messages > 0 && first == Clock::time_point{}) first = Clock::now();
    if (messages >= n + 1) break;
    if (Clock::now() > deadline) die("the source did not publish everything in 300 s");
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return static_cast<double>(n) / seconds_since(first);
}

}  // namespace
}  // namespace ringbus::bench

int main(int argc, char** argv) {
  using namespace ringbus::bench;
  CLI::App app{"ringbus-kafka-bench: Kafka sink and source against raw librdkafka, same run"};
  std::uint64_t small = 180'000;
  std::uint64_t large = 36'000;
  int repeat = 5;
  app.add_option("--messages-64", small, "messages of 64 B per case (default 180000)");
  app.add_option("--messages-1k", large, "messages of 1 KiB per case (default 36000)");
  app.add_option("--repeat", repeat, "runs per case, alternating with the baseline (default 5)");
  CLI11_PARSE(app, argc, argv);
  const std::string root =
      "/dev/shm/ringbus-kafka-bench-" + std::to_string(static_cast<long>(::getpid()));
  std::filesystem::create_directories(root);
  MockCluster cluster;
  std::printf("librdkafka %s, mock cluster (1 broker, %d partitions per topic), best of %d\n",
              rd_kafka_version_str(), kPartitions, repeat);
  std::printf("  %-9s %6s %10s %14s %14s %7s\n", "case", "size", "messages", "ringbus msg/s",
              "raw msg/s", "ratio");
  int topic_id = 0;
  for (const auto& [size, n] : {std::pair<std::size_t, std::uint64_t>{64, small}, {1024, large}}) {
    double best_sink = 0;
    double best_sink_4m = 0;
    double best_raw = 0;
    double best_source = 0;
    double best_consume = 0;
    for (int r = 0; r < repeat; ++r) {
      const std::string a = "t" + std::to_string(topic_id++);
      const std::string b = "t" + std::to_string(topic_id++);
      const std::string c = "t" + std::to_string(topic_id++);
      cluster.create_topic(a);
      cluster.create_topic(b);
      cluster.create_topic(c);
      const std::uint64_t whole_run = std::bit_ceil(n * (size + 128) + (std::uint64_t{1} << 20));
      // Which side goes first alternates, so neither always meets a busier mock broker.
      for (int side = 0; side < 2; ++side) {
        if ((side + r) % 2 == 0) {
          best_raw = std::max(best_raw, raw_produce(cluster, a, n, size));
        } else {
          best_sink = std::max(best_sink, sink_run(cluster, root, b, n, size, whole_run));
          best_sink_4m =
              std::max(best_sink_4m, sink_run(cluster, root, c, n, size, std::uint64_t{4} << 20));
        }
      }
      for (int side = 0; side < 2; ++side) {
        if ((side + r) % 2 == 0) {
          best_consume = std::max(best_consume, raw_consume(cluster, a, n));
        } else {
          best_source = std::max(best_source, source_run(cluster, root, b, n));
        }
      }
    }
    std::printf("  %-9s %6zu %10llu %14.0f %14.0f %6.2fx\n", "sink", size,
                static_cast<unsigned long long>(n), best_sink, best_raw, best_sink / best_raw);
    std::printf("  %-9s %6zu %10llu %14.0f %14.0f %6.2fx\n", "sink-4MiB", size,
                static_cast<unsigned long long>(n), best_sink_4m, best_raw,
                best_sink_4m / best_raw);
    std::printf("  %-9s %6zu %10llu %14.0f %14.0f %6.2fx\n", "source", size,
                static_cast<unsigned long long>(n), best_source, best_consume,
                best_source / best_consume);
  }
  std::filesystem::remove_all(root);
  return 0;
}
