// RingInspector: every state a frame can be in (data with its head copied, end-of-ring padding,
// a mirror's gap, a claim not committed, space producers reused), and it takes no reader slot.
#include "ringbus/inspector.hpp"

#include <string>

#include <gtest/gtest.h>

#include "ringbus/mirror.hpp"
#include "ringbus/producer.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

ConstBytes text(const std::string& s) {
  return ConstBytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}
std::string as_text(ConstBytes b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

TopicOptions small(Policy policy = Policy::overwrite) {
  TopicOptions o;
  o.capacity = 4096;
  o.frame_alignment = 64;
  o.policy = policy;
  return o;
}

TEST(RingInspector, ReadsDataPaddingAndPendingWithoutAReaderSlot) {
  testing::TempBus bus;
  Topic t = bus.create("t", small());
  Producer p(t);
  ASSERT_TRUE(p.publish(text("key"), text("a value")));
  RingInspector ring(t, 5);  // copies 5 bytes of each message
  auto first = ring.read(0);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_EQ(first->state, FrameState::data);
  EXPECT_EQ(first->stride, 64U);
  EXPECT_EQ(first->length, 10U);
  EXPECT_EQ(first->key_length, 3U);
  EXPECT_EQ(first->sequence, 0U);
  EXPECT_GT(first->timestamp_ns, 0);
  EXPECT_EQ(as_text(first->head), "keya ");
  EXPECT_EQ(t.snapshot().readers.size(), 0U) << "an inspector takes no reader slot";

  auto next = ring.read(64);  // nothing published there yet
  ASSERT_TRUE(next);
  EXPECT_EQ(next->state, FrameState::pending);
  EXPECT_EQ(ring.tail(), 64U);
  EXPECT_EQ(ring.read(3).code(), Errc::invalid_argument);

  // A message that does not fit before the ring's end leaves padding there.
  // Frames of 960 bytes at 64, 1024, 1984 and 2944; then 256 bytes do not fit in the last 192.
  const std::string value(900, 'x');
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.publish(text("k"), text(value)));
  ASSERT_TRUE(p.publish(text("k"), text(std::string(200, 'y'))));
  std::uint64_t at = 1024;  // the frame at 64 is partly overwritten by the one at 4096
  for (int i = 0; i < 3; ++i) {
    auto big = ring.read(at);
    ASSERT_TRUE(big);
    EXPECT_EQ(big->state, FrameState::data);
    EXPECT_EQ(big->length, 901U);
    at += big->stride;
  }
  auto pad = ring.read(at);
  ASSERT_TRUE(pad);
  EXPECT_EQ(pad->state, FrameState::padding);
  EXPECT_EQ(at + pad->stride, 4096U);

  // Producers lap the inspector: the first frame is overwritten, the earliest moves on.
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p.publish(text("k"), text("filler")));
  auto old = ring.read(0);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->state, FrameState::overwritten);
  auto earliest = ring.resolve(StartFrom::earliest());
  ASSERT_TRUE(earliest);
  EXPECT_GT(*earliest, 4096U);
  auto there = ring.read(*earliest);
  ASSERT_TRUE(there);
  EXPECT_EQ(there->state, FrameState::data);
}

TEST(RingInspector, ShowsAMirrorsGap) {
  testing::TempBus bus;
  TopicOptions o = small();
  o.mirror_of = "source-host (test)";
  Topic m = bus.create("m", o);
  auto w = MirrorWriter::open(m);
  ASSERT_TRUE(w) << w.error().message();
  ASSERT_TRUE(w->try_append_gap(0, 640));
  RingInspector ring(m);
  auto gap = ring.read(0);
  ASSERT_TRUE(gap) << gap.error().message();
  EXPECT_EQ(gap->state, FrameState::gap);
  EXPECT_EQ(gap->stride, 640U);
  auto after = ring.read(640);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, FrameState::pending);
}

}  // namespace
}  // namespace ringbus
