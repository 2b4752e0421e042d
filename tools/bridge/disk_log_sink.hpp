// The disk log as a sink of the frame pump: runs of frames are appended to the topic's log
// segments at their stream offsets (the recorder syncs them by policy).
#pragma once

#include "frame_sink.hpp"
#include "topic_log.hpp"

namespace ringbus::bridge {

class DiskLogSink final : public connect::FrameSink {
 public:
  explicit DiskLogSink(TopicLog& log) : log_(&log) {}
  bool empty() const override { return log_->empty(); }
  std::uint64_t end() const override { return log_->end(); }
  std::uint64_t room() const override { return log_->room(); }
  Result<void> append(const connect::FrameRun& run) override {
    return log_->append(run.start, run.pieces, run.last_sequence);
  }

 private:
  TopicLog* log_;
};

}  // namespace ringbus::bridge
