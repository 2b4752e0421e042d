// TopicRecorder: frames from the ring to the disk log, rebuilt from each message (the slack
// bytes after a message, never read, are written as zeros), padding rebuilt from the gaps
// between frames, losses (an overwrite topic lapping the recorder) as new segments.
#include "recorder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "event_log.hpp"
#include "layout/frame_layout.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus::bridge {

namespace {

constexpr std::size_t kPollMessages = 256;
constexpr std::size_t kChunkBytes = 256 * 1024;  // gather this much per write when busy
constexpr auto kHousekeeping = std::chrono::seconds(1);

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace

Result<std::unique_ptr<TopicRecorder>> TopicRecorder::start(const Topic& topic,
                                                            const BridgeConfig& config) {
  const TopicConfig& tc = topic.config();
  const std::string dir = config.log_dir + "/" + topic.name();
  auto prior = read_log_state(dir);
  if (prior) {
    if (prior->config.frame_alignment != tc.frame_alignment ||
        prior->config.max_message > tc.max_message) {
      return Error(Errc::incompatible,
                   "the log in " + dir + " was recorded with frame alignment " +
                       std::to_string(prior->config.frame_alignment) + " and max message " +
                       std::to_string(prior->config.max_message) + ", but the topic now has " +
                       std::to_string(tc.frame_alignment) + " and " +
                       std::to_string(tc.max_message) + "; move the old log away");
    }
  } else if (prior.error().code() != Errc::not_found) {
    return prior.error();
  }
  TopicLogOptions log_options{config.segment_bytes, tc.max_message, tc.frame_alignment,
                              config.fsync != FsyncPolicy::never};
  if (prior) log_options.durable_hint = prior->durable_position;
  auto log = TopicLog::open(dir, log_options);
  if (!log) return log.error();
  if (!log->recovery().empty()) log_event(topic.name(), "log recovery: " + log->recovery());

  const TopicSnapshot snap = topic.snapshot();
  if (!log->empty() && snap.tail < log->end()) {
    return Error(Errc::incompatible,
                 "topic ends at offset " + std::to_string(snap.tail) + " but its log in " + dir +
                     " holds offsets up to " + std::to_string(log->end()) +
                     ": the topic was re-created without its log. Remove the topic to let the "
                     "bridge restore it from the log, or move the log away");
  }
  std::unique_ptr<TopicRecorder> r(new TopicRecorder(topic, config, std::move(*log)));
  if (auto ok = r->attach_reader(); !ok) return ok.error();
  if (prior) r->state_ = std::move(*prior);
  r->state_.topic = topic.name();
  r->state_.config = tc;
  r->counters_.attach(dir);
  r->publish_counters();
  const std::uint64_t resume = r->reader_->position();
  const std::uint64_t end = r->log_.end();
  log_event(topic.name(), "recording from offset " + std::to_string(std::max(resume, end)) +
                              " into " + dir + " (log holds [" + std::to_string(r->log_.start()) +
                              ", " + std::to_string(end) + "), " +
                              std::to_string(r->log_.segment_count()) + " segments)");
  return r;
}

Result<void> TopicRecorder::attach_reader() {
  reader_.reset();  // a persistent reader: detaching keeps its committed position
  runs_.clear();
  chunk_.clear();
  const TopicSnapshot snap = topic_.snapshot();
  SubscriberOptions options;
  options.name = config_.reader_name;
  options.durability = Durability::durable;
  options.manual_commit = true;
  // A new reader continues the log (or starts at the ring's oldest frame); an existing one
  // resumes at what it committed, which is at most the log's synced end.
  std::uint64_t start = snap.earliest;
  if (!log_.empty()) start = std::max(log_.end(), snap.earliest);
  options.start = StartFrom::at(start);
  auto reader = Subscriber::attach(topic_, options);
  if (!reader) {
    if (reader.error().code() == Errc::busy) {
      return Error(Errc::busy, "already recorded by another ringbus-bridge (its reader '" +
                                   config_.reader_name + "' is attached)");
    }
    return reader.error();
  }
  reader_.emplace(std::move(*reader));
  in_place_ = reader_->durable();
  seen_lost_bytes_ = 0;
  const std::uint64_t resume = reader_->position();
  committed_ = resume;
  const std::uint64_t end = log_.end();
  skip_below_ = log_.empty() ? 0 : end;
  // Durable is what a sync covered (TopicLog::open synced what an earlier writer left).
  durable_ = log_.synced_end();
  synced_at_end_ = durable_;
  std::uint64_t sequence = 0;
  durable_messages_ = log_.end_sequence(sequence) ? sequence : reader_->next_sequence();
  force_new_run_ = !log_.empty() && resume > end;
  if (force_new_run_) {
    log_event(topic_.name(), "the log ends at offset " + std::to_string(end) +
                                 " but the ring continues at " + std::to_string(resume) +
                                 ": offsets in between are lost (overwritten while no bridge "
                                 "recorded, or lost from disk past the durable position)");
  }
  return {};
}

TopicRecorder::TopicRecorder(const Topic& topic, const BridgeConfig& config, TopicLog log)
    : topic_(topic),
      config_(config),
      log_(std::move(log)),
      counters_(topic),
      ring_(topic.mapping().ring()),
      lap_shift_(topic.mapping().lap_shift()),
      alignment_(topic.config().frame_alignment),
      capacity_(topic.config().capacity),
      topic_inode_(inode_of(topic.path())) {
  synced_at_end_ = log_.end();
}

TopicRecorder::~TopicRecorder() = default;

bool TopicRecorder::topic_gone() const { return inode_of(topic_.path()) != topic_inode_; }

void TopicRecorder::append_padding(std::uint64_t from, std::uint64_t to) {
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

void TopicRecorder::on_message_in_place(const Message& m, bool lost) {
  const std::uint64_t end =
      m.offset + layout::frame_stride(m.key.size() + m.value.size(), alignment_);
  if (runs_.empty() || lost || !runs_.back().in_ring) {
    // Continue the log or the previous run, or start afresh after a loss. What lies between
    // is padding; it may precede the reader's registration tail (which a stale producer could
    // still overwrite), so it is written as padding of our own rather than from the ring.
    std::uint64_t gap_from = m.offset;
    if (!runs_.empty() && !lost) {
      gap_from = runs_.back().start + runs_.back().size;
    } else if (runs_.empty() && !log_.empty() && !force_new_run_ && !lost) {
      gap_from = log_.end();
    }
    if (gap_from < m.offset) {
      if (runs_.empty() || runs_.back().in_ring) {
        Run padding;
        padding.start = gap_from;
        padding.offset = chunk_.size();
        runs_.push_back(padding);
      }
      append_padding(gap_from, m.offset);
    }
    Run run;
    run.start = m.offset;
    run.in_ring = true;
    runs_.push_back(run);
  }
  Run& run = runs_.back();
  run.size = end - run.start;
  run.has_sequence = true;
  run.last_sequence = m.sequence;
  force_new_run_ = false;
}

std::uint64_t TopicRecorder::pending_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const Run& run : runs_) total += run.size;
  return total;
}

