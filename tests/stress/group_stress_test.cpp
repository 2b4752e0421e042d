// Queue groups across real processes: exactly-once without crashes, redelivery after kill -9,
// and several groups plus a subscriber on one topic.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::fork_child;
using testing::TempBus;
using testing::wait_child;

constexpr auto kChildTimeout = std::chrono::seconds(600);

// Counters in memory shared with forked children.
template <class T>
T* shared_array(std::size_t n) {
  void* p =
      ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return static_cast<T*>(p);
}

std::uint64_t value_of(const Message& m) {
  std::uint64_t v = 0;
  std::memcpy(&v, m.value.data(), std::min<std::size_t>(8, m.value.size()));
  return v;
}

int publish_sequence(const TempBus& tb, const char* topic, std::uint64_t from, std::uint64_t to) {
  auto t = tb.bus().open_topic(topic);
  if (!t) return 20;
  Producer p(*t);
  for (std::uint64_t i = from; i < to; ++i) {
    if (!p.publish({}, ConstBytes(reinterpret_cast<std::byte*>(&i), 8), Wait::spin_yield(60s))) {
      return 21;
    }
  }
  return 0;
}

TEST(GroupProcesses, FourMembersProcessEveryMessageExactlyOnce) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 1 << 20;
  auto topic = tb.create("orders", o);
  const std::uint64_t n = testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000);
  auto* counts = shared_array<std::uint8_t>(n);
  auto* per_member = shared_array<std::uint64_t>(4);
  auto* done = shared_array<std::uint64_t>(1);
  GroupOptions g;
  g.start = StartFrom::earliest();
  {  // create the group before anything is published, so it starts at offset 0
    auto creator = GroupMember::join(topic, "workers", g);
    ASSERT_TRUE(creator);
  }
  std::vector<pid_t> members;
  for (int k = 0; k < 4; ++k) {
    members.push_back(fork_child([&, k] {
      auto t = tb.bus().open_topic("orders");
      if (!t) return 10;
      auto m = GroupMember::join(*t, "workers", g);
      if (!m) return 11;
      while (__atomic_load_n(done, __ATOMIC_ACQUIRE) < n) {
        std::uint64_t last = ~std::uint64_t{0};
        auto r = m->poll_wait(
            [&](const Message& msg) {
              std::uint64_t v = value_of(msg);
              if (v < n) __atomic_fetch_add(&counts[v], 1, __ATOMIC_RELAXED);
              last = msg.offset;
            },
            64, Wait::spin_yield(100ms));
        if (!r) {
          if (r.code() == Errc::timed_out) continue;
          return 12;
        }
        if (r->messages == 0) continue;
        per_member[k] += r->messages;
        if (!m->ack_up_to(last)) return 13;
        __atomic_fetch_add(done, r->messages, __ATOMIC_RELEASE);
      }
      return 0;
    }));
  }
  pid_t producer = fork_child([&] { return publish_sequence(tb, "orders", 0, n); });
  EXPECT_EQ(wait_child(producer, kChildTimeout), 0);
  for (pid_t pid : members) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
  std::uint64_t missing = 0, duplicated = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    missing += counts[i] == 0;
    duplicated += counts[i] > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(per_member[0] + per_member[1] + per_member[2] + per_member[3], n);
  std::printf("per-member counts: %llu %llu %llu %llu\n",
              static_cast<unsigned long long>(per_member[0]),
              static_cast<unsigned long long>(per_member[1]),
              static_cast<unsigned long long>(per_member[2]),
              static_cast<unsigned long long>(per_member[3]));
  ::munmap(counts, n);
}

