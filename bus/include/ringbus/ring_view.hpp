// RingView: where a topic's ring is mapped and its shape, read once from the validated topic
// header. Every handle that walks the ring (producer, subscriber, group member, mirror writer,
// inspector) addresses it through this one copy: a position's index in the ring, its lap, the
// start of its lap. Plain data, copied into each handle; not part of the API.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringbus::detail {

struct RingView {
  std::byte* base = nullptr;      // the ring's first byte in this process's mapping
  std::uint64_t capacity = 0;     // bytes, a power of two
  std::uint64_t mask = 0;         // capacity - 1
  std::uint32_t lap_shift = 0;    // log2(capacity)
  std::uint64_t max_message = 0;  // key + value bytes of the largest message
  std::uint64_t alignment = 8;    // frames start at multiples of it (8 or 64)

  // Stream positions grow forever; the ring holds the last `capacity` bytes of the stream.
  std::uint64_t index(std::uint64_t position) const noexcept { return position & mask; }
  std::byte* at(std::uint64_t position) const noexcept { return base + (position & mask); }
  // The lap tag commit words carry: a frame written at `position` is tagged with its lap.
  std::uint32_t lap(std::uint64_t position) const noexcept {
    return static_cast<std::uint32_t>(position >> lap_shift);
  }
  std::uint64_t lap_start(std::uint64_t position) const noexcept { return position & ~mask; }
};

}  // namespace ringbus::detail
