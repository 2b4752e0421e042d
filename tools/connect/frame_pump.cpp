// FramePump: frames from a topic to a sink, in runs. Frames read in place (a durable reader's,
// which stay in the ring until it commits past them) are handed over as ring bytes; frames the
// reader had to copy and check are rebuilt into a buffer (the slack after a message, never read,
// as zeros), padding from the gaps between frames, and a loss starts a new run that the sink
// sees as a gap.
#include "frame_pump.hpp"

#include <algorithm>
#include <cstring>

#include "layout/frame_layout.hpp"

namespace ringbus::connect {

std::uint64_t earliest_available(const Topic& topic) {
  const TopicSnapshot snap = topic.snapshot();
  std::uint64_t earliest = snap.earliest;
  if (snap.recorder && snap.recorder->recorded_position > snap.recorder->log_start) {
    earliest = std::min(earliest, snap.recorder->log_start);
  }
  return earliest;
}

FramePump::FramePump(const Topic& topic, PumpOptions options)
    : topic_(topic),
      options_(std::move(options)),
      lap_shift_(static_cast<std::uint32_t>(__builtin_ctzll(topic.config().capacity))),
      alignment_(topic.config().frame_alignment),
      capacity_(topic.config().capacity) {}

void FramePump::event(const std::string& line) const {
  if (options_.on_event) options_.on_event(line);
}

Result<void> FramePump::attach(const FrameSink& sink, std::optional<std::uint64_t> start) {
  reader_.reset();  // a persistent reader: detaching keeps its committed position
  runs_.clear();
  chunk_.clear();
  SubscriberOptions options;
  options.name = options_.reader_name;
  options.durability = options_.durability;
  options.manual_commit = true;
  // A new reader continues the sink (or starts at the ring's oldest frame); an existing one
  // resumes at what it committed, which is at most what the sink acknowledged.
  if (start) {
    options.start = StartFrom::at(*start);
  } else {
    const std::uint64_t earliest = topic_.snapshot().earliest;
    options.start = StartFrom::at(sink.empty() ? earliest : std::max(sink.end(), earliest));
  }
  auto reader = Subscriber::attach(topic_, options);
  if (!reader) {
    if (reader.error().code() == Errc::busy) {
      return Error(Errc::busy, "its reader '" + options_.reader_name +
                                   "' is attached by another process (another ringbus-bridge?)");
    }
    return reader.error();
  }
  reader_.emplace(std::move(*reader));
  seen_lost_bytes_ = 0;
  const std::uint64_t resume = reader_->position();
  committed_ = resume;
  skip_below_ = sink.empty() ? 0 : sink.end();
  force_new_run_ = !sink.empty() && resume > sink.end();
  if (force_new_run_) {
    event("the sink ends at offset " + std::to_string(sink.end()) + " but the topic continues at " +
          std::to_string(resume) +
          ": offsets in between are lost (overwritten while nothing read them, or lost from "
          "the sink past what it had acknowledged)");
  }
  return {};
}

void FramePump::detach() noexcept {
  reader_.reset();
  runs_.clear();
  chunk_.clear();
}

std::uint64_t FramePump::position() const noexcept {
  return reader_ ? reader_->position() : committed_;
}

std::uint64_t FramePump::next_sequence() const noexcept {
  return reader_ ? reader_->next_sequence() : 0;
}

Result<void> FramePump::wait(const Wait& wait) {
  if (!reader_) return Error(Errc::invalid_argument, "the pump is not attached");
  return reader_->wait(wait);
}

std::uint64_t FramePump::pending_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const Run& run : runs_) total += run.size;
  return total;
}

void FramePump::start_buffered_run(std::uint64_t start) {
  Run run;
  run.start = start;
  run.offset = chunk_.size();
  runs_.push_back(run);
}

