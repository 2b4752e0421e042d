// Publishing a recorder's state in its topic's header (RecorderCounters, topic_layout.hpp), where
// `ringbus topic describe` and ringbus-monitor read it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "ringbus/topic.hpp"

namespace ringbus::bridge {

struct RecorderFigures {
  std::uint64_t recorded_position = 0;
  std::uint64_t durable_messages = 0;  // messages before durable_position
  std::uint64_t recorded_messages = 0;
  std::uint64_t durable_position = 0;
  std::uint64_t log_start = 0;
  std::uint64_t segments = 0;
  std::uint64_t log_bytes = 0;
};

class RecorderCounters {
 public:
  explicit RecorderCounters(Topic topic) : topic_(std::move(topic)) {}
  // Claims the counters for this process and names the log directory.
  void attach(const std::string& log_dir) const;
  void publish(const RecorderFigures& figures) const;
  // Counts a failure and keeps its message (state: failing until recovered()).
  void failed(const std::string& message) const;
  // The bridge cannot start recording (its log cannot be opened): this process is the
  // recorder, failing, and retrying.
  void failed_to_start(const std::string& log_dir, const std::string& message) const;
  void recovered() const;
  // The bridge stopped recording this topic (figures stay for the tools).
  void detach() const;

 private:
  Topic topic_;
};

}  // namespace ringbus::bridge
