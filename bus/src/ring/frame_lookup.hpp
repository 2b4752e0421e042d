// Finding frames in a ring: the frame header at a position, what a commit word read there says
// about it, and the checked copy of a frame that producers of a later lap may be overwriting.
// Every walk over the ring (producers reclaiming space, start positions, group dispatch and
// takeover, the mirror writer, the inspector) classifies words here, so they agree on what a
// frame is.
#pragma once

#include <cstddef>
#include <cstdint>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ringbus/ring_view.hpp"

namespace ringbus::detail {

inline layout::FrameHeader* frame_at(const RingView& ring, std::uint64_t position) noexcept {
  return reinterpret_cast<layout::FrameHeader*>(ring.at(position));
}

// What a commit word says about the frame at the position it was read from.
enum class Commit : std::uint8_t {
  absent,   // nothing of this lap: an older lap's word, or never-written (zero) memory
  claimed,  // this lap: a producer's claim mark, its commit pending
  frame,    // this lap: a committed data or padding frame that fits the ring (stride set)
  invalid,  // this lap, committed, but no frame that fits: damage, or stale bytes that only
            // look like this lap's (see Subscriber::suspect())
};

// A word of this lap that a producer committed (data or padding), whether or not it fits.
inline bool committed(Commit state) noexcept {
  return state == Commit::frame || state == Commit::invalid;
}

struct CommitWord {
  Commit state = Commit::absent;
  layout::FrameKind kind = layout::FrameKind::kNone;
  std::uint64_t stride = 0;  // Commit::frame: bytes from this frame to the next
};

// The same answer as layout::committed_stride() with the lap check in front, written for the
// readers' hot path: data frames first, and a mask instead of a division for the alignment
// (a power of two).
inline CommitWord classify(const RingView& ring, std::uint64_t position,
                           std::uint64_t word) noexcept {
  const layout::FrameKind kind = layout::commit_kind(word);
  if (layout::commit_lap(word) != ring.lap(position) || kind == layout::FrameKind::kNone) {
    return {Commit::absent, kind, 0};
  }
  std::uint64_t stride = 0;
  if (kind == layout::FrameKind::kData) {
    const std::uint64_t length = layout::commit_length(word);
    if (length > ring.max_message) return {Commit::invalid, kind, 0};
    stride = layout::frame_stride(length, ring.alignment);
  } else if (kind == layout::FrameKind::kPadding) {
    stride = layout::padding_stride(word);
    if (stride == 0 || (stride & (ring.alignment - 1)) != 0) return {Commit::invalid, kind, 0};
  } else {
    return {Commit::claimed, kind, 0};
  }
  if (ring.index(position) + stride > ring.capacity) return {Commit::invalid, kind, 0};
  return {Commit::frame, kind, stride};
}

// Whether producers may have written over the frame at `position` by now: one claimed past
// position + capacity (producers claim before they write). Called after racy loads of the
// frame; the barrier keeps them before the tail load.
inline bool overwritten_now(layout::TopicHeader& header, const RingView& ring,
                            std::uint64_t position) noexcept {
  load_load_barrier();
  // relaxed: ordered after the frame loads by the barrier above (x86-64 TSO).
  return atomic(header.tail_position).load(std::memory_order_relaxed) > position + ring.capacity;
}

// Copies `words` 8-byte words from `from`, inside the frame at `position`, into `to`, then
// checks the tail: true when the copy is intact (no producer may have written there while it
// was copied). The read side of a seqlock; a false copy is to be thrown away.
inline bool copy_intact(layout::TopicHeader& header, const RingView& ring, std::uint64_t position,
                        const std::byte* from, std::size_t words, std::uint64_t* to) noexcept {
  copy_racy(to, from, words);
  return !overwritten_now(header, ring, position);
}

}  // namespace ringbus::detail
