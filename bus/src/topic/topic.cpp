// Topic: describe (snapshot), reap dead readers, remove a persistent reader.
#include "ringbus/topic.hpp"

#include <algorithm>
#include <bit>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "topic/liveness.hpp"
#include "topic/reader_slots.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

const std::string& Topic::name() const noexcept { return map_->name(); }
const std::string& Topic::path() const noexcept { return map_->path(); }
const TopicConfig& Topic::config() const noexcept { return map_->config(); }

namespace {

// A group's slot keeps no sequence number (its committed position is the minimum of batch
// starts and the dispatch position), so describe reads it from the frame there: the first data
// frame at or after `position` (past padding), while it is still in the ring. nullopt when it
// is not (in the disk log, overwritten, or not committed yet).
std::optional<std::uint64_t> sequence_at(const detail::TopicMapping& map, std::uint64_t position,
                                         std::uint64_t tail, std::uint64_t tail_messages) {
  const auto& ring = map.ring_view();
  if (position >= tail) return tail_messages;
  if (tail - position > ring.capacity || position % ring.alignment != 0) return std::nullopt;
  for (int frames = 0; frames < 64 && position < tail; ++frames) {
    const layout::FrameHeader* frame = detail::frame_at(ring, position);
    const std::uint64_t word = detail::load_racy_acquire(&frame->commit);
    const detail::CommitWord commit = detail::classify(ring, position, word);
    if (commit.state != detail::Commit::frame) return std::nullopt;
    if (commit.kind == layout::FrameKind::kData) {
      std::uint64_t sequence = 0;
      detail::copy_racy(&sequence, reinterpret_cast<const std::byte*>(&frame->sequence), 1);
      return sequence <= tail_messages ? std::optional<std::uint64_t>(sequence) : std::nullopt;
    }
    position += commit.stride;
  }
  return position >= tail ? std::optional<std::uint64_t>(tail_messages) : std::nullopt;
}

std::string_view kind_name(std::uint32_t kind) {
  switch (kind) {
    case layout::kReaderSubscriber: return "subscriber";
    case layout::kReaderGroup: return "group";
    case layout::kReaderMember: return "member";
    default: return "unknown";
  }
}

std::string_view recorder_state_name(std::uint32_t state) {
  switch (state) {
    case layout::kRecorderRecording: return "recording";
    case layout::kRecorderFailing: return "failing";
    case layout::kRecorderStopped: return "stopped";
    default: return "unknown";
  }
}

// An error count and the last error's text, which the bridge rewrites before it increments the
// count: copies the text until the count is stable. Returns the count.
std::uint64_t read_counted_error(std::uint64_t& count,
                                 const char (&text)[layout::kRecorderTextSize], std::string& out) {
  using detail::atomic;
  std::uint64_t before = 0;
  for (int attempt = 0; attempt < 4; ++attempt) {
    // acquire: pairs with the release increment after the bridge wrote the text.
    before = atomic(count).load(std::memory_order_acquire);
    out = detail::read_fixed_text(text, layout::kRecorderTextSize);
    if (atomic(count).load(std::memory_order_acquire) == before) break;
  }
  return before;
}

// The bridge's counters, if a bridge ever recorded this topic (its log_dir is set).
std::optional<RecorderInfo> read_recorder(const layout::TopicHeader& h, std::uint64_t tail) {
  using detail::atomic;
  auto relaxed = std::memory_order_relaxed;
  auto& hm = const_cast<layout::TopicHeader&>(h);
  std::string dir = detail::log_dir_of(h);
  if (dir.empty()) return std::nullopt;
  RecorderInfo r;
  r.log_dir = std::move(dir);
  r.state = std::string(recorder_state_name(atomic(hm.recorder_state).load(relaxed)));
  r.pid = atomic(hm.recorder_pid).load(relaxed);
  r.alive = r.pid != 0 && detail::is_alive(r.pid, atomic(hm.recorder_start_time).load(relaxed));
  // acquire: pairs with the bridge's release store after it wrote the bytes.
  r.recorded_position = atomic(hm.recorded_position).load(std::memory_order_acquire);
  r.recorded_messages = atomic(hm.recorded_messages).load(relaxed);
  // A consistent pair: the recorder stores the messages, then the position (release).
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::uint64_t before = atomic(hm.durable_messages).load(std::memory_order_acquire);
    // acquire: pairs with the recorder's release store of the position after the messages.
    r.durable_position = atomic(hm.durable_position).load(std::memory_order_acquire);
    r.durable_messages = atomic(hm.durable_messages).load(std::memory_order_acquire);
    if (r.durable_messages == before) break;
  }
  r.log_start = atomic(hm.log_start).load(relaxed);
  r.segments = atomic(hm.log_segments).load(relaxed);
  r.log_bytes = atomic(hm.log_bytes).load(relaxed);
  r.errors = read_counted_error(hm.recorder_errors, h.last_error, r.last_error);
  r.lag_bytes = tail > r.recorded_position ? tail - r.recorded_position : 0;
  return r;
}

