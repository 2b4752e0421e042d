// classify() is the readers' fast copy of layout::committed_stride() with the lap check in
// front: the two must agree on every commit word, at every position of the ring.
#include "ring/frame_lookup.hpp"

#include <cstdint>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"

namespace ringbus {
namespace {

using layout::FrameKind;

TEST(FrameLookup, ClassifyAgreesWithCommittedStrideOnEveryKindLengthLapAndPosition) {
  for (std::uint64_t alignment : {std::uint64_t{8}, std::uint64_t{64}}) {
    detail::RingView ring;
    ring.capacity = 4096;
    ring.mask = ring.capacity - 1;
    ring.lap_shift = 12;
    ring.max_message = 1024;
    ring.alignment = alignment;
    std::uint64_t frames = 0;
    for (std::uint64_t position = 3 * ring.capacity; position < 4 * ring.capacity;
         position += alignment) {
      for (std::uint32_t lap : {2U, 3U, 4U}) {
        for (FrameKind kind :
             {FrameKind::kNone, FrameKind::kClaimed, FrameKind::kData, FrameKind::kPadding}) {
          for (std::uint64_t length :
               {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{8}, std::uint64_t{9},
                std::uint64_t{64}, std::uint64_t{64} | layout::kGapBit, std::uint64_t{100},
                std::uint64_t{1024}, std::uint64_t{1025}, std::uint64_t{4096}}) {
            const std::uint64_t word = layout::make_commit(lap, kind, length);
            const detail::CommitWord c = detail::classify(ring, position, word);
            const bool this_lap = lap == ring.lap(position);
            const std::uint64_t stride = layout::committed_stride(
                word, ring.index(position), ring.capacity, ring.max_message, ring.alignment);
            if (!this_lap || kind == FrameKind::kNone) {
              EXPECT_EQ(c.state, detail::Commit::absent) << word;
            } else if (kind == FrameKind::kClaimed) {
              EXPECT_EQ(c.state, detail::Commit::claimed) << word;
            } else if (stride == 0) {
              EXPECT_EQ(c.state, detail::Commit::invalid) << word << " at " << position;
            } else {
              EXPECT_EQ(c.state, detail::Commit::frame) << word << " at " << position;
              EXPECT_EQ(c.stride, stride) << word << " at " << position;
              ++frames;
            }
          }
        }
      }
    }
    EXPECT_GT(frames, 0U);
  }
}

}  // namespace
}  // namespace ringbus
