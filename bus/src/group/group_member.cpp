// Queue-group members. Batches are handed out by a CAS on the group's dispatch position; acks
// are a 16-byte CAS on the batch slot's {acked bits, epoch}; a live member adopts the batch of a
// dead (or late) one in place, by a CAS that writes its own slot index into that epoch. The
// group's committed position, which holds producers back, is the start of the oldest batch in
// flight, or the dispatch position when none is: a batch's frames stay in the ring until it is
// done, so whoever adopts it can always rebuild it.
#include <sched.h>

#include <algorithm>
#include <bit>
#include <ctime>
#include <memory>
#include <optional>
#include <string>

#include "layout/frame_layout.hpp"
#include "layout/reader_slot_layout.hpp"
#include "log/log_reader.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/message_view.hpp"
#include "ring/start_position.hpp"
#include "ring/stuck_claim.hpp"
#include "ringbus/group.hpp"
#include "testing/fault_point.hpp"
#include "topic/reader_slots.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using detail::atomic;
using layout::FrameHeader;
using layout::FrameKind;
using layout::ReaderSlot;

constexpr std::string_view kGroupPrefix = "group:";
constexpr std::int64_t kTakeoverCheckNs = 20'000'000;  // how often poll looks for dead members

std::uint64_t full_mask(std::uint32_t count) {
  return count >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << count) - 1;
}

bool is_member_of(ReaderSlot& s, std::uint32_t group) {
  // acquire: pairs with the seq_cst registration of the slot.
  return layout::slot_state(atomic(s.state).load(std::memory_order_acquire)) ==
             layout::kSlotActive &&
         atomic(s.kind).load(std::memory_order_relaxed) == layout::kReaderMember &&
         atomic(s.group_slot).load(std::memory_order_acquire) == group;
}

// The frame at stream position `p`: in the ring, or, for a position the ring no longer holds, in
// the topic's disk log (same bytes, same commit word; immutable and CRC-checked). The pointer
// is valid until the next call. `from_log` says which. `ring_from` is the producers' reclaimed
// position, read once per batch (with the tail, on the same line): frames from there on are
// in the ring, and the group's committed position keeps the batch's frames there.
const FrameHeader* frame_at(detail::TopicMapping& map, std::unique_ptr<detail::LogReader>& log,
                            std::uint64_t ring_from, std::uint64_t p, bool& from_log) {
  from_log = false;
  const FrameHeader* ring_frame = detail::frame_at(map.ring_view(), p);
  if (p >= ring_from) return ring_frame;
  if (!log) {
    std::string dir = detail::log_dir_of(map.header());
    if (dir.empty()) return ring_frame;
    log = std::make_unique<detail::LogReader>(std::move(dir), map.config().max_message,
                                              map.config().frame_alignment);
  }
  auto r = log->read(p);
  if (r.status != detail::LogReader::Status::frame) return ring_frame;
  from_log = true;
  return r.frame;
}

// Where a group whose dispatch position `p` is in neither the ring (producers lapped it) nor the
// disk log (retention deleted it, or the log has a gap there) continues: the log's next
// available offset, else the ring's oldest frame. `p` itself if it is not lost after all. A
// log that holds `p` but damaged is corrupt (an error naming it), never a silent skip.
Result<std::uint64_t> lost_until(detail::TopicMapping& map, std::unique_ptr<detail::LogReader>& log,
                                 std::uint64_t p) {
  // acquire: pairs with the producers' tail CAS; they claim before they write.
  if (atomic(map.header().tail_position).load(std::memory_order_acquire) <=
      p + map.config().capacity) {
    return p;  // the ring still has it
  }
  // acquire: pairs with the producers' reclaim CAS.
  const std::uint64_t ring_earliest =
      atomic(map.header().reclaimed).load(std::memory_order_acquire);
  if (log) {
    auto r = log->read(p);
    if (r.status == detail::LogReader::Status::frame) return p;
    if (r.status == detail::LogReader::Status::corrupt) {
      return Error(Errc::corrupt, "the disk log is damaged where the group reads: " + log->error());
    }
    if ((r.status == detail::LogReader::Status::gap ||
         r.status == detail::LogReader::Status::out_of_range) &&
        r.next > p && r.next < ring_earliest) {
      return r.next;
    }
  }
  return std::max(p, ring_earliest);
}