// The receiving side of a mirror.
std::optional<MirrorInfo> read_mirror(const layout::TopicHeader& h, const TopicConfig& config) {
  using detail::atomic;
  auto relaxed = std::memory_order_relaxed;
  auto& hm = const_cast<layout::TopicHeader&>(h);
  if (config.mirror_of.empty()) return std::nullopt;
  MirrorInfo m;
  m.source = config.mirror_of;
  m.pid = atomic(hm.receiver_pid).load(relaxed);
  m.alive = m.pid != 0 && detail::is_alive(m.pid, atomic(hm.receiver_start_time).load(relaxed));
  // acquire: pairs with the receiver's release store after it wrote the frames.
  m.applied_position = atomic(hm.applied_position).load(std::memory_order_acquire);
  m.applied_messages = atomic(hm.applied_messages).load(relaxed);
  m.last_contact_unix_ns = static_cast<std::int64_t>(atomic(hm.last_contact_unix_ns).load(relaxed));
  return m;
}

std::string_view forward_state_name(std::uint32_t state) {
  switch (state) {
    case layout::kForwardConnecting: return "connecting";
    case layout::kForwardStreaming: return "streaming";
    case layout::kForwardBackingOff: return "backing off";
    case layout::kForwardFailing: return "failing";
    case layout::kForwardStopped: return "stopped";
    default: return "none";
  }
}

std::vector<ForwardInfo> read_forwards(const layout::TopicHeader& h, std::uint64_t tail,
                                       std::uint64_t messages) {
  using detail::atomic;
  auto relaxed = std::memory_order_relaxed;
  std::vector<ForwardInfo> links;
  for (const layout::ForwardLink& link : h.forward) {
    auto& lm = const_cast<layout::ForwardLink&>(link);
    ForwardInfo f;
    f.destination = detail::read_fixed_text(link.destination, layout::kDestinationSize);
    if (f.destination.empty()) continue;
    f.state = std::string(forward_state_name(atomic(lm.state).load(relaxed)));
    f.pid = atomic(lm.pid).load(relaxed);
    f.alive = f.pid != 0 && detail::is_alive(f.pid, atomic(lm.start_time).load(relaxed));
    f.sent_position = atomic(lm.sent_position).load(relaxed);
    // acquire: pairs with the forwarder's release store (acked_messages is written before).
    f.acked_position = atomic(lm.acked_position).load(std::memory_order_acquire);
    f.acked_messages = atomic(lm.acked_messages).load(relaxed);
    f.reconnects = atomic(lm.reconnects).load(relaxed);
    f.bytes_sent = atomic(lm.bytes_sent).load(relaxed);
    f.errors = read_counted_error(lm.errors, link.last_error, f.last_error);
    f.lag_bytes = tail > f.acked_position ? tail - f.acked_position : 0;
    f.lag_messages = messages > f.acked_messages ? messages - f.acked_messages : 0;
    f.in_flight_bytes = f.sent_position > f.acked_position ? f.sent_position - f.acked_position : 0;
    links.push_back(std::move(f));
  }
  return links;
}

// The group name inside a group slot's stored name "group:<name>".
std::string group_name(std::string_view slot_name) {
  constexpr std::string_view kPrefix = "group:";
  if (slot_name.substr(0, kPrefix.size()) == kPrefix) slot_name.remove_prefix(kPrefix.size());
  return std::string(slot_name);
}

}  // namespace

