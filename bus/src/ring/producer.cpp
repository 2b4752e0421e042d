// Claim/commit: producers reserve frames with a 16-byte CAS on the tail and publish them by
// turning the frame's commit word from kClaimed into kData.
#include "ringbus/producer.hpp"

#include <sched.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <ctime>
#include <memory>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/futex.hpp"
#include "ring/stuck_claim.hpp"
#include "ring/timestamps.hpp"
#include "topic/reader_slots.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using detail::atomic;
using layout::FrameHeader;
using layout::FrameKind;
using layout::TopicHeader;

constexpr std::uint64_t kKindMask = std::uint64_t{3} << 30;

std::uint64_t with_kind(std::uint64_t word, FrameKind kind) {
  return (word & ~kKindMask) | (std::uint64_t{static_cast<std::uint32_t>(kind)} << 30);
}

}  // namespace

// ---- Claim ------------------------------------------------------------------------------

// Moves take commit_word_ (TakenOnMove), so a moved-from claim has nothing to abort.
Claim::Claim(Claim&& other) noexcept = default;

Claim& Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    std::destroy_at(this);  // aborts ours
    std::construct_at(this, std::move(other));
  }
  return *this;
}

Claim::~Claim() { abort(); }

Result<std::uint64_t> Claim::commit(std::int64_t timestamp_ns) noexcept {
  assert(active() && "Claim::commit on a committed, aborted or moved-from claim");
  auto* frame = reinterpret_cast<FrameHeader*>(commit_word_.get());
  frame->timestamp_ns = timestamp_ns != 0 ? timestamp_ns : detail::timestamp_now(timestamps_);
  std::uint64_t expected = claimed_word_;
  commit_word_ = nullptr;
  // seq_cst: publishes the frame (pairs with the acquire load of the commit word in poll) and
  // orders it before the sleepers load below (pairs with the seq_cst increment in
  // Subscriber::wait). A CAS, not a store, because a reader may have turned this claim into
  // padding after the stuck-claim timeout.
  if (!atomic(frame->commit)
           .compare_exchange_strong(expected, with_kind(claimed_word_, FrameKind::kData),
                                    std::memory_order_seq_cst)) {
    return Errc::aborted;
  }
  auto* header = static_cast<TopicHeader*>(header_);
  // seq_cst: see above. Readers that only spin never write this line, so it stays cached.
  if (atomic(header->sleepers).load(std::memory_order_seq_cst) != 0) {
    atomic(header->futex_word).fetch_add(1, std::memory_order_seq_cst);
    detail::futex_wake_all(&header->futex_word);
  }
  return position_;
}

void Claim::abort() noexcept {
  if (!active()) return;
  auto* frame = reinterpret_cast<FrameHeader*>(commit_word_.get());
  std::uint64_t expected = claimed_word_;
  std::uint64_t stride = layout::frame_stride(layout::commit_length(claimed_word_), alignment_);
  std::uint64_t padding =
      layout::make_commit(layout::commit_lap(claimed_word_), FrameKind::kPadding, stride);
  commit_word_ = nullptr;
  // release: pairs with the acquire load in poll; fails harmlessly if a reader already did it.
  atomic(frame->commit).compare_exchange_strong(expected, padding, std::memory_order_release);
}

// ---- Producer ---------------------------------------------------------------------------

Producer::Producer(Topic topic, const ProducerOptions& options)
    : topic_(std::move(topic)), timestamps_(options.timestamps) {
  auto& map = detail::mapping_of(topic_);
  ring_ = map.ring_view();
  header_ = &map.header();
  blocking_ = map.config().policy == Policy::block;
  read_only_ = !map.config().mirror_of.empty();
  stuck_.set_timeout(map.header().stuck_claim_timeout_ns);
}

// Called when the frame at `position` (previous lap) is not committed. A claim pending longer
// than the stuck-claim timeout is turned into padding, as a waiting reader would; a frame with
// no claim mark at all (its producer died right after its tail CAS) has an unknown length, so
// the reclaimed position jumps to the next lap start, which is always a frame boundary.
bool Producer::skip_stalled_claim(std::uint64_t position, std::uint64_t word) noexcept {
  if (!stuck_.check(position)) return false;
  auto& header = *static_cast<TopicHeader*>(header_);
  if (!detail::pad_stuck_claim(header, ring_, position, word)) {
    std::uint64_t expected = position;
    // acq_rel: pairs with other producers' reclaim CAS.
    atomic(header.reclaimed)
        .compare_exchange_strong(expected, ring_.lap_start(position) + ring_.capacity,
                                 std::memory_order_acq_rel);
  }
  stuck_.stop();
  return true;
}

