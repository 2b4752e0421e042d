// MirrorWriter: frames of another host's topic, written verbatim at their offsets. Claims the
// whole batch with one tail CAS (producers' room rules: durable readers under block, reclaim
// under overwrite), then writes each frame's body before its commit word, as a producer does.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/futex.hpp"
#include "ringbus/mirror.hpp"
#include "topic/liveness.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using detail::atomic;
using layout::FrameHeader;
using layout::FrameKind;
using layout::TopicHeader;

TopicHeader& header_of(const Topic& topic) { return detail::mapping_of(topic).header(); }

}  // namespace

Result<MirrorWriter> MirrorWriter::open(const Topic& topic) {
  if (topic.config().mirror_of.empty()) {
    return Error(Errc::invalid_argument, "topic '" + topic.name() + "' is not a mirror");
  }
  auto& h = header_of(topic);
  const auto self = detail::self_identity();
  // relaxed: the pid is a claim between bridges; the start time tells a reused pid apart.
  std::uint32_t pid = atomic(h.receiver_pid).load(std::memory_order_relaxed);
  if (pid != 0 && pid != self.pid &&
      detail::is_alive(pid, atomic(h.receiver_start_time).load(std::memory_order_relaxed))) {
    return Error(Errc::busy, "mirror '" + topic.name() + "' is written by process " +
                                 std::to_string(pid) + " (another ringbus-bridge)");
  }
  // acq_rel: of two bridges racing here, one wins; the loser sees the winner's pid.
  if (!atomic(h.receiver_pid).compare_exchange_strong(pid, self.pid, std::memory_order_acq_rel)) {
    return Error(Errc::busy, "mirror '" + topic.name() + "' is written by process " +
                                 std::to_string(pid) + " (another ringbus-bridge)");
  }
  atomic(h.receiver_start_time).store(self.start_time, std::memory_order_relaxed);
  MirrorWriter writer(topic);
  writer.owner_ = true;
  return writer;
}

MirrorWriter::MirrorWriter(MirrorWriter&& other) noexcept
    : producer_(std::move(other.producer_)), owner_(std::exchange(other.owner_, false)) {}

MirrorWriter::~MirrorWriter() {
  if (!owner_) return;
  auto& h = header_of(producer_.topic());
  std::uint32_t self = detail::self_identity().pid;
  // relaxed: only frees the claim for the next bridge.
  atomic(h.receiver_pid).compare_exchange_strong(self, 0, std::memory_order_relaxed);
}

std::uint64_t MirrorWriter::applied() const noexcept {
  // acquire: pairs with our own release store (and a dead predecessor's).
  return atomic(header_of(producer_.topic()).applied_position).load(std::memory_order_acquire);
}

std::uint64_t MirrorWriter::applied_messages() const noexcept {
  return atomic(header_of(producer_.topic()).applied_messages).load(std::memory_order_relaxed);
}

void MirrorWriter::touch() noexcept {
  atomic(header_of(producer_.topic()).last_contact_unix_ns)
      .store(static_cast<std::uint64_t>(detail::realtime_ns()), std::memory_order_relaxed);
}

Result<void> MirrorWriter::check_continues(std::uint64_t offset) const {
  const std::uint64_t applied_at = applied();
  if (offset == applied_at) return {};
  return Error(Errc::invalid_argument, "frames at offset " + std::to_string(offset) +
                                           " do not continue mirror '" + topic().name() +
                                           "', which ends at " + std::to_string(applied_at));
}

// Moves the tail to `end` (room made by the caller). [offset, tail) may have been claimed by a
// writer that died before it finished: that space is written again.
Result<void> MirrorWriter::claim_through(std::uint64_t offset, std::uint64_t end,
                                         std::uint64_t messages_after) {
  Producer& p = producer_;
  auto& h = *static_cast<TopicHeader*>(p.header_);
  // acquire: pairs with our earlier tail CAS (a dead predecessor's too).
  const std::uint64_t tail = atomic(h.tail_position).load(std::memory_order_acquire);
  const std::uint64_t messages = atomic(h.tail_messages).load(std::memory_order_relaxed);
  if (tail < offset || tail % p.ring_.alignment != 0) {
    return Error(Errc::corrupt, "mirror '" + p.topic().name() + "': its tail " +
                                    std::to_string(tail) + " is behind its applied position " +
                                    std::to_string(offset) + " or not a frame boundary");
  }
  if (end <= tail) return {};
  detail::TailPair current{tail, messages};
  detail::TailPair next{end, std::max(messages, messages_after)};
  if (detail::cas_tail(&h.tail_position, current, next) != current) {
    return Error(Errc::corrupt, "mirror '" + p.topic().name() +
                                    "': its tail moved under the writer (another writer?)");
  }
  return {};
}

void MirrorWriter::publish(std::uint64_t end, std::uint64_t messages) {
  auto& h = *static_cast<TopicHeader*>(producer_.header_);
  atomic(h.applied_messages).store(messages, std::memory_order_relaxed);
  // seq_cst read-modify-write: releases the frames to applied() and snapshots (pairs with their
  // acquire load), and, being a locked instruction on x86-64, a full barrier that orders the
  // commit words before the sleepers load below, like Claim::commit's CAS (pairs with the
  // seq_cst increment in Subscriber::wait). An RMW rather than a fence: GCC cannot instrument
  // atomic_thread_fence under ThreadSanitizer.
  atomic(h.applied_position).exchange(end, std::memory_order_seq_cst);
  if (atomic(h.sleepers).load(std::memory_order_seq_cst) != 0) {
    atomic(h.futex_word).fetch_add(1, std::memory_order_seq_cst);
    detail::futex_wake_all(&h.futex_word);
  }
}

