// RecorderCounters: plain stores into the topic header; readers take them one by one.
#include "ringbus/connector_counters.hpp"

#include <atomic>

#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "topic/liveness.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

namespace {
using detail::atomic;
constexpr auto kRelaxed = std::memory_order_relaxed;  // monitoring figures, each on its own
}  // namespace

void RecorderCounters::attach(const std::string& log_dir) const {
  auto& h = detail::mapping_of(topic_).header();
  auto self = detail::self_identity();
  detail::write_fixed_text(h.log_dir, layout::kLogDirSize, log_dir);
  atomic(h.recorder_start_time).store(self.start_time, kRelaxed);
  atomic(h.recorder_pid).store(self.pid, kRelaxed);
  atomic(h.recorder_state).store(layout::kRecorderRecording, kRelaxed);
}

void RecorderCounters::publish(const RecorderFigures& f) const {
  auto& h = detail::mapping_of(topic_).header();
  atomic(h.recorded_messages).store(f.recorded_messages, kRelaxed);
  // Messages first: a reader loads messages, position, messages and takes a pair whose two
  // message loads agree (see the mirror receiver's acks).
  atomic(h.durable_messages).store(f.durable_messages, kRelaxed);
  atomic(h.durable_position).store(f.durable_position, std::memory_order_release);
  atomic(h.log_start).store(f.log_start, kRelaxed);
  atomic(h.log_segments).store(f.segments, kRelaxed);
  atomic(h.log_bytes).store(f.log_bytes, kRelaxed);
  // release: pairs with the acquire load of readers (Topic::snapshot, replay); the bytes below
  // this position were written to the segment files before.
  atomic(h.recorded_position).store(f.recorded_position, std::memory_order_release);
}

void RecorderCounters::failed(const std::string& message) const {
  auto& h = detail::mapping_of(topic_).header();
  detail::write_fixed_text(h.last_error, layout::kRecorderTextSize, message);
  atomic(h.last_error_unix_ns).store(static_cast<std::uint64_t>(detail::realtime_ns()), kRelaxed);
  atomic(h.recorder_state).store(layout::kRecorderFailing, kRelaxed);
  // release: pairs with the acquire loads around the reader's copy of last_error.
  atomic(h.recorder_errors).fetch_add(1, std::memory_order_release);
}

void RecorderCounters::failed_to_start(const std::string& log_dir,
                                       const std::string& message) const {
  attach(log_dir);
  failed(message);
}

void RecorderCounters::recovered() const {
  atomic(detail::mapping_of(topic_).header().recorder_state).store(layout::kRecorderRecording, kRelaxed);
}

void RecorderCounters::detach() const {
  auto& h = detail::mapping_of(topic_).header();
  atomic(h.recorder_state).store(layout::kRecorderStopped, kRelaxed);
  atomic(h.recorder_pid).store(0, kRelaxed);
}

}  // namespace ringbus
