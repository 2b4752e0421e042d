// A Message view over a frame (in the ring, or a reader's checked copy of it).
#pragma once

#include <cstdint>

#include "layout/frame_layout.hpp"
#include "ringbus/subscriber.hpp"

namespace ringbus::detail {

// The message in `frame`, at stream position `offset`, with `length` key + value bytes (from
// its commit word). The caller has checked frame.key_length <= length.
inline Message message_view(const layout::FrameHeader& frame, std::uint64_t offset,
                            std::uint64_t length) noexcept {
  const auto* payload = reinterpret_cast<const std::byte*>(&frame + 1);
  Message m;
  m.offset = offset;
  m.sequence = frame.sequence;
  m.timestamp_ns = frame.timestamp_ns;
  m.key = ConstBytes(payload, frame.key_length);
  m.value = ConstBytes(payload + frame.key_length, length - frame.key_length);
  return m;
}

}  // namespace ringbus::detail
