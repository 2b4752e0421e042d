// Turning a stuck claim into padding: shared by readers, producers and group members.
#pragma once

#include <cstdint>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ringbus/ring_view.hpp"

namespace ringbus::detail {

// If `word` (read at `position`) is a claim mark of the position's lap, replaces it with
// padding of the claim's stride and counts an aborted claim in the header. Returns false when
// `word` is not such a claim mark (nothing to do). A CAS, because the stalled producer's
// commit may race with it: exactly one of them wins, and a losing producer's commit() reports
// aborted.
inline bool pad_stuck_claim(layout::TopicHeader& header, const RingView& ring,
                            std::uint64_t position, std::uint64_t word) {
  if (classify(ring, position, word).state != Commit::claimed) return false;
  const std::uint64_t padding =
      layout::make_commit(ring.lap(position), layout::FrameKind::kPadding,
                          layout::frame_stride(layout::commit_length(word), ring.alignment));
  // acq_rel: pairs with the producer's commit CAS on the same word.
  if (atomic(frame_at(ring, position)->commit)
          .compare_exchange_strong(word, padding, std::memory_order_acq_rel)) {
    atomic(header.aborted_claims).fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace ringbus::detail
