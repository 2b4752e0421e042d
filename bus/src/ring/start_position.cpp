// Resolving a reader's start position; every frame walked is bounds-checked.
#include "ring/start_position.hpp"

#include <sched.h>

#include <optional>
#include <string>

#include "layout/frame_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"

namespace ringbus::detail {
namespace {

using layout::FrameKind;

// The oldest frame boundary still in the ring: producers reuse space only after walking the
// previous lap's frames up to it (Producer::reclaim), so everything from here on is intact.
Result<std::uint64_t> earliest_boundary(TopicMapping& map) {
  const std::uint64_t alignment = map.config().frame_alignment;
  std::uint64_t earliest = 0;
  std::uint64_t tail = 0;
  // Both move while producers run: read the tail on both sides of `reclaimed` and accept a
  // pair only when the tail did not move, so a healthy topic never looks inconsistent.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    tail = atomic(map.header().tail_position).load(std::memory_order_acquire);
    // acquire: pairs with the producers' reclaim CAS.
    earliest = atomic(map.header().reclaimed).load(std::memory_order_acquire);
    if (atomic(map.header().tail_position).load(std::memory_order_acquire) == tail) break;
  }
  // A reclaim walk may pass the tail for a moment (its slack); the tail is a boundary too.
  if (earliest > tail && earliest % alignment == 0 && earliest - tail <= map.config().capacity) {
    earliest = tail;
  }
  if (earliest % alignment != 0 || tail % alignment != 0 || earliest > tail ||
      tail - earliest > map.config().capacity) {
    return Error(Errc::corrupt, "topic '" + map.name() + "' is corrupt: reclaimed position " +
                                    std::to_string(earliest) + " and tail " + std::to_string(tail) +
                                    " are inconsistent");
  }
  return earliest;
}

// Walks frames from a known boundary to `offset` to prove it is a frame boundary.
Result<void> check_boundary(TopicMapping& map, std::uint64_t from, std::uint64_t offset) {
  const RingView& ring = map.ring_view();
  std::uint64_t p = from;
  std::uint64_t frame_start = from;
  while (p < offset) {
    // acquire: pairs with the producer's commit; racy, as the frame may be overwritten now.
    const CommitWord commit = classify(ring, p, load_racy_acquire(&frame_at(ring, p)->commit));
    switch (commit.state) {
      case Commit::absent:
        return Error(Errc::offset_out_of_range,
                     "offset " + std::to_string(offset) + " is no longer (or not yet) in the ring");
      case Commit::claimed:
        return Error(Errc::not_ready, "a claim before offset " + std::to_string(offset) +
                                          " is not committed yet; try again");
      case Commit::invalid:
        return Error(Errc::corrupt, "invalid frame at offset " + std::to_string(p));
      case Commit::frame: break;
    }
    frame_start = p;
    p += commit.stride;
  }
  if (p != offset) {
    return Error(Errc::invalid_argument, "offset " + std::to_string(offset) +
                                             " is not a frame boundary (it is inside " +
                                             "the frame at " + std::to_string(frame_start) +
                                             " to " + std::to_string(p) + ")");
  }
  return {};
}

// The sequence number of the first message at or after frame boundary `start`: read from its
// frame (checked like a lossy read), or the tail's count if no message follows yet. A claim in
// flight there is waited for briefly. Unknown (nullopt) only if that does not settle.
std::optional<std::uint64_t> sequence_at(TopicMapping& map, std::uint64_t start) {
  const RingView& ring = map.ring_view();
  auto& h = map.header();
  for (int attempt = 0; attempt < 10000; ++attempt) {
    auto tail = read_tail(h);
    std::uint64_t p = start;
    while (p < tail.position) {
      const auto* frame = frame_at(ring, p);
      // acquire: pairs with the producer's commit; racy, as the frame may be overwritten now.
      const CommitWord commit = classify(ring, p, load_racy_acquire(&frame->commit));
      if (!committed(commit.state)) break;                       // in flight: try again
      if (commit.state == Commit::invalid) return std::nullopt;  // corrupt: poll reports it
      if (commit.kind == FrameKind::kPadding) {
        p += commit.stride;
        continue;
      }
      std::uint64_t sequence = 0;
      if (!copy_intact(h, ring, p, reinterpret_cast<const std::byte*>(&frame->sequence), 1,
                       &sequence)) {
        return std::nullopt;  // overwritten under us: the caller's reader will resync anyway
      }
      return sequence;
    }
    if (p >= tail.position) return tail.messages;
    if (attempt > 100) sched_yield();
  }
  return std::nullopt;
}

}  // namespace

Result<StartPoint> resolve_start(TopicMapping& map, const StartFrom& start) {
  StartPoint sp;
  switch (start.kind) {
    case StartFrom::Kind::latest: {
      // The tail becomes the reader's cursor: check it against `reclaimed` first (a tail that
      // is not a frame boundary would make the reader load a commit word past the ring).
      if (auto earliest = earliest_boundary(map); !earliest) return earliest.error();
      auto tail = read_tail(map.header());
      if (tail.position % map.config().frame_alignment != 0) {
        return Error(Errc::corrupt, "topic '" + map.name() + "' is corrupt: tail " +
                                        std::to_string(tail.position) + " is not a frame boundary");
      }
      return StartPoint{tail.position, tail.messages, true};
    }
    case StartFrom::Kind::earliest: {
      auto earliest = earliest_boundary(map);
      if (!earliest) return earliest.error();
      sp.position = *earliest;
      break;
    }
    case StartFrom::Kind::offset: {
      auto earliest_or = earliest_boundary(map);
      if (!earliest_or) return earliest_or.error();
      const std::uint64_t earliest = *earliest_or;
      std::uint64_t tail = atomic(map.header().tail_position).load(std::memory_order_acquire);
      if (start.offset < earliest || start.offset > tail) {
        return Error(Errc::offset_out_of_range, "offset " + std::to_string(start.offset) +
                                                    " is out of range: topic '" + map.name() +
                                                    "' has offsets " + std::to_string(earliest) +
                                                    " to " + std::to_string(tail) + " in its ring");
      }
      if (auto ok = check_boundary(map, earliest, start.offset); !ok) return ok.error();
      sp.position = start.offset;
      break;
    }
  }
  if (auto sequence = sequence_at(map, sp.position)) {
    sp.sequence = *sequence;
    sp.sequence_known = true;
  }
  return sp;
}

}  // namespace ringbus::detail
