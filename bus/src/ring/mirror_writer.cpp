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

TopicHeader& header_of(const Topic& topic) { return topic.mapping().header(); }

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

Result<void> MirrorWriter::try_append(std::uint64_t offset, ConstBytes frames) {
  Producer& p = producer_;
  auto& h = *static_cast<TopicHeader*>(p.header_);
  const std::uint64_t applied_at = applied();
  if (offset != applied_at) {
    return Error(Errc::invalid_argument, "frames at offset " + std::to_string(offset) +
                                             " do not continue mirror '" + p.topic().name() +
                                             "', which ends at " + std::to_string(applied_at));
  }
  const std::uint64_t end = offset + frames.size();
  auto bad = [&](std::uint64_t at, const std::string& why) {
    return Error(Errc::corrupt, "frames for mirror '" + p.topic().name() + "' at offset " +
                                    std::to_string(at) + ": " + why);
  };
  if (frames.size() % p.alignment_ != 0) return bad(offset, "not whole frames");
  // Its frames would overwrite each other, and with a durable reader it never fits.
  if (frames.size() > p.capacity_) {
    return Error(Errc::invalid_argument, "a batch of " + std::to_string(frames.size()) +
                                             " bytes for mirror '" + p.topic().name() +
                                             "' is larger than its ring (" +
                                             std::to_string(p.capacity_) + " bytes)");
  }
  // Check every frame before writing any.
  std::uint64_t messages_after = applied_messages();
  for (std::uint64_t at = offset; at < end;) {
    const std::byte* f = frames.data() + (at - offset);
    std::uint64_t word = 0;
    std::memcpy(&word, f, sizeof word);
    if (layout::commit_lap(word) != layout::lap_of(at, p.lap_shift_)) {
      return bad(at, "the frame's lap does not match its offset");
    }
    const FrameKind kind = layout::commit_kind(word);
    if (kind != FrameKind::kData && kind != FrameKind::kPadding) {
      return bad(at, "a frame that is neither data nor padding");
    }
    const std::uint64_t stride =
        layout::committed_stride(word, at & p.mask_, p.capacity_, p.max_message_, p.alignment_);
    if (stride == 0 || at + stride > end) {
      return bad(at, "a frame length past max_message, the ring's end or the batch");
    }
    if (kind == FrameKind::kData) {
      FrameHeader fh{};
      std::memcpy(&fh, f, sizeof fh);
      if (fh.key_length > layout::commit_length(word))
        return bad(at, "a key longer than its frame");
      if (fh.sequence < messages_after) return bad(at, "a sequence number that goes back");
      messages_after = fh.sequence + 1;
    }
    at += stride;
  }
  // acquire: pairs with our earlier tail CAS (a dead predecessor's too).
  const std::uint64_t tail = atomic(h.tail_position).load(std::memory_order_acquire);
  const std::uint64_t messages = atomic(h.tail_messages).load(std::memory_order_relaxed);
  if (tail < offset || tail % p.alignment_ != 0) {
    return Error(Errc::corrupt, "mirror '" + p.topic().name() + "': its tail " +
                                    std::to_string(tail) + " is behind its applied position " +
                                    std::to_string(offset) + " or not a frame boundary");
  }
  // [offset, tail) was claimed by a writer that died before it finished: write it again.
  if (end > tail) {
    if (const Errc failed = p.make_room(end); failed != Errc{}) return failed;
    detail::TailPair current{tail, messages};
    detail::TailPair next{end, std::max(messages, messages_after)};
    if (detail::cas_tail(&h.tail_position, current, next) != current) {
      return Error(Errc::corrupt, "mirror '" + p.topic().name() +
                                      "': its tail moved under the writer (another writer?)");
    }
  }
  for (std::uint64_t at = offset; at < end;) {
    const std::byte* f = frames.data() + (at - offset);
    std::uint64_t word = 0;
    std::memcpy(&word, f, sizeof word);
    const std::uint64_t stride =
        layout::committed_stride(word, at & p.mask_, p.capacity_, p.max_message_, p.alignment_);
    auto* frame = reinterpret_cast<FrameHeader*>(p.ring_ + (at & p.mask_));
    std::memcpy(reinterpret_cast<std::byte*>(frame) + sizeof word, f + sizeof word,
                stride - sizeof word);
    // release: pairs with the acquire load of the commit word in poll; the body is written.
    atomic(frame->commit).store(word, std::memory_order_release);
    at += stride;
  }
  atomic(h.applied_messages).store(messages_after, std::memory_order_relaxed);
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
  return {};
}

}  // namespace ringbus
