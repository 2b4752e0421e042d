// The ring in one process: framing, wrap and padding, sizes, back-pressure, laps, stuck claims,
// start positions, persistent readers, waiting.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

// Reads a producer's count of commit words loaded by its reclaim walks.
struct ProducerTestPeer {
  static std::uint64_t reclaim_loads(const Producer& p) { return p.reclaim_loads_; }
};

namespace {

using testing::TempBus;
using namespace std::chrono_literals;

// Compact 8-byte frame alignment, so offsets in these tests are easy to predict.
TopicOptions small(Policy policy = Policy::block, std::uint64_t capacity = 4096) {
  TopicOptions o;
  o.capacity = capacity;
  o.policy = policy;
  o.frame_alignment = 8;
  return o;
}

// A value whose bytes are derived from (n, size), so corruption or mix-ups show.
std::string pattern(std::uint64_t n, std::size_t size) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (n * 7 + i) % 26);
  return s;
}

struct Received {
  std::uint64_t offset;
  std::uint64_t sequence;
  std::string key;
  std::string value;
};

std::vector<Received> drain(Subscriber& sub, std::size_t max = 1'000'000) {
  std::vector<Received> out;
  for (;;) {
    auto r = sub.poll(
        [&](const Message& m) {
          out.push_back({m.offset, m.sequence, std::string(as_string(m.key)),
                         std::string(as_string(m.value))});
        },
        64);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    if (!r || r->messages == 0 || out.size() >= max) return out;
  }
}

TEST(Ring, PublishedMessageIsReadWithOffsetSequenceKeyValueAndTimestamp) {
  TempBus tb;
  auto topic = tb.create("t", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub) << sub.error().message();
  Producer producer(topic);
  auto first = producer.try_publish(as_bytes("k1"), as_bytes("hello"));
  ASSERT_TRUE(first);
  auto second = producer.try_publish(as_bytes(""), as_bytes("world!"));
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, 0u);
  EXPECT_EQ(*second, 40u);  // 32-byte header + 7 bytes, aligned to 8
  std::int64_t before = 0;
  std::vector<Received> got;
  auto r = sub->poll([&](const Message& m) {
    got.push_back(
        {m.offset, m.sequence, std::string(as_string(m.key)), std::string(as_string(m.value))});
    before = m.timestamp_ns;
  });
  ASSERT_TRUE(r);
  ASSERT_EQ(r->messages, 2u);
  EXPECT_EQ(got[0].key, "k1");
  EXPECT_EQ(got[0].value, "hello");
  EXPECT_EQ(got[0].sequence, 0u);
  EXPECT_EQ(got[1].offset, 40u);
  EXPECT_EQ(got[1].sequence, 1u);
  EXPECT_EQ(got[1].value, "world!");
  EXPECT_GT(before, 1'600'000'000'000'000'000);  // a real CLOCK_REALTIME timestamp
}

TEST(Ring, WrapsWithPaddingAtEveryAlignment) {
  TempBus tb;
  auto topic = tb.create("wrap", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  std::uint64_t n = 0;
  std::set<std::uint64_t> end_gaps;
  // Every value size from 0 to 300 makes the ring end fall on every 8-byte remainder.
  for (std::size_t size = 0; size <= 300; ++size) {
    for (int i = 0; i < 40; ++i, ++n) {
      std::string key = std::to_string(n);
      std::string value = pattern(n, size);
      auto offset = producer.try_publish(as_bytes(key), as_bytes(value));
      ASSERT_TRUE(offset) << "size " << size;
      std::uint64_t used = (*offset & 4095) + ((32 + key.size() + size + 7) & ~7ULL);
      if (used > 4096 - 400) end_gaps.insert(4096 - used);
      std::vector<Received> got = drain(*sub);
      ASSERT_EQ(got.size(), 1u);
      ASSERT_EQ(got[0].key, key);
      ASSERT_EQ(got[0].value, value);
      ASSERT_EQ(got[0].sequence, n);
      ASSERT_EQ(got[0].offset, *offset);
    }
  }
  // Padding frames of many sizes, including the smallest (8 bytes), were written and skipped.
  EXPECT_GT(end_gaps.size(), 20u);
}

TEST(Ring, EverySizeFromZeroToTheMaximum) {
  TempBus tb;
  TopicOptions o = small(Policy::block, 8192);
  auto topic = tb.create("sizes", o);
  const std::size_t max = topic.config().max_message;
  ASSERT_EQ(max, 2048u);
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  for (std::size_t size = 0; size <= max; ++size) {
    std::string value = pattern(size, size);
    auto published = producer.try_publish({}, as_bytes(value));
    ASSERT_TRUE(published) << size;
    auto got = drain(*sub);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].value, value);
  }
  // Key and value together count against the maximum.
  std::string half(max / 2, 'k');
  EXPECT_TRUE(producer.try_publish(as_bytes(half), as_bytes(half)));
  auto over = producer.try_publish(as_bytes(half), as_bytes(half + "x"));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.code(), Errc::too_large);
}

