// Subscribers: read frames at their own cursor, in place when producers cannot overwrite them,
// copied and re-checked (seqlock style) when they can; skip stuck claims; detect laps.
#include "ringbus/subscriber.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "log/log_reader.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/futex.hpp"
#include "ring/message_view.hpp"
#include "ring/start_position.hpp"
#include "ring/stuck_claim.hpp"
#include "topic/reader_slots.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

enum class Subscriber::Frame : std::uint8_t { message, skipped, empty, lapped, corrupt };

namespace {

using detail::atomic;
using layout::FrameHeader;
using layout::FrameKind;
using layout::TopicHeader;

constexpr std::uint64_t kNoPosition = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kPublishEvery = 32;  // messages between position updates within a poll

// A persistent reader's name (empty: an anonymous reader, nothing to check).
Result<void> check_reader_name(const std::string& name) {
  if (name.empty()) return {};
  if (auto ok = validate_name(name, "reader name"); !ok) return ok.error();
  if (name.size() > layout::kReaderNameMax) {
    return Error(Errc::invalid_argument, "reader name '" + name + "' is longer than " +
                                             std::to_string(layout::kReaderNameMax) +
                                             " characters");
  }
  return {};
}

TopicHeader& header_of(void* p) { return *static_cast<TopicHeader*>(p); }
layout::ReaderSlot& slot_of(void* p) { return *static_cast<layout::ReaderSlot*>(p); }

}  // namespace

// ---- attach / detach --------------------------------------------------------------------

Result<Subscriber> Subscriber::attach(const Topic& topic, const SubscriberOptions& options) {
  if (!topic.valid()) return Error(Errc::invalid_argument, "subscriber needs an open topic");
  auto& map = detail::mapping_of(topic);
  if (map.read_only()) {
    return Error(Errc::invalid_argument, "topic '" + map.name() + "' is mapped read-only");
  }
  if (auto ok = check_reader_name(options.name); !ok) return ok.error();
  const auto& config = map.config();
  // On an overwrite topic producers never wait, so nobody can be durable there.
  const bool durable = config.policy == Policy::block && options.durability != Durability::lossy;

  // An old offset (or `earliest`) may lie in the disk log rather than the ring.
  auto log_start = detail::resolve_log_start(map, options.start);
  if (!log_start) return log_start.error();
  const bool from_log = log_start->has_value();
  Result<detail::StartPoint> start = from_log ? Result<detail::StartPoint>(**log_start)
                                              : detail::resolve_start(map, options.start);
  if (!start) return start.error();

  detail::SlotRequest request;
  request.name = options.name;
  request.durable = durable;
  request.replaying = from_log && durable;
  request.expiry_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(options.expiry).count());
  auto acquired = detail::acquire_slot(map, request, start->position, start->sequence);
  if (!acquired) return acquired.error();

  Subscriber sub;
  sub.topic_ = topic;
  sub.ring_ = map.ring_view();
  sub.header_ = &map.header();
  sub.slot_ = acquired->index;
  sub.slot_ptr_ = &map.slot(acquired->index);
  sub.persistent_ = !options.name.empty();
  sub.manual_commit_ = options.manual_commit;
  sub.stuck_.set_timeout(map.header().stuck_claim_timeout_ns);
  if (acquired->resumed) {
    if (!sub.resume()) {
      detail::release_slot(map, acquired->index, true);
      return Error(Errc::corrupt, "persistent reader '" + options.name + "' of topic '" +
                                      map.name() + "' has an invalid position " +
                                      std::to_string(sub.cursor_));
    }
  } else {
    sub.durable_ = durable;
    sub.cursor_ = start->position;
    sub.next_sequence_ = start->sequence;
    sub.sequence_known_ = start->sequence_known;
    // seq_cst: after our seq_cst registration (see Producer::rescan_limit). Frames before this
    // tail may still be overwritten by a producer that scanned before we registered.
    sub.safe_from_ = durable && !from_log
                         ? atomic(map.header().tail_position).load(std::memory_order_seq_cst)
                         : kNoPosition;
    sub.in_log_ = from_log && sub.open_log();
  }
  sub.published_ = sub.cursor_;
  if (sub.cursor_ < sub.safe_from_) {
    sub.copy_.resize(layout::frame_stride(config.max_message, config.frame_alignment) / 8);
  }
  return sub;
}