// Whether `group` may be joined on the topic `map`: its name, and a topic producers can write
// that holds them back for unacknowledged messages (block).
Result<void> check_join(const detail::TopicMapping& map, std::string_view group) {
  if (auto ok = validate_name(group, "group name"); !ok) return ok.error();
  if (group.size() + kGroupPrefix.size() > layout::kReaderNameMax) {
    return Error(Errc::invalid_argument,
                 "group name '" + std::string(group) + "' is longer than " +
                     std::to_string(layout::kReaderNameMax - kGroupPrefix.size()) + " characters");
  }
  if (map.read_only()) {
    return Error(Errc::invalid_argument, "topic '" + map.name() + "' is mapped read-only");
  }
  if (map.config().policy != Policy::block) {
    return Error(Errc::invalid_argument,
                 "queue groups need a topic with the block policy: on '" + map.name() +
                     "' (overwrite) producers could overwrite unacknowledged messages");
  }
  return {};
}

// Where a new group starts. The start matters only for a new group: an existing one resumes at
// its committed position, so a start that cannot be resolved (a stale offset) is an error only
// if the group (its slot `slot_name`) is new.
Result<detail::StartPoint> group_start(detail::TopicMapping& map, const StartFrom& from,
                                       const std::string& slot_name) {
  auto in_log = detail::resolve_log_start(map, from);
  if (in_log && in_log->has_value()) return **in_log;  // older than the ring: the log first
  auto resolved =
      in_log ? detail::resolve_start(map, from) : Result<detail::StartPoint>(in_log.error());
  if (resolved || detail::find_persistent_slot(map, slot_name)) {
    return resolved ? *resolved : detail::StartPoint{};
  }
  return resolved.error();
}

}  // namespace

Result<GroupMember> GroupMember::join(const Topic& topic, std::string_view group,
                                      const GroupOptions& options) {
  if (!topic.valid()) return Error(Errc::invalid_argument, "joining a group needs an open topic");
  auto& map = detail::mapping_of(topic);
  if (auto ok = check_join(map, group); !ok) return ok.error();
  const std::string slot_name = std::string(kGroupPrefix) + std::string(group);
  auto start = group_start(map, options.start, slot_name);
  if (!start) return start.error();
  const detail::StartPoint start_point = *start;
  // The member's slot first: a join that cannot have one leaves no new group behind (a group
  // nobody joins would hold producers back). It counts for no group until group_slot is set.
  detail::SlotRequest member_request;
  member_request.durable = false;  // the group's slot holds producers back, not its members
  member_request.kind = layout::kReaderMember;
  auto member_slot = detail::acquire_slot(map, member_request, 0, 0);
  if (!member_slot) return member_slot.error();

  detail::SlotRequest group_request;
  group_request.name = slot_name;
  group_request.durable = true;
  group_request.kind = layout::kReaderGroup;
  group_request.shared = true;
  group_request.deadline_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(options.processing_deadline).count());
  auto group_slot =
      detail::acquire_slot(map, group_request, start_point.position, start_point.sequence);
  if (!group_slot) {
    detail::release_slot(map, member_slot->index, false);
    return group_slot.error();
  }
  auto& group_state = map.slot(group_slot->index);
  if (!group_slot->resumed) {
    // A producer that scanned the slots before the group registered may still claim (once)
    // with a limit that ignores it, overwriting frames below the tail it then saw: frames below
    // the tail read now are copied and checked by members. seq_cst: after the registration.
    const std::uint64_t tail = atomic(map.header().tail_position).load(std::memory_order_seq_cst);
    // release: pairs with the members' acquire load; lowers it from "check everything".
    atomic(group_state.safe_from).store(tail, std::memory_order_release);
  }
  // release: the member counts for the group only once its fields are in place.
  atomic(map.slot(member_slot->index).group_slot)
      .store(group_slot->index, std::memory_order_release);

  GroupMember m;
  m.safe_from_ = atomic(group_state.safe_from).load(std::memory_order_acquire);
  if (atomic(group_state.dispatch).load(std::memory_order_acquire) < m.safe_from_) {
    m.copy_.resize(layout::frame_stride(map.config().max_message, map.config().frame_alignment) /
                   8);
  }
  m.topic_ = topic;
  m.group_ = std::string(group);
  m.group_slot_ = group_slot->index;
  m.member_slot_ = member_slot->index;
  m.batch_slot_ = member_slot->index;
  m.stuck_.set_timeout(map.header().stuck_claim_timeout_ns);
  m.joined_ = true;
  return m;
}

// Moves take joined_ (TakenOnMove), so a moved-from member has nothing to leave.
GroupMember::GroupMember(GroupMember&& o) noexcept = default;

GroupMember& GroupMember::operator=(GroupMember&& o) noexcept {
  if (this != &o) {
    std::destroy_at(this);  // leaves ours
    std::construct_at(this, std::move(o));
  }
  return *this;
}

GroupMember::~GroupMember() { leave(); }