void FramePump::append_padding(std::uint64_t from, std::uint64_t to) {
  const std::uint64_t most = (std::uint64_t{1} << 29) & ~(alignment_ - 1);
  while (from < to) {
    const std::uint64_t length = std::min(to - from, most);
    layout::FrameHeader h{};
    h.commit =
        layout::make_commit(layout::lap_of(from, lap_shift_), layout::FrameKind::kPadding, length);
    const std::size_t at = chunk_.size();
    chunk_.resize(at + length);
    std::memset(chunk_.data() + at, 0, length);
    std::memcpy(chunk_.data() + at, &h, sizeof h);
    runs_.back().size += length;
    from += length;
  }
}

void FramePump::on_frame(const RawFrame& frame, const FrameSink& sink) {
  const Message& m = frame.message;
  if (m.offset < skip_below_) return;  // the sink has it already
  // Bytes the reader skipped since the last message (lapped on an overwrite topic, or a producer
  // that died mid-claim): the next run starts after a gap.
  const bool lost = reader_->lost_bytes() != seen_lost_bytes_;
  if (lost) {
    event("lost " + std::to_string(reader_->lost_bytes() - seen_lost_bytes_) +
          " bytes before offset " + std::to_string(m.offset) + "; they are missing downstream");
    seen_lost_bytes_ = reader_->lost_bytes();
  }
  if (frame.held) {
    if (ring_ == nullptr) ring_ = frame.bytes.data() - (m.offset & (capacity_ - 1));
    on_held(frame, lost, sink);
  } else {
    on_copied(frame, lost, sink);
  }
}

void FramePump::on_held(const RawFrame& frame, bool lost, const FrameSink& sink) {
  const Message& m = frame.message;
  const std::uint64_t end =
      m.offset + layout::frame_stride(frame.bytes.size() - sizeof(layout::FrameHeader), alignment_);
  if (runs_.empty() || lost || !runs_.back().held) {
    // Continue the sink or the previous run, or start afresh after a loss. What lies between is
    // padding; it may precede the reader's registration tail (which a stale producer could still
    // overwrite), so it is rebuilt as padding of our own rather than taken from the ring.
    std::uint64_t gap_from = m.offset;
    if (!runs_.empty() && !lost) {
      gap_from = runs_.back().start + runs_.back().size;
    } else if (runs_.empty() && !sink.empty() && !force_new_run_ && !lost) {
      gap_from = sink.end();
    }
    if (gap_from < m.offset) {
      if (runs_.empty() || runs_.back().held) start_buffered_run(gap_from);
      append_padding(gap_from, m.offset);
    }
    Run run;
    run.start = m.offset;
    run.held = true;
    runs_.push_back(run);
  }
  Run& run = runs_.back();
  run.size = end - run.start;
  run.has_sequence = true;
  run.last_sequence = m.sequence;
  force_new_run_ = false;
}

void FramePump::on_copied(const RawFrame& frame, bool lost, const FrameSink& sink) {
  const Message& m = frame.message;
  const std::uint64_t expected =
      runs_.empty() ? sink.end() : runs_.back().start + runs_.back().size;
  const bool sinks_first = runs_.empty() && sink.empty();
  if (!sinks_first && m.offset > expected && !lost && !force_new_run_) {
    // Frames the reader skipped without losing them: padding (ring end, aborted claims).
    if (runs_.empty() || runs_.back().held) start_buffered_run(expected);
    append_padding(expected, m.offset);
  } else if (sinks_first || m.offset != expected || runs_.empty() || runs_.back().held) {
    // The sink's first frame, the first after a gap, or the first of this chunk.
    start_buffered_run(m.offset);
  }
  force_new_run_ = false;
  const std::uint64_t stride =
      layout::frame_stride(frame.bytes.size() - sizeof(layout::FrameHeader), alignment_);
  const std::size_t at = chunk_.size();
  chunk_.resize(at + stride);
  std::byte* p = chunk_.data() + at;
  std::memcpy(p, frame.bytes.data(), frame.bytes.size());
  // The copy was checked word by word against the frame's commit word; write it as read.
  const std::uint64_t length = m.key.size() + m.value.size();
  const std::uint64_t word =
      layout::make_commit(layout::lap_of(m.offset, lap_shift_), layout::FrameKind::kData, length);
  std::memcpy(p, &word, sizeof word);
  std::memset(p + frame.bytes.size(), 0, stride - frame.bytes.size());
  Run& run = runs_.back();
  run.size += stride;
  run.has_sequence = true;
  run.last_sequence = m.sequence;
}