// Makes sure every frame of the previous lap below `target` is committed before its space is
// reused: a producer still writing into a claimed frame must not be lapped by another producer,
// or it would scribble over the newer frame. Walks the old frames from the shared reclaimed
// position (plus some slack, so this runs about once per slack bytes, not per message).
Errc Producer::reclaim(std::uint64_t target) noexcept {
  auto& header = *static_cast<TopicHeader*>(header_);
  const std::uint64_t goal =
      target + std::min<std::uint64_t>(ring_.capacity / 8, std::uint64_t{64} * 1024);
  // acquire: pairs with the acq_rel CAS below in other producers.
  std::uint64_t reclaimed = atomic(header.reclaimed).load(std::memory_order_acquire);
  for (;;) {
    // A healthy ring never has a claimed byte more than a ring past `reclaimed` (claims check
    // it first, against a value at most the one loaded here), so `target` is less than a ring
    // past it; an unaligned value would make the walk load a commit word across the end of
    // the ring.
    if (reclaimed % ring_.alignment != 0 ||
        target - std::min(target, reclaimed) > 2 * ring_.capacity) {
      return Errc::corrupt;
    }
    if (reclaimed >= target) {
      // `target` may come from a stale guess of the tail, so check an upper bound against the
      // tail itself, loaded after `reclaimed`: a walk never passes it by more than its slack.
      // (Too far ahead, producers would never walk again and could overwrite claims in flight.)
      if (reclaimed > target + ring_.capacity &&
          reclaimed >
              atomic(header.tail_position).load(std::memory_order_acquire) + ring_.capacity) {
        return Errc::corrupt;
      }
      break;
    }
    std::uint64_t p = reclaimed;
    std::uint64_t word = 0;
    while (p < goal) {
      const auto* frame = detail::frame_at(ring_, p);
      // acquire: pairs with the commit CAS; its producer is done writing this frame. Racy: if
      // another producer reclaimed past p meanwhile, a newer frame may be written here, but
      // then the CAS from `reclaimed` below fails and this walk is discarded.
      word = detail::load_racy_acquire(&frame->commit);
      ++reclaim_loads_;
      const detail::CommitWord commit = detail::classify(ring_, p, word);
      if (commit.state != detail::Commit::frame) break;  // in flight, or unreadable
      p += commit.stride;
    }
    if (p > reclaimed) {
      // acq_rel: publishes the walk; on failure `reclaimed` gets the newer value. On success it
      // keeps the old one, so move on from p ourselves: walking [reclaimed, p) again would be
      // wasted, and wrong once another producer reuses that space (a spurious would_block).
      if (atomic(header.reclaimed)
              .compare_exchange_strong(reclaimed, p, std::memory_order_acq_rel)) {
        reclaimed = p;
      }
      continue;
    }
    if (!skip_stalled_claim(reclaimed, word)) return Errc::would_block;
    reclaimed = atomic(header.reclaimed).load(std::memory_order_acquire);
  }
  reclaimed_ = reclaimed;
  stuck_.stop();
  return Errc{};
}

void Producer::rescan_limit() noexcept {
  auto& map = detail::mapping_of(topic_);
  auto& header = map.header();
  // Tail first, then the slots (all seq_cst): a reader whose registration this scan misses
  // registered after we read the tail, and reads frames in place only from a tail it loads
  // after registering, which is at least ours (Subscriber::attach).
  std::uint64_t limit = atomic(header.tail_position).load(std::memory_order_seq_cst);
  for (std::uint32_t i = 0; i < map.config().max_readers; ++i) {
    auto& slot = map.slot(i);
    std::uint64_t state = atomic(slot.state).load(std::memory_order_seq_cst);
    if (layout::slot_state(state) != layout::kSlotActive ||
        // seq_cst: a replaying reader that clears kReplaying registers like an attach does
        // (Subscriber::leave_log), so this load is ordered like the state load above.
        (atomic(slot.flags).load(std::memory_order_seq_cst) &
         (layout::kSlotDurable | layout::kSlotReplaying)) != layout::kSlotDurable) {
      continue;
    }
    // acquire: pairs with the release store in Subscriber::publish_position(); the reader's
    // reads of everything below this position happen before we overwrite it.
    std::uint64_t position = atomic(slot.position).load(std::memory_order_acquire);
    if (position < limit) limit = position;
  }
  limit_ = limit;
}