void GroupMember::leave() noexcept {
  if (!joined_) return;
  joined_ = false;
  auto& map = detail::mapping_of(topic_);
  auto& me = map.slot(member_slot_);
  // An adopted batch we leave unfinished: the slot it sits in names us as its handler, and we
  // stop serving it, so another member adopts it (and delivers its unacknowledged messages).
  // release: pairs with the acquire load in take_over_batch().
  atomic(me.serving).store(layout::kNotServing, std::memory_order_release);
  // seq_cst: orders the load after our last ack's CAS (and after an adopter's CAS on our slot).
  if (atomic(me.batch_start).load(std::memory_order_seq_cst) != layout::kNoBatch) {
    // Our own batch, unfinished (or one a member adopted from us): it stays in our slot, which
    // now shows no process, until a live member finishes it and frees the slot.
    // release: our batch fields are visible before the slot shows no owner.
    atomic(me.pid).store(0, std::memory_order_release);
    detail::kill_point("group.leave.marked");
    return;
  }
  detail::kill_point("group.leave.marked");
  detail::release_slot(map, member_slot_, false);
  update_committed();
}

std::size_t GroupMember::unacked() const noexcept {
  return count_ - static_cast<std::size_t>(std::popcount(acked_ & full_mask(count_)));
}

// Records a new batch in our own (empty) slot. seq_cst on batch_start: a committed-position
// computation that reads the dispatch position after our CAS on it must see this batch
// (update_committed() reads dispatch first, then the members).
void GroupMember::publish_own_batch(std::uint64_t start, std::uint64_t end) {
  auto& me = detail::mapping_of(topic_).slot(member_slot_);
  auto relaxed = std::memory_order_relaxed;  // published by the CAS and the store below
  atomic(me.batch_end).store(end, relaxed);
  atomic(me.batch_count).store(count_, relaxed);
  atomic(me.delivery).store(1, relaxed);
  atomic(me.low_water).store(start, relaxed);
  atomic(me.low_water_seq).store(count_ > 0 ? sequences_[0] : 0, relaxed);
  atomic(me.taken_ns).store(static_cast<std::uint64_t>(detail::monotonic_ns()), relaxed);
  // A new epoch (adopted bit clear) for every batch: a member adopting the batch checks that
  // the batch it read is the one whose epoch it replaces. Nobody else writes the pair while the
  // slot holds no batch (take_new_batch() checked), but a stale adopter's CAS may still fail
  // against it: loop until ours is in.
  detail::WordPair current{atomic(me.batch_acked).load(relaxed),
                           atomic(me.batch_epoch).load(relaxed)};
  for (;;) {
    const detail::WordPair next{0, layout::next_batch_epoch(current.high)};
    detail::WordPair seen = detail::cas16(&me.batch_acked, current, next);
    if (seen == current) {
      epoch_ = next.high;
      break;
    }
    current = seen;
  }
  batch_slot_ = member_slot_;
  batch_start_ = start;
  atomic(me.batch_start).store(start, std::memory_order_seq_cst);
}

bool GroupMember::skip_stuck_claim(std::uint64_t position, std::uint64_t word) {
  if (!stuck_.check(position)) return false;
  stuck_.stop();
  auto& map = detail::mapping_of(topic_);
  // Without a claim mark the length is unknown: the group waits for it (see docs).
  return detail::pad_stuck_claim(map.header(), map.ring_view(), position, word);
}

// Whether a bad frame at the dispatch position `p` is known bad: read from the disk log (whose
// chunks are checksummed), or still there after the stuck-claim timeout. Starts the timer.
bool GroupMember::from_log_or_stuck(std::uint64_t p, bool from_log) {
  return from_log || stuck_.check(p);
}

