// The frame pump: the part every connector shares. A persistent, manually committed reader of one
// topic gathers runs of whole frames (read in place from the ring when it can, rebuilt from
// checked copies otherwise, padding rebuilt from the gaps between frames) and hands them to a
// FrameSink; the connector commits the reader only up to what the sink acknowledged as safe, so
// a restart resumes there and, under `block`, producers never overwrite what the sink may still
// need.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "frame_sink.hpp"
#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::connect {

struct PumpOptions {
  std::string reader_name;  // the persistent reader's name in the topic
  Durability durability = Durability::durable;
  std::uint64_t chunk_bytes =
      std::uint64_t{256} * 1024;  // hand runs over once this much is gathered
  std::size_t poll_messages = 256;
  // Called with one line for each event an operator should see (losses, gaps).
  std::function<void(const std::string&)> on_event;
};

// The oldest offset a new connector can start from: the disk log's start if the topic is
// recorded (by any bridge), else the ring's oldest frame.
std::uint64_t earliest_available(const Topic& topic);

class FramePump {
 public:
  FramePump(const Topic& topic, PumpOptions options);

  // (Re)attaches the reader: a persistent reader resumes at its committed position, a new one
  // starts at `start` (default: the sink's end, or the ring's oldest frame). Frames below the
  // sink's end are skipped. Pending runs are dropped. Errors: busy (another process holds the
  // reader name), and those of Subscriber::attach.
  Result<void> attach(const FrameSink& sink, std::optional<std::uint64_t> start = std::nullopt);
  // Drops the reader (a persistent one keeps its committed position).
  void detach() noexcept;
  bool attached() const noexcept { return reader_.has_value(); }

  // Reads up to `rounds` polls' worth of frames into runs, stopping once chunk_bytes or the
  // sink's room() is gathered. Returns the number of messages read. Errors: corrupt.
  Result<std::size_t> read(const FrameSink& sink, int rounds = 64);
  // Hands the pending runs to the sink, in order. On an error the rest stays pending. If the
  // sink's end moved back, the pump re-attaches at its committed position (and says so).
  Result<void> flush(FrameSink& sink);
  bool pending() const noexcept { return !runs_.empty(); }
  // Waits until the reader has something to read (Subscriber::wait). Errors: timed_out.
  Result<void> wait(const Wait& wait);
  std::uint64_t pending_bytes() const noexcept;

  // The sink made everything before `position` safe; the next message there has sequence number
  // `next_sequence`. Commits the reader there (never backwards, never past what it read).
  void acknowledge(std::uint64_t position, std::uint64_t next_sequence) noexcept;
  std::uint64_t committed() const noexcept { return committed_; }
  // Where the reader is (the next offset it reads), and the next message's sequence number.
  std::uint64_t position() const noexcept;
  std::uint64_t next_sequence() const noexcept;
  const Topic& topic() const noexcept { return topic_; }

 private:
  struct Run {  // frames that continue the stream at `start`
    std::uint64_t start = 0;
    std::size_t offset = 0;  // in chunk_ (held: unused)
    std::size_t size = 0;
    bool has_sequence = false;
    std::uint64_t last_sequence = 0;
    bool held = false;  // the bytes are the ring's [start, start + size), held for us
  };
  void event(const std::string& line) const;
  void on_frame(const RawFrame& frame, const FrameSink& sink);
  void on_held(const RawFrame& frame, bool lost, const FrameSink& sink);
  void on_copied(const RawFrame& frame, bool lost, const FrameSink& sink);
  void append_padding(std::uint64_t from, std::uint64_t to);
  void start_buffered_run(std::uint64_t start);

  Topic topic_;
  PumpOptions options_;
  std::optional<Subscriber> reader_;
  std::uint32_t lap_shift_ = 0;
  std::uint64_t alignment_ = 64;
  std::uint64_t capacity_ = 0;
  const std::byte* ring_ = nullptr;  // found from the first frame read in place
  std::vector<std::byte> chunk_;
  std::vector<Run> runs_;
  std::uint64_t skip_below_ = 0;  // frames the sink has already (a resume behind its end)
  bool force_new_run_ = false;    // the reader resumed past the sink's end: a gap, not padding
  std::uint64_t seen_lost_bytes_ = 0;
  std::uint64_t committed_ = 0;  // the reader's published position; never moves back
};

}  // namespace ringbus::connect
