// Looking at a topic's ring without reading it as a subscriber: for tools that show frames
// (`ringbus topic dump`). An inspector takes no reader slot, so it never holds producers back
// and never appears in describe; it works on a read-only mapping. Each frame is copied and then
// checked against the tail (the seqlock-style read of lossy subscribers), so a frame that
// producers reuse while it is read is reported as overwritten, never shown torn.
// Thread safety: one thread per inspector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringbus/bytes.hpp"
#include "ringbus/export.hpp"
#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"

namespace ringbus {

enum class FrameState : std::uint32_t {
  data,         // a committed message
  padding,      // skipped bytes (the ring's end, an aborted claim)
  gap,          // a mirror's gap: bytes its source lost (readers count them as lost)
  pending,      // nothing committed here yet: a producer is writing it, died, or never came
  overwritten,  // producers reused this space: go on at the earliest offset
};

struct InspectedFrame {
  FrameState state = FrameState::pending;
  std::uint64_t offset = 0;
  std::uint64_t stride = 0;  // data, padding, gap: bytes from here to the next frame
  // data only:
  std::uint64_t length = 0;  // key + value bytes
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t key_length = 0;
  // The first bytes of key + value (at most the inspector's head size), valid until the next
  // read().
  ConstBytes head;
};

class RINGBUS_API RingInspector {
 public:
  // `head_bytes`: how much of each message read() copies.
  explicit RingInspector(Topic topic, std::size_t head_bytes = 4096);

  // Where a subscriber starting at `from` would start in the ring. Errors: offset_out_of_range,
  // invalid_argument (not a frame boundary), not_ready, corrupt.
  Result<std::uint64_t> resolve(const StartFrom& from) const;
  // The next byte position producers will claim: frames below it are claimed.
  std::uint64_t tail() const noexcept;

  // The frame at `offset`, a frame boundary. Errors: corrupt (a committed word that describes no
  // frame that fits, or a key longer than its message, in bytes producers have not reused).
  Result<InspectedFrame> read(std::uint64_t offset);

  const Topic& topic() const noexcept { return topic_; }

 private:
  Topic topic_;
  std::size_t head_bytes_ = 0;
  std::vector<std::uint64_t> copy_;  // a frame header and head: the copy is word by word
};

}  // namespace ringbus
