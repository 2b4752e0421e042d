// TopicRecorder: the frame pump into the disk log (DiskLogSink), plus what is the disk's own:
// syncs by policy, commits only what a sync covered, retention, state.json and counters.
#include "recorder.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "event_log.hpp"

namespace ringbus::bridge {

namespace {

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
  log_options.file_mode = log_file_mode(tc.mode);
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
  const std::uint64_t resume = r->pump_.position();
  const std::uint64_t end = r->log_.end();
  log_event(topic.name(), "recording from offset " + std::to_string(std::max(resume, end)) +
                              " into " + dir + " (log holds [" + std::to_string(r->log_.start()) +
                              ", " + std::to_string(end) + "), " +
                              std::to_string(r->log_.segment_count()) + " segments)");
  return r;
}

Result<void> TopicRecorder::attach_reader() {
  if (auto ok = pump_.attach(sink_); !ok) {
    if (ok.error().code() == Errc::busy) {
      return Error(Errc::busy, "already recorded by another ringbus-bridge (its reader '" +
                                   config_.reader_name + "' is attached)");
    }
    return ok.error();
  }
  // Durable is what a sync covered (TopicLog::open synced what an earlier writer left).
  durable_ = log_.synced_end();
  synced_at_end_ = durable_;
  std::uint64_t sequence = 0;
  durable_messages_ = log_.end_sequence(sequence) ? sequence : pump_.next_sequence();
  return {};
}

TopicRecorder::TopicRecorder(const Topic& topic, const BridgeConfig& config, TopicLog log)
    : topic_(topic),
      config_(config),
      log_(std::move(log)),
      sink_(log_),
      pump_(topic,
            connect::PumpOptions{
                config.reader_name, Durability::durable, std::uint64_t{256} * 1024, 256,
                [name = topic.name()](const std::string& line) { log_event(name, line); }}),
      counters_(topic),
      topic_inode_(inode_of(topic.path())) {
  synced_at_end_ = log_.end();
}

TopicRecorder::~TopicRecorder() = default;

bool TopicRecorder::topic_gone() const { return inode_of(topic_.path()) != topic_inode_; }

bool TopicRecorder::flush_chunk(Clock::time_point now) {
  const std::uint64_t end_before = log_.end();
  auto ok = pump_.flush(sink_);
  if (!ok) {
    fail(ok.error().message(), now);
    // A failed sync at a roll cut the log back: the pump reads it again from the ring.
    if (log_.end() < end_before) reread_from_ring(now);
    if (pump_.pending()) publish_counters();
    return false;
  }
  if (failing_) {
    failing_ = false;
    counters_.recovered();
    log_event(topic_.name(),
              "recording again; the log ends at offset " + std::to_string(log_.end()));
  }
  publish_counters();
  return true;
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
  return write_log_state(log_.directory(), state_, sync_file, log_file_mode(topic_.config().mode));
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
  pump_.acknowledge(durable_, durable_messages_);
  synced_at_end_ = durable_;
  last_sync_ = now;
  publish_counters();
  return true;
}

void TopicRecorder::refresh_positions() {
  const TopicSnapshot snap = topic_.snapshot();
  std::vector<GroupPosition> groups;
  for (const ReaderInfo& r : snap.readers) {
    if (r.kind == "group") groups.push_back(GroupPosition{r.group, r.position, r.messages});
  }
  state_.groups = std::move(groups);
  // Forward links (any bridge's) as operators last could see them.
  std::vector<ForwardPosition> forwards;
  for (const ForwardInfo& f : snap.forwards) {
    forwards.push_back(ForwardPosition{f.destination, f.acked_position, f.acked_messages,
                                       f.reconnects, f.last_error});
  }
  state_.forwards = std::move(forwards);
}

void TopicRecorder::publish_counters() {
  RecorderFigures f;
  f.recorded_position = log_.end();
  std::uint64_t sequence = 0;
  f.recorded_messages = log_.end_sequence(sequence) ? sequence : durable_messages_;
  f.durable_position = durable_;
  f.durable_messages = durable_messages_;
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
                               std::to_string(pump_.committed()) + " in the ring");
  if (auto ok = attach_reader(); !ok) fail(ok.error().message(), now);
}

bool TopicRecorder::step(Clock::time_point now) {
  if (failing_ && now < retry_at_) return false;
  if (!pump_.attached()) {
    if (auto ok = attach_reader(); !ok) {
      fail(ok.error().message(), now);
      return false;
    }
  }
  bool recorded = false;
  if (pump_.pending() && !flush_chunk(now)) return false;
  if (auto read = pump_.read(sink_); !read) {
    fail(read.error().message(), now);
  } else {
    recorded = *read > 0;
  }
  if (pump_.pending() && !flush_chunk(now)) return recorded;

  const std::uint64_t unsynced = log_.end() - synced_at_end_;
  bool due = false;
  if (unsynced > 0) {
    // The first bytes after a start are synced at once: a sync interval counts from a sync, not
    // from the clock's epoch (boot, for a steady clock, which may be less than an interval ago).
    const auto since =
        last_sync_ == Clock::time_point{} ? Clock::duration::max() : now - last_sync_;
    switch (config_.fsync) {
      case FsyncPolicy::never: due = true; break;
      case FsyncPolicy::interval:
        due = since >= config_.fsync_interval || unsynced >= topic_.config().capacity / 2;
        break;
      case FsyncPolicy::bytes:
        due = unsynced >= config_.fsync_bytes || unsynced >= topic_.config().capacity / 2 ||
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
                                   "at " +
                                   std::to_string(log_.start()));
    }
    if (removed.segments > 0) {
      log_event(topic_.name(), "retention removed " + std::to_string(removed.segments) +
                                   " segment(s), offsets [" + std::to_string(removed.from) + ", " +
                                   std::to_string(removed.to) + "), " +
                                   std::to_string(removed.bytes) +
                                   " bytes; the log now starts at " + std::to_string(log_.start()));
    }
    if (auto ok = log_.check_active(); !ok) fail(ok.error().message(), now);
    refresh_positions();
    if (auto ok = write_state(config_.fsync != FsyncPolicy::never); !ok) {
      fail(ok.error().message(), now);
    }
    publish_counters();
  }
  return recorded;
}

void TopicRecorder::stop() {
  const auto now = Clock::now();
  if (!pump_.attached()) {
    counters_.detach();
    log_event(name(), "stopped; the log holds [" + std::to_string(log_.start()) + ", " +
                          std::to_string(log_.end()) + "), durable up to " +
                          std::to_string(durable_));
    return;
  }
  // Read what is left, so a clean stop leaves nothing behind in the ring.
  for (int round = 0; round < 64 && !failing_; ++round) {
    auto read = pump_.read(sink_, 1);
    if (!read || *read == 0) break;
    if (pump_.pending() && !flush_chunk(now)) break;
  }
  if (pump_.pending()) flush_chunk(now);
  if (!failing_ || log_.end() > synced_at_end_) sync(now);
  refresh_positions();
  if (auto ok = write_state(true); !ok) log_event(name(), "error: " + ok.error().message());
  counters_.detach();
  log_event(name(), "stopped; the log holds [" + std::to_string(log_.start()) + ", " +
                        std::to_string(log_.end()) + "), durable up to " +
                        std::to_string(durable_));
  pump_.detach();
}

}  // namespace ringbus::bridge
