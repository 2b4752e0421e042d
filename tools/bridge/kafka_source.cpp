// Kafka source: one session is one librdkafka consumer subscribed to the Kafka topic. Each
// record polled is published into the local topic (waiting for room as producers do) before its
// offset is stored; nothing is buffered between the two, so a record whose offset was stored is
// in the ring. A failed publish or consumer ends the session; closing the consumer commits what
// was stored, and the next session resumes from the committed offsets.
#include "kafka_source.hpp"

#include <pthread.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <optional>

#include "event_log.hpp"
#include "ringbus/producer.hpp"
#include "session_loop.hpp"

namespace ringbus::bridge {
namespace {

using std::chrono::milliseconds;

// The consumer's defaults, before the operator's properties (which may override them): commit
// only offsets the source stored (after publishing), every second; a group with no committed
// offset starts at the beginning of the Kafka topic, so a first start misses nothing.
KafkaProperties source_defaults(const std::string& group) {
  return {{"group.id", group},
          {"enable.auto.commit", "true"},
          {"enable.auto.offset.store", "false"},
          {"auto.commit.interval.ms", "1000"},
          {"auto.offset.reset", "earliest"},
          {"client.id", "ringbus-bridge"}};
}

// "PARTITION:OFFSET:", the prefix of a sourced message's value.
std::string record_prefix(std::int32_t partition, std::int64_t offset) {
  char text[48] = {};
  char* end = std::to_chars(text, text + 20, partition).ptr;
  *end++ = ':';
  end = std::to_chars(end, text + 46, offset).ptr;
  *end++ = ':';
  return {text, static_cast<std::size_t>(end - text)};
}

}  // namespace

KafkaSourceOptions kafka_source_options(const BridgeConfig& config, const KafkaSourceRule& rule) {
  KafkaSourceOptions o;
  o.kafka_topic = rule.kafka_topic;
  o.topic = rule.topic;
  o.capacity = config.kafka.source_capacity;
  o.properties =
      kafka_properties(config.kafka, source_defaults(config.kafka.group), rule.properties);
  return o;
}

struct KafkaSource::Impl {
  Impl(Bus b, KafkaSourceOptions o) : bus(std::move(b)), options(std::move(o)) {}

  void event(const std::string& line) const {
    log_event(options.topic, "kafka source from " + options.kafka_topic + ": " + line);
  }
  // One line per distinct problem, not one per retry.
  void problem(const std::string& message) {
    if (message != last_problem) event(message);
    last_problem = message;
  }
  static void on_error(rd_kafka_t*, int, const char* reason, void* opaque) {
    // Brokers down, a connection refused: librdkafka retries by itself; an operator sees it.
    static_cast<Impl*>(opaque)->problem(reason);
  }
  Result<Topic> local_topic() const;
  Result<void> publish(Producer& producer, const rd_kafka_message_t& m);
  Result<void> consume(rd_kafka_t* rk, Producer& producer);
  Result<void> session();

