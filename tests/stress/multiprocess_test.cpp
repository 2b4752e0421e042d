// Real processes (fork) on one topic: fan-out, many producers, laps, and kill -9 at bad times.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::fork_child;
using testing::TempBus;
using testing::wait_child;

constexpr auto kChildTimeout = std::chrono::seconds(600);

std::uint64_t messages_to_send() { return testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000); }

std::uint64_t xorshift(std::uint64_t x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// Value of message n: [n][checksum of the rest][pseudo-random bytes], 16 to 527 bytes long.
std::size_t fill_value(std::uint64_t n, std::byte* out) {
  std::uint64_t state = xorshift(n + 0x9E3779B97F4A7C15ULL);
  std::size_t size = 16 + state % 512;
  for (std::size_t i = 16; i < size; ++i) {
    state = xorshift(state);
    out[i] = static_cast<std::byte>(state);
  }
  std::uint64_t sum = testing::fnv1a(out + 16, size - 16);
  std::memcpy(out, &n, 8);
  std::memcpy(out + 8, &sum, 8);
  return size;
}

bool check_value(const Message& m, std::uint64_t expected_n) {
  if (m.value.size() < 16) return false;
  std::uint64_t n = 0;
  std::uint64_t sum = 0;
  std::memcpy(&n, m.value.data(), 8);
  std::memcpy(&sum, m.value.data() + 8, 8);
  if (n != expected_n) return false;
  std::byte expect[600];
  std::size_t size = fill_value(n, expect);
  return size == m.value.size() && sum == testing::fnv1a(m.value.data() + 16, size - 16) &&
         std::memcmp(expect, m.value.data(), size) == 0;
}

// Waits (bounded) until the topic has `n` attached readers.
bool wait_for_readers(const Topic& topic, std::size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (topic.snapshot().readers.size() >= n) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

// Child: one pipe byte tells the parent a step is done.
void signal_parent(int fd) {
  char c = 1;
  (void)!::write(fd, &c, 1);
}
bool wait_signal(int fd) {
  char c = 0;
  return ::read(fd, &c, 1) == 1;
}

TEST(MultiProcess, OneProducerToThreeSubscribersLosesNothingUnderBlock) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 1 << 20;
  auto topic = tb.create("fanout", o);
  const std::uint64_t n = messages_to_send();
  std::vector<pid_t> subscribers;
  for (int s = 0; s < 3; ++s) {
    subscribers.push_back(fork_child([&] {
      auto t = tb.bus().open_topic("fanout");
      if (!t) return 10;
      SubscriberOptions so;
      so.start = StartFrom::earliest();
      auto sub = Subscriber::attach(*t, so);
      if (!sub) return 11;
      std::uint64_t expected = 0;
      bool ok = true;
      while (expected < n && ok) {
        auto r = sub->poll_wait(
            [&](const Message& m) {
              ok = ok && m.sequence == expected && check_value(m, expected);
              ++expected;
            },
            256, Wait::spin_yield(60s));
        if (!r) {  // nothing for a minute (something is stuck), or an error
          std::fprintf(stderr, "subscriber: %s at %llu\n", r.error().message().c_str(),
                       static_cast<unsigned long long>(sub->position()));
          // What the ring looks like there: the frame's header words, the tail and every
          // reader's published position (a tail more than a ring past us means an overrun).
          const auto& map = detail::mapping_of(*t);
          const auto* words = reinterpret_cast<const std::uint64_t*>(
              map.ring() + (sub->position() & (map.config().capacity - 1)));
          auto snap = t->snapshot();
          std::fprintf(
              stderr, "  frame words %016llx %016llx %016llx %016llx; tail %llu\n",
              static_cast<unsigned long long>(words[0]), static_cast<unsigned long long>(words[1]),
              static_cast<unsigned long long>(words[2]), static_cast<unsigned long long>(words[3]),
              static_cast<unsigned long long>(snap.tail));
          for (const auto& reader : snap.readers) {
            std::fprintf(stderr, "  reader slot %u durable %d position %llu\n", reader.slot,
                         reader.durable ? 1 : 0, static_cast<unsigned long long>(reader.position));
          }
          return 12;
        }
        if (r->lost_messages != 0) return 13;
      }
      return ok ? 0 : 14;
    }));
  }
  ASSERT_TRUE(wait_for_readers(topic, 3));
  pid_t producer = fork_child([&] {
    auto t = tb.bus().open_topic("fanout");
    if (!t) return 20;
    Producer p(*t);
    std::byte value[600];
    for (std::uint64_t i = 0; i < n; ++i) {
      std::size_t size = fill_value(i, value);
      if (!p.publish({}, ConstBytes(value, size), Wait::spin_yield(60s))) return 21;
    }
    return 0;
  });
  EXPECT_EQ(wait_child(producer, kChildTimeout), 0);
  for (pid_t pid : subscribers) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
  EXPECT_EQ(topic.snapshot().messages, n);
}

TEST(MultiProcess, TwoProducersToOneSubscriberKeepEachProducersOrder) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 256 * 1024;
  auto topic = tb.create("fanin", o);
  const std::uint64_t per_producer = messages_to_send() / 2;
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  std::vector<pid_t> producers;
  for (char id : {'A', 'B'}) {
    producers.push_back(fork_child([&, id] {
      auto t = tb.bus().open_topic("fanin");
      if (!t) return 20;
      Producer p(*t);
      char key[1] = {id};
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        if (!p.publish(ConstBytes(reinterpret_cast<std::byte*>(key), 1),
                       ConstBytes(reinterpret_cast<std::byte*>(&i), sizeof i),
                       Wait::spin_yield(60s))) {
          return 21;
        }
      }
      return 0;
    }));
  }
  std::uint64_t next[2] = {0, 0};
  std::uint64_t bad = 0;
  std::uint64_t sequence = 0;
  while (next[0] + next[1] < 2 * per_producer && bad == 0) {
    auto r = sub->poll_wait(
        [&](const Message& m) {
          std::uint64_t v = 0;
          if (m.key.size() != 1 || m.value.size() != 8 || m.sequence != sequence++) {
            ADD_FAILURE() << "bad frame at offset " << m.offset << ": key " << m.key.size()
                          << " value " << m.value.size() << " sequence " << m.sequence
                          << " expected " << sequence - 1;
            ++bad;
            return;
          }
          std::memcpy(&v, m.value.data(), 8);
          int who = static_cast<char>(m.key[0]) == 'A' ? 0 : 1;
          if (v != next[who]) {  // out of order, lost or duplicated
            ADD_FAILURE() << "producer " << who << " sent " << v << ", expected " << next[who];
            ++bad;
          }
          next[who] = v + 1;
        },
        256, Wait::spin_yield(60s));
    ASSERT_TRUE(r) << "no message for 60 s";
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(next[0], per_producer);
  EXPECT_EQ(next[1], per_producer);
  for (pid_t pid : producers) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
}

