// A producer's timestamp source: the clock read when the caller gives no timestamp.
#include <time.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

std::int64_t realtime_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Publishes one message each way (publish, claim + commit, a batch of two) and returns the
// timestamps the reader sees.
std::vector<std::int64_t> stamps_of(const Topic& topic, TimestampSource source) {
  auto sub = Subscriber::attach(topic);
  EXPECT_TRUE(sub);
  Producer producer(topic, ProducerOptions{source});
  EXPECT_TRUE(producer.try_publish({}, as_bytes("published")));
  auto claim = producer.try_claim(8);
  EXPECT_TRUE(claim);
  EXPECT_TRUE(claim->commit());
  const std::vector<Record> batch{{{}, as_bytes("a")}, {{}, as_bytes("b")}};
  EXPECT_TRUE(producer.try_publish_batch(batch));
  std::vector<std::int64_t> stamps;
  (void)sub->poll([&](const Message& m) { stamps.push_back(m.timestamp_ns); });
  return stamps;
}

TEST(Timestamps, NoneLeavesTheClockOffTheCommitPath) {
  testing::TempBus tb;
  Topic topic = tb.create("none");
  EXPECT_EQ(stamps_of(topic, TimestampSource::none), (std::vector<std::int64_t>{0, 0, 0, 0}));
  // A timestamp the caller gives is kept.
  Producer producer(topic, ProducerOptions{TimestampSource::none});
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  auto claim = producer.try_claim(4);
  ASSERT_TRUE(claim);
  ASSERT_TRUE(claim->commit(42));
  std::int64_t seen = -1;
  ASSERT_TRUE(sub->poll([&](const Message& m) { seen = m.timestamp_ns; }));
  EXPECT_EQ(seen, 42);
}

TEST(Timestamps, RealtimeAndCoarseAreTheWallClockCoarseWithinATick) {
  testing::TempBus tb;
  Topic topic = tb.create("clocks");
  for (TimestampSource source : {TimestampSource::realtime, TimestampSource::coarse}) {
    const std::int64_t before = realtime_now();
    const auto stamps = stamps_of(topic, source);
    const std::int64_t after = realtime_now();
    ASSERT_EQ(stamps.size(), 4U);
    for (std::int64_t t : stamps) {
      // The coarse clock is the last tick: up to a tick (at most 10 ms on any kernel) behind.
      const std::int64_t slack = source == TimestampSource::coarse ? 10'000'000 : 0;
      EXPECT_GE(t, before - slack);
      EXPECT_LE(t, after);
    }
    EXPECT_EQ(stamps[2], stamps[3]);  // one reading per batch
  }
}

}  // namespace
}  // namespace ringbus