Errc Producer::make_room(std::uint64_t end) noexcept {
  auto* header = static_cast<TopicHeader*>(header_);
  // A durable reader or group registered since our last scan: scan now, so that only a claim
  // already past this check when it registered can use a limit computed without it (instead
  // of every claim up to a ring past the last scan).
  // acquire: pairs with the seq_cst increment after the registration (acquire_slot()).
  if (blocking_) {
    const std::uint64_t epoch = atomic(header->readers_epoch).load(std::memory_order_acquire);
    if (epoch != readers_epoch_) {
      readers_epoch_ = epoch;
      rescan_limit();
    }
  }
  if (blocking_ && end > limit_ + ring_.capacity) {
    rescan_limit();
    if (end > limit_ + ring_.capacity) {
      return Errc::would_block;
    }
  }
  // Only when a producer stalled mid-claim a whole lap ago: the one case where an overwrite
  // producer waits (see reclaim()).
  if (end > reclaimed_ + ring_.capacity) {
    return reclaim(end - ring_.capacity);
  }
  return Errc{};
}

Result<Claim> Producer::try_claim(std::size_t value_size, ConstBytes key) noexcept {
  Claim claim;
  if (Errc error{}; !claim_into(claim, value_size, key, error)) return error;
  return claim;
}

bool Producer::claim_into(Claim& claim, std::size_t value_size, ConstBytes key,
                          Errc& error) noexcept {
  if (read_only_) [[unlikely]] {
    error = Errc::read_only;
    return false;
  }
  if (value_size > ring_.max_message || key.size() > ring_.max_message - value_size) {
    error = Errc::too_large;
    return false;
  }
  const std::uint64_t length = key.size() + value_size;
  const std::uint64_t stride = layout::frame_stride(length, ring_.alignment);
  auto* header = static_cast<TopicHeader*>(header_);
  // relaxed: only a guess for the CAS, which returns the real value when it is stale.
  detail::TailPair current{atomic(header->tail_position).load(std::memory_order_relaxed),
                           atomic(header->tail_messages).load(std::memory_order_relaxed)};
  std::uint64_t start = 0;
  std::uint64_t pad = 0;
  for (;;) {
    // The tail is always a frame boundary. A damaged header whose tail is not would make the
    // padding store below cross the end of the ring.
    if ((current.position & (ring_.alignment - 1)) != 0) {
      error = Errc::corrupt;
      return false;
    }
    const std::uint64_t index = ring_.index(current.position);
    pad = index + stride > ring_.capacity ? ring_.capacity - index : 0;  // frames never wrap
    start = current.position + pad;
    const std::uint64_t end = start + stride;
    if (const Errc failed = make_room(end); failed != Errc{}) {
      error = failed;
      return false;
    }
    detail::TailPair next{end, current.messages + 1};
    detail::TailPair seen = detail::cas_tail(&header->tail_position, current, next);
    if (seen == current) break;
    current = seen;
  }
  if (pad != 0) {
    auto* padding = detail::frame_at(ring_, current.position);
    // release: pairs with the acquire load of the commit word in poll.
    atomic(padding->commit)
        .store(layout::make_commit(ring_.lap(current.position), FrameKind::kPadding, pad),
               std::memory_order_release);
  }
  auto* frame = detail::frame_at(ring_, start);
  const std::uint64_t claimed = layout::make_commit(ring_.lap(start), FrameKind::kClaimed, length);
  // relaxed: a reader reads this only to skip a stuck claim, and needs nothing but the word.
  atomic(frame->commit).store(claimed, std::memory_order_relaxed);
  frame->sequence = current.messages;
  frame->key_length = static_cast<std::uint32_t>(key.size());
  frame->reserved = 0;
  auto* payload = reinterpret_cast<std::byte*>(frame + 1);
  if (!key.empty()) std::memcpy(payload, key.data(), key.size());

  claim.header_ = header_;
  claim.commit_word_ = &frame->commit;
  claim.claimed_word_ = claimed;
  claim.position_ = start;
  claim.alignment_ = ring_.alignment;
  claim.timestamps_ = timestamps_;
  claim.value_ = MutableBytes(payload + key.size(), value_size);
  return true;
}

