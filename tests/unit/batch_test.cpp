// Batch publish: one tail claim for many messages, committed so readers see the batch at once.
#include <array>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/mirror.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "testing/fault_point.hpp"

namespace ringbus {
namespace {

using testing::TempBus;

ConstBytes bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
std::string text_of(ConstBytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::vector<Message> drain(Subscriber& sub, std::vector<std::string>* values = nullptr) {
  std::vector<Message> got;
  for (;;) {
    auto r = sub.poll([&](const Message& m) {
      got.push_back(m);
      if (values != nullptr) values->push_back(text_of(m.value));
    });
    EXPECT_TRUE(r) << r.error().message();
    if (!r || r->messages == 0) return got;
  }
}

TEST(Batch, DeliversEveryRecordInOrderWithConsecutiveSequencesAndItsOffsets) {
  TempBus tb;
  Topic topic = tb.create("batch");
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  Producer producer(topic);
  ASSERT_TRUE(producer.try_publish(bytes_of("k"), bytes_of("before")));
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::vector<Record> records;
  for (int i = 0; i < 10; ++i) {
    keys.push_back("key-" + std::to_string(i));
    values.push_back(std::string(static_cast<std::size_t>(i * 37), static_cast<char>('a' + i)));
  }
  for (int i = 0; i < 10; ++i) records.push_back({bytes_of(keys[i]), bytes_of(values[i])});
  auto offsets = producer.try_publish_batch(records);
  ASSERT_TRUE(offsets) << offsets.error().message();
  ASSERT_TRUE(producer.try_publish(bytes_of("k"), bytes_of("after")));

  std::vector<std::string> got_values;
  auto got = drain(*sub, &got_values);
  ASSERT_EQ(got.size(), 12U);
  EXPECT_EQ(got_values.front(), "before");
  EXPECT_EQ(got_values.back(), "after");
  for (int i = 0; i < 10; ++i) {
    const Message& m = got[static_cast<std::size_t>(i) + 1];
    EXPECT_EQ(text_of(m.key), keys[i]);
    EXPECT_EQ(got_values[static_cast<std::size_t>(i) + 1], values[i]);
    EXPECT_EQ(m.sequence, got[0].sequence + 1 + static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(offsets->first, got[1].offset);
  EXPECT_EQ(offsets->last, got[10].offset);
}

TEST(Batch, RecordsWithoutATimestampShareOneClockReadingAndGivenOnesAreKept) {
  TempBus tb;
  Topic topic = tb.create("stamps");
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  Producer producer(topic);
  const std::string v = "v";
  const std::vector<Record> records{{{}, bytes_of(v)}, {{}, bytes_of(v), 12345}, {{}, bytes_of(v)}};
  ASSERT_TRUE(producer.try_publish_batch(records));
  auto got = drain(*sub);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_GT(got[0].timestamp_ns, 1'600'000'000'000'000'000);
  EXPECT_EQ(got[1].timestamp_ns, 12345);
  EXPECT_EQ(got[2].timestamp_ns, got[0].timestamp_ns);
}

TEST(Batch, RefusesEmptyOversizedAndMirrorBatchesWithClearErrors) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.max_message = 512;
  Topic topic = tb.create("small", o);
  Producer producer(topic);
  EXPECT_EQ(producer.try_publish_batch({}).code(), Errc::invalid_argument);
  const std::string big(513, 'x');
  const std::vector<Record> one_too_big{{{}, bytes_of(big)}};
  EXPECT_EQ(producer.try_publish_batch(one_too_big).code(), Errc::too_large);
  // Five 200-byte values are 5 frames of 256 bytes: more than a quarter of 4 KiB.
  const std::string v(200, 'y');
  const std::vector<Record> five(5, Record{{}, bytes_of(v)});
  auto refused = producer.publish_batch(five);
  EXPECT_EQ(refused.code(), Errc::too_large);
  EXPECT_TRUE(testing::contains(refused.error().message(), "quarter of the ring"));
  const std::vector<Record> four(4, Record{{}, bytes_of(v)});
  EXPECT_TRUE(producer.try_publish_batch(four));

  TopicOptions m;
  m.mirror_of = "elsewhere";
  Topic mirror = tb.create("mirror", m);
  Producer on_mirror(mirror);
  EXPECT_EQ(on_mirror.publish_batch(four).code(), Errc::read_only);
}

// Frames 2..N are committed before frame 1, so a reader looking while they are being committed
// sees none of the batch, then all of it.
TEST(Batch, AReaderSeesNoneOfABatchUntilItsFirstFrameIsCommitted) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with fault points";
  TempBus tb;
  Topic topic = tb.create("atonce");
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  struct Seen {
    Subscriber* sub;
    std::vector<std::string> points;
    std::vector<std::size_t> visible;
  } seen{&*sub, {}, {}};
  detail::set_fault_hook(
      [](const char* name, void* arg) {
        auto* s = static_cast<Seen*>(arg);
        if (std::strncmp(name, "producer.batch.", 15) != 0) return;
        auto r = s->sub->poll([](const Message&) {});
        s->points.emplace_back(name);
        s->visible.push_back(r ? r->messages : 999);
      },
      &seen);
  Producer producer(topic);
  const std::string v(100, 'z');
  const std::vector<Record> records(8, Record{{}, bytes_of(v)});
  auto published = producer.try_publish_batch(records);
  detail::set_fault_hook(nullptr, nullptr);
  ASSERT_TRUE(published);
  ASSERT_EQ(seen.points,
            (std::vector<std::string>{"producer.batch.claimed", "producer.batch.marked",
                                      "producer.batch.filled", "producer.batch.committing"}));
  EXPECT_EQ(seen.visible, (std::vector<std::size_t>{0, 0, 0, 0}));
  EXPECT_EQ(drain(*sub).size(), 8U);
}

// A batch that stalls past the stuck-claim timeout is padded whole by the reader waiting at it:
// none of its messages is delivered and the producer is told all were aborted (one aborted
// claim, as for a single message).
TEST(Batch, ABatchStalledPastTheStuckClaimTimeoutIsSkippedWholeAndReportedAborted) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with fault points";
  TempBus tb;
  TopicOptions o;
  o.stuck_claim_timeout = std::chrono::milliseconds(20);
  Topic topic = tb.create("stalled", o);
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  std::uint64_t polled = 0;
  struct Stall {
    Subscriber* sub;
    std::uint64_t* polled;
    std::uint64_t from;
  } stall{&*sub, &polled, sub->position()};
  detail::set_fault_hook(
      [](const char* name, void* arg) {
        if (std::strcmp(name, "producer.batch.filled") != 0) return;
        auto* s = static_cast<Stall*>(arg);
        // The reader waits at the batch until it gives up on it (bounded).
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (s->sub->position() == s->from && std::chrono::steady_clock::now() < deadline) {
          auto r = s->sub->poll([&](const Message&) { ++*s->polled; });
          if (!r) return;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
      },
      &stall);
  Producer producer(topic);
  const std::string v(40, 's');
  const std::vector<Record> records(8, Record{{}, bytes_of(v)});
  auto stalled = producer.try_publish_batch(records);
  detail::set_fault_hook(nullptr, nullptr);
  ASSERT_FALSE(stalled);
  EXPECT_EQ(stalled.code(), Errc::aborted);
  EXPECT_TRUE(testing::contains(stalled.error().message(), "8 of the 8 messages"))
      << stalled.error().message();
  EXPECT_EQ(polled, 0U);
  ASSERT_TRUE(producer.try_publish({}, bytes_of("next")));
  std::vector<std::string> values;
  auto got = drain(*sub, &values);
  ASSERT_EQ(values, std::vector<std::string>{"next"});
  // One aborted claim spanning the batch; its 8 sequence numbers were never delivered.
  EXPECT_EQ(topic.snapshot().aborted_claims, 1U);
  EXPECT_EQ(got[0].sequence, 8U);
}

// A batch that crosses the ring's end gets a padding frame inside it; thousands of batches of
// random sizes wrap a 4 KiB ring while a durable reader checks every message.
TEST(Batch, BatchesWrapASmallBlockRingAndAReaderGetsEveryMessageIntact) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  Topic topic = tb.create("wrap", o);
  auto sub = Subscriber::attach(topic);
  ASSERT_TRUE(sub);
  const std::uint64_t kMessages = testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000) / 10;
  std::atomic<bool> producer_failed{false};
  std::thread producer_thread([&] {
    Producer producer(topic);
    std::uint64_t n = 0;
    std::uint64_t state = 88172645463325252ULL;
    std::vector<std::array<std::uint64_t, 24>> storage(16);
    std::vector<Record> records;
    while (n < kMessages) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      // At most 8 frames of 128 bytes: a quarter of the ring.
      const std::size_t count = std::min<std::uint64_t>(1 + state % 8, kMessages - n);
      records.clear();
      for (std::size_t i = 0; i < count; ++i) {
        const std::size_t words = 1 + (state >> (i * 2)) % 6;  // 8..48 bytes
        for (std::size_t w = 0; w < words; ++w) storage[i][w] = (n + i) * 31 + w;
        records.push_back({{}, {reinterpret_cast<const std::byte*>(storage[i].data()), words * 8}});
      }
      auto r =
          producer.publish_batch(records, Wait{WaitKind::spin_yield, std::chrono::seconds(60)});
      if (!r) {
        ADD_FAILURE() << r.error().message();
        producer_failed = true;
        return;
      }
      n += count;
    }
  });
  std::uint64_t next = 0;
  std::uint64_t first_sequence = 0;
  bool bad = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (next < kMessages && !bad && !producer_failed &&
         std::chrono::steady_clock::now() < deadline) {
    auto r = sub->poll([&](const Message& m) {
      if (next == 0) first_sequence = m.sequence;
      std::uint64_t w0 = 0;
      bad =
          bad || m.value.size() % 8 != 0 || m.value.empty() || m.sequence != first_sequence + next;
      if (!bad) {
        std::memcpy(&w0, m.value.data(), 8);
        bad = w0 != next * 31;
      }
      ++next;
    });
    ASSERT_TRUE(r) << r.error().message();
    if (r->messages == 0) std::this_thread::yield();
  }
  producer_thread.join();
  EXPECT_FALSE(bad) << "message " << next << " is not what its batch published";
  EXPECT_EQ(next, kMessages);
}

}  // namespace
}  // namespace ringbus