TEST(MultiProcess, SlowSubscriberOnOverwriteTopicCountsExactLossAndSeesNoTornMessage) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  o.policy = Policy::overwrite;
  auto topic = tb.create("lapped", o);
  const std::uint64_t n = std::min<std::uint64_t>(messages_to_send(), 200'000);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t reader = fork_child([&] {
    auto t = tb.bus().open_topic("lapped");
    if (!t) return 10;
    auto sub = Subscriber::attach(*t, {});
    if (!sub) return 11;
    signal_parent(ready[1]);
    std::uint64_t received = 0;
    std::uint64_t lost = 0;
    std::uint64_t last = 0;
    bool ok = true;
    while (last + 1 < n && ok) {
      auto r = sub->poll_wait(
          [&](const Message& m) {
            ok = ok && check_value(m, m.sequence) && (received == 0 || m.sequence > last);
            last = m.sequence;
            ++received;
            if (received % 64 == 0) std::this_thread::sleep_for(50us);  // slow on purpose
          },
          16, Wait::spin_yield(60s));
      if (!r) return 12;
      lost += r->lost_messages;
    }
    if (!ok) return 13;
    if (lost == 0) return 14;             // it really was lapped
    if (received + lost != n) return 15;  // exact accounting
    return 0;
  });
  ASSERT_TRUE(wait_signal(ready[0]));
  Producer p(topic);
  std::byte value[600];
  for (std::uint64_t i = 0; i < n; ++i) {
    std::size_t size = fill_value(i, value);
    ASSERT_TRUE(p.try_publish({}, ConstBytes(value, size)));
  }
  EXPECT_EQ(wait_child(reader, kChildTimeout), 0)
      << "13: torn or out of order, 14: never lapped, 15: wrong loss count";
  ::close(ready[0]);
  ::close(ready[1]);
}