GroupMember::Take GroupMember::take_new_batch(std::size_t max) {
  auto& map = detail::mapping_of(topic_);
  auto& group = map.slot(group_slot_);
  auto& me = map.slot(member_slot_);
  const auto& config = map.config();
  // Our previous batch may still sit in our slot, adopted by another member after our deadline
  // passed: a new one can go there only once that member finished it.
  // acquire: pairs with the clearing CAS in batch_done().
  if (atomic(me.batch_start).load(std::memory_order_acquire) != layout::kNoBatch) {
    return Take::empty;
  }
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // acquire: pairs with other members' dispatch CAS.
    const std::uint64_t dispatch = atomic(group.dispatch).load(std::memory_order_acquire);
    const std::uint64_t tail = atomic(map.header().tail_position).load(std::memory_order_acquire);
    // relaxed: the same CAS moves it with the tail; a newer count only loosens the check below.
    const std::uint64_t tail_messages =
        atomic(map.header().tail_messages).load(std::memory_order_relaxed);
    // acquire: pairs with the producers' reclaim CAS (frame_at(): below it, the disk log).
    ring_from_ = atomic(map.header().reclaimed).load(std::memory_order_acquire);
    if (dispatch % config.frame_alignment != 0 || tail % config.frame_alignment != 0) {
      take_error_ = "the group's dispatch position " + std::to_string(dispatch) + " or the tail " +
                    std::to_string(tail) + " is not a frame boundary";
      return Take::corrupt;
    }
    if (dispatch >= tail) {
      // Nothing to hand out. If the committed position lags the dispatch position, some
      // update saw a batch that was only tentative (its CAS failed): compute it again, or
      // producers blocked behind it would wait for an acknowledgement that never comes.
      if (atomic(group.position).load(std::memory_order_acquire) < dispatch) update_committed();
      return Take::empty;
    }
    std::uint64_t p = dispatch;
    std::uint32_t n = 0;
    while (p < tail && n < max) {
      bool from_log = false;
      const auto* frame = frame_at(map, log_, ring_from_, p, from_log);
      // acquire: pairs with the producer's commit. Racy until our dispatch CAS succeeds:
      // another member may take these frames first, finish them, and let producers reuse the
      // space while we look; then the CAS fails and this walk is discarded. Once the CAS
      // succeeds nobody took them, so the committed position (at most `dispatch`) held them.
      std::uint64_t word = detail::load_racy_acquire(&frame->commit);
      const detail::CommitWord commit = detail::classify(map.ring_view(), p, word);
      if (commit.state == detail::Commit::absent || commit.state == detail::Commit::claimed) {
        if (p == dispatch && !from_log) {
          if (auto skipped = skip_lost(dispatch)) return *skipped;
        }
        if (p == dispatch && skip_stuck_claim(p, word)) continue;
        break;
      }
      std::uint64_t sequence = 0;
      if (commit.kind == FrameKind::kData) {
        detail::copy_racy(&sequence, reinterpret_cast<const std::byte*>(&frame->sequence), 1);
      }
      // A bad word of this lap, or a data frame numbered at or past the tail's count, may be
      // stale bytes where a producer has not written its claim mark yet (the previous lap's
      // payload can carry this lap's tag; see Subscriber::suspect()): stop before it. At the
      // dispatch position it is corrupt only if it outlasts the stuck-claim timeout.
      if (commit.state == detail::Commit::invalid ||
          (commit.kind == FrameKind::kData && sequence >= tail_messages)) {
        if (p != dispatch || !from_log_or_stuck(p, from_log)) break;
        // Corrupt, unless another member moved the dispatch position and the space was reused.
        if (atomic(group.dispatch).load(std::memory_order_acquire) != dispatch) break;
        take_error_ = "invalid frame at the dispatch position " + std::to_string(p);
        return Take::corrupt;
      }
      if (commit.kind == FrameKind::kData) {
        offsets_[n] = p;
        sequences_[n] = sequence;
        ++n;
      }
      p += commit.stride;
    }
    if (p == dispatch) return Take::empty;
    count_ = n;
    publish_own_batch(dispatch, p);
    detail::kill_point("group.take.published");
    std::uint64_t expected = dispatch;
    // seq_cst: after our batch is published (see publish_own_batch()).
    if (atomic(group.dispatch).compare_exchange_strong(expected, p, std::memory_order_seq_cst)) {
      detail::kill_point("group.take.dispatched");
      delivered_ = 0;
      acked_ = 0;
      delivery_ = 1;
      if (n == 0) batch_done();  // only padding
      return Take::taken;
    }
    if (!withdraw_batch(dispatch)) return Take::empty;  // another member took it first
  }
  return Take::empty;
}

// The dispatch position is gone from the ring and the log alike: skip to what is left, and
// count it. Nothing (the position is not lost after all), empty (skipped, or another member
// moved the dispatch position first) or corrupt (a damaged log holds it).
std::optional<GroupMember::Take> GroupMember::skip_lost(std::uint64_t dispatch) {
  auto& map = detail::mapping_of(topic_);
  auto& group = map.slot(group_slot_);
  auto lost = lost_until(map, log_, dispatch);
  if (!lost) {
    take_error_ = lost.error().message();
    return Take::corrupt;
  }
  const std::uint64_t next = *lost;
  if (next <= dispatch) return std::nullopt;
  std::uint64_t expected = dispatch;
  // seq_cst: like a batch's dispatch CAS; nobody took these bytes.
  if (atomic(group.dispatch).compare_exchange_strong(expected, next, std::memory_order_seq_cst)) {
    // relaxed: a monitoring counter.
    atomic(group.lost_bytes).fetch_add(next - dispatch, std::memory_order_relaxed);
    update_committed();
  }
  return Take::empty;
}

