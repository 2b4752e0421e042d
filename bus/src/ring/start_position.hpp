// Where a new reader starts: resolving earliest / latest / an offset to a frame boundary, and
// the sequence number of the first message there.
#pragma once

#include <cstdint>
#include <optional>

#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus::detail {

struct StartPoint {
  std::uint64_t position = 0;
  std::uint64_t sequence = 0;
  bool sequence_known = false;
};

// Errors: offset_out_of_range, invalid_argument (not a frame boundary), not_ready, corrupt.
Result<StartPoint> resolve_start(TopicMapping& map, const StartFrom& start);

}  // namespace ringbus::detail

namespace ringbus::detail {

// Where a reader starting at `start` begins in the topic's disk log, when it must: `earliest`
// while the log reaches further back than the ring, or an offset older than the ring that the
// log holds. nullopt: start in the ring (resolve_start). Errors: offset_out_of_range naming the
// earliest available offset, invalid_argument (not a frame boundary), corrupt.
Result<std::optional<StartPoint>> resolve_log_start(TopicMapping& map, const StartFrom& start);

}  // namespace ringbus::detail
