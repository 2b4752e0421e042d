// A Message view over a frame (in the ring, or a reader's checked copy of it).
#pragma once

#include <algorithm>
#include <cstdint>

#include "layout/frame_layout.hpp"
#include "ringbus/subscriber.hpp"

namespace ringbus::detail {

// The message in `frame`, at stream position `offset`, with `length` key + value bytes (from
// its commit word). The caller has checked frame.key_length <= length (and reports corrupt
// otherwise); the key length is loaded once more here and clamped to `length`, so a frame
// changed between that check and this view (a damaged or hostile writer) still gives a view
// inside the frame.
inline Message message_view(const layout::FrameHeader& frame, std::uint64_t offset,
                            std::uint64_t length) noexcept {
  const auto* payload = reinterpret_cast<const std::byte*>(&frame + 1);
  const std::uint64_t key_length = std::min<std::uint64_t>(
      *static_cast<const volatile std::uint32_t*>(&frame.key_length), length);
  Message m;
  m.offset = offset;
  m.sequence = frame.sequence;
  m.timestamp_ns = frame.timestamp_ns;
  m.key = ConstBytes(payload, key_length);
  m.value = ConstBytes(payload + key_length, length - key_length);
  return m;
}

}  // namespace ringbus::detail