// Another member moved the dispatch position past `dispatch` first: withdraws the batch we
// published for it by a new epoch. False when a member adopted it meanwhile (we were past the
// deadline already): then that member delivers it (as a redelivery) and clears the slot.
bool GroupMember::withdraw_batch(std::uint64_t dispatch) {
  auto& me = detail::mapping_of(topic_).slot(member_slot_);
  count_ = 0;
  const detail::WordPair mine{0, epoch_};
  if (detail::cas16(&me.batch_acked, mine, {0, layout::next_batch_epoch(epoch_)}) != mine) {
    return false;
  }
  std::uint64_t start = dispatch;
  // seq_cst: like batch_done(); an update that saw our tentative batch is redone below.
  atomic(me.batch_start)
      .compare_exchange_strong(start, layout::kNoBatch, std::memory_order_seq_cst);
  update_committed();
  return true;
}

bool GroupMember::batch_orphaned(std::uint32_t index, std::uint64_t epoch, std::int64_t now,
                                 std::uint64_t deadline) {
  auto& map = detail::mapping_of(topic_);
  auto& slot = map.slot(index);
  std::uint64_t since = 0;
  if (layout::epoch_adopted(epoch)) {
    // Handled by the adopter the epoch names, for as long as it is a live member of this group
    // that still says it serves this slot (a dead adopter's slot may be reused by anyone).
    const std::uint32_t adopter = layout::epoch_adopter(epoch);
    // Naming our slot but not the batch we handle: its adopter died and the slot came to us.
    if (adopter == member_slot_) return count_ == 0 || batch_slot_ != index;
    if (adopter >= map.config().max_readers) return true;  // a damaged epoch: nobody handles it
    auto& a = map.slot(adopter);
    // acquire: pairs with the adopter's release store of `serving` before its CAS.
    if (!is_member_of(a, group_slot_) ||
        atomic(a.serving).load(std::memory_order_acquire) != index ||
        !detail::slot_owner_alive(a)) {
      return true;
    }
    since = atomic(a.serve_ns).load(std::memory_order_relaxed);
  } else {
    if (index == member_slot_) return false;  // our own batch
    if (!detail::slot_owner_alive(slot)) return true;
    // Read after the epoch (acquire): the time of this batch or of a later one, never of an
    // earlier one, so a fresh batch is never judged by its predecessor's age.
    since = atomic(slot.taken_ns).load(std::memory_order_relaxed);
  }
  // A batch taken after `now` was read is not late (and must not wrap the subtraction).
  const auto taken = static_cast<std::int64_t>(since);
  return deadline != 0 && now > taken && static_cast<std::uint64_t>(now - taken) > deadline;
}

// Takes the orphaned batch in slot `index`, whose acks and epoch were read as `acked` and
// `epoch`, by giving it a new epoch. False: acknowledged or adopted by another member meanwhile
// (look again at the next check).
bool GroupMember::adopt_batch(std::uint32_t index, std::uint64_t acked, std::uint64_t epoch,
                              std::int64_t now) {
  auto& map = detail::mapping_of(topic_);
  auto& me = map.slot(member_slot_);
  // Say which batch we serve before taking it: whoever judges the new epoch looks here.
  atomic(me.serve_ns).store(static_cast<std::uint64_t>(now), std::memory_order_relaxed);
  // release: pairs with the acquire load in batch_orphaned(); serve_ns before it.
  atomic(me.serving).store(index, std::memory_order_release);
  // The new epoch makes the previous handler's acks fail from now on; its acks before this
  // CAS are kept (in `acked`), so acknowledged messages are never delivered again.
  const detail::WordPair seen{acked, epoch};
  const detail::WordPair adopted{acked, layout::adopted_batch_epoch(epoch, member_slot_)};
  if (detail::cas16(&map.slot(index).batch_acked, seen, adopted) != seen) {
    atomic(me.serving).store(layout::kNotServing, std::memory_order_relaxed);
    return false;
  }
  return true;
}

// Rebuilds an adopted batch's message offsets and sequence numbers from [start, end); returns
// how many of its `count` messages were found. Its frames are all still there: the group's
// committed position stays at or below a batch's start until the batch is done.
std::uint32_t GroupMember::rebuild_offsets(std::uint64_t start, std::uint64_t end,
                                           std::uint32_t count) {
  auto& map = detail::mapping_of(topic_);
  std::uint32_t n = 0;
  std::uint64_t p = start;
  while (p < end && n < count) {
    bool from_log = false;
    const auto* frame = frame_at(map, log_, ring_from_, p, from_log);
    const std::uint64_t word =
        atomic(const_cast<std::uint64_t&>(frame->commit)).load(std::memory_order_acquire);
    const detail::CommitWord commit = detail::classify(map.ring_view(), p, word);
    if (commit.state != detail::Commit::frame) break;
    if (commit.kind == FrameKind::kData) {
      offsets_[n] = p;
      sequences_[n] = frame->sequence;
      ++n;
    }
    p += commit.stride;
  }
  return n;
}

