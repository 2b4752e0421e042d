// Threads on two mappings of one topic (different addresses): what ThreadSanitizer checks.
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::TempBus;

std::uint64_t messages() { return testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000) / 4; }

struct Counter {
  std::uint32_t producer;
  std::uint64_t n;
};

// Two producers on one mapping, a durable and a lossy subscriber on another.
void run_mixed(Policy policy) {
  TempBus tb;
  TopicOptions o;
  // Overwrite: a producer stalled between claim and commit for a whole lap would have its
  // space reused (docs/design.md, known limits); a larger ring keeps that out of this test.
  o.capacity = policy == Policy::block ? 16 * 1024 : 4 * 1024 * 1024;
  o.policy = policy;
  auto a = tb.create("mixed", o);
  auto b = tb.bus().open_topic("mixed");
  ASSERT_TRUE(b);
  ASSERT_NE(detail::mapping_of(a).ring(), detail::mapping_of(*b).ring());
  const std::uint64_t per_producer = messages();

  SubscriberOptions durable_options;
  durable_options.start = StartFrom::earliest();
  auto durable = Subscriber::attach(*b, durable_options);
  ASSERT_TRUE(durable);
  SubscriberOptions lossy_options;
  lossy_options.durability = Durability::lossy;
  auto lossy = Subscriber::attach(*b, lossy_options);
  ASSERT_TRUE(lossy);

  std::atomic<bool> producers_done{false};
  std::vector<std::thread> producers;
  for (std::uint32_t id = 0; id < 2; ++id) {
    producers.emplace_back([&, id] {
      Producer p(a);
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        Counter c{id, i};
        std::string pad(i % 64, static_cast<char>('a' + id));
        auto claim = p.claim(sizeof c + pad.size(), {}, Wait::spin_yield(60s));
        ASSERT_TRUE(claim);
        std::memcpy(claim->bytes().data(), &c, sizeof c);
        std::memcpy(claim->bytes().data() + sizeof c, pad.data(), pad.size());
        auto committed = claim->commit();
        // Every claim takes a sequence number, so readers count an aborted one as lost.
        if (policy == Policy::block) {
          ASSERT_TRUE(committed);
        }
      }
    });
  }

  // Checks every message: per-producer order, no torn payload; counts loss.
  auto reader = [&](Subscriber& sub, bool expect_all, std::uint64_t& received,
                    std::uint64_t& lost) {
    std::uint64_t next[2] = {0, 0};
    for (;;) {
      auto r = sub.poll_wait(
          [&](const Message& m) {
            Counter c{};
            ASSERT_GE(m.value.size(), sizeof c);
            std::memcpy(&c, m.value.data(), sizeof c);
            ASSERT_LT(c.producer, 2u);
            ASSERT_EQ(m.value.size(), sizeof c + c.n % 64);
            for (std::size_t i = sizeof c; i < m.value.size(); ++i) {
              ASSERT_EQ(static_cast<char>(m.value[i]), static_cast<char>('a' + c.producer));
            }
            if (expect_all) {
              ASSERT_EQ(c.n, next[c.producer]);
            } else {
              ASSERT_GE(c.n, next[c.producer]);
            }
            next[c.producer] = c.n + 1;
            ++received;
          },
          128, Wait::spin_yield(200ms));
      if (r) {
        lost += r->lost_messages;
        continue;
      }
      ASSERT_EQ(r.code(), Errc::timed_out);
      if (producers_done.load()) {
        return;
      }
    }
  };
  std::uint64_t durable_received = 0, durable_lost = 0, lossy_received = 0, lossy_lost = 0;
  std::thread durable_thread(
      [&] { reader(*durable, policy == Policy::block, durable_received, durable_lost); });
  std::thread lossy_thread([&] { reader(*lossy, false, lossy_received, lossy_lost); });
  for (auto& t : producers) t.join();
  producers_done = true;
  durable_thread.join();
  lossy_thread.join();
  if (policy == Policy::block) {
    EXPECT_EQ(durable_received, 2 * per_producer);
    EXPECT_EQ(durable_lost, 0u);
  } else {
    EXPECT_EQ(durable_received + durable_lost, 2 * per_producer);
  }
  EXPECT_EQ(lossy_received + lossy_lost, 2 * per_producer);
}