TEST(Ring, CacheLineAlignedFramesStartOnTheirOwnLines) {
  TempBus tb;
  TopicOptions o = small();
  o.frame_alignment = 64;
  auto topic = tb.create("aligned", o);
  EXPECT_EQ(topic.config().frame_alignment, 64u);
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  std::uint64_t expected = 0;
  for (std::size_t size = 0; size <= 300; ++size) {
    for (int i = 0; i < 3; ++i) {
      auto offset = producer.try_publish({}, as_bytes(pattern(size, size)));
      ASSERT_TRUE(offset);
      EXPECT_EQ(*offset % 64, 0u);
      if (*offset % 4096 != 0) {
        EXPECT_EQ(*offset, expected);  // at 0 mod 4096 it may have wrapped after padding
      }
      expected = *offset + (32 + size + 63) / 64 * 64;
      auto got = drain(*sub);
      ASSERT_EQ(got.size(), 1u);
      ASSERT_EQ(got[0].value, pattern(size, size));
    }
  }
  EXPECT_EQ(TopicOptions{}.frame_alignment, 64u);  // the default
  o.frame_alignment = 16;
  auto bad = tb.bus().create_topic("bad-alignment", o);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.code(), Errc::invalid_argument);
}

TEST(Ring, OversizedMessageIsRejectedAndNothingElseChanges) {
  TempBus tb;
  auto topic = tb.create("big", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  ASSERT_TRUE(producer.try_publish({}, as_bytes("before")));
  std::uint64_t tail = topic.snapshot().tail;
  std::string huge(topic.config().max_message + 1, 'x');
  auto r = producer.try_publish({}, as_bytes(huge));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::too_large);
  auto claimed = producer.try_claim(std::size_t{1} << 40);
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.code(), Errc::too_large);
  EXPECT_EQ(topic.snapshot().tail, tail);
  ASSERT_TRUE(producer.try_publish({}, as_bytes("after")));
  auto got = drain(*sub);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].value, "before");
  EXPECT_EQ(got[1].value, "after");
}

TEST(Ring, BlockPolicyHoldsProducersBehindTheSlowestDurableReader) {
  TempBus tb;
  auto topic = tb.create("full", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  ASSERT_TRUE(sub->durable());
  Producer producer(topic);
  std::string value(100, 'v');  // 136-byte frames
  int published = 0;
  for (;; ++published) {
    auto r = producer.try_publish({}, as_bytes(value));
    if (!r) {
      EXPECT_EQ(r.code(), Errc::would_block);
      break;
    }
    ASSERT_LT(published, 100);
  }
  EXPECT_EQ(published, 4096 / 136);
  auto blocked = producer.publish({}, as_bytes(value), Wait::spin_yield(20ms));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.code(), Errc::timed_out);
  auto got = drain(*sub);
  EXPECT_EQ(got.size(), static_cast<std::size_t>(published));
  EXPECT_TRUE(producer.try_publish({}, as_bytes(value)));
}