bool GroupMember::take_over_batch() {
  const std::int64_t now = detail::monotonic_ns();
  if (now < next_takeover_check_ns_) return false;
  next_takeover_check_ns_ = now + kTakeoverCheckNs;
  auto& map = detail::mapping_of(topic_);
  const auto& config = map.config();
  const std::uint64_t deadline =
      atomic(map.slot(group_slot_).deadline_ns).load(std::memory_order_relaxed);
  // acquire: pairs with the producers' reclaim CAS (frame_at(): below it, the disk log).
  ring_from_ = atomic(map.header().reclaimed).load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < config.max_readers; ++i) {
    auto& other = map.slot(i);
    // The state word before the takeover: freeing a dead member's slot when its batch is done
    // must fail if the slot was freed and claimed by someone else meanwhile (generation).
    const std::uint64_t state = atomic(other.state).load(std::memory_order_acquire);
    if (!is_member_of(other, group_slot_)) continue;
    // The epoch first (acquire: pairs with the CAS that set it): every field read after it
    // belongs to its batch or a later one, and the CAS below fails if a later one came.
    const std::uint64_t epoch = atomic(other.batch_epoch).load(std::memory_order_acquire);
    const std::uint64_t acked = atomic(other.batch_acked).load(std::memory_order_acquire);
    // acquire: pairs with the owner's seq_cst store in publish_own_batch().
    const std::uint64_t start = atomic(other.batch_start).load(std::memory_order_acquire);
    if (start == layout::kNoBatch) continue;
    const std::uint64_t end = atomic(other.batch_end).load(std::memory_order_relaxed);
    const std::uint32_t count =
        std::min(atomic(other.batch_count).load(std::memory_order_relaxed), layout::kMaxBatch);
    const std::uint32_t delivery = atomic(other.delivery).load(std::memory_order_relaxed);
    // Fields a damaged file could hold: never walk from an unaligned start, past a ring's worth.
    if (start % config.frame_alignment != 0 || end <= start || end - start > config.capacity) {
      continue;
    }
    // A batch fully acknowledged but not cleared is taken over too when its handler is gone
    // (killed between its last ack and clearing the slot): it is finished at once below.
    if (!batch_orphaned(i, epoch, now, deadline)) continue;
    detail::kill_point("group.takeover.decided");
    if (!adopt_batch(i, acked, epoch, now)) continue;  // acked or adopted meanwhile
    detail::kill_point("group.takeover.cas");
    const std::uint32_t n = rebuild_offsets(start, end, count);
    std::uint64_t damaged = 0;
    if (n < count) {
      // Only a damaged topic file gets here: the unrebuildable rest is counted as lost (and
      // acknowledged below), never silently dropped.
      for (std::uint32_t k = n; k < count; ++k) damaged += ((acked >> k) & 1U) == 0;
      // relaxed: a monitoring counter.
      atomic(map.slot(group_slot_).lost_messages).fetch_add(damaged, std::memory_order_relaxed);
    }
    detail::kill_point("group.takeover.rebuilt");
    delivery_ = delivery + 1;
    // relaxed: we are the batch's handler now; the monitor reads it.
    atomic(other.delivery).store(delivery_, std::memory_order_relaxed);
    count_ = count;
    for (std::uint32_t k = n; k < count; ++k) offsets_[k] = sequences_[k] = ~std::uint64_t{0};
    acked_ = acked & full_mask(count);
    delivered_ = 0;
    epoch_ = layout::adopted_batch_epoch(epoch, member_slot_);
    batch_slot_ = i;
    batch_start_ = start;
    batch_owner_state_ = state;
    adopted_ = true;
    if (damaged != 0) {
      // Finishes the batch (set_acked() calls batch_done()) if nothing else is left.
      if (!set_acked(full_mask(count) & ~full_mask(n)) || count_ == 0) continue;
    }
    if (acked_ == full_mask(count_)) {
      batch_done();  // nothing left to deliver (or only padding)
      continue;
    }
    return true;
  }
  return false;
}

