// Records one topic: a persistent, durable, manually committed reader that appends every frame
// to the topic's disk log, syncs it by policy, applies retention, persists the topic's queue
// group positions, and publishes its counters. Commits only what is durable, so under `block`
// producers wait for the disk rather than overwrite unrecorded data.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bridge_config.hpp"
#include "disk_log_sink.hpp"
#include "frame_pump.hpp"
#include "log_state.hpp"
#include "ringbus/connector_counters.hpp"
#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"
#include "topic_log.hpp"

namespace ringbus::bridge {

class TopicRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  // Opens (recovers) the topic's log and attaches the bridge's reader. Errors: busy (another
  // bridge records it), incompatible (the log does not fit the topic), io_error, no_space...
  static Result<std::unique_ptr<TopicRecorder>> start(const Topic& topic,
                                                      const BridgeConfig& config);
  ~TopicRecorder();

  // One round: write what is pending, read what producers published, sync by policy. Returns
  // true if it recorded something (the caller sleeps a little when no recorder did).
  bool step(Clock::time_point now);
  // Final flush: everything read is written, synced, committed; the reader detaches.
  void stop();
  // The topic file was deleted or replaced since the recorder started.
  bool topic_gone() const;
  const std::string& name() const noexcept { return topic_.name(); }
  std::uint64_t recorded() const noexcept { return log_.end(); }
  std::uint64_t durable() const noexcept { return durable_; }

 private:
  TopicRecorder(const Topic& topic, const BridgeConfig& config, TopicLog log);
  // (Re)attaches the bridge's persistent reader, resuming at its committed position, and
  // resets what was read but not written. Used at start and after a failed sync.
  Result<void> attach_reader();
  void reread_from_ring(Clock::time_point now);
  bool flush_chunk(Clock::time_point now);
  bool sync(Clock::time_point now);
  void refresh_positions();
  Result<void> write_state(bool sync_file);
  void publish_counters();
  void fail(const std::string& message, Clock::time_point now);

  Topic topic_;
  BridgeConfig config_;
  TopicLog log_;
  DiskLogSink sink_;
  connect::FramePump pump_;
  RecorderCounters counters_;
  std::uint64_t durable_ = 0;
  std::uint64_t durable_messages_ = 0;
  std::uint64_t synced_at_end_ = 0;  // log end at the last sync
  bool failing_ = false;
  Clock::time_point retry_at_{};
  Clock::time_point last_sync_{};
  Clock::time_point last_housekeeping_{};
  LogState state_;
  std::uint64_t topic_inode_ = 0;
};

}  // namespace ringbus::bridge