// Concurrent producer processes wrap a 4 KiB overwrite ring thousands of times under a slow
// reader: every message it gets is intact (checksummed, of its producer's size) and in its
// producer's order, and what it missed is counted exactly.
TEST(MultiProcess, ConcurrentProducersWrappingASmallOverwriteRingNeverTearAMessage) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.policy = Policy::overwrite;
  o.frame_alignment = 8;
  auto topic = tb.create("torn", o);
  const std::uint64_t per_producer = messages_to_send() / 4;
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  std::vector<pid_t> producers;
  for (std::uint64_t id = 0; id < 2; ++id) {
    producers.push_back(fork_child([&, id] {
      auto t = tb.bus().open_topic("torn");
      if (!t) return 20;
      Producer p(*t);
      std::byte value[600];
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        // Values up to 527 bytes: fill_value's n carries the producer in its top bit.
        const std::uint64_t n = (id << 63) | i;
        const std::size_t size = std::min<std::size_t>(fill_value(n, value), 16 + i % 500);
        std::uint64_t sum = testing::fnv1a(value + 16, size - 16);
        std::memcpy(value + 8, &sum, 8);
        auto r = p.publish({}, ConstBytes(value, size), Wait::spin_yield(60s));
        // aborted: this producer was descheduled past the stuck-claim timeout mid-claim.
        if (!r && r.code() != Errc::aborted) return 21;
      }
      return 0;
    }));
  }
  std::uint64_t next[2] = {0, 0};
  std::uint64_t received = 0;
  std::uint64_t lost = 0;
  std::uint64_t bad = 0;
  std::uint64_t last_sequence = 0;
  std::vector<std::byte> expect(600);
  const auto deadline = std::chrono::steady_clock::now() + kChildTimeout;
  while (last_sequence + 1 < 2 * per_producer && bad == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    auto r = sub->poll_wait(
        [&](const Message& m) {
          std::uint64_t n = 0;
          std::uint64_t sum = 0;
          if (m.value.size() < 16) {
            ++bad;
            return;
          }
          std::memcpy(&n, m.value.data(), 8);
          std::memcpy(&sum, m.value.data() + 8, 8);
          const std::uint64_t id = n >> 63;
          const std::uint64_t i = n & ~(std::uint64_t{1} << 63);
          const std::size_t size =
              std::min<std::size_t>(fill_value(n, expect.data()), 16 + i % 500);
          if (m.value.size() != size || sum != testing::fnv1a(m.value.data() + 16, size - 16) ||
              std::memcmp(expect.data() + 16, m.value.data() + 16, size - 16) != 0) {
            ADD_FAILURE() << "torn message at offset " << m.offset << " (producer " << id
                          << ", message " << i << ")";
            ++bad;
          }
          if (i < next[id]) {
            ADD_FAILURE() << "producer " << id << " message " << i << " after " << next[id];
            ++bad;
          }
          next[id] = i + 1;
          last_sequence = m.sequence;
          ++received;
          if (received % 64 == 0) std::this_thread::sleep_for(50us);  // slow on purpose
        },
        16, Wait::spin_yield(10s));
    if (!r) {
      if (r.code() == Errc::timed_out) break;  // producers done and everything read
      ADD_FAILURE() << r.error().message();
      break;
    }
    lost += r->lost_messages;
  }
  for (pid_t pid : producers) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(lost, 0u) << "the reader was never lapped";
  EXPECT_GT(received, 0u);
  EXPECT_EQ(received + lost, last_sequence + 1);
  // The ring wrapped many times: 2 * per_producer frames of 24 to 520 bytes in 4 KiB.
  EXPECT_GT(topic.snapshot().tail / 4096, 1000u);
}

TEST(MultiProcess, ProducerKilledBetweenClaimAndCommitDoesNotStallReaders) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  o.stuck_claim_timeout = 100ms;
  auto topic = tb.create("killed-producer", o);
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub);
  int claimed[2];
  ASSERT_EQ(::pipe(claimed), 0);
  pid_t producer = fork_child([&] {
    auto t = tb.bus().open_topic("killed-producer");
    if (!t) return 10;
    Producer p(*t);
    for (int i = 0; i < 10; ++i) {
      if (!p.try_publish({}, as_bytes("before" + std::to_string(i)))) return 11;
    }
    auto c = p.try_claim(100);
    if (!c) return 12;
    signal_parent(claimed[1]);
    ::pause();  // killed here, holding the claim
    return 0;
  });
  ASSERT_TRUE(wait_signal(claimed[0]));
  ::kill(producer, SIGKILL);
  EXPECT_EQ(wait_child(producer, 60s), 128 + SIGKILL);
  Producer p(topic);
  ASSERT_TRUE(p.try_publish({}, as_bytes("after")));
  std::vector<std::string> got;
  while (got.size() < 11) {
    auto r = sub->poll_wait([&](const Message& m) { got.emplace_back(as_string(m.value)); }, 64,
                            Wait::futex(60s));
    ASSERT_TRUE(r) << "reader stalled behind the dead producer's claim";
  }
  EXPECT_EQ(got.front(), "before0");
  EXPECT_EQ(got.back(), "after");
  EXPECT_EQ(topic.snapshot().aborted_claims, 1u);
  ::close(claimed[0]);
  ::close(claimed[1]);
}

