// The counters of one forward link (a topic sent to one receiver), in the topic header's
// ForwardLink entries (layout/topic_layout.hpp), where describe, the monitor and
// Producer::wait_mirrored read them.
#pragma once

#include <cstdint>
#include <string>

#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

enum class LinkState : std::uint32_t {
  connecting = 1,
  streaming = 2,
  backing_off = 3,
  failing = 4,
  stopped = 5,
};

class ForwardCounters {
 public:
  // Takes the entry for `destination` (the one it had, or a free one, or one of a dead bridge's
  // stopped links). Errors: no_reader_slot (all 8 entries belong to live links).
  static Result<ForwardCounters> attach(const Topic& topic, const std::string& destination);
  void state(LinkState s) const;
  void sent(std::uint64_t position, std::uint64_t bytes) const;
  // Releases what the receiver holds: Producer::wait_mirrored() returns for offsets below it.
  void acked(std::uint64_t position, std::uint64_t messages) const;
  void reconnected() const;
  void failed(const std::string& message) const;
  void detach() const;  // state stopped, no pid; the acknowledged position stays

 private:
  ForwardCounters(Topic topic, std::size_t index) : topic_(std::move(topic)), index_(index) {}
  Topic topic_;
  std::size_t index_ = 0;
};

}  // namespace ringbus::bridge
