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
#include "log_state.hpp"
#include "recorder_counters.hpp"
#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
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
  struct Run {  // frames that continue the stream at `start`
    std::uint64_t start = 0;
    std::size_t offset = 0;  // in chunk_ (in_ring: unused)
    std::size_t size = 0;
    bool has_sequence = false;
    std::uint64_t last_sequence = 0;
    bool in_ring = false;  // the bytes are the ring's [start, start + size), held for us
  };
  TopicRecorder(const Topic& topic, const BridgeConfig& config, TopicLog log);
  // (Re)attaches the bridge's persistent reader, resuming at its committed position, and
  // resets what was read but not written. Used at start and after a failed sync.
  Result<void> attach_reader();
  void reread_from_ring(Clock::time_point now);
  std::uint64_t pending_bytes() const noexcept;
  void on_message(const Message& m);
  void on_message_in_place(const Message& m, bool lost);
  void on_message_copied(const Message& m, bool lost);
  void append_padding(std::uint64_t from, std::uint64_t to);
  bool flush_chunk(Clock::time_point now);
  bool sync(Clock::time_point now);
  void refresh_groups();
  Result<void> write_state(bool sync_file);
  void publish_counters();
  void fail(const std::string& message, Clock::time_point now);

  Topic topic_;
  BridgeConfig config_;
  TopicLog log_;
  std::optional<Subscriber> reader_;  // empty once stopped, or while it cannot attach
  RecorderCounters counters_;
  // Block topics: the reader is durable, so frames it reads in place stay in the ring until we
  // commit past them, and chunks are written straight from the ring. Frames it had to copy and
  // check (overwrite topics; on block topics, those below its registration tail, which a
  // producer that scanned before could still overwrite) are rebuilt from the message into
  // chunk_.
  bool in_place_ = false;
  const std::byte* ring_ = nullptr;
  std::uint32_t lap_shift_ = 0;
  std::uint64_t alignment_ = 64;
  std::uint64_t capacity_ = 0;
  std::vector<std::byte> chunk_;
  std::vector<Run> runs_;
  std::uint64_t skip_below_ = 0;  // frames the log has already (a resume behind its end)
  bool force_new_run_ = false;    // the reader resumed past the log's end: a gap, not padding
  std::uint64_t seen_lost_bytes_ = 0;
  std::uint64_t durable_ = 0;
  std::uint64_t committed_ = 0;  // the reader's published position; never moves back
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