TEST(Ring, ProducerRescansWhenADurableReaderRegistersAtEarliest) {
  TempBus tb;
  auto topic = tb.create("late", small());
  Producer producer(topic);
  std::string value(100, 'v');
  // Several laps with no reader: the producer's cached limit follows the tail.
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(producer.try_publish({}, as_bytes(value)));
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  auto sub = Subscriber::attach(topic, o);
  ASSERT_TRUE(sub);
  const std::uint64_t room = sub->position() + 4096 - topic.snapshot().tail;
  // The producer must see the new reader now, not a ring later (its cached limit predates it):
  // it fills only the room the reader leaves, then reports would_block.
  std::uint64_t more = 0;
  while (producer.try_publish({}, as_bytes(value))) ++more;
  EXPECT_LE(more, room / 136 + 1);
  std::uint64_t lost = 0;
  std::size_t read = 0;
  for (;;) {
    auto r = sub->poll([&](const Message& m) {
      EXPECT_EQ(as_string(m.value), value);
      ++read;
    });
    ASSERT_TRUE(r);
    lost += r->lost_messages;
    if (r->messages == 0) break;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(read, 0u);
}

TEST(Ring, LossyReaderOnBlockTopicDoesNotHoldProducersAndCountsExactLoss) {
  TempBus tb;
  auto topic = tb.create("lossy", small());
  SubscriberOptions lossy;
  lossy.durability = Durability::lossy;
  auto sub = Subscriber::attach(topic, lossy);
  ASSERT_TRUE(sub);
  EXPECT_FALSE(sub->durable());
  Producer producer(topic);
  std::string value(56, 'v');  // 88-byte frames
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(producer.try_publish({}, as_bytes(std::to_string(i) + value)));
  }
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t lost_bytes = 0;
  std::uint64_t last_sequence = 0;
  for (;;) {
    auto r = sub->poll([&](const Message& m) {
      EXPECT_EQ(as_string(m.value), std::to_string(m.sequence) + value);  // never torn
      last_sequence = m.sequence;
      ++received;
    });
    ASSERT_TRUE(r);
    lost += r->lost_messages;
    lost_bytes += r->lost_bytes;
    if (r->messages == 0) break;
  }
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(received + lost, 1000u);
  EXPECT_EQ(last_sequence, 999u);
  EXPECT_EQ(lost_bytes, sub->lost_bytes());
  EXPECT_EQ(lost, sub->lost_messages());
}

TEST(Ring, OverwriteTopicReportsExactLossAndNeverATornMessage) {
  TempBus tb;
  auto topic = tb.create("ow", small(Policy::overwrite));
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  EXPECT_FALSE(sub->durable());
  Producer producer(topic);
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t next = 0;
  for (std::uint64_t i = 0; i < 5000; ++i) {
    std::string value = pattern(i, i % 200);
    ASSERT_TRUE(producer.try_publish(as_bytes(std::to_string(i)), as_bytes(value)));
    if (i % 97 == 0) {  // a slow reader: reads a little now and then
      auto r = sub->poll(
          [&](const Message& m) {
            ASSERT_EQ(as_string(m.key), std::to_string(m.sequence));
            ASSERT_EQ(as_string(m.value), pattern(m.sequence, m.sequence % 200));
            EXPECT_GE(m.sequence, next);
            next = m.sequence + 1;
            ++received;
          },
          3);
      ASSERT_TRUE(r);
      lost += r->lost_messages;
    }
  }
  for (;;) {
    auto r = sub->poll([&](const Message& m) {
      ASSERT_EQ(as_string(m.value), pattern(m.sequence, m.sequence % 200));
      next = m.sequence + 1;
      ++received;
    });
    ASSERT_TRUE(r);
    lost += r->lost_messages;
    if (r->messages == 0) break;
  }
  EXPECT_GT(lost, 0u);
  EXPECT_EQ(received + lost, 5000u);
  EXPECT_EQ(next, 5000u);
  auto snap = topic.snapshot();
  ASSERT_EQ(snap.readers.size(), 1u);
  EXPECT_EQ(snap.readers[0].lost_messages, lost);
}

