// Kafka sink: one session is one librdkafka producer. The pump reads the topic and hands runs of
// frames to the KafkaFrames sink, which turns each data frame into a Kafka message; delivery
// reports (served by rd_kafka_poll on this thread) mark messages done, and the pump's reader is
// committed up to the end of the longest done prefix. A failed delivery or a fatal producer error
// ends the session: after a bounded wait for the reports in flight (the done prefix committed),
// the producer is dropped with what it still held, and the next session resumes from the
// committed position (what was delivered after it is sent again: a duplicate with the same
// ringbus.offset, never a gap).
#include "kafka_sink.hpp"

#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "event_log.hpp"
#include "frame_pump.hpp"
#include "kafka_client.hpp"
#include "layout/frame_layout.hpp"
#include "ringbus/connector_counters.hpp"
#include "session_loop.hpp"

namespace ringbus::bridge {
namespace {

using std::chrono::milliseconds;

// Messages handed to librdkafka and not yet reported: the pump stops reading at this many.
constexpr std::size_t kMaxInFlight = 100'000;
constexpr std::uint64_t kChunkBytes = std::uint64_t{1} << 20;
constexpr int kFlushOnStopMs = 10'000;
constexpr int kFlushOnFailureMs = 5'000;
constexpr std::size_t kNameMax = 63;  // reader names and forward-link destinations

// The sink's defaults, before the operator's properties (which may override them).
const KafkaProperties kSinkDefaults = {
    {"enable.idempotence", "true"}, {"acks", "all"}, {"client.id", "ringbus-bridge"}};

// The FrameSink of a session: data frames go to librdkafka as they come; each message and each
// run of padding or lost offsets is an entry of in_flight_, done once reported delivered (padding
// at once). safe() is the end of the longest done prefix.
class KafkaFrames final : public connect::FrameSink {
 public:
  explicit KafkaFrames(std::uint64_t alignment) : alignment_(alignment) {}

  void start(rd_kafka_t* rk, const std::string& topic, std::uint64_t position,
             std::uint64_t next_sequence) {
    rk_ = rk;
    topic_ = topic;
    known_ = true;
    end_ = safe_ = position;
    next_sequence_ = safe_sequence_ = next_sequence;
    first_id_ += in_flight_.size();  // reports of an earlier session never match a new entry
    in_flight_.clear();
    failure_.reset();
  }
  void finish() {
    rk_ = nullptr;
    known_ = false;
  }
  bool empty() const override { return !known_; }
  std::uint64_t end() const override { return end_; }
  std::uint64_t room() const override {
    return in_flight_.size() >= kMaxInFlight ? 0 : kChunkBytes;
  }
  Result<void> append(const connect::FrameRun& run) override;

  // A delivery report for entry `id`.
  void delivered(std::uint64_t id, rd_kafka_resp_err_t err) {
    if (id < first_id_ || id - first_id_ >= in_flight_.size()) return;  // an earlier session's
    InFlight& entry = in_flight_[id - first_id_];
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (!failure_) {
        failure_ = "delivery of the message at offset " + std::to_string(entry.start) +
                   " to Kafka topic " + topic_ + " failed: " + rd_kafka_err2str(err);
      }
      return;
    }
    entry.done = true;
    advance();
  }
  void fail(const std::string& why) {
    if (!failure_) failure_ = why;
  }
  std::uint64_t safe() const { return safe_; }
  std::uint64_t safe_sequence() const { return safe_sequence_; }
  bool outstanding() const { return !in_flight_.empty(); }
  const std::optional<std::string>& failure() const { return failure_; }
  // Gaps [from, to) met since the last call.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> take_gaps() {
    return std::exchange(gaps_, {});
  }

 private:
  struct InFlight {
    std::uint64_t start;
    std::uint64_t end;
    std::uint64_t next_sequence;  // the sequence number of the message after it
    bool done;
  };
  void advance() {
    while (!in_flight_.empty() && in_flight_.front().done) {
      safe_ = in_flight_.front().end;
      safe_sequence_ = in_flight_.front().next_sequence;
      in_flight_.pop_front();
      ++first_id_;
    }
  }
  Errc produce(const layout::FrameHeader& h, const std::byte* payload, std::uint64_t start,
               std::uint64_t length, std::string& why);