TEST(Concurrency, BlockTopicTwoProducersDurableAndLossyReaders) { run_mixed(Policy::block); }

TEST(Concurrency, OverwriteTopicTwoProducersTwoLossyReaders) { run_mixed(Policy::overwrite); }

// Two producer threads wrap a 4 KiB overwrite ring many times while two lossy readers on other
// mappings check every message: never torn (its bytes are its producer's, at its size), each
// producer's messages in order, and received + lost == published.
TEST(Concurrency, ConcurrentProducersWrappingASmallOverwriteRingNeverTearAMessage) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.policy = Policy::overwrite;
  o.frame_alignment = 8;
  auto a = tb.create("small", o);
  const std::uint64_t per_producer = messages();
  std::atomic<bool> producers_done{false};
  std::atomic<std::uint64_t> bad{0};
  auto reader = [&](std::uint64_t& received, std::uint64_t& lost, std::uint64_t& last) {
    auto mapping = tb.bus().open_topic("small");
    ASSERT_TRUE(mapping);
    SubscriberOptions so;
    so.start = StartFrom::earliest();
    auto sub = Subscriber::attach(*mapping, so);
    ASSERT_TRUE(sub);
    std::uint64_t next[2] = {0, 0};
    for (;;) {
      const bool done = producers_done.load();
      auto r = sub->poll(
          [&](const Message& m) {
            Counter c{};
            if (m.value.size() < sizeof c) {
              ++bad;
              return;
            }
            std::memcpy(&c, m.value.data(), sizeof c);
            if (c.producer > 1 || m.value.size() != sizeof c + c.n % 400) {
              ++bad;
              return;
            }
            for (std::size_t i = sizeof c; i < m.value.size(); ++i) {
              if (static_cast<char>(m.value[i]) != static_cast<char>('a' + (c.n + i) % 26)) {
                ++bad;
                return;
              }
            }
            if (c.n < next[c.producer]) ++bad;
            next[c.producer] = c.n + 1;
            last = m.sequence;
            // Slow on purpose: it is lapped often, and each resync lands where producers write.
            if (++received % 64 == 0) std::this_thread::sleep_for(50us);
          },
          8);
      ASSERT_TRUE(r) << r.error().message();
      lost += r->lost_messages;
      if (r->messages == 0) {
        if (done) return;
        std::this_thread::yield();
      }
    }
  };
  std::uint64_t received[2] = {0, 0}, lost[2] = {0, 0}, last[2] = {0, 0};
  std::thread r1([&] { reader(received[0], lost[0], last[0]); });
  std::thread r2([&] { reader(received[1], lost[1], last[1]); });
  while (a.snapshot().readers.size() < 2) std::this_thread::sleep_for(1ms);
  std::vector<std::thread> producers;
  for (std::uint32_t id = 0; id < 2; ++id) {
    producers.emplace_back([&, id] {
      auto mapping = tb.bus().open_topic("small");
      ASSERT_TRUE(mapping);
      Producer p(*mapping);
      std::string value;
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        Counter c{id, i};
        value.assign(reinterpret_cast<const char*>(&c), sizeof c);
        for (std::size_t k = sizeof c; k < sizeof c + i % 400; ++k) {
          value.push_back(static_cast<char>('a' + (i + k) % 26));
        }
        auto r = p.publish({}, as_bytes(value), Wait::spin_yield(60s));
        if (!r) {
          ASSERT_EQ(r.code(), Errc::aborted);  // descheduled past the stuck-claim timeout
        }
      }
    });
  }
  for (auto& t : producers) t.join();
  producers_done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0u);
  // Every claim takes a sequence number; an aborted one is lost to readers, so only the last
  // messages' count depends on whether the final claims were aborted.
  const std::uint64_t aborted = a.snapshot().aborted_claims;
  for (int k = 0; k < 2; ++k) {
    EXPECT_EQ(received[k] + lost[k], last[k] + 1) << "reader " << k;
    EXPECT_GE(last[k] + 1 + aborted, 2 * per_producer) << "reader " << k;
    EXPECT_GT(lost[k], 0u) << "reader " << k << " was never lapped";
  }
  EXPECT_GT(a.snapshot().tail / o.capacity, 200u) << "the ring did not wrap many times";
}