TEST(Ring, StartsFromEarliestLatestOrAnExplicitOffset) {
  TempBus tb;
  auto topic = tb.create("start", small());
  Producer producer(topic);
  std::vector<std::uint64_t> offsets;
  for (int i = 0; i < 5; ++i) {
    offsets.push_back(*producer.try_publish({}, as_bytes("m" + std::to_string(i))));
  }
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  auto earliest = Subscriber::attach(topic, o);
  ASSERT_TRUE(earliest);
  o.start = StartFrom::latest();
  auto latest = Subscriber::attach(topic, o);
  ASSERT_TRUE(latest);
  o.start = StartFrom::at(offsets[3]);
  auto at = Subscriber::attach(topic, o);
  ASSERT_TRUE(at) << at.error().message();
  ASSERT_TRUE(producer.try_publish({}, as_bytes("m5")));

  auto e = drain(*earliest);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0].value, "m0");
  auto l = drain(*latest);
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].value, "m5");
  auto a = drain(*at);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].value, "m3");
  EXPECT_EQ(a[0].sequence, 3u);
}

TEST(Ring, InvalidStartOffsetsAreErrors) {
  TempBus tb;
  auto topic = tb.create("bad-offset", small());
  Producer producer(topic);
  auto first = producer.try_publish({}, as_bytes("abc"));
  ASSERT_TRUE(first);
  SubscriberOptions o;
  o.start = StartFrom::at(8);  // inside the first frame
  auto inside = Subscriber::attach(topic, o);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.code(), Errc::invalid_argument);
  EXPECT_NE(inside.error().message().find("frame boundary"), std::string::npos);
  o.start = StartFrom::at(1'000'000);
  auto beyond = Subscriber::attach(topic, o);
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.code(), Errc::offset_out_of_range);
  // After many laps the first offset has been overwritten (no reader held it).
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(producer.try_publish({}, as_bytes(pattern(i, 50))));
  o.start = StartFrom::at(*first);
  auto old = Subscriber::attach(topic, o);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.code(), Errc::offset_out_of_range);
  EXPECT_NE(old.error().message().find("out of range"), std::string::npos) << old.error().message();
}

TEST(Ring, ClaimDestroyedWithoutCommitBecomesPadding) {
  TempBus tb;
  auto topic = tb.create("abort", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  {
    auto claim = producer.try_claim(10);
    ASSERT_TRUE(claim);
    std::memset(claim->bytes().data(), 'x', 10);
  }  // aborted
  auto zero_copy = producer.try_claim(5, as_bytes("key"));
  ASSERT_TRUE(zero_copy);
  std::memcpy(zero_copy->bytes().data(), "hello", 5);
  auto offset = zero_copy->commit();
  ASSERT_TRUE(offset);
  auto got = drain(*sub);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, "key");
  EXPECT_EQ(got[0].value, "hello");
  EXPECT_EQ(got[0].offset, *offset);
  EXPECT_EQ(topic.snapshot().aborted_claims, 0u);  // a voluntary abort is not a stuck claim
}

TEST(Ring, StuckClaimIsTurnedIntoPaddingAfterTheTimeout) {
  TempBus tb;
  TopicOptions o = small();
  o.stuck_claim_timeout = 50ms;
  auto topic = tb.create("stuck", o);
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  Producer hung(topic);
  Producer healthy(topic);
  auto stuck = hung.try_claim(16);
  ASSERT_TRUE(stuck);
  ASSERT_TRUE(healthy.try_publish({}, as_bytes("after")));
  auto early = drain(*sub);
  EXPECT_TRUE(early.empty());  // ordered: the message behind the claim waits
  std::vector<Received> got;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    got = drain(*sub);
  }
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "after");
  EXPECT_EQ(topic.snapshot().aborted_claims, 1u);
  auto late = stuck->commit();
  ASSERT_FALSE(late);
  EXPECT_EQ(late.code(), Errc::aborted);
}