// A persistent reader continues where its last process published its position. While it was
// durable, that position held producers back, so its frames are intact. False: the position in
// the slot is not one this topic can have (the cursor holds it, for the error).
bool Subscriber::resume() noexcept {
  auto& slot = slot_of(slot_ptr_);
  const std::uint32_t flags = atomic(slot.flags).load(std::memory_order_relaxed);
  durable_ = (flags & layout::kSlotDurable) != 0;
  const bool replaying = (flags & layout::kSlotReplaying) != 0;
  cursor_ = atomic(slot.position).load(std::memory_order_acquire);
  const std::uint64_t tail =
      atomic(header_of(header_).tail_position).load(std::memory_order_acquire);
  const bool valid = cursor_ % ring_.alignment == 0 && cursor_ <= tail;
  if (!valid || (tail - cursor_ > ring_.capacity && durable_ && !replaying)) return false;
  // A lossy or replaying reader may have fallen a ring behind while detached: it continues in
  // the disk log, or resyncs on its first poll and is told what it lost.
  next_sequence_ = atomic(slot.messages).load(std::memory_order_relaxed);
  sequence_known_ = true;
  lost_bytes_ = atomic(slot.lost_bytes).load(std::memory_order_relaxed);
  lost_messages_ = atomic(slot.lost_messages).load(std::memory_order_relaxed);
  safe_from_ = durable_ && !replaying ? cursor_ : kNoPosition;
  in_log_ = replaying && open_log();
  if (replaying && !in_log_) set_replaying(false);  // the log is gone: lapped
  return true;
}

// Moves take slot_ptr_ (TakenOnMove), so a moved-from subscriber has nothing to detach.
Subscriber::Subscriber(Subscriber&& o) noexcept = default;

Subscriber& Subscriber::operator=(Subscriber&& o) noexcept {
  if (this != &o) {
    std::destroy_at(this);  // detaches ours
    std::construct_at(this, std::move(o));
  }
  return *this;
}

Subscriber::~Subscriber() { detach(); }

void Subscriber::detach() noexcept {
  if (slot_ptr_ == nullptr) return;
  publish_position();
  detail::release_slot(detail::mapping_of(topic_), slot_, persistent_);
  slot_ptr_ = nullptr;
}

void Subscriber::publish_position() noexcept {
  if (manual_commit_) return;
  store_position(cursor_, next_sequence_);
}

void Subscriber::commit_position(std::uint64_t offset, std::uint64_t next_sequence) noexcept {
  assert(offset <= cursor_ && "commit_position past the position read");
  store_position(offset, next_sequence);
}

void Subscriber::store_position(std::uint64_t offset, std::uint64_t next_sequence) noexcept {
  if (slot_ptr_ == nullptr) return;
  auto& slot = slot_of(slot_ptr_);
  auto relaxed = std::memory_order_relaxed;  // published by the release store below
  atomic(slot.messages).store(next_sequence, relaxed);
  atomic(slot.lost_bytes).store(lost_bytes_, relaxed);
  atomic(slot.lost_messages).store(lost_messages_, relaxed);
  // release: pairs with the acquire load in Producer::rescan_limit(); our reads of every frame
  // before `offset` are done before a producer may overwrite them.
  atomic(slot.position).store(offset, std::memory_order_release);
  published_ = offset;
}

// ---- reading ----------------------------------------------------------------------------

RawFrame Subscriber::raw_frame(const Message& m) const noexcept {
  // message_view() points the key just past the frame's header, wherever the frame was read:
  // the ring, the checked copy or a log segment's mapping.
  const std::byte* frame = m.key.data() - sizeof(FrameHeader);
  RawFrame raw;
  raw.message = m;
  raw.bytes = ConstBytes(frame, sizeof(FrameHeader) + m.key.size() + m.value.size());
  // Read in place only below the end of the ring: a durable reader's frames at or past safe_from_
  // (checked reads use copy_, the log its own mapping).
  raw.held =
      durable_ && manual_commit_ && frame >= ring_.base && frame < ring_.base + ring_.capacity;
  return raw;
}

void Subscriber::deliver(const Message& message, FunctionRef<void(const Message&)> handler,
                         PollResult& result) noexcept {
  if (lost_pending_) {
    if (sequence_known_ && message.sequence > next_sequence_) {
      result.lost_messages += message.sequence - next_sequence_;
      lost_messages_ += message.sequence - next_sequence_;
    }
    result.lost_bytes += pending_lost_bytes_;
    pending_lost_bytes_ = 0;
    lost_pending_ = false;
  }
  next_sequence_ = message.sequence + 1;
  sequence_known_ = true;
  handler(message);
  ++result.messages;
  if (result.messages % kPublishEvery == 0) publish_position();
}