TopicSnapshot Topic::snapshot() const {
  using detail::atomic;
  auto relaxed = std::memory_order_relaxed;  // a monitoring view: each field on its own
  auto& h = map_->header();
  TopicSnapshot snap;
  snap.config = map_->config();
  snap.earliest = atomic(h.reclaimed).load(std::memory_order_acquire);
  snap.tail = atomic(h.tail_position).load(std::memory_order_acquire);
  snap.messages = atomic(h.tail_messages).load(relaxed);
  snap.aborted_claims = atomic(h.aborted_claims).load(relaxed);
  snap.reaped_readers = atomic(h.reaped_readers).load(relaxed);
  snap.recorder = read_recorder(h, snap.tail);
  snap.mirror = read_mirror(h, snap.config);
  snap.forwards = read_forwards(h, snap.tail, snap.messages);
  std::vector<std::uint32_t> member_groups;  // per reader: its group's slot (members only)
  for (std::uint32_t i = 0; i < snap.config.max_readers; ++i) {
    auto& s = map_->slot(i);
    // acquire: pairs with the seq_cst registration store in acquire_slot().
    std::uint64_t word = atomic(s.state).load(std::memory_order_acquire);
    if (layout::slot_state(word) != layout::kSlotActive) continue;
    ReaderInfo r;
    r.slot = i;
    r.name = std::string(detail::slot_name(s));
    const std::uint32_t kind = atomic(s.kind).load(relaxed);
    r.kind = std::string(kind_name(kind));
    std::uint32_t flags = atomic(s.flags).load(relaxed);
    r.persistent = (flags & layout::kSlotPersistent) != 0;
    r.durable = (flags & layout::kSlotDurable) != 0;
    r.pid = atomic(s.pid).load(relaxed);
    r.alive = detail::slot_owner_alive(s);
    r.position = atomic(s.position).load(relaxed);
    r.messages = atomic(s.messages).load(relaxed);
    r.lag_bytes = snap.tail > r.position ? snap.tail - r.position : 0;
    r.lag_messages = snap.messages > r.messages ? snap.messages - r.messages : 0;
    r.lost_bytes = atomic(s.lost_bytes).load(relaxed);
    r.lost_messages = atomic(s.lost_messages).load(relaxed);
    std::uint32_t group_slot = ~0U;
    if (kind == layout::kReaderGroup) {
      r.group = group_name(r.name);
      r.dispatch = atomic(s.dispatch).load(relaxed);
      const auto sequence = sequence_at(*map_, r.position, snap.tail, snap.messages);
      r.messages = sequence.value_or(0);
      r.lag_messages = sequence ? snap.messages - *sequence : 0;
    } else if (kind == layout::kReaderMember) {
      group_slot = atomic(s.group_slot).load(relaxed);
      if (atomic(s.batch_start).load(relaxed) != layout::kNoBatch) {
        const std::uint32_t count =
            std::min(atomic(s.batch_count).load(relaxed), layout::kMaxBatch);
        const std::uint64_t mask =
            count >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
        const auto acked =
            static_cast<std::uint32_t>(std::popcount(atomic(s.batch_acked).load(relaxed) & mask));
        r.in_flight = count - acked;
        r.delivery = atomic(s.delivery).load(relaxed);
      }
    }
    member_groups.push_back(group_slot);
    snap.readers.push_back(std::move(r));
  }
  // Members name their group by slot index; a group's in-flight count is its members' sum.
  for (std::size_t m = 0; m < snap.readers.size(); ++m) {
    if (member_groups[m] == ~0U) continue;
    for (ReaderInfo& g : snap.readers) {
      if (g.slot != member_groups[m] || g.kind != "group") continue;
      snap.readers[m].group = g.group;
      g.in_flight += snap.readers[m].in_flight;
    }
  }
  return snap;
}

std::optional<BackPressure> back_pressure(std::string_view topic_name,
                                          const TopicSnapshot& snapshot) {
  if (snapshot.config.policy != Policy::block) return std::nullopt;
  const ReaderInfo* slowest = nullptr;
  for (const ReaderInfo& r : snapshot.readers) {
    if (!r.durable || r.kind == "member") continue;  // members hold nothing: their group does
    if (slowest == nullptr || r.lag_bytes > slowest->lag_bytes) slowest = &r;
  }
  if (slowest == nullptr) return std::nullopt;
  BackPressure bp;
  bp.reader = *slowest;
  const ReaderInfo& r = bp.reader;
  const std::string topic(topic_name);
  std::string who;
  std::string state;
  std::string action;
  if (r.kind == "group") {
    bp.live_members = static_cast<std::size_t>(std::count_if(
        snapshot.readers.begin(), snapshot.readers.end(),
        [&](const ReaderInfo& m) { return m.kind == "member" && m.group == r.group && m.alive; }));
    bp.stuck = bp.live_members == 0;
    who = "queue group '" + r.group + "'";
    state = bp.stuck ? "has no live member"
                     : "has " + std::to_string(bp.live_members) + " live member" +
                           (bp.live_members == 1 ? "" : "s");
    action = bp.stuck ? "start a member ('ringbus consume " + topic + " --group " + r.group +
                            "') or remove the group ('ringbus topic remove-reader " + topic +
                            " group:" + r.group + "')"
                      : "its members read slower than producers publish";
  } else if (r.persistent) {
    bp.stuck = !r.alive;
    who = "persistent reader '" + r.name + "'";
    state = r.alive ? "is attached by live process " + std::to_string(r.pid)
                    : "has no live process (stalled)";
    action = r.alive ? "it reads slower than producers publish"
                     : "resume it ('ringbus consume " + topic + " --name " + r.name +
                           "') or remove it ('ringbus topic remove-reader " + topic + " " + r.name +
                           "')";
  } else {
    bp.stuck = !r.alive;
    who = "reader in slot " + std::to_string(r.slot);
    state = "of process " + std::to_string(r.pid) + (r.alive ? " (alive)" : " (dead)");
    action = r.alive ? "it reads slower than producers publish"
                     : "its slot is freed when a producer or reader reaps dead readers";
  }
  bp.full = r.lag_bytes >= snapshot.config.capacity - snapshot.config.capacity / 10;
  bp.text = who + " " + state + " and is " + std::to_string(r.lag_bytes) + " bytes (" +
            std::to_string(r.lag_messages) + " messages) behind the tail at position " +
            std::to_string(r.position) + "; " + action;
  return bp;
}