Result<std::size_t> FramePump::read(const FrameSink& sink, int rounds) {
  if (!reader_) return Error(Errc::invalid_argument, "the pump is not attached");
  std::size_t total = 0;
  for (int round = 0; round < rounds; ++round) {
    auto polled =
        reader_->poll_frames([&](const RawFrame& f) { on_frame(f, sink); }, options_.poll_messages);
    if (!polled) return polled.error();
    total += polled->messages;
    const std::uint64_t pending = pending_bytes();
    if (polled->messages < options_.poll_messages || pending >= options_.chunk_bytes ||
        pending >= sink.room()) {
      break;
    }
  }
  return total;
}

Result<void> FramePump::flush(FrameSink& sink) {
  std::size_t done = 0;
  Result<void> outcome;
  for (; done < runs_.size(); ++done) {
    Run& run = runs_[done];
    if (!sink.empty() && run.start < sink.end() && run.start + run.size > sink.end()) {
      // A run split across sink boundaries was partly taken before an error: continue after it.
      const std::uint64_t taken = sink.end() - run.start;
      run.start += taken;
      run.size -= taken;
      if (!run.held) run.offset += taken;
    }
    if (run.size == 0) continue;
    if (!sink.empty() && run.start < sink.end()) {  // cannot happen; never a duplicate offset
      outcome = Error(Errc::invalid_argument, "a run at offset " + std::to_string(run.start) +
                                                  " is behind the sink's end " +
                                                  std::to_string(sink.end()));
      break;
    }
    const std::uint64_t end_before = sink.end();
    const bool was_empty = sink.empty();
    ConstBytes pieces[2];
    std::size_t count = 1;
    if (run.held) {
      // Straight from the ring: the frames stay there until the reader commits past them.
      const std::uint64_t index = run.start & (capacity_ - 1);
      const std::uint64_t first = std::min<std::uint64_t>(run.size, capacity_ - index);
      pieces[0] = ConstBytes(ring_ + index, first);
      pieces[1] = ConstBytes(ring_, run.size - first);
      count = 2;
    } else {
      pieces[0] = ConstBytes(chunk_.data() + run.offset, run.size);
    }
    FrameRun frames;
    frames.start = run.start;
    frames.size = run.size;
    frames.pieces = std::span<const ConstBytes>(pieces, count);
    frames.in_ring = run.held;
    frames.last_sequence = run.has_sequence ? &run.last_sequence : nullptr;
    if (auto ok = sink.append(frames); !ok) {
      outcome = ok.error();
      if (!was_empty && sink.end() < end_before) {
        // The sink lost frames it had taken (a failed sync): read them again.
        event("the sink was cut back to offset " + std::to_string(sink.end()) +
              "; reading again from offset " + std::to_string(committed_));
        if (auto again = attach(sink); !again) return again.error();
        return outcome;
      }
      break;
    }
  }
  if (done == runs_.size()) {
    chunk_.clear();
    runs_.clear();
    return outcome;
  }
  // Keep the runs not taken yet, for the retry.
  if (done > 0) {
    runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(done));
    std::size_t from = chunk_.size();
    for (const Run& run : runs_) {
      if (!run.held) from = std::min(from, run.offset);
    }
    chunk_.erase(chunk_.begin(), chunk_.begin() + static_cast<std::ptrdiff_t>(from));
    for (Run& run : runs_) {
      if (!run.held) run.offset -= from;
    }
  }
  return outcome;
}

void FramePump::acknowledge(std::uint64_t position, std::uint64_t next_sequence) noexcept {
  // Never below where the reader started (an empty sink's end, 0, is no position in the ring),
  // never past what it read.
  if (!reader_ || position <= committed_ || position > reader_->position()) return;
  reader_->commit_position(position, next_sequence);
  committed_ = position;
}

}  // namespace ringbus::connect
