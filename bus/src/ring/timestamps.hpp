// A producer's clock: the timestamp a message gets when its caller gives none.
#pragma once

#include <cstdint>

#include "ring/atomics.hpp"
#include "ringbus/producer.hpp"

namespace ringbus::detail {

inline std::int64_t timestamp_now(TimestampSource source) noexcept {
  if (source == TimestampSource::realtime) [[likely]] {
    return realtime_ns();
  }
  switch (source) {
    case TimestampSource::realtime: return realtime_ns();
    case TimestampSource::coarse: return realtime_coarse_ns();
    case TimestampSource::none: return 0;
  }
  return 0;
}

}  // namespace ringbus::detail