void TopicRecorder::on_message(const Message& m) {
  if (m.offset < skip_below_) return;  // the log has it already
  // Bytes the reader skipped since the last message (lapped on an overwrite topic, or a
  // producer that died mid-claim): the next run starts a new segment.
  const bool lost = reader_->lost_bytes() != seen_lost_bytes_;
  if (lost) {
    log_event(topic_.name(), "the recorder lost " +
                                 std::to_string(reader_->lost_bytes() - seen_lost_bytes_) +
                                 " bytes before offset " + std::to_string(m.offset) +
                                 "; they are missing from the log");
    seen_lost_bytes_ = reader_->lost_bytes();
  }
  // The reader hands out a view into the ring when it read in place, else into its checked copy.
  const auto* value = m.value.data();
  if (in_place_ && value >= ring_ && value < ring_ + capacity_) {
    on_message_in_place(m, lost);
  } else {
    on_message_copied(m, lost);
  }
}

void TopicRecorder::on_message_copied(const Message& m, bool lost) {
  const std::uint64_t expected =
      runs_.empty() ? log_.end() : runs_.back().start + runs_.back().size;
  auto buffer_run = [&](std::uint64_t start) {
    Run run;
    run.start = start;
    run.offset = chunk_.size();
    runs_.push_back(run);
  };
  if (runs_.empty() && log_.empty()) {
    buffer_run(m.offset);  // the log's first frame
  } else if (m.offset > expected && !lost && !force_new_run_) {
    // Frames the reader skipped without losing them: padding (ring end, aborted claims).
    if (runs_.empty() || runs_.back().in_ring) buffer_run(expected);
    append_padding(expected, m.offset);
  } else if (m.offset != expected || runs_.empty() || runs_.back().in_ring) {
    buffer_run(m.offset);  // after a gap (a new segment), or the first frame of this chunk
  }
  force_new_run_ = false;
  const std::uint64_t length = m.key.size() + m.value.size();
  const std::uint64_t stride = layout::frame_stride(length, alignment_);
  layout::FrameHeader h{};
  h.commit =
      layout::make_commit(layout::lap_of(m.offset, lap_shift_), layout::FrameKind::kData, length);
  h.sequence = m.sequence;
  h.timestamp_ns = m.timestamp_ns;
  h.key_length = static_cast<std::uint32_t>(m.key.size());
  const std::size_t at = chunk_.size();
  chunk_.resize(at + stride);
  std::byte* p = chunk_.data() + at;
  std::memcpy(p, &h, sizeof h);
  if (!m.key.empty()) std::memcpy(p + sizeof h, m.key.data(), m.key.size());
  if (!m.value.empty()) std::memcpy(p + sizeof h + m.key.size(), m.value.data(), m.value.size());
  std::memset(p + sizeof h + length, 0, stride - sizeof h - length);
  Run& run = runs_.back();
  run.size += stride;
  run.has_sequence = true;
  run.last_sequence = m.sequence;
}