  Bus bus;
  KafkaSourceOptions options;
  std::atomic<bool> stop{false};
  std::string last_problem;
  std::uint64_t published = 0;
  bool consumed = false;  // the last session published something
  std::string value;      // the value being built (prefix + Kafka value)
};

Result<Topic> KafkaSource::Impl::local_topic() const {
  auto t = bus.open_topic(options.topic);
  if (t || t.error().code() != Errc::not_found) return t;
  TopicOptions o;
  o.capacity = options.capacity;
  auto created = bus.create_topic(options.topic, o);
  if (created) event("created the topic (capacity " + std::to_string(o.capacity) + ")");
  if (!created && created.error().code() == Errc::already_exists) {
    return bus.open_topic(options.topic);  // another process created it meanwhile
  }
  return created;
}

Result<void> KafkaSource::Impl::publish(Producer& producer, const rd_kafka_message_t& m) {
  value = record_prefix(m.partition, m.offset);
  if (m.payload != nullptr) value.append(static_cast<const char*>(m.payload), m.len);
  const ConstBytes key(static_cast<const std::byte*>(m.key), m.key != nullptr ? m.key_len : 0);
  rd_kafka_timestamp_type_t type{};
  const std::int64_t ms = rd_kafka_message_timestamp(&m, &type);
  // The topic is full (its slowest durable reader is a ring behind): wait as long as it takes,
  // a while at a time, so that a stop is seen.
  for (;;) {
    auto claim = producer.claim(value.size(), key, Wait::futex(milliseconds(200)));
    if (claim) {
      std::memcpy(claim->bytes().data(), value.data(), value.size());
      auto committed = claim->commit(ms > 0 ? ms * 1'000'000 : 0);
      if (!committed) return committed.error();
      return {};
    }
    if (claim.error().code() != Errc::timed_out) {
      return Error(claim.error().code(), "record " + std::to_string(m.partition) + ":" +
                                             std::to_string(m.offset) + " (" +
                                             std::to_string(value.size()) +
                                             " bytes with its prefix): " + claim.error().message());
    }
    problem("waiting for room in the topic: " + claim.error().message());
    if (stop.load(std::memory_order_relaxed)) return Error(Errc::timed_out, "stopping");
  }
}

Result<void> KafkaSource::Impl::consume(rd_kafka_t* rk, Producer& producer) {
  while (!stop.load(std::memory_order_relaxed)) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (m == nullptr) continue;
    const std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> held(
        m, rd_kafka_message_destroy);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      problem(rd_kafka_message_errstr(m));  // e.g. the Kafka topic does not exist (yet)
      continue;
    }
    if (auto ok = publish(producer, *m); !ok) return ok;
    // Only now: the record is in the ring. Committed with the next auto-commit.
    if (rd_kafka_resp_err_t err = rd_kafka_offset_store(m->rkt, m->partition, m->offset); err) {
      problem(std::string("storing offset: ") + rd_kafka_err2str(err));
    }
    ++published;
    if (!consumed || !last_problem.empty()) {
      if (!consumed)
        event("publishing from partition " + std::to_string(m->partition) + " offset " +
              std::to_string(m->offset));
      last_problem.clear();
    }
    consumed = true;
  }
  return {};
}

Result<void> KafkaSource::Impl::session() {
  auto topic = local_topic();
  if (!topic) return topic.error();
  Producer producer(*topic);
  auto conf = make_kafka_conf(options.properties);
  if (!conf) return conf.error();
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_error_cb(conf->get(), &Impl::on_error);
  char why[512] = {};
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), why, sizeof why);
  if (raw == nullptr) return Error(Errc::invalid_argument, std::string("librdkafka: ") + why);
  (void)conf->release();  // rd_kafka_new took it
  KafkaHandle rk(raw);
  rd_kafka_poll_set_consumer(rk.get());
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options.kafka_topic.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t subscribed = rd_kafka_subscribe(rk.get(), topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (subscribed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Error(Errc::invalid_argument,
                 std::string("cannot subscribe: ") + rd_kafka_err2str(subscribed));
  }
  auto ok = consume(rk.get(), producer);
  // Commits the offsets stored (of published records only) and leaves the group.
  rd_kafka_consumer_close(rk.get());
  return ok;
}

KafkaSource::KafkaSource(const Bus& bus, KafkaSourceOptions options)
    : impl_(std::make_unique<Impl>(bus, std::move(options))) {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "rb-kafka-in");  // for top -H and perf
    Impl& self = *impl_;
    self.event("consuming into the topic");
    run_sessions(self.stop, SessionHooks{[&self] {
                                           self.consumed = false;
                                           return self.session();
                                         },
                                         [&self] { return self.consumed; },
                                         [&self](const Error& e) {
                                           self.problem(e.message() + " (retrying)");
                                         },
                                         [] {}});
    self.event("stopped; " + std::to_string(self.published) + " records published");
  });
}

KafkaSource::~KafkaSource() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void KafkaSource::request_stop() noexcept { impl_->stop.store(true, std::memory_order_relaxed); }

}  // namespace ringbus::bridge