  std::uint64_t alignment_;
  rd_kafka_t* rk_ = nullptr;
  std::string topic_;
  bool known_ = false;
  std::uint64_t end_ = 0;
  std::uint64_t next_sequence_ = 0;
  std::uint64_t safe_ = 0;
  std::uint64_t safe_sequence_ = 0;
  std::deque<InFlight> in_flight_;
  std::uint64_t first_id_ = 0;  // the id of in_flight_.front()
  std::optional<std::string> failure_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps_;
};

Errc KafkaFrames::produce(const layout::FrameHeader& h, const std::byte* payload,
                          std::uint64_t start, std::uint64_t length, std::string& why) {
  static const std::byte kEmpty{};  // an empty value, not a null one (a tombstone in Kafka)
  char offset_text[24] = {};
  char sequence_text[24] = {};
  const auto offset_end = std::to_chars(offset_text, offset_text + 23, start).ptr;
  const auto sequence_end = std::to_chars(sequence_text, sequence_text + 23, h.sequence).ptr;
  std::array<rd_kafka_vu_t, 8> vu{};
  std::size_t n = 0;
  vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
  vu[n++].u.cstr = topic_.c_str();
  if (h.key_length > 0) {  // no key: librdkafka's partitioner spreads the messages
    vu[n].vtype = RD_KAFKA_VTYPE_KEY;
    vu[n].u.mem.ptr = const_cast<std::byte*>(payload);
    vu[n++].u.mem.size = h.key_length;
  }
  const std::uint64_t value_size = length - h.key_length;
  vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
  vu[n].u.mem.ptr = const_cast<std::byte*>(value_size > 0 ? payload + h.key_length : &kEmpty);
  vu[n++].u.mem.size = value_size;
  vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  vu[n++].u.i = RD_KAFKA_MSG_F_COPY;
  vu[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP;  // ms; 0: librdkafka stamps it now
  vu[n++].u.i64 = h.timestamp_ns > 0 ? h.timestamp_ns / 1'000'000 : 0;
  vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
  vu[n].u.header = {"ringbus.offset", offset_text, offset_end - offset_text};
  ++n;
  vu[n].vtype = RD_KAFKA_VTYPE_HEADER;
  vu[n].u.header = {"ringbus.sequence", sequence_text, sequence_end - sequence_text};
  ++n;
  vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
  // The entry's id, carried by librdkafka's per-message pointer and never dereferenced:
  // delivered() finds the entry again from the report.
  const auto id = static_cast<std::uintptr_t>(first_id_ + in_flight_.size());
  // NOLINTNEXTLINE(performance-no-int-to-ptr)
  vu[n++].u.ptr = reinterpret_cast<void*>(id);
  rd_kafka_error_t* error = rd_kafka_produceva(rk_, vu.data(), n);
  if (error == nullptr) return Errc{};
  const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  why = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return code == RD_KAFKA_RESP_ERR__QUEUE_FULL ? Errc::would_block : Errc::io_error;
}

Result<void> KafkaFrames::append(const connect::FrameRun& run) {
  if (known_ && run.start < end_) {
    return Error(Errc::invalid_argument, "a run at offset " + std::to_string(run.start) +
                                             " goes back before the sink's end " +
                                             std::to_string(end_));
  }
  if (known_ && run.start > end_) {
    // Offsets this host lost (overwritten, in no disk log): nothing to send for them; the
    // session reports the gap.
    gaps_.emplace_back(end_, run.start);
    in_flight_.push_back({end_, run.start, next_sequence_, true});
    end_ = run.start;
  }
  known_ = true;
  for (ConstBytes piece : run.pieces) {
    std::size_t at = 0;
    while (at < piece.size()) {
      layout::FrameHeader h{};
      if (piece.size() - at < sizeof h) {
        return Error(Errc::corrupt, "a frame header at offset " + std::to_string(end_) +
                                        " crosses the end of a run piece");
      }
      std::memcpy(&h, piece.data() + at, sizeof h);
      const layout::FrameKind kind = layout::commit_kind(h.commit);
      const std::uint64_t length = layout::commit_length(h.commit);
      std::uint64_t stride = 0;
      if (kind == layout::FrameKind::kData) {
        stride = layout::frame_stride(length, alignment_);
      } else if (kind == layout::FrameKind::kPadding) {
        stride = layout::padding_stride(h.commit);
      }
      if (stride == 0 || stride > piece.size() - at || h.key_length > length) {
        return Error(Errc::corrupt, "the frame at offset " + std::to_string(end_) +
                                        " does not fit its run (commit word " +
                                        std::to_string(h.commit) + ")");
      }
      if (kind == layout::FrameKind::kData) {
        if (in_flight_.size() >= kMaxInFlight) return Errc::would_block;
        std::string why;
        const Errc failed = produce(h, piece.data() + at + sizeof h, end_, length, why);
        if (failed == Errc::would_block) return Errc::would_block;
        if (failed != Errc{}) {
          return Error(failed, "librdkafka refused the message at offset " + std::to_string(end_) +
                                   ": " + why);
        }
        next_sequence_ = h.sequence + 1;
        in_flight_.push_back({end_, end_ + stride, next_sequence_, false});
      } else {
        in_flight_.push_back({end_, end_ + stride, next_sequence_, true});
      }
      at += stride;
      end_ += stride;
    }
  }
  advance();
  return {};
}

}  // namespace

