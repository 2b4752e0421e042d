// Where a new reader starts: resolving earliest / latest / an offset to a frame boundary, and
// the sequence number of the first message there.
#pragma once

#include <cstdint>

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
