// Turning a stuck claim into padding: shared by readers, producers and group members.
#pragma once

#include <algorithm>
#include <cstdint>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ringbus/ring_view.hpp"

namespace ringbus::detail {

// Whether the frames from `from` on, walked frame by frame, are a run claimed after a dead
// claim: each carries its position's lap (so was written in this lap), data frames carry
// increasing sequence numbers that a frame still in the ring can have, and the walk lands
// exactly on the tail `tail`, or on a claim not marked yet after at least one such data frame.
// Stale bytes (the last lap's frames, payloads) would have to mimic all of that.
inline bool frames_run_to_tail(const RingView& ring, std::uint64_t from, std::uint64_t tail,
                               std::uint64_t tail_messages) noexcept {
  const std::uint64_t oldest_sequence =
      tail_messages > ring.capacity / layout::kFrameHeaderSize
          ? tail_messages - ring.capacity / layout::kFrameHeaderSize
          : 0;
  std::uint64_t last_sequence = 0;
  bool any_data = false;
  std::uint64_t pos = from;
  for (std::uint64_t steps = 0; pos < tail && steps < ring.capacity / ring.alignment; ++steps) {
    const layout::FrameHeader* frame = frame_at(ring, pos);
    const std::uint64_t word = load_racy_acquire(&frame->commit);
    const CommitWord commit = classify(ring, pos, word);
    std::uint64_t stride = commit.stride;
    if (commit.state == Commit::claimed) {
      stride = layout::frame_stride(layout::commit_length(word), ring.alignment);
    } else if (commit.state != Commit::frame) {
      return any_data && commit.state == Commit::absent;
    }
    if (stride == 0 || ring.index(pos) + stride > ring.capacity) return false;
    if (commit.state == Commit::frame && commit.kind == layout::FrameKind::kData) {
      std::uint64_t sequence = 0;
      copy_racy(&sequence, reinterpret_cast<const std::byte*>(&frame->sequence), 1);
      if (sequence < oldest_sequence || sequence >= tail_messages ||
          (any_data && sequence <= last_sequence)) {
        return false;
      }
      last_sequence = sequence;
      any_data = true;
    }
    pos += stride;
  }
  return pos == tail;
}

// A producer that died between its tail CAS and its claim mark left a claim of unknown length
// at `position`: the bytes there are still the last lap's. The frames claimed after it are
// this lap's, so the first position past `position` from which they run to the tail
// (frames_run_to_tail) is where the dead claim ended. Returns that position, or 0 when there
// is none (yet: a producer after it may not have written its mark; or nothing came after it).
inline std::uint64_t end_of_unmarked_claim(const layout::TopicHeader& header, const RingView& ring,
                                           std::uint64_t position) noexcept {
  // acquire: pairs with the producers' tail CAS; the frames below it are claimed.
  const std::uint64_t tail =
      atomic(const_cast<std::uint64_t&>(header.tail_position)).load(std::memory_order_acquire);
  // relaxed: moves with the tail in the same CAS; only bounds the sequence numbers accepted.
  const std::uint64_t tail_messages =
      atomic(const_cast<std::uint64_t&>(header.tail_messages)).load(std::memory_order_relaxed);
  if (tail <= position || tail - position > ring.capacity) return 0;
  for (std::uint64_t candidate = position + ring.alignment; candidate < tail;
       candidate += ring.alignment) {
    if (frames_run_to_tail(ring, candidate, tail, tail_messages)) return candidate;
  }
  return 0;
}

// Turns the stuck claim at `position` (its word read as `word`) into padding and counts an
// aborted claim in the header: a claim mark of the position's lap becomes padding of the claim's
// stride; a claim without a mark, padding up to the frames after it (end_of_unmarked_claim; at
// most to the ring's end, where frames stop: a claim past it is padded in a second step).
// Returns false when neither applies (not a claim, or an unmarked claim whose end cannot be
// found). A CAS, because the stalled producer's commit may race with it: exactly one of them
// wins, and a losing producer's commit() reports aborted.
inline bool pad_stuck_claim(layout::TopicHeader& header, const RingView& ring,
                            std::uint64_t position, std::uint64_t word) {
  const CommitWord commit = classify(ring, position, word);
  std::uint64_t stride = 0;
  if (commit.state == Commit::claimed) {
    stride = layout::frame_stride(layout::commit_length(word), ring.alignment);
  } else if (commit.state == Commit::absent) {
    const std::uint64_t end = end_of_unmarked_claim(header, ring, position);
    if (end == 0) return false;
    stride = std::min(end - position, ring.capacity - ring.index(position));
  } else {
    return false;
  }
  const std::uint64_t padding =
      layout::make_commit(ring.lap(position), layout::FrameKind::kPadding, stride);
  // acq_rel: pairs with the producer's commit CAS on the same word.
  if (atomic(frame_at(ring, position)->commit)
          .compare_exchange_strong(word, padding, std::memory_order_acq_rel)) {
    atomic(header.aborted_claims).fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace ringbus::detail