bool Subscriber::resync_after_lap() noexcept {
  // Continue at the oldest frame boundary still in the ring (see earliest_boundary()), which
  // is at least tail - capacity, so past everything that was overwritten.
  const std::uint64_t boundary =
      atomic(header_of(header_).reclaimed).load(std::memory_order_acquire);
  if (boundary <= cursor_ || boundary % ring_.alignment != 0) return false;
  lost_bytes_ += boundary - cursor_;
  pending_lost_bytes_ += boundary - cursor_;
  cursor_ = boundary;
  lost_pending_ = true;
  stuck_.stop();
  return true;
}

// Called when the frame at the cursor is not committed. Returns skipped if the caller should
// look again (the claim was stuck past the timeout and has been skipped, or the reader was
// lapped meanwhile), corrupt if the tail is not a frame boundary, else empty.
Subscriber::Frame Subscriber::stuck_claim_expired(std::uint64_t word) noexcept {
  auto& h = header_of(header_);
  const std::uint64_t tail = atomic(h.tail_position).load(std::memory_order_acquire);
  if (tail <= cursor_) {  // nothing claimed here yet: simply no data
    stuck_.stop();
    return Frame::empty;
  }
  // The tail is always a frame boundary; the skip below moves the cursor there.
  if (tail % ring_.alignment != 0) {
    corrupt_why_ = "the tail is not a frame boundary";
    corrupt_word_ = tail;
    return Frame::corrupt;
  }
  if (!stuck_.check(cursor_)) return Frame::empty;
  if (cursor_ < safe_from_ && tail > cursor_ + ring_.capacity)
    return Frame::skipped;  // poll resyncs

  if (detail::pad_stuck_claim(h, ring_, cursor_, word)) {
    // done: the frame is padding now (or its producer committed just in time)
  } else {
    // The producer died between its tail CAS and writing its claim mark, so the frame's length
    // is unknown. The tail is always a frame boundary: continue there and count the skip.
    lost_bytes_ += tail - cursor_;
    pending_lost_bytes_ += tail - cursor_;
    lost_pending_ = true;
    cursor_ = tail;
  }
  stuck_.stop();
  return Frame::skipped;
}

// A word of this lap that describes no valid frame (or a data frame out of sequence) may be
// stale bytes: the previous lap's payload or alignment slack, at a position no producer has
// written yet. A 4-byte lap tag is easily mimicked by small integers in a payload, and a
// reader at the producers' heels looks there before the claim mark lands. Such a word is
// corrupt only if it is still there, with the tail past it, after the stuck-claim timeout;
// until then it is "not yet" (and wait() does not take it for data, see data_available()).
Subscriber::Frame Subscriber::suspect(const char* why, std::uint64_t word,
                                      std::uint32_t key_length) noexcept {
  corrupt_why_ = why;
  corrupt_word_ = word;
  corrupt_key_length_ = key_length;
  suspect_position_ = cursor_;
  suspect_word_ = word;
  const std::uint64_t tail =
      atomic(header_of(header_).tail_position).load(std::memory_order_acquire);
  if (tail <= cursor_) {  // nothing claimed here: certainly stale bytes
    stuck_.stop();
    return Frame::empty;
  }
  // The one clock for "something is pending at the cursor": a claim, or a suspect word.
  return stuck_.check(cursor_) ? Frame::corrupt : Frame::empty;
}