Result<Claim> Producer::claim(std::size_t value_size, ConstBytes key, const Wait& wait) {
  Claim claim;
  auto claimed = retry_while_blocked(
      [&] {
        Errc error{};
        return claim_into(claim, value_size, key, error) ? Errc{} : error;
      },
      wait);
  if (!claimed) return claimed.error();
  return claim;
}

Result<void> Producer::retry_while_blocked(FunctionRef<Errc()> attempt, const Wait& wait) {
  constexpr std::int64_t kReapIntervalNs = 50'000'000;
  // spin_yield yields only this long; then, as with futex, the producer sleeps. Readers do not
  // wake producers (that would put a system call on every read), so a producer waiting for
  // space naps, doubling the nap up to kMaxNapNs: a blocked producer uses next to no CPU, and
  // notices space at most kMaxNapNs late.
  constexpr std::int64_t kYieldForNs = 1'000'000;
  constexpr std::int64_t kMinNapNs = 20'000;
  constexpr std::int64_t kMaxNapNs = 2'000'000;
  const std::int64_t start = detail::monotonic_ns();
  const std::int64_t timeout = wait.timeout.count();
  std::int64_t last_reap = start;
  std::int64_t nap = kMinNapNs;
  for (std::uint64_t spins = 0;; ++spins) {
    const Errc failed = attempt();
    if (failed == Errc{}) return {};
    if (failed == Errc::corrupt) return corrupt_error();
    if (failed == Errc::read_only) return read_only_error();
    if (failed != Errc::would_block) return failed;
    if (wait.kind == WaitKind::busy_spin && (spins & 1023) != 0) {
      detail::cpu_relax();
      continue;
    }
    const std::int64_t now = detail::monotonic_ns();
    if (now - start >= timeout) return blocked_error(now - start);
    if (now - last_reap >= kReapIntervalNs) {
      // Dead readers must not hold us back forever; this is the slow path anyway.
      topic_.reap_dead_readers();
      last_reap = now;
    }
    if (spins <= 64 || wait.kind == WaitKind::busy_spin) {
      detail::cpu_relax();
    } else if (wait.kind == WaitKind::spin_yield && now - start < kYieldForNs) {
      sched_yield();
    } else {
      const std::int64_t left = timeout - (now - start);
      const std::int64_t ns = std::min(nap, left);
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      nanosleep(&ts, nullptr);
      nap = std::min(nap * 2, kMaxNapNs);
    }
  }
}

Error Producer::corrupt_error() const {
  auto& header = *static_cast<TopicHeader*>(header_);
  return Error(Errc::corrupt,
               "topic file " + topic_.path() + " is corrupt: tail position " +
                   std::to_string(atomic(header.tail_position).load(std::memory_order_relaxed)) +
                   " and reclaimed position " +
                   std::to_string(atomic(header.reclaimed).load(std::memory_order_relaxed)) +
                   " are not frame boundaries of one ring (frame alignment " +
                   std::to_string(ring_.alignment) + ", capacity " +
                   std::to_string(ring_.capacity) + "); delete and re-create the topic");
}

Error Producer::read_only_error() const {
  return Error(Errc::read_only, "topic '" + topic_.name() + "' is a mirror of " +
                                    topic_.config().mirror_of +
                                    ": only the ringbus-bridge that receives it writes into it; "
                                    "publish on the source host");
}

Error Producer::blocked_error(std::int64_t waited_ns) const {
  std::string text = "no space in topic '" + topic_.name() + "' (waited " +
                     std::to_string(waited_ns / 1'000'000) + " ms)";
  if (auto bp = back_pressure(topic_.name(), topic_.snapshot()); bp) {
    text += ": " + bp->text;
  } else {
    text +=
        ": a producer stalled in the middle of a claim a ring ago (it is skipped after the "
        "topic's stuck-claim timeout)";
  }
  return Error(Errc::timed_out, std::move(text));
}

