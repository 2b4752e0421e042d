// A sink of the frame pump: where a connector puts a topic's frames (a disk log, a link to
// another host). It takes runs of whole frames verbatim, at their stream offsets.
#pragma once

#include <cstdint>
#include <span>

#include "ringbus/bytes.hpp"
#include "ringbus/result.hpp"

namespace ringbus::connect {

// Whole frames [start, start + size) of the topic's stream, as they lie in the ring: data frames
// and the padding between them. The bytes are in one or two pieces (two where the run crosses the
// ring's end), valid until the next call into the pump, or, when `in_ring`, until the pump
// commits its reader past them (they are the ring's bytes, which a durable reader holds).
struct FrameRun {
  std::uint64_t start = 0;
  std::uint64_t size = 0;
  std::span<const ConstBytes> pieces;
  bool in_ring = false;
  // Sequence number of the run's last data frame; nullptr when the run holds only padding.
  const std::uint64_t* last_sequence = nullptr;
};

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // True while the sink holds no frame: its first run may start anywhere.
  virtual bool empty() const = 0;
  // The offset just past its last frame: the next run starts here, or later after a loss (the
  // offsets in between are lost; the sink records a gap).
  virtual std::uint64_t end() const = 0;
  // Bytes it takes before a natural boundary (the disk log: the end of its segment). The pump
  // hands its runs over once it has gathered this much.
  virtual std::uint64_t room() const = 0;
  // Takes a run. On an error, end() tells how much of it was taken; the pump keeps the rest and
  // hands it over again later. An end() that moved back means the sink lost frames it had taken
  // (a failed fsync): the pump then reads them again from its committed position.
  virtual Result<void> append(const FrameRun& run) = 0;
};

}  // namespace ringbus::connect