Result<void> MirrorWriter::try_append(std::uint64_t offset, ConstBytes frames) {
  Producer& p = producer_;
  if (auto ok = check_continues(offset); !ok) return ok;
  const std::uint64_t end = offset + frames.size();
  auto bad = [&](std::uint64_t at, const std::string& why) {
    return Error(Errc::corrupt, "frames for mirror '" + p.topic().name() + "' at offset " +
                                    std::to_string(at) + ": " + why);
  };
  if (frames.size() % p.ring_.alignment != 0) return bad(offset, "not whole frames");
  // Its frames would overwrite each other, and with a durable reader it never fits.
  if (frames.size() > p.ring_.capacity) {
    return Error(Errc::invalid_argument, "a batch of " + std::to_string(frames.size()) +
                                             " bytes for mirror '" + p.topic().name() +
                                             "' is larger than its ring (" +
                                             std::to_string(p.ring_.capacity) + " bytes)");
  }
  // Check every frame before writing any.
  std::uint64_t messages_after = applied_messages();
  for (std::uint64_t at = offset; at < end;) {
    const std::byte* f = frames.data() + (at - offset);
    std::uint64_t word = 0;
    std::memcpy(&word, f, sizeof word);
    if (layout::commit_lap(word) != p.ring_.lap(at)) {
      return bad(at, "the frame's lap does not match its offset");
    }
    const detail::CommitWord commit = detail::classify(p.ring_, at, word);
    if (commit.kind != FrameKind::kData && commit.kind != FrameKind::kPadding) {
      return bad(at, "a frame that is neither data nor padding");
    }
    if (commit.state != detail::Commit::frame || at + commit.stride > end) {
      return bad(at, "a frame length past max_message, the ring's end or the batch");
    }
    if (commit.kind == FrameKind::kData) {
      FrameHeader fh{};
      std::memcpy(&fh, f, sizeof fh);
      if (fh.key_length > layout::commit_length(word))
        return bad(at, "a key longer than its frame");
      if (fh.sequence < messages_after) return bad(at, "a sequence number that goes back");
      messages_after = fh.sequence + 1;
    }
    at += commit.stride;
  }
  if (const Errc failed = p.make_room(end); failed != Errc{}) return failed;
  if (auto ok = claim_through(offset, end, messages_after); !ok) return ok;
  for (std::uint64_t at = offset; at < end;) {
    const std::byte* f = frames.data() + (at - offset);
    std::uint64_t word = 0;
    std::memcpy(&word, f, sizeof word);
    const std::uint64_t stride = detail::classify(p.ring_, at, word).stride;  // checked above
    auto* frame = detail::frame_at(p.ring_, at);
    std::memcpy(reinterpret_cast<std::byte*>(frame) + sizeof word, f + sizeof word,
                stride - sizeof word);
    // release: pairs with the acquire load of the commit word in poll; the body is written.
    atomic(frame->commit).store(word, std::memory_order_release);
    at += stride;
  }
  publish(end, messages_after);
  return {};
}

Result<void> MirrorWriter::try_append_gap(std::uint64_t offset, std::uint64_t to) {
  Producer& p = producer_;
  if (auto ok = check_continues(offset); !ok) return ok;
  if (to <= offset || to % p.ring_.alignment != 0) {
    return Error(Errc::invalid_argument, "a gap in mirror '" + p.topic().name() +
                                             "' must end at a frame boundary past offset " +
                                             std::to_string(offset) + ", not at " +
                                             std::to_string(to));
  }
  std::uint64_t from = offset;
  std::uint64_t end = to;
  if (!p.blocking_ && to - offset > p.ring_.capacity) {
    // More than a ring: only the last ring's worth is written. Readers below it are lapped once
    // the tail passes and continue at `from`, which they find in `reclaimed` (set first: a
    // lapped reader with `reclaimed` behind it would take the header for damaged).
    from = to - p.ring_.capacity;
    auto& h = *static_cast<TopicHeader*>(p.header_);
    // release: pairs with the acquire loads of lapped readers (resync) and of reclaim().
    atomic(h.reclaimed).store(from, std::memory_order_release);
  } else {
    // A piece at a time, like a batch: a durable reader must pass it before the next one.
    end = std::min(to, offset + std::max<std::uint64_t>(p.ring_.capacity / 4, p.ring_.alignment));
    if (const Errc failed = p.make_room(end); failed != Errc{}) return failed;
  }
  const std::uint64_t messages = applied_messages();  // the next data frame says how many
  if (auto ok = claim_through(offset, end, messages); !ok) return ok;
  // Gap padding never crosses the ring's end, and its length must fit a commit word.
  const std::uint64_t most = layout::kMaxFrameLength & ~std::uint64_t{p.ring_.alignment - 1};
  for (std::uint64_t at = from; at < end;) {
    const std::uint64_t index = p.ring_.index(at);
    const std::uint64_t length = std::min({end - at, p.ring_.capacity - index, most});
    auto* frame = detail::frame_at(p.ring_, at);
    // release: pairs with the acquire load of the commit word in poll (nothing else to read).
    atomic(frame->commit)
        .store(layout::make_commit(p.ring_.lap(at), FrameKind::kPadding, length | layout::kGapBit),
               std::memory_order_release);
    at += length;
  }
  publish(end, messages);
  return {};
}

}  // namespace ringbus