TEST(Ring, PersistentReaderResumesAndHoldsProducersWhileDetached) {
  TempBus tb;
  auto topic = tb.create("persist", small());
  Producer producer(topic);
  SubscriberOptions o;
  o.name = "recorder";
  o.start = StartFrom::earliest();
  {
    auto sub = Subscriber::attach(topic, o);
    ASSERT_TRUE(sub) << sub.error().message();
    ASSERT_TRUE(producer.try_publish({}, as_bytes("one")));
    ASSERT_TRUE(producer.try_publish({}, as_bytes("two")));
    auto got = drain(*sub, 1);
    ASSERT_GE(got.size(), 1u);
  }
  // Detached: the slot keeps its position and still holds producers back.
  auto snap = topic.snapshot();
  ASSERT_EQ(snap.readers.size(), 1u);
  EXPECT_EQ(snap.readers[0].name, "recorder");
  EXPECT_TRUE(snap.readers[0].persistent);
  EXPECT_FALSE(snap.readers[0].alive);
  EXPECT_EQ(snap.readers[0].pid, 0u);
  int published = 0;
  while (producer.try_publish({}, as_bytes(pattern(published, 100)))) ++published;
  EXPECT_LT(published, 4096 / 136 + 1);
  // Resume: continues after what it read, nothing lost.
  auto again = Subscriber::attach(topic, o);
  ASSERT_TRUE(again) << again.error().message();
  auto rest = drain(*again);
  ASSERT_EQ(rest.size(), static_cast<std::size_t>(published));
  // A second attach of the same name while the first is alive is refused.
  auto twice = Subscriber::attach(topic, o);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.code(), Errc::busy);
  auto busy = topic.remove_reader("recorder");
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.code(), Errc::busy);
  again = Subscriber::attach(topic, {});  // replaces (detaches) the persistent reader
  ASSERT_TRUE(topic.remove_reader("recorder"));
  auto missing = topic.remove_reader("recorder");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.code(), Errc::not_found);
}

TEST(Ring, PersistentReaderExpiresAfterItsProcessIsGone) {
  TempBus tb;
  auto topic = tb.create("expire", small());
  SubscriberOptions o;
  o.name = "short-lived";
  o.expiry = 20ms;
  { ASSERT_TRUE(Subscriber::attach(topic, o)); }
  EXPECT_EQ(topic.reap_dead_readers(), 0u);  // first sighting: starts the expiry clock
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(topic.reap_dead_readers(), 1u);
  EXPECT_TRUE(topic.snapshot().readers.empty());
}

TEST(Ring, RunningOutOfReaderSlotsIsAClearError) {
  TempBus tb;
  TopicOptions o = small();
  o.max_readers = 2;
  auto topic = tb.create("slots", o);
  auto a = Subscriber::attach(topic, {});
  auto b = Subscriber::attach(topic, {});
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  auto c = Subscriber::attach(topic, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.code(), Errc::no_reader_slot);
  EXPECT_NE(c.error().message().find("no free reader slot"), std::string::npos);
  b = Errc::not_found;  // destroying a subscriber frees its slot
  EXPECT_TRUE(Subscriber::attach(topic, {}));
}