bool TopicRecorder::flush_chunk(Clock::time_point now) {
  std::size_t done = 0;
  for (; done < runs_.size(); ++done) {
    Run& run = runs_[done];
    if (run.start < log_.end() && run.start + run.size > log_.end()) {
      // A chunk split across segments was partly written before an error: the log holds
      // those frames, continue after them.
      const std::uint64_t written = log_.end() - run.start;
      run.start += written;
      run.size -= written;
      if (!run.in_ring) run.offset += written;
    }
    if (run.size == 0) continue;
    if (run.start < log_.end()) {  // cannot happen; never write a duplicate offset
      fail("chunk at offset " + std::to_string(run.start) + " is behind the log's end " +
               std::to_string(log_.end()),
           now);
      break;
    }
    const std::uint64_t end_before = log_.end();
    Result<void> ok;
    if (run.in_ring) {
      // Straight from the ring: the frames stay there until we commit past them.
      const std::uint64_t index = run.start & (capacity_ - 1);
      const std::uint64_t first = std::min<std::uint64_t>(run.size, capacity_ - index);
      const ConstBytes pieces[2] = {ConstBytes(ring_ + index, first),
                                    ConstBytes(ring_, run.size - first)};
      ok = log_.append(run.start, std::span<const ConstBytes>(pieces, 2),
                       run.has_sequence ? &run.last_sequence : nullptr);
    } else {
      ok = log_.append(run.start, chunk_.data() + run.offset, run.size,
                       run.has_sequence ? &run.last_sequence : nullptr);
    }
    if (!ok) {
      fail(ok.error().message(), now);
      if (log_.end() < end_before) {  // a failed sync at a roll cut the log back
        reread_from_ring(now);
        return false;
      }
      break;
    }
  }
  if (done == runs_.size()) {
    chunk_.clear();
    runs_.clear();
    if (failing_) {
      failing_ = false;
      counters_.recovered();
      log_event(topic_.name(),
                "recording again; the log ends at offset " + std::to_string(log_.end()));
    }
    publish_counters();
    return true;
  }
  // Keep the runs not written yet, for the retry.
  if (done > 0) {
    runs_.erase(runs_.begin(), runs_.begin() + static_cast<std::ptrdiff_t>(done));
    std::size_t from = chunk_.size();
    for (const Run& run : runs_) {
      if (!run.in_ring) from = std::min(from, run.offset);
    }
    chunk_.erase(chunk_.begin(), chunk_.begin() + static_cast<std::ptrdiff_t>(from));
    for (Run& run : runs_) {
      if (!run.in_ring) run.offset -= from;
    }
    publish_counters();
  }
  return false;
}