Result<PollResult> GroupMember::poll_some(FunctionRef<void(const Message&)> handler,
                                          std::size_t max) {
  PollResult result;
  if (!joined_) return Error(Errc::invalid_argument, "group member has left");
  max = std::clamp<std::size_t>(max, 1, layout::kMaxBatch);
  if (count_ == 0 || delivered_ >= count_) {
    if (count_ > 0 && acked_ != full_mask(count_)) return result;  // ack the batch first
    if (!take_over_batch()) {
      Take take = take_new_batch(max);
      if (take == Take::corrupt) {
        std::string why = take_error_.empty() ? "invalid frame at the dispatch position"
                                              : std::exchange(take_error_, {});
        return Error(Errc::corrupt, "topic '" + topic_.name() + "', group '" + group_ +
                                        "': " + why + " (the group stays there; `ringbus topic " +
                                        "remove-reader " + topic_.name() + " group:" + group_ +
                                        "` removes it)");
      }
      if (take == Take::empty || count_ == 0) return result;
    }
  }
  auto& map = detail::mapping_of(topic_);
  const auto& config = map.config();
  // acquire: pairs with the creator's release store (it only ever goes down).
  safe_from_ = atomic(map.slot(group_slot_).safe_from).load(std::memory_order_acquire);
  std::uint64_t lost_bits = 0;
  for (; delivered_ < count_; ++delivered_) {
    if ((acked_ >> delivered_) & 1U) continue;
    const std::uint64_t p = offsets_[delivered_];
    bool from_log = false;
    const auto* frame = frame_at(map, log_, ring_from_, p, from_log);
    const FrameHeader* source = frame;
    std::uint64_t length = 0;
    if (p < safe_from_ && !copy_.empty() && !from_log) {
      // Below safe_from a claim older than the group may be overwriting this frame: copy it,
      // then check the tail (as a lossy subscriber does). Overwritten: lost, acknowledged.
      const std::uint64_t word = detail::load_racy_acquire(&frame->commit);
      const detail::CommitWord commit = detail::classify(map.ring_view(), p, word);
      const bool intact = commit.state == detail::Commit::frame &&
                          commit.kind == FrameKind::kData &&
                          detail::copy_intact(map.header(), map.ring_view(), p,
                                              reinterpret_cast<const std::byte*>(frame),
                                              commit.stride / 8, copy_.data()) &&
                          copy_[0] == word;
      source = reinterpret_cast<const FrameHeader*>(copy_.data());
      length = layout::commit_length(word);
      if (!intact || source->key_length > length) {
        lost_bits |= std::uint64_t{1} << delivered_;
        ++result.lost_messages;
        continue;
      }
    } else {
      const std::uint64_t word =
          atomic(const_cast<std::uint64_t&>(frame->commit)).load(std::memory_order_acquire);
      length = layout::commit_length(word);
      // The same bounds as the subscriber's: a damaged frame never yields a view past the
      // frame's stride, the end of the ring or max_message.
      const bool bounded =
          from_log ? length <= config.max_message
                   : detail::classify(map.ring_view(), p, word).state == detail::Commit::frame;
      if (!bounded || layout::commit_kind(word) != FrameKind::kData || frame->key_length > length) {
        return Error(Errc::corrupt,
                     "topic '" + topic_.name() + "': invalid frame at offset " + std::to_string(p));
      }
    }
    Message m = detail::message_view(*source, p, length);
    m.delivery_count = delivery_;
    handler(m);
    ++result.messages;
  }
  if (lost_bits != 0) (void)set_acked(lost_bits);  // nothing left to deliver for them
  return result;
}

Result<void> GroupMember::set_acked(std::uint64_t bits) {
  auto& slot = detail::mapping_of(topic_).slot(batch_slot_);
  detail::WordPair expected{acked_, epoch_};
  for (;;) {
    detail::WordPair seen =
        detail::cas16(&slot.batch_acked, expected, {expected.low | bits, epoch_});
    if (seen == expected) break;
    if (seen.high != epoch_) {
      // Adopted by another member after the processing deadline: it delivers the rest again.
      abandon_batch();
      return Error(Errc::aborted, "the batch was taken over by another member of group '" + group_ +
                                      "' after the processing deadline");
    }
    expected = seen;
  }
  detail::kill_point("group.ack.cas");
  acked_ |= bits;
  if (acked_ == full_mask(count_)) batch_done();
  return {};
}

Result<void> GroupMember::ack(std::uint64_t offset) {
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (offsets_[i] == offset) return set_acked(std::uint64_t{1} << i);
  }
  return Error(Errc::invalid_argument,
               "offset " + std::to_string(offset) + " is not in this member's current batch");
}

Result<void> GroupMember::ack_up_to(std::uint64_t offset) {
  std::uint64_t bits = 0;
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (offsets_[i] <= offset) bits |= std::uint64_t{1} << i;
  }
  if (bits == 0) {
    return Error(Errc::invalid_argument,
                 "no message of the current batch is at or before " + std::to_string(offset));
  }
  return set_acked(bits);
}