Subscriber::Frame Subscriber::read_frame(Message& out) noexcept {
  const auto* frame = detail::frame_at(ring_, cursor_);
  const bool checked = cursor_ < safe_from_;
  auto& h = header_of(header_);
  if (checked &&
      atomic(h.tail_position).load(std::memory_order_acquire) > cursor_ + ring_.capacity) {
    return Frame::lapped;
  }
  // acquire: pairs with the producer's commit CAS (and padding store): the frame is complete.
  // A reader that may be lapped loads it racily: a later lap may be overwriting it right now.
  std::uint64_t word =
      checked ? detail::load_racy_acquire(&frame->commit)
              : atomic(const_cast<std::uint64_t&>(frame->commit)).load(std::memory_order_acquire);
  const detail::CommitWord commit = detail::classify(ring_, cursor_, word);
  if (commit.state == detail::Commit::absent || commit.state == detail::Commit::claimed) {
    if (checked && commit.state == detail::Commit::absent && commit.kind != FrameKind::kNone &&
        static_cast<std::int32_t>(layout::commit_lap(word) - ring_.lap(cursor_)) > 0) {
      // Looks like a later lap's frame. Only the tail can say so: a frame of a later lap here
      // means a producer claimed past cursor_ + ring_.capacity. Otherwise these are stale bytes
      // (frames of different sizes start at different places in each lap, so the cursor may
      // sit in an old frame's payload), e.g. behind a claim whose producer died before writing
      // its mark: that is a stuck claim, and reporting a lap would never skip it.
      if (detail::overwritten_now(h, ring_, cursor_)) return Frame::lapped;
    }
    // Most empty polls only mean "not yet". Looking at the tail (the producers' hot line) on
    // each would slow them down, so the stuck-claim check runs on one empty poll in 256.
    // Once a claim is pending here (the timer runs for it), every empty poll checks it.
    if (!stuck_.running_for(cursor_) && (++idle_polls_ & 255U) != 0) return Frame::empty;
    return stuck_claim_expired(word);
  }
  idle_polls_ = 0;
  if (commit.state == detail::Commit::invalid) {
    // A lapped reader's word may be a newer frame's payload: only a word read while the tail
    // proves the frame intact can be called corrupt.
    if (checked && detail::overwritten_now(h, ring_, cursor_)) return Frame::lapped;
    return suspect(commit.kind == FrameKind::kPadding
                       ? "padding of a bad length"
                       : "a length past max_message or the end of the ring",
                   word, 0);
  }
  if (commit.kind == FrameKind::kPadding) {
    if (layout::is_gap(word)) {  // a mirror's gap: lost at its source
      lost_bytes_ += commit.stride;
      pending_lost_bytes_ += commit.stride;
      lost_pending_ = true;
    }
    cursor_ += commit.stride;
    return Frame::skipped;
  }

  const std::uint64_t length = layout::commit_length(word);
  const FrameHeader* source = frame;
  if (checked) {
    if (!detail::copy_intact(h, ring_, cursor_, reinterpret_cast<const std::byte*>(frame),
                             commit.stride / 8, copy_.data())) {
      return Frame::lapped;
    }
    source = reinterpret_cast<const FrameHeader*>(copy_.data());
    if (source->commit != word) return Frame::lapped;
  }
  if (source->key_length > length) {
    return suspect("a key longer than the frame", word, source->key_length);
  }
  // Sequence numbers only grow, by one per claim: a data frame whose number cannot follow ours
  // is stale bytes that happen to carry this lap's tag (after a reported loss the next number
  // is unknown, so that case is not checked).
  if (sequence_known_ && !lost_pending_ &&
      source->sequence - next_sequence_ > (ring_.capacity >> 5)) {
    return suspect("a sequence number that cannot follow the last one read", word,
                   source->key_length);
  }
  out = detail::message_view(*source, cursor_, length);
  cursor_ += commit.stride;
  return Frame::message;
}

Result<PollResult> Subscriber::poll_some(FunctionRef<void(const Message&)> handler,
                                         std::size_t max_messages) noexcept {
  PollResult result;
  if (in_log_) {
    if (auto ok = poll_log(handler, max_messages, result); !ok) return ok.error();
    if (in_log_) max_messages = result.messages;  // still in the log: skip the ring below
  }
  Message message;
  while (result.messages < max_messages) {
    const Frame frame = read_frame(message);
    if (frame == Frame::message) {
      deliver(message, handler, result);
      continue;
    }
    if (frame == Frame::skipped) continue;
    if (frame == Frame::lapped) {
      // The ring lost our position: the disk log may still have it.
      if (enter_log()) {
        if (auto ok = poll_log(handler, max_messages, result); !ok) return ok.error();
        if (in_log_) break;
        continue;
      }
      if (resync_after_lap()) continue;
      // A sound ring never has a claim more than a ring past `reclaimed`, so a tail that laps
      // us (loaded first) with `reclaimed` not past us is a damaged header. Report it, or
      // wait() would find the lap again at once, forever.
      auto& h = header_of(header_);
      const std::uint64_t tail = atomic(h.tail_position).load(std::memory_order_acquire);
      // acquire: pairs with the producers' reclaim CAS (after the tail, see above).
      const std::uint64_t reclaimed = atomic(h.reclaimed).load(std::memory_order_acquire);
      if (tail > cursor_ + ring_.capacity &&
          (reclaimed <= cursor_ || reclaimed % ring_.alignment != 0)) {
        if (cursor_ != published_) publish_position();
        return Error(Errc::corrupt, "topic '" + topic_.name() + "' is corrupt: the reader at " +
                                        std::to_string(cursor_) + " is lapped (tail " +
                                        std::to_string(tail) + ") but the reclaimed position " +
                                        std::to_string(reclaimed) +
                                        " is not a frame boundary past it");
      }
    }
    if (frame == Frame::corrupt) {
      if (cursor_ != published_) publish_position();
      char detail[96];
      std::snprintf(detail, sizeof detail, " (commit word %016llx, key length %u)",
                    static_cast<unsigned long long>(corrupt_word_), corrupt_key_length_);
      return Error(Errc::corrupt, "topic '" + topic_.name() + "': invalid frame at offset " +
                                      std::to_string(cursor_) + ": " + corrupt_why_ + detail);
    }
    break;  // empty, or a changed frame the tail does not explain yet: look again next poll
  }
  if (cursor_ != published_) publish_position();
  return result;
}

