// Turning a stuck claim into padding: shared by readers, producers and group members.
#pragma once

#include <cstdint>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"

namespace ringbus::detail {

// If `word` (read from `frame`, at a position of lap `lap`) is a claim mark, replaces it with
// padding of the claim's stride and counts an aborted claim in the header. Returns false when
// `word` is not a claim mark of that lap (nothing to do). A CAS, because the stalled producer's
// commit may race with it: exactly one of them wins, and a losing producer's commit() reports
// aborted.
inline bool pad_stuck_claim(layout::TopicHeader& header, layout::FrameHeader& frame,
                            std::uint64_t word, std::uint32_t lap, std::uint64_t alignment) {
  if (layout::commit_lap(word) != lap || layout::commit_kind(word) != layout::FrameKind::kClaimed) {
    return false;
  }
  const std::uint64_t padding =
      layout::make_commit(lap, layout::FrameKind::kPadding,
                          layout::frame_stride(layout::commit_length(word), alignment));
  // acq_rel: pairs with the producer's commit CAS on the same word.
  if (atomic(frame.commit).compare_exchange_strong(word, padding, std::memory_order_acq_rel)) {
    atomic(header.aborted_claims).fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace ringbus::detail