TEST(Ring, FutexWaitWakesWhenAMessageArrives) {
  TempBus tb;
  auto topic = tb.create("futex", small());
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  auto empty = sub->wait(Wait::futex(20ms));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.code(), Errc::timed_out);
  // A sleeping reader naps at most 100 ms at a time, so it would see the message within that
  // even without a wake-up. Publish only once it is asleep (counted in the header's sleepers),
  // and measure from the publish: a missing wake-up shows as about 100 ms every round.
  auto& header = detail::mapping_of(topic).header();
  std::vector<std::int64_t> latency_us;
  for (int round = 0; round < 5; ++round) {
    std::atomic<std::int64_t> published_at{0};
    std::thread producer_thread([&, topic] {
      const auto give_up = std::chrono::steady_clock::now() + 20s;
      while (std::atomic_ref<std::uint32_t>(header.sleepers).load() == 0 &&
             std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(100us);
      }
      std::this_thread::sleep_for(5ms);  // well into its futex wait
      Producer producer(topic);
      published_at = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now().time_since_epoch())
                         .count();
      EXPECT_TRUE(producer.try_publish({}, as_bytes("wake")));
    });
    std::string value;
    auto r =
        sub->poll_wait([&](const Message& m) { value = as_string(m.value); }, 1, Wait::futex(30s));
    const std::int64_t woke = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
    producer_thread.join();
    ASSERT_TRUE(r);
    EXPECT_EQ(value, "wake");
    latency_us.push_back(woke - published_at.load());
  }
  std::sort(latency_us.begin(), latency_us.end());
  // The median is far below the nap (about 0.1 ms on an idle machine); 40 ms leaves room for
  // a loaded one while still failing when the wake-up is missing.
  EXPECT_LT(latency_us[2], 40'000) << "wake-up latencies (us): " << latency_us[0] << " "
                                   << latency_us[2] << " " << latency_us[4];
}

// Item: a successful reclaim CAS must not send the producer over the same frames again.
TEST(Ring, ReclaimWalksEachFrameOfThePreviousLapOnce) {
  TempBus tb;
  auto topic = tb.create("reclaim", small(Policy::overwrite));
  Producer producer(topic);
  const std::string value(24, 'r');  // 56-byte frames
  constexpr std::uint64_t kMessages = 20'000;
  for (std::uint64_t i = 0; i < kMessages; ++i) {
    ASSERT_TRUE(producer.try_publish({}, as_bytes(value)));
  }
  // Every frame of every lap but the last is walked once, plus one load where each walk stops
  // (a walk covers at least capacity / 8 bytes, so about 9 frames).
  const std::uint64_t loads = ProducerTestPeer::reclaim_loads(producer);
  EXPECT_GT(loads, kMessages / 2);
  EXPECT_LT(loads, kMessages + kMessages / 4) << "frames walked more than once";
}

// A producer that died between its tail CAS and writing its claim mark leaves stale bytes at a
// lossy reader's cursor. When they look like a commit word of a later lap, the reader must
// still skip the dead claim after the stuck-claim timeout (not report a lap it cannot resync
// from, which made wait() return at once forever).
TEST(Ring, LossyReaderSkipsADeadClaimBehindStaleBytesOfALaterLap) {
  TempBus tb;
  TopicOptions o = small(Policy::overwrite);
  o.stuck_claim_timeout = 50ms;
  auto topic = tb.create("stale", o);
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  ASSERT_FALSE(sub->durable());
  auto& header = detail::mapping_of(topic).header();
  // The dead producer's tail CAS: 64 bytes at position 0 claimed, no mark written...
  header.tail_position = 64;
  header.tail_messages = 1;
  // ...and the bytes there are an old frame's payload that reads as a lap-3 data frame.
  auto* frame = reinterpret_cast<layout::FrameHeader*>(detail::mapping_of(topic).ring());
  frame->commit = layout::make_commit(3, layout::FrameKind::kData, 8);
  Producer producer(topic);
  ASSERT_TRUE(producer.try_publish({}, as_bytes("behind")));  // at 64, up to the tail at 104
  const std::uint64_t tail = topic.snapshot().tail;

  // The length of a claim without a mark is unknown, but "behind" was claimed after it and runs
  // to the tail: the dead claim is padded up to it (design.md 5.11) and nothing is lost. (Before,
  // the reader jumped to the tail and reported "behind" lost.)
  std::vector<std::string> got;
  int waits = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (sub->position() < tail && std::chrono::steady_clock::now() < deadline) {
    auto r = sub->poll_wait([&](const Message& m) { got.emplace_back(as_string(m.value)); }, 8,
                            Wait::futex(1s));
    ++waits;
  }
  ASSERT_EQ(sub->position(), tail) << "the reader never skipped the dead claim";
  // A wait that returns at once without data would loop here thousands of times.
  EXPECT_LT(waits, 200);
  ASSERT_TRUE(producer.try_publish({}, as_bytes("after")));
  auto r = sub->poll([&](const Message& m) { got.emplace_back(as_string(m.value)); });
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(got, (std::vector<std::string>{"behind", "after"}));
  EXPECT_EQ(sub->lost_bytes(), 0U);
  EXPECT_EQ(sub->lost_messages(), 0U);
  EXPECT_EQ(topic.snapshot().aborted_claims, 1U);
}