TEST(MultiProcess, KilledSubscriberIsReapedAndNoLongerHoldsProducersBack) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  auto topic = tb.create("killed-subscriber", o);
  int attached[2];
  ASSERT_EQ(::pipe(attached), 0);
  pid_t reader = fork_child([&] {
    auto t = tb.bus().open_topic("killed-subscriber");
    if (!t) return 10;
    auto sub = Subscriber::attach(*t, {});
    if (!sub) return 11;
    signal_parent(attached[1]);
    ::pause();  // never reads
    return 0;
  });
  ASSERT_TRUE(wait_signal(attached[0]));
  Producer p(topic);
  std::string value(200, 'x');
  while (p.try_publish({}, as_bytes(value))) {
  }
  auto blocked = p.try_publish({}, as_bytes(value));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.code(), Errc::would_block);
  ASSERT_EQ(topic.snapshot().readers.size(), 1u);
  EXPECT_TRUE(topic.snapshot().readers[0].alive);
  ::kill(reader, SIGKILL);
  EXPECT_EQ(wait_child(reader, 60s), 128 + SIGKILL);
  // The blocking publish reaps the dead reader while it waits.
  auto published = p.publish({}, as_bytes(value), Wait::spin_yield(60s));
  ASSERT_TRUE(published) << published.error().message();
  auto snap = topic.snapshot();
  EXPECT_TRUE(snap.readers.empty());
  EXPECT_EQ(snap.reaped_readers, 1u);
  ::close(attached[0]);
  ::close(attached[1]);
}

TEST(MultiProcess, ReaderKilledWhileAsleepStopsCountingAsASleeperOnceReaped) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.max_readers = 1;
  auto topic = tb.create("sleeper", o);
  pid_t reader = fork_child([&] {
    auto t = tb.bus().open_topic("sleeper");
    if (!t) return 10;
    auto sub = Subscriber::attach(*t, {});
    if (!sub) return 11;
    for (;;) (void)sub->wait(Wait::futex(std::chrono::hours(1)));
  });
  auto& sleepers = detail::mapping_of(topic).header().sleepers;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (__atomic_load_n(&sleepers, __ATOMIC_ACQUIRE) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(__atomic_load_n(&sleepers, __ATOMIC_ACQUIRE), 1u);
  ::kill(reader, SIGKILL);
  EXPECT_EQ(wait_child(reader, 60s), 128 + SIGKILL);
  // The only slot is held by the dead reader: attaching reaps it instead of failing.
  auto sub = Subscriber::attach(topic, {});
  ASSERT_TRUE(sub) << sub.error().message();
  EXPECT_EQ(__atomic_load_n(&sleepers, __ATOMIC_ACQUIRE), 0u);
  EXPECT_EQ(topic.snapshot().reaped_readers, 1u);
}

TEST(MultiProcess, KilledPersistentReaderStaysAndResumesWithoutLoss) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  auto topic = tb.create("persistent", o);
  Producer p(topic);
  SubscriberOptions so;
  so.name = "recorder";
  so.start = StartFrom::earliest();
  int done[2];
  ASSERT_EQ(::pipe(done), 0);
  pid_t reader = fork_child([&] {
    auto t = tb.bus().open_topic("persistent");
    if (!t) return 10;
    auto sub = Subscriber::attach(*t, so);
    if (!sub) return 11;
    signal_parent(done[1]);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(wait_signal(done[0]));
  int published = 0;
  while (p.try_publish({}, as_bytes(std::to_string(published)))) ++published;
  ::kill(reader, SIGKILL);
  EXPECT_EQ(wait_child(reader, 60s), 128 + SIGKILL);
  topic.reap_dead_readers();
  auto snap = topic.snapshot();
  ASSERT_EQ(snap.readers.size(), 1u);
  EXPECT_FALSE(snap.readers[0].alive);                // stalled, but still there
  EXPECT_FALSE(p.try_publish({}, as_bytes("more")));  // and still holding producers back
  auto resumed = Subscriber::attach(topic, so);
  ASSERT_TRUE(resumed) << resumed.error().message();
  int got = 0;
  auto r = resumed->poll(
      [&](const Message& m) { EXPECT_EQ(as_string(m.value), std::to_string(got++)); }, 10000);
  ASSERT_TRUE(r);
  EXPECT_EQ(got, published);
  ::close(done[0]);
  ::close(done[1]);
}

}  // namespace
}  // namespace ringbus