void Topic::free_dead_members(std::uint32_t group_slot) const {
  using detail::atomic;
  for (std::uint32_t j = 0; j < map_->config().max_readers; ++j) {
    auto& m = map_->slot(j);
    std::uint64_t word = atomic(m.state).load(std::memory_order_acquire);
    if (layout::slot_state(word) != layout::kSlotActive ||
        atomic(m.kind).load(std::memory_order_relaxed) != layout::kReaderMember ||
        atomic(m.group_slot).load(std::memory_order_acquire) != group_slot ||
        detail::slot_owner_alive(m)) {
      continue;
    }
    detail::uncount_dead_sleeper(*map_, m);
    // acq_rel: fails if the slot was reused since we looked.
    atomic(m.state).compare_exchange_strong(
        word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
        std::memory_order_acq_rel);
  }
}

std::size_t Topic::reap_dead_readers() const { return detail::reap_dead_readers(*map_); }

Result<void> Topic::remove_reader(std::string_view reader_name) const {
  using detail::atomic;
  for (std::uint32_t i = 0; i < map_->config().max_readers; ++i) {
    auto& s = map_->slot(i);
    std::uint64_t word = atomic(s.state).load(std::memory_order_acquire);
    if (layout::slot_state(word) != layout::kSlotActive ||
        (atomic(s.flags).load(std::memory_order_relaxed) & layout::kSlotPersistent) == 0 ||
        detail::slot_name(s) != reader_name) {
      continue;
    }
    if (atomic(s.kind).load(std::memory_order_relaxed) == layout::kReaderGroup) {
      // A group has no process of its own: it is busy while any member is alive.
      for (std::uint32_t j = 0; j < map_->config().max_readers; ++j) {
        auto& m = map_->slot(j);
        if (layout::slot_state(atomic(m.state).load(std::memory_order_acquire)) ==
                layout::kSlotActive &&
            atomic(m.kind).load(std::memory_order_relaxed) == layout::kReaderMember &&
            atomic(m.group_slot).load(std::memory_order_acquire) == i &&
            detail::slot_owner_alive(m)) {
          return Error(Errc::busy,
                       "group '" + std::string(reader_name) + "' of topic '" + name() +
                           "' has a live member (process " +
                           std::to_string(atomic(m.pid).load(std::memory_order_relaxed)) + ")");
        }
      }
    } else if (detail::slot_owner_alive(s)) {
      return Error(Errc::busy, "reader '" + std::string(reader_name) + "' of topic '" + name() +
                                   "' is attached by live process " +
                                   std::to_string(atomic(s.pid).load(std::memory_order_relaxed)));
    }
    detail::uncount_dead_sleeper(*map_, s);
    // acq_rel: fails if the slot was resumed or reused since we looked.
    if (atomic(s.state).compare_exchange_strong(
            word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
            std::memory_order_acq_rel)) {
      if (atomic(s.kind).load(std::memory_order_relaxed) == layout::kReaderGroup) {
        free_dead_members(i);  // their batches belonged to the removed group
      }
      return {};
    }
    return Error(Errc::busy, "reader '" + std::string(reader_name) + "' changed; try again");
  }
  return Error(Errc::not_found, "topic '" + name() + "' has no persistent reader '" +
                                    std::string(reader_name) + "'");
}

}  // namespace ringbus