// Forgets the batch we were handling (finished, or adopted by another member).
void GroupMember::abandon_batch() {
  count_ = 0;
  delivered_ = 0;
  acked_ = 0;
  if (adopted_) {
    // relaxed: no epoch names us as this batch's handler any more (it is done, or another
    // member's CAS replaced ours); this only tidies our slot.
    atomic(detail::mapping_of(topic_).slot(member_slot_).serving)
        .store(layout::kNotServing, std::memory_order_relaxed);
    adopted_ = false;
  }
  batch_slot_ = member_slot_;
}

void GroupMember::batch_done() {
  auto& map = detail::mapping_of(topic_);
  auto& slot = map.slot(batch_slot_);
  // Clear this batch, never a newer one its slot's live owner published since (a late owner
  // whose batch we adopted starts a new one once we are done). seq_cst: pairs with
  // update_committed() in other members.
  std::uint64_t start = batch_start_;
  atomic(slot.batch_start)
      .compare_exchange_strong(start, layout::kNoBatch, std::memory_order_seq_cst);
  detail::kill_point("group.finish.cleared");
  if (batch_slot_ != member_slot_ && !detail::slot_owner_alive(slot)) {
    // An adopted batch whose owner is gone: nobody else will free its slot.
    std::uint64_t word = batch_owner_state_;
    // acq_rel: frees the dead member's slot unless it changed meanwhile (generation).
    atomic(slot.state)
        .compare_exchange_strong(
            word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
            std::memory_order_acq_rel);
  }
  abandon_batch();
  update_committed();
}

void GroupMember::update_committed() {
  auto& map = detail::mapping_of(topic_);
  auto& group = map.slot(group_slot_);
  // Dispatch first, then the members (seq_cst): a batch taken after this load starts at or
  // after it, and one taken before is published in its member's slot (publish_own_batch()).
  // A batch never moves between slots (adoption leaves it where it is), so one pass sees every
  // batch in flight.
  std::uint64_t committed = atomic(group.dispatch).load(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < map.config().max_readers; ++i) {
    auto& s = map.slot(i);
    if (!is_member_of(s, group_slot_)) continue;
    committed = std::min(committed, atomic(s.batch_start).load(std::memory_order_seq_cst));
  }
  std::uint64_t current = atomic(group.position).load(std::memory_order_acquire);
  // release: pairs with the producers' acquire of reader positions (Producer::rescan_limit).
  while (committed > current &&
         !atomic(group.position)
              .compare_exchange_weak(current, committed, std::memory_order_release)) {
  }
}

Result<void> GroupMember::wait(const Wait& w) {
  if (count_ > 0 && delivered_ >= count_ && acked_ != full_mask(count_)) {
    // Nothing can come before the batch is acknowledged: say so instead of spinning.
    return Error(Errc::invalid_argument, "group '" + group_ + "': acknowledge the " +
                                             std::to_string(unacked()) +
                                             " messages of the current batch first");
  }
  auto& map = detail::mapping_of(topic_);
  auto& group = map.slot(group_slot_);
  const std::int64_t start = detail::monotonic_ns();
  for (std::uint64_t spins = 0;; ++spins) {
    if (count_ > 0 && delivered_ < count_) return {};
    const std::uint64_t dispatch = atomic(group.dispatch).load(std::memory_order_acquire);
    // A damaged dispatch position: let poll() report it (it never loads an unaligned word).
    if (dispatch % map.config().frame_alignment != 0) return {};
    const FrameHeader* frame = detail::frame_at(map.ring_view(), dispatch);
    std::uint64_t word =
        atomic(const_cast<std::uint64_t&>(frame->commit)).load(std::memory_order_acquire);
    // A word that looks ready counts only with the tail past it: at an unclaimed position it
    // is stale bytes (see take_new_batch()), and returning would spin an idle member.
    if ((count_ == 0 || acked_ == full_mask(count_)) &&
        detail::committed(detail::classify(map.ring_view(), dispatch, word).state) &&
        atomic(map.header().tail_position).load(std::memory_order_acquire) > dispatch) {
      return {};
    }
    if ((spins & 255) != 255) {
      detail::cpu_relax();
      continue;
    }
    const std::int64_t now = detail::monotonic_ns();
    // Let poll look for batches to take over, and for a stuck claim at the dispatch position.
    if (now >= next_takeover_check_ns_) return {};
    if (now - start >= w.timeout.count()) return Errc::timed_out;
    if (w.kind == WaitKind::spin_yield) {
      sched_yield();
    } else if (w.kind == WaitKind::futex) {
      timespec nap{0, 100'000};  // groups nap instead of using the topic futex
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace ringbus