void TopicRecorder::fail(const std::string& message, Clock::time_point now) {
  counters_.failed(message);
  if (!failing_) log_event(topic_.name(), "error: " + message + " (retrying)");
  failing_ = true;
  retry_at_ = now + config_.retry_interval;
}

Result<void> TopicRecorder::write_state(bool sync_file) {
  state_.durable_position = durable_;
  state_.durable_messages = durable_messages_;
  state_.log_start = log_.start();
  return write_log_state(log_.directory(), state_, sync_file);
}

bool TopicRecorder::sync(Clock::time_point now) {
  const bool fsync = config_.fsync != FsyncPolicy::never;
  if (fsync) {
    const std::uint64_t end_before = log_.end();
    if (auto ok = log_.sync(); !ok) {
      fail(ok.error().message(), now);
      if (log_.end() < end_before) reread_from_ring(now);
      return false;
    }
  }
  // Only what a successful sync covered (under `never`: what was written).
  durable_ = log_.synced_end();
  std::uint64_t sequence = 0;
  if (log_.end_sequence(sequence)) durable_messages_ = sequence;
  // state.json follows once a second (housekeeping) and at stop: the log is the authority, the
  // state's copy of the durable position is for operators and a check at recovery.
  // Producers may now overwrite what is durable (never: what reached the page cache).
  // Never below where the reader started: an empty log's end (0) is no position in the ring.
  if (durable_ > committed_ && durable_ <= reader_->position()) {
    reader_->commit_position(durable_, durable_messages_);
    committed_ = durable_;
  }
  synced_at_end_ = durable_;
  last_sync_ = now;
  publish_counters();
  return true;
}

void TopicRecorder::refresh_groups() {
  std::vector<GroupPosition> groups;
  for (const ReaderInfo& r : topic_.snapshot().readers) {
    if (r.kind == "group") groups.push_back(GroupPosition{r.group, r.position, r.messages});
  }
  state_.groups = std::move(groups);
}

void TopicRecorder::publish_counters() {
  RecorderFigures f;
  f.recorded_position = log_.end();
  std::uint64_t sequence = 0;
  f.recorded_messages = log_.end_sequence(sequence) ? sequence : durable_messages_;
  f.durable_position = durable_;
  f.log_start = log_.start();
  f.segments = log_.segment_count();
  f.log_bytes = log_.bytes();
  counters_.publish(f);
}

void TopicRecorder::reread_from_ring(Clock::time_point now) {
  // The log dropped its unsynced tail, which the kernel may have lost after the failed sync.
  // The reader committed only what was durable, so under `block` the ring still holds the
  // rest for it: attach again at the committed position and write it again. Under
  // `overwrite` what the ring no longer holds is reported as a loss, as any lap.
  log_event(topic_.name(), "the log was cut back to offset " + std::to_string(log_.end()) +
                               " after a failed sync; reading again from offset " +
                               std::to_string(committed_) + " in the ring");
  if (auto ok = attach_reader(); !ok) fail(ok.error().message(), now);
}

