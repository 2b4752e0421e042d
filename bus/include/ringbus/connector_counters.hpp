// The counters a connector publishes in its topic's header: a disk-log recorder's positions and a
// forward link's state, where `ringbus topic describe`, ringbus-monitor, Topic::snapshot() and the
// producer acks (Producer::wait_durable, wait_mirrored) read them. For ringbus-bridge and other
// processes that record or forward a topic; applications only read them (RecorderInfo,
// ForwardInfo in ringbus/topic.hpp). Each figure is a plain store that readers take one by one.
// Thread safety: one thread per RecorderCounters or ForwardCounters.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "ringbus/export.hpp"
#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"

namespace ringbus {

struct RecorderFigures {
  std::uint64_t recorded_position = 0;  // stream bytes written to segment files
  std::uint64_t durable_messages = 0;   // messages before durable_position
  std::uint64_t recorded_messages = 0;
  std::uint64_t durable_position = 0;  // bytes fsynced: Producer::wait_durable returns below it
  std::uint64_t log_start = 0;         // oldest offset still in the log
  std::uint64_t segments = 0;
  std::uint64_t log_bytes = 0;
};

// The recorder of a topic's disk log (one per topic; the header names its process).
class RINGBUS_API RecorderCounters {
 public:
  explicit RecorderCounters(Topic topic) : topic_(std::move(topic)) {}
  // Claims the counters for this process and names the log directory (state: recording).
  void attach(const std::string& log_dir) const;
  // Publishes the figures; recorded_position last, so a reader that sees it sees the bytes
  // below it in the segment files.
  void publish(const RecorderFigures& figures) const;
  // Counts a failure and keeps its message (state: failing until recovered()).
  void failed(const std::string& message) const;
  // Recording cannot start (its log cannot be opened): this process is the recorder, failing,
  // and retrying.
  void failed_to_start(const std::string& log_dir, const std::string& message) const;
  void recovered() const;
  // Recording stopped (state: stopped, no process); the figures stay for the tools.
  void detach() const;

 private:
  Topic topic_;
};

enum class LinkState : std::uint32_t {
  connecting = 1,
  streaming = 2,
  backing_off = 3,
  failing = 4,
  stopped = 5,
};

// One forward link: a topic sent to one receiver ("HOST:PORT"). A topic has 8 link entries.
class RINGBUS_API ForwardCounters {
 public:
  // Takes the entry for `destination` (the one it had, a free one, or one of a dead process's
  // links). Errors: no_reader_slot (all 8 entries belong to live links).
  static Result<ForwardCounters> attach(const Topic& topic, const std::string& destination);
  void state(LinkState s) const;
  void sent(std::uint64_t position, std::uint64_t bytes) const;
  // What the receiver holds: Producer::wait_mirrored() returns for offsets below it.
  void acked(std::uint64_t position, std::uint64_t messages) const;
  void reconnected() const;
  // Counts a failure (or a loss worth an operator's eye) and keeps its message.
  void failed(const std::string& message) const;
  void detach() const;  // state stopped, no process; the acknowledged position stays

 private:
  ForwardCounters(Topic topic, std::size_t index) : topic_(std::move(topic)), index_(index) {}
  Topic topic_;
  std::size_t index_ = 0;
};

}  // namespace ringbus