namespace {

// Waits until safe_past() is past `offset`: spins (busy_spin), or naps growing to 2 ms. Returns
// false at the timeout.
template <class F>
bool wait_until_past(std::uint64_t offset, const Wait& wait, F safe_past) {
  constexpr std::int64_t kMinNapNs = 20'000;
  constexpr std::int64_t kMaxNapNs = 2'000'000;
  const std::int64_t start = detail::monotonic_ns();
  std::int64_t nap = kMinNapNs;
  for (std::uint64_t spins = 0;; ++spins) {
    if (safe_past() > offset) return true;
    const std::int64_t now = detail::monotonic_ns();
    if (now - start >= wait.timeout.count()) return false;
    if (wait.kind == WaitKind::busy_spin || spins < 64) {
      detail::cpu_relax();
      continue;
    }
    const std::int64_t ns = std::min(nap, wait.timeout.count() - (now - start));
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    nanosleep(&ts, nullptr);
    nap = std::min(nap * 2, kMaxNapNs);
  }
}

}  // namespace

Result<void> Producer::wait_durable(std::uint64_t offset, const Wait& wait) const {
  auto& h = *static_cast<TopicHeader*>(header_);
  // acquire: pairs with the bridge's release store of the durable position after its fsync.
  auto durable = [&] { return atomic(h.durable_position).load(std::memory_order_acquire); };
  if (wait_until_past(offset, wait, durable)) return {};
  const auto snap = topic_.snapshot();
  std::string why = !snap.recorder || !snap.recorder->alive
                        ? "no ringbus-bridge records topic '" + topic_.name() + "' now"
                        : "its ringbus-bridge has made it durable up to offset " +
                              std::to_string(snap.recorder->durable_position) + " (" +
                              snap.recorder->state + ")";
  return Error(Errc::timed_out, "offset " + std::to_string(offset) + " of topic '" + topic_.name() +
                                    "' is not durable yet: " + why);
}

Result<void> Producer::wait_mirrored(std::uint64_t offset, std::uint32_t receivers,
                                     const Wait& wait) const {
  if (receivers == 0 || receivers > layout::kForwardLinks) {
    return Error(Errc::invalid_argument,
                 "wait_mirrored: receivers must be 1 to " + std::to_string(layout::kForwardLinks));
  }
  auto& h = *static_cast<TopicHeader*>(header_);
  // The `receivers`-th highest acknowledged position over the topic's forward links: the
  // highest position that at least `receivers` links acknowledged.
  auto acked = [&] {
    std::uint64_t position = 0;
    for (auto& candidate : h.forward) {
      if (atomic(candidate.destination[0]).load(std::memory_order_relaxed) == '\0') continue;
      // acquire: pairs with the forwarder's release store once the receiver acknowledged.
      const std::uint64_t p = atomic(candidate.acked_position).load(std::memory_order_acquire);
      std::uint32_t holding = 0;
      for (auto& link : h.forward) {
        if (atomic(link.destination[0]).load(std::memory_order_relaxed) == '\0') continue;
        holding += atomic(link.acked_position).load(std::memory_order_acquire) >= p ? 1 : 0;
      }
      if (holding >= receivers && p > position) position = p;
    }
    return position;
  };
  if (wait_until_past(offset, wait, acked)) return {};
  std::string links;
  for (const ForwardInfo& f : topic_.snapshot().forwards) {
    links += (links.empty() ? "" : ", ") + f.destination + " acknowledged up to " +
             std::to_string(f.acked_position) + " (" + f.state + ")";
  }
  if (links.empty()) links = "no ringbus-bridge forwards topic '" + topic_.name() + "'";
  return Error(Errc::timed_out, "offset " + std::to_string(offset) + " of topic '" + topic_.name() +
                                    "' is not held by " + std::to_string(receivers) +
                                    " receiver(s) yet: " + links);
}

Result<std::uint64_t> Producer::try_publish(ConstBytes key, ConstBytes value) noexcept {
  Claim claim;  // on the stack, not in a Result: this is the copy-in fast path
  if (Errc error{}; !claim_into(claim, value.size(), key, error)) return error;
  if (!value.empty()) std::memcpy(claim.value_.data(), value.data(), value.size());
  return claim.commit();
}

Result<std::uint64_t> Producer::publish(ConstBytes key, ConstBytes value, const Wait& wait) {
  auto claimed = claim(value.size(), key, wait);
  if (!claimed) return claimed.error();
  if (!value.empty()) std::memcpy(claimed->bytes().data(), value.data(), value.size());
  return claimed->commit();
}

}  // namespace ringbus