TEST(GroupProcesses, KilledMemberMidBatchIsRedeliveredOnlyForItsUnackedMessages) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 1 << 20;
  auto topic = tb.create("orders", o);
  constexpr std::uint64_t kMessages = 2000;
  GroupOptions g;
  g.start = StartFrom::earliest();
  { ASSERT_TRUE(GroupMember::join(topic, "workers", g)); }
  ASSERT_EQ(publish_sequence(tb, "orders", 0, kMessages), 0);
  // Per message: deliveries, deliveries flagged redelivered, and what the victim did.
  auto* delivered = shared_array<std::uint32_t>(kMessages);
  auto* redelivered = shared_array<std::uint32_t>(kMessages);
  auto* victim_state = shared_array<std::uint8_t>(kMessages);  // 1 acked, 2 unacked
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t victim = fork_child([&] {
    auto t = tb.bus().open_topic("orders");
    if (!t) return 10;
    auto m = GroupMember::join(*t, "workers", g);
    if (!m) return 11;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> batch;  // value, offset
    while (batch.empty()) {
      auto r =
          m->poll([&](const Message& msg) { batch.emplace_back(value_of(msg), msg.offset); }, 64);
      if (!r) return 12;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      __atomic_fetch_add(&delivered[batch[i].first], 1, __ATOMIC_RELAXED);
      if (i < batch.size() / 2) {
        if (!m->ack(batch[i].second)) return 13;
        victim_state[batch[i].first] = 1;
      } else {
        victim_state[batch[i].first] = 2;  // processed, killed before the ack
      }
    }
    char c = 1;
    (void)!::write(ready[1], &c, 1);
    ::pause();
    return 0;
  });
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(victim, SIGKILL);
  EXPECT_EQ(wait_child(victim, 60s), 128 + SIGKILL);
  auto* done = shared_array<std::uint64_t>(1);
  std::vector<pid_t> members;
  for (int k = 0; k < 2; ++k) {
    members.push_back(fork_child([&] {
      auto t = tb.bus().open_topic("orders");
      if (!t) return 10;
      auto m = GroupMember::join(*t, "workers", g);
      if (!m) return 11;
      auto deadline = std::chrono::steady_clock::now() + 120s;
      while (std::chrono::steady_clock::now() < deadline) {
        // Finished when every message was processed by someone (victim included).
        std::uint64_t seen = 0;
        for (std::uint64_t i = 0; i < kMessages; ++i) {
          seen += __atomic_load_n(&delivered[i], __ATOMIC_ACQUIRE) > 0;
        }
        bool all_redelivered = true;
        for (std::uint64_t i = 0; i < kMessages; ++i) {
          if (victim_state[i] == 2 && __atomic_load_n(&redelivered[i], __ATOMIC_ACQUIRE) == 0) {
            all_redelivered = false;
          }
        }
        if (seen == kMessages && all_redelivered) return 0;
        std::uint64_t last = 0;
        auto r = m->poll_wait(
            [&](const Message& msg) {
              std::uint64_t v = value_of(msg);
              __atomic_fetch_add(&delivered[v], 1, __ATOMIC_RELEASE);
              if (msg.redelivered()) __atomic_fetch_add(&redelivered[v], 1, __ATOMIC_RELEASE);
              last = msg.offset;
            },
            64, Wait::spin_yield(50ms));
        if (!r && r.code() != Errc::timed_out) return 12;
        if (r && r->messages > 0 && !m->ack_up_to(last)) return 13;
      }
      return 14;  // took too long
    }));
  }
  for (pid_t pid : members) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
  (void)done;
  std::uint64_t victim_acked = 0, victim_unacked = 0;
  for (std::uint64_t i = 0; i < kMessages; ++i) {
    ASSERT_GE(delivered[i], 1u) << "message " << i << " was never processed";
    if (victim_state[i] == 2) {
      ++victim_unacked;
      EXPECT_EQ(delivered[i], 2u) << i;  // once by the victim, once redelivered
      EXPECT_EQ(redelivered[i], 1u) << i;
    } else {
      victim_acked += victim_state[i] == 1;
      EXPECT_EQ(delivered[i], 1u) << "only unacknowledged messages may be duplicated: " << i;
      EXPECT_EQ(redelivered[i], 0u) << i;
    }
  }
  EXPECT_GT(victim_acked, 0u);
  EXPECT_GT(victim_unacked, 0u);
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(GroupProcesses, TwoGroupsAndASubscriberEachSeeEveryMessageInOrder) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 256 * 1024;
  auto topic = tb.create("orders", o);
  const std::uint64_t n = testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000) / 10;
  GroupOptions g;
  g.start = StartFrom::earliest();
  { ASSERT_TRUE(GroupMember::join(topic, "billing", g)); }
  { ASSERT_TRUE(GroupMember::join(topic, "shipping", g)); }
  SubscriberOptions so;
  so.name = "audit";
  so.start = StartFrom::earliest();
  { ASSERT_TRUE(Subscriber::attach(topic, so)); }  // persistent: holds its place meanwhile
  std::vector<pid_t> readers;
  for (const char* group : {"billing", "shipping"}) {
    readers.push_back(fork_child([&, group] {
      auto t = tb.bus().open_topic("orders");
      if (!t) return 10;
      auto m = GroupMember::join(*t, group, g);
      if (!m) return 11;
      std::uint64_t next = 0;
      while (next < n) {
        std::uint64_t last = 0;
        bool ordered = true;
        auto r = m->poll_wait(
            [&](const Message& msg) {
              ordered = ordered && value_of(msg) == next;
              ++next;
              last = msg.offset;
            },
            64, Wait::spin_yield(60s));
        if (!r || !ordered) return 12;
        if (r->messages > 0 && !m->ack_up_to(last)) return 13;
      }
      return 0;
    }));
  }
  readers.push_back(fork_child([&] {
    auto t = tb.bus().open_topic("orders");
    if (!t) return 10;
    auto sub = Subscriber::attach(*t, so);
    if (!sub) return 11;
    std::uint64_t next = 0;
    bool ordered = true;
    while (next < n && ordered) {
      auto r = sub->poll_wait(
          [&](const Message& msg) {
            ordered = ordered && value_of(msg) == next;
            ++next;
          },
          256, Wait::spin_yield(60s));
      if (!r) return 12;
    }
    return ordered ? 0 : 13;
  }));
  pid_t producer = fork_child([&] { return publish_sequence(tb, "orders", 0, n); });
  EXPECT_EQ(wait_child(producer, kChildTimeout), 0);
  for (pid_t pid : readers) EXPECT_EQ(wait_child(pid, kChildTimeout), 0);
}

}  // namespace
}  // namespace ringbus