std::string kafka_reader_name(const std::string& base, const std::string& kafka_topic) {
  return fit_name(base + "-to-kafka-" + kafka_topic, kNameMax);
}

std::string expand_kafka_topic(const std::string& pattern, const std::string& topic) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size();) {
    if (pattern.compare(i, 7, "{topic}") == 0) {
      out += topic;
      i += 7;
    } else {
      out.push_back(pattern[i++]);
    }
  }
  return out;
}

KafkaSinkOptions kafka_sink_options(const BridgeConfig& config, const KafkaSinkRule& rule,
                                    const std::string& topic) {
  KafkaSinkOptions o;
  o.kafka_topic = expand_kafka_topic(rule.kafka_topic, topic);
  o.properties = kafka_properties(config.kafka, kSinkDefaults, rule.properties);
  o.reader_name = kafka_reader_name(config.reader_name, o.kafka_topic);
  return o;
}

struct KafkaSink::Impl {
  Impl(const Topic& t, KafkaSinkOptions o)
      : topic(t),
        options(std::move(o)),
        destination(fit_name("kafka:" + options.kafka_topic, kNameMax)),
        pump(t, connect::PumpOptions{options.reader_name,
                                     options.log_covers ? Durability::lossy : Durability::durable,
                                     kChunkBytes, 256,
                                     [this](const std::string& line) { event(line); }}),
        frames(t.config().frame_alignment) {}

  void event(const std::string& line) const {
    log_event(topic.name(), "kafka sink to " + options.kafka_topic + ": " + line);
  }
  // One line per distinct failure, not one per retry.
  void failure(const std::string& message, LinkState state) {
    counters->failed(message);
    counters->state(state);
    if (message != last_failure) event(message);
    last_failure = message;
  }
  // Loud: the event log, the link's error count and last error.
  void report_gap(std::uint64_t from, std::uint64_t to) {
    const std::string message = "offsets [" + std::to_string(from) + ", " + std::to_string(to) +
                                ") are lost on this host (overwritten, and in no disk log): "
                                "they are not in Kafka";
    event(message);
    counters->failed(message);
  }
  void acknowledge() {
    if (frames.safe() <= acked) return;
    acked = frames.safe();
    pump.acknowledge(acked, frames.safe_sequence());
    counters->acked(acked, frames.safe_sequence());
  }
  static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    static_cast<Impl*>(opaque)->frames.delivered(
        static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private)), m->err);
  }
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<Impl*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char why[512] = {};
      rd_kafka_fatal_error(rk, why, sizeof why);
      self->frames.fail(std::string("the Kafka producer failed: ") + why);
      return;
    }
    // Brokers down, a connection refused: librdkafka retries by itself; an operator sees it.
    self->failure(reason, LinkState::failing);
  }
  Result<void> session();
  Result<void> stream(rd_kafka_t* rk);
  Result<void> produce_until_stopped(rd_kafka_t* rk);
  void run();

  Topic topic;
  KafkaSinkOptions options;
  std::string destination;
  connect::FramePump pump;
  KafkaFrames frames;
  std::optional<ForwardCounters> counters;
  std::atomic<bool> stop{false};
  std::string last_failure;
  std::uint64_t acked = 0;
  std::uint64_t sent = 0;
  bool streamed = false;  // the last session delivered something
};

