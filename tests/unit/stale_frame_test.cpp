// Stale bytes that mimic a frame of the current lap: a reader at the producers' heels reads the
// ring before the claim mark lands, where the previous lap left payload or alignment slack, and
// small integers in a payload easily carry this lap's 4-byte tag. Such a word is "not yet",
// never a corrupt topic and never a message (seen on a 16-core machine with three subscribers).
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::TempBus;

// Writes a fake frame header of the current lap at the tail, where nothing was claimed yet.
void plant_stale_header(const Topic& topic, layout::FrameKind kind, std::uint64_t length,
                        std::uint64_t sequence, std::uint32_t key_length) {
  auto& map = detail::mapping_of(topic);
  const std::uint64_t tail = topic.snapshot().tail;
  auto* frame =
      reinterpret_cast<layout::FrameHeader*>(map.ring() + (tail & (map.config().capacity - 1)));
  frame->sequence = sequence;
  frame->key_length = key_length;
  frame->commit = layout::make_commit(layout::lap_of(tail, map.lap_shift()), kind, length);
}

std::vector<std::string> poll_values(Subscriber& sub, Errc* error = nullptr) {
  std::vector<std::string> values;
  auto r = sub.poll([&](const Message& m) { values.emplace_back(as_string(m.value)); });
  if (!r && error != nullptr) *error = r.code();
  EXPECT_TRUE(r || error != nullptr) << r.error().message();
  return values;
}

class StaleFrame : public ::testing::TestWithParam<Durability> {};

TEST_P(StaleFrame, BadPaddingOfThisLapAtAnUnclaimedPositionIsNotYetNotCorrupt) {
  TempBus tb;
  auto topic = tb.create("t", {.capacity = 4096});
  Producer p(topic);
  ASSERT_TRUE(p.try_publish({}, as_bytes("first")));
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  o.durability = GetParam();
  auto sub = Subscriber::attach(topic, o);
  ASSERT_TRUE(sub);
  ASSERT_EQ(poll_values(*sub), std::vector<std::string>{"first"});
  plant_stale_header(topic, layout::FrameKind::kPadding, 12, 0, 0);  // 12: not a padding length
  Errc error{};
  EXPECT_TRUE(poll_values(*sub, &error).empty());
  EXPECT_EQ(error, Errc{}) << "stale bytes taken for a corrupt frame";
  // wait() does not take them for data: it times out instead of returning at once.
  auto waited = sub->wait(Wait::spin_yield(50ms));
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.code(), Errc::timed_out);
  ASSERT_TRUE(p.try_publish({}, as_bytes("second")));
  EXPECT_EQ(poll_values(*sub), std::vector<std::string>{"second"});
}

TEST_P(StaleFrame, ADataFrameOfThisLapOutOfSequenceIsNeverDelivered) {
  TempBus tb;
  auto topic = tb.create("t", {.capacity = 4096});
  Producer p(topic);
  ASSERT_TRUE(p.try_publish({}, as_bytes("first")));
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  o.durability = GetParam();
  auto sub = Subscriber::attach(topic, o);
  ASSERT_TRUE(sub);
  ASSERT_EQ(poll_values(*sub), std::vector<std::string>{"first"});
  // A plausible length, and a sequence field of payload bytes.
  plant_stale_header(topic, layout::FrameKind::kData, 5, 0x1100000000002a2aULL, 0);
  Errc error{};
  EXPECT_TRUE(poll_values(*sub, &error).empty()) << "stale bytes delivered as a message";
  EXPECT_EQ(error, Errc{});
  ASSERT_TRUE(p.try_publish({}, as_bytes("second")));
  EXPECT_EQ(poll_values(*sub), std::vector<std::string>{"second"});
}

TEST_P(StaleFrame, ABadWordThatStaysPastTheStuckTimeoutWithTheTailPastItIsCorrupt) {
  TempBus tb;
  TopicOptions t;
  t.capacity = 4096;
  t.stuck_claim_timeout = 20ms;
  auto topic = tb.create("t", t);
  Producer p(topic);
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  o.durability = GetParam();
  auto sub = Subscriber::attach(topic, o);
  ASSERT_TRUE(sub);
  auto offset = p.try_publish({}, as_bytes("damaged"));
  ASSERT_TRUE(offset);
  auto& map = detail::mapping_of(topic);
  auto* frame = reinterpret_cast<layout::FrameHeader*>(map.ring() + (*offset & 4095));
  frame->commit = layout::make_commit(layout::lap_of(*offset, map.lap_shift()),
                                      layout::FrameKind::kPadding, 12);
  Errc error{};
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (error == Errc{} && std::chrono::steady_clock::now() < deadline) {
    EXPECT_TRUE(poll_values(*sub, &error).empty());
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(error, Errc::corrupt) << "a damaged frame below the tail is reported in the end";
}

TEST(StaleFrameGroup, StaleBytesAtTheDispatchPositionAreNeitherAMessageNorCorrupt) {
  TempBus tb;
  auto topic = tb.create("t", {.capacity = 4096});
  Producer p(topic);
  GroupOptions g;
  g.start = StartFrom::earliest();
  auto member = GroupMember::join(topic, "g", g);
  ASSERT_TRUE(member);
  ASSERT_TRUE(p.try_publish({}, as_bytes("first")));
  std::vector<std::string> got;
  auto collect = [&](const Message& m) { got.emplace_back(as_string(m.value)); };
  auto first = member->poll(collect);
  ASSERT_TRUE(first);
  ASSERT_EQ(got, std::vector<std::string>{"first"});
  ASSERT_TRUE(member->ack_up_to(topic.snapshot().tail));
  got.clear();
  for (auto kind : {layout::FrameKind::kData, layout::FrameKind::kPadding}) {
    plant_stale_header(topic, kind, kind == layout::FrameKind::kData ? 5 : 12,
                       0x1100000000002a2aULL, 0);
    auto r = member->poll(collect);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_TRUE(got.empty()) << "stale bytes delivered as a message";
  }
  ASSERT_TRUE(p.try_publish({}, as_bytes("second")));
  auto second = member->poll(collect);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(got, std::vector<std::string>{"second"});
}

INSTANTIATE_TEST_SUITE_P(Readers, StaleFrame,
                         ::testing::Values(Durability::durable, Durability::lossy),
                         [](const ::testing::TestParamInfo<Durability>& i) {
                           return i.param == Durability::durable ? "durable" : "lossy";
                         });

}  // namespace
}  // namespace ringbus