bool TopicRecorder::step(Clock::time_point now) {
  if (failing_ && now < retry_at_) return false;
  if (!reader_) {
    if (auto ok = attach_reader(); !ok) {
      fail(ok.error().message(), now);
      return false;
    }
  }
  bool recorded = false;
  if (!runs_.empty() && !flush_chunk(now)) return false;
  for (int round = 0; round < 64; ++round) {
    auto polled = reader_->poll([this](const Message& m) { on_message(m); }, kPollMessages);
    if (!polled) {
      fail(polled.error().message(), now);
      break;
    }
    recorded = recorded || polled->messages > 0;
    const std::uint64_t pending = pending_bytes();
    if (polled->messages < kPollMessages || pending >= kChunkBytes || pending >= log_.room()) {
      break;
    }
  }
  if (!runs_.empty() && !flush_chunk(now)) return recorded;

  const std::uint64_t unsynced = log_.end() - synced_at_end_;
  bool due = false;
  if (unsynced > 0) {
    const auto since = now - last_sync_;
    switch (config_.fsync) {
      case FsyncPolicy::never: due = true; break;
      case FsyncPolicy::interval:
        due = since >= config_.fsync_interval || unsynced >= capacity_ / 2;
        break;
      case FsyncPolicy::bytes:
        due = unsynced >= config_.fsync_bytes || unsynced >= capacity_ / 2 ||
              since >= std::chrono::seconds(1);
        break;
    }
  }
  if (due) sync(now);

  if (now - last_housekeeping_ >= kHousekeeping) {
    last_housekeeping_ = now;
    const auto removed = log_.apply_retention(config_.retention_bytes, config_.retention_age);
    if (removed.vanished > 0) {
      log_event(topic_.name(), std::to_string(removed.vanished) +
                                   " oldest segment(s) were deleted by hand; the log now starts "
                                   "at " + std::to_string(log_.start()));
    }
    if (removed.segments > 0) {
      log_event(topic_.name(), "retention removed " + std::to_string(removed.segments) +
                                   " segment(s), offsets [" + std::to_string(removed.from) + ", " +
                                   std::to_string(removed.to) + "), " +
                                   std::to_string(removed.bytes) +
                                   " bytes; the log now starts at " +
                                   std::to_string(log_.start()));
    }
    if (auto ok = log_.check_active(); !ok) fail(ok.error().message(), now);
    refresh_groups();
    if (auto ok = write_state(config_.fsync != FsyncPolicy::never); !ok) {
      fail(ok.error().message(), now);
    }
    publish_counters();
  }
  return recorded;
}

void TopicRecorder::stop() {
  const auto now = Clock::now();
  if (!reader_) {
    counters_.detach();
    log_event(name(), "stopped; the log holds [" + std::to_string(log_.start()) + ", " +
                          std::to_string(log_.end()) + "), durable up to " +
                          std::to_string(durable_));
    return;
  }
  // Read what is left, so a clean stop leaves nothing behind in the ring.
  for (int round = 0; round < 64 && !failing_; ++round) {
    auto polled = reader_->poll([this](const Message& m) { on_message(m); }, kPollMessages);
    if (!polled || polled->messages == 0) break;
  }
  if (!runs_.empty()) flush_chunk(now);
  if (!failing_ || log_.end() > synced_at_end_) sync(now);
  refresh_groups();
  if (auto ok = write_state(true); !ok) log_event(name(), "error: " + ok.error().message());
  counters_.detach();
  log_event(name(), "stopped; the log holds [" + std::to_string(log_.start()) + ", " +
                        std::to_string(log_.end()) + "), durable up to " +
                        std::to_string(durable_));
  reader_.reset();
}

}  // namespace ringbus::bridge