bool Subscriber::data_available() const noexcept {
  if (in_log_) return true;  // poll reads the log, or moves on to the ring
  auto& h = header_of(header_);
  const auto* frame = detail::frame_at(ring_, cursor_);
  // seq_cst: pairs with the producer's seq_cst commit and sleepers load (see wait()). A reader
  // that may be lapped loads racily (a plain x86 load is what seq_cst compiles to anyway).
  std::uint64_t word =
      cursor_ < safe_from_
          ? detail::load_racy_acquire(&frame->commit)
          : atomic(const_cast<std::uint64_t&>(frame->commit)).load(std::memory_order_seq_cst);
  if (detail::committed(detail::classify(ring_, cursor_, word).state) &&
      (cursor_ != suspect_position_ || word != suspect_word_)) {
    return true;
  }
  // The tail is the producers' hot line: read it only when it can change the answer.
  const bool checked = cursor_ < safe_from_;
  if (!checked && !stuck_.running_for(cursor_)) return false;
  std::uint64_t tail = atomic(h.tail_position).load(std::memory_order_seq_cst);
  if (checked && tail > cursor_ + ring_.capacity) return true;  // lapped: poll resyncs
  // A claim pending at the cursor for longer than the stuck timeout: poll will skip it.
  return tail > cursor_ && stuck_.expired(cursor_);
}

Result<void> Subscriber::wait(const Wait& wait) {
  if (data_available()) return {};
  // The clock is read at the first slow step, not on entry: a busy-spin wait that ends within
  // its first 1023 spins (a reader at the producer's heels) reads no clock at all.
  std::int64_t start = 0;
  const std::int64_t timeout = wait.timeout.count();
  auto& h = header_of(header_);
  for (std::uint64_t spins = 1;; ++spins) {
    if (data_available()) return {};
    if (wait.kind == WaitKind::busy_spin && (spins & 1023) != 0) {
      detail::cpu_relax();
      continue;
    }
    const std::int64_t now = detail::monotonic_ns();
    if (start == 0) start = now;
    if (now - start >= timeout) return Errc::timed_out;
    // Start the stuck-claim clock if a claim is pending here (poll() would do the same).
    if (!stuck_.running_for(cursor_) &&
        atomic(h.tail_position).load(std::memory_order_acquire) > cursor_) {
      stuck_.start(cursor_);
    }
    if (spins < 128 || wait.kind == WaitKind::busy_spin) {
      detail::cpu_relax();
    } else if (wait.kind == WaitKind::spin_yield) {
      sched_yield();
    } else {
      // seq_cst: announce the sleeper before re-checking for data; pairs with the producer's
      // seq_cst commit then sleepers load, so one of us sees the other.
      auto& slot = slot_of(slot_ptr_);
      // relaxed: only the reaper reads it, after our process died.
      atomic(h.sleepers).fetch_add(1, std::memory_order_seq_cst);
      atomic(slot.sleeping).store(1, std::memory_order_relaxed);
      const std::uint32_t seen = atomic(h.futex_word).load(std::memory_order_seq_cst);
      if (!data_available()) {
        // Bounded sleeps: a stuck claim or a lap must be noticed without a wake-up.
        std::int64_t nap = std::min<std::int64_t>(timeout - (now - start), 100'000'000);
        detail::futex_wait(&h.futex_word, seen, nap);
      }
      atomic(slot.sleeping).store(0, std::memory_order_relaxed);
      atomic(h.sleepers).fetch_sub(1, std::memory_order_seq_cst);
    }
  }
}

}  // namespace ringbus