Result<void> KafkaSink::Impl::stream(rd_kafka_t* rk) {
  auto ok = produce_until_stopped(rk);
  // Stopping or failing: give what is on its way a chance to be delivered, and commit the
  // delivered prefix, so that the next session (or bridge) does not send it again. A message
  // refused at once would otherwise end every session before the reports of those before it.
  rd_kafka_flush(rk, ok ? kFlushOnStopMs : kFlushOnFailureMs);
  rd_kafka_poll(rk, 0);
  acknowledge();
  return ok;
}

Result<void> KafkaSink::Impl::produce_until_stopped(rd_kafka_t* rk) {
  while (!stop.load(std::memory_order_relaxed)) {
    bool moved = false;
    if (pump.pending()) {
      if (auto ok = pump.flush(frames); !ok && ok.error().code() != Errc::would_block) {
        return ok.error();
      }
    }
    if (!pump.pending() && frames.room() > 0) {
      auto read = pump.read(frames);
      if (!read) return read.error();
      moved = *read > 0;
      if (auto ok = pump.flush(frames); !ok && ok.error().code() != Errc::would_block) {
        return ok.error();
      }
    }
    rd_kafka_poll(rk, 0);  // delivery reports and errors, on this thread
    if (frames.failure()) return Error(Errc::io_error, *frames.failure());
    for (const auto& [from, to] : frames.take_gaps()) report_gap(from, to);
    if (frames.end() > sent) {
      counters->sent(frames.end(), frames.end() - sent);
      sent = frames.end();
    }
    if (frames.safe() > acked) {
      if (!streamed || !last_failure.empty()) {
        counters->state(LinkState::streaming);
        last_failure.clear();
      }
      streamed = true;
      acknowledge();
    }
    if (moved) continue;
    if (frames.outstanding() || pump.pending()) {
      rd_kafka_poll(rk, 5);  // wait (5 ms at most) for delivery reports
    } else {
      // Idle: sleep on the topic until a producer publishes.
      (void)pump.wait(Wait::futex(milliseconds(50)));
    }
  }
  return {};
}

Result<void> KafkaSink::Impl::session() {
  counters->state(LinkState::connecting);
  auto conf = make_kafka_conf(options.properties);
  if (!conf) return conf.error();
  rd_kafka_conf_set_opaque(conf->get(), this);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &Impl::on_delivery);
  rd_kafka_conf_set_error_cb(conf->get(), &Impl::on_error);
  char why[512] = {};
  rd_kafka_t* raw = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), why, sizeof why);
  if (raw == nullptr) return Error(Errc::invalid_argument, std::string("librdkafka: ") + why);
  (void)conf->release();  // rd_kafka_new took it
  KafkaHandle rk(raw);
  // A persistent reader resumes at its committed position; a new one starts with the topic's
  // whole history (the disk log's start if the topic is recorded, else the ring's oldest frame).
  frames.finish();
  if (auto ok = pump.attach(frames, connect::earliest_available(topic)); !ok) return ok.error();
  frames.start(rk.get(), options.kafka_topic, pump.position(), pump.next_sequence());
  acked = sent = pump.position();
  event("producing from offset " + std::to_string(pump.position()));
  auto ok = stream(rk.get());
  pump.detach();
  frames.finish();
  // What librdkafka still holds is dropped, not delivered: the next session sends it again.
  rd_kafka_purge(rk.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  return ok;
}

void KafkaSink::Impl::run() {
  auto c = ForwardCounters::attach(topic, destination);
  if (!c) {
    event("cannot start: " + c.error().message());
    return;
  }
  counters.emplace(*c);
  run_sessions(stop, SessionHooks{[this] {
                                    streamed = false;
                                    return session();
                                  },
                                  [this] { return streamed; },
                                  [this](const Error& e) {
                                    failure(e.message() + " (retrying)", LinkState::backing_off);
                                  },
                                  [this] { counters->reconnected(); }});
  counters->detach();
  event("stopped; delivered up to offset " + std::to_string(acked));
}

KafkaSink::KafkaSink(const Topic& topic, KafkaSinkOptions options)
    : impl_(std::make_unique<Impl>(topic, std::move(options))) {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "rb-kafka");  // for top -H and perf
    impl_->run();
  });
}

KafkaSink::~KafkaSink() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void KafkaSink::request_stop() noexcept { impl_->stop.store(true, std::memory_order_relaxed); }

const std::string& KafkaSink::kafka_topic() const noexcept { return impl_->options.kafka_topic; }

}  // namespace ringbus::bridge