// One mapping for all threads here: ThreadSanitizer tracks happens-before by address, and a
// group's committed position travels from one member to another before a producer acquires it,
// so with two mappings it would see a race that is not there. Members in different mappings
// (processes) are covered by group_stress_test.cpp.
TEST(Concurrency, GroupMembersShareTheWorkExactlyOnce) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  auto a = tb.create("group", o);
  const std::uint64_t n = messages();
  GroupOptions g;
  g.start = StartFrom::earliest();
  { ASSERT_TRUE(GroupMember::join(a, "workers", g)); }
  std::vector<std::atomic<std::uint8_t>> counts(n);
  std::atomic<std::uint64_t> done{0};
  std::atomic<bool> failed{false};
  auto member = [&](const Topic& topic) {
    auto m = GroupMember::join(topic, "workers", g);
    ASSERT_TRUE(m);
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    while (done.load() < n && !failed.load()) {
      if (std::chrono::steady_clock::now() > deadline) {
        failed = true;
        FAIL() << "only " << done.load() << " of " << n << " messages handled in 300 s";
      }
      std::uint64_t last = 0;
      auto r = m->poll_wait(
          [&](const Message& msg) {
            std::uint64_t v = 0;
            std::memcpy(&v, msg.value.data(), 8);
            if (v < n) counts[v].fetch_add(1);
            last = msg.offset;
          },
          16, Wait::spin_yield(50ms));
      if (!r && r.code() == Errc::timed_out) continue;
      if (!r) {
        failed = true;  // a poll error is a failure, never a reason to spin forever
        FAIL() << "poll: " << r.error().message();
      }
      if (r->messages == 0) continue;
      ASSERT_TRUE(m->ack_up_to(last));
      done.fetch_add(r->messages);
    }
  };
  std::thread m1([&] { member(a); });
  std::thread m2([&] { member(a); });
  Producer p(a);
  for (std::uint64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(
        p.publish({}, ConstBytes(reinterpret_cast<std::byte*>(&i), 8), Wait::spin_yield(60s)));
  }
  m1.join();
  m2.join();
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(counts[i].load(), 1) << i;
}

TEST(Concurrency, ConcurrentCreationOfOnePersistentNameMakesOneSlot) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  const int rounds = static_cast<int>(testing::env_or("RINGBUS_STRESS_ROUNDS", 300));
  for (int round = 0; round < rounds; ++round) {
    auto topic = tb.create("names" + std::to_string(round), o);
    std::atomic<int> go{0};
    auto attach = [&] {
      go.fetch_add(1);
      while (go.load() < 2) {
      }
      SubscriberOptions so;
      so.name = "recorder";
      auto sub = Subscriber::attach(topic, so);  // busy if the other thread holds it: fine
      (void)sub;
    };
    std::thread a(attach);
    std::thread b(attach);
    a.join();
    b.join();
    int slots = 0;
    for (const auto& r : topic.snapshot().readers) slots += r.name == "recorder";
    ASSERT_EQ(slots, 1) << "round " << round;
  }
}

TEST(Concurrency, ReadersAttachAndDetachWhileProducersRun) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 8 * 1024;
  o.max_readers = 4;
  auto topic = tb.create("churn", o);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    Producer p(topic);
    std::uint64_t i = 0;
    while (!stop.load()) {
      auto r = p.publish({}, as_bytes(std::to_string(i)), Wait::spin_yield(50ms));
      if (r) ++i;
    }
  });
  const int rounds = static_cast<int>(testing::env_or("RINGBUS_STRESS_ROUNDS", 300));
  for (int round = 0; round < rounds; ++round) {
    SubscriberOptions so;
    so.start = round % 2 == 0 ? StartFrom::earliest() : StartFrom::latest();
    auto sub = Subscriber::attach(topic, so);
    ASSERT_TRUE(sub) << sub.error().message();
    std::uint64_t last = 0;
    bool first = true;
    auto r = sub->poll(
        [&](const Message& m) {
          std::uint64_t v = std::stoull(std::string(as_string(m.value)));
          if (!first) {
            EXPECT_GT(v, last);  // a late joiner may be lapped while catching up
          }
          first = false;
          last = v;
        },
        32);
    ASSERT_TRUE(r);
  }
  stop = true;
  producer.join();
  EXPECT_TRUE(topic.snapshot().readers.empty());
}

}  // namespace
}  // namespace ringbus