// A tail laps ahead of a lossy reader while `reclaimed` stays behind it: a sound ring never
// looks like that (no claim ends more than a ring past `reclaimed`), so poll reports corrupt
// instead of a lap it cannot resync from, which made poll_wait spin without sleeping.
TEST(Ring, LapWithoutAReclaimedPositionPastTheReaderIsCorrupt) {
  TempBus tb;
  auto topic = tb.create("ahead", small(Policy::overwrite));
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  auto& header = detail::mapping_of(topic).header();
  header.tail_position = 4096 * 1000;
  header.reclaimed = 0;
  auto r = sub->poll_wait([](const Message&) {}, 8, Wait::futex(100ms));
  ASSERT_FALSE(r) << "polled " << r->messages << " messages";
  EXPECT_EQ(r.code(), Errc::corrupt);
  EXPECT_NE(r.error().message().find("reclaimed position 0"), std::string::npos)
      << r.error().message();
}

// A header whose magic is valid but whose tail is not frame aligned (near the end of the
// ring, so the commit word would straddle it): producers and readers starting at `latest` get
// `corrupt`, never a signal. Run in a child so a crash fails this test, not the whole suite.
TEST(Ring, UnalignedTailIsCorruptForProducersAndNewReaders) {
  TempBus tb;
  auto topic = tb.create("unaligned", small());
  pid_t pid = testing::fork_child([&] {
    auto& header = detail::mapping_of(topic).header();
    header.tail_position = 4096 - 4;
    header.reclaimed = 0;
    auto sub = Subscriber::attach(topic, {});
    if (sub) {
      // It attached: polling and waiting must fail cleanly or find nothing.
      auto r = sub->poll([](const Message&) {});
      if (r && r->messages != 0) return 2;
      (void)sub->wait(Wait::futex(10ms));
    } else if (sub.code() != Errc::corrupt) {
      return 3;
    }
    Producer producer(topic);
    auto p = producer.try_publish({}, as_bytes(std::string(36, 'x')));
    if (p || p.code() != Errc::corrupt) return 4;
    auto waited = producer.publish({}, as_bytes("y"), Wait::spin_yield(50ms));
    if (waited || waited.code() != Errc::corrupt) return 5;
    if (waited.error().message().find("tail position 4092") == std::string::npos) return 6;
    return 0;
  });
  const int status = testing::wait_child(pid, 30s);
  EXPECT_EQ(status, 0) << "3: attach not corrupt; 4, 5: producer not corrupt; 6: message; "
                          "128+N: killed by signal N";
}

TEST(Ring, TwoMappingsOfOneTopicAtDifferentAddressesInteroperate) {
  TempBus tb;
  auto topic = tb.create("twice", small());
  auto second = tb.bus().open_topic("twice");
  ASSERT_TRUE(second);
  ASSERT_NE(&detail::mapping_of(topic), &detail::mapping_of(*second));
  auto sub = Subscriber::attach(*second, {});
  ASSERT_TRUE(sub);
  Producer producer(topic);
  std::vector<Received> got;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(producer.try_publish({}, as_bytes(pattern(i, i))));
    for (auto& r : drain(*sub)) got.push_back(r);
  }
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(got[199].value, pattern(199, 199));
}

}  // namespace
}  // namespace ringbus
