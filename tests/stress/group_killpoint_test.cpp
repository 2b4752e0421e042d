// Queue groups killed at every named step: a member process is SIGKILLed (RINGBUS_KILL_AT) inside
// take-batch, ack, takeover, finish and leave, on a small ring that producers wrap many times,
// with a producer and other members running. After each kill: every message is handled at least
// once, a message is handled twice only as a redelivery (delivery_count > 1), the producer is
// never blocked for good, and the group's committed position catches up with the tail.
// Also: several processes creating and joining one group at once end up in one group.
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "support/test_support.hpp"
#include "testing/fault_point.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::fork_child;
using testing::TempBus;
using testing::wait_child;

constexpr auto kChildTimeout = std::chrono::seconds(180);
constexpr int kKilled = 128 + SIGKILL;

// Per-message delivery counts, in memory shared with the forked children.
struct Tally {
  std::uint32_t total[4096];  // deliveries of message i
  std::uint32_t first[4096];  // deliveries of message i with delivery_count == 1
  std::uint64_t distinct;     // messages delivered at least once
  std::uint64_t armed;        // the victim armed its kill point
};

Tally* shared_tally() {
  void* p =
      ::mmap(nullptr, sizeof(Tally), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  std::memset(p, 0, sizeof(Tally));
  return static_cast<Tally*>(p);
}

std::uint64_t value_of(const Message& m) {
  std::uint64_t v = 0;
  std::memcpy(&v, m.value.data(), std::min<std::size_t>(8, m.value.size()));
  return v;
}

// The group's committed position has reached the tail (everything acknowledged).
bool caught_up(const Topic& t, const std::string& group) {
  auto snap = t.snapshot();
  for (const auto& r : snap.readers) {
    if (r.name == "group:" + group) return r.position == snap.tail;
  }
  return false;
}

enum class Role {
  dropper,  // dies (no leave) holding a batch after a few messages
  leaver,   // leaves with unacknowledged messages after a few messages
  worker,   // works until every message is handled and the group caught up
};

// Arms RINGBUS_KILL_AT=<point>:<pass> in this process.
void arm_kill_point(const char* point, int pass) {
  ::setenv("RINGBUS_KILL_AT", (std::string(point) + ":" + std::to_string(pass)).c_str(), 1);
  detail::reload_fault_points();
}

// One member process. Acknowledges the first message of a batch on its own and the rest with
// ack_up_to, so both ack paths run. With `kill_at`, arms that kill point once it has handled
// `arm_after` messages itself.
int run_member(const TempBus& tb, Tally* tally, std::uint64_t n, Role role,
               const char* kill_at = nullptr, std::uint64_t arm_after = 0) {
  auto t = tb.bus().open_topic("orders");
  if (!t) return 10;
  auto m = GroupMember::join(*t, "workers");
  if (!m) return 11;
  std::uint64_t handled = 0;
  const auto deadline = std::chrono::steady_clock::now() + 150s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (role == Role::worker && __atomic_load_n(&tally->distinct, __ATOMIC_ACQUIRE) == n &&
        caught_up(*t, "workers")) {
      return 0;
    }
    if (kill_at != nullptr && handled >= arm_after) {
      arm_kill_point(kill_at, 3);  // a few passes on: the worker beside it has started by then
      kill_at = nullptr;
      __atomic_store_n(&tally->armed, 1, __ATOMIC_RELEASE);
    }
    std::vector<std::uint64_t> offsets;
    auto r = m->poll_wait(
        [&](const Message& msg) {
          const std::uint64_t v = value_of(msg);
          if (v >= n) return;
          if (__atomic_fetch_add(&tally->total[v], 1, __ATOMIC_RELAXED) == 0) {
            __atomic_fetch_add(&tally->distinct, 1, __ATOMIC_RELEASE);
          }
          if (msg.delivery_count == 1) __atomic_fetch_add(&tally->first[v], 1, __ATOMIC_RELAXED);
          offsets.push_back(msg.offset);
        },
        8, Wait::spin_yield(50ms));
    if (!r) {
      if (r.code() == Errc::timed_out) continue;
      return 12;
    }
    if (offsets.empty()) continue;
    handled += offsets.size();
    if (role == Role::dropper && handled >= 20) ::_exit(0);  // dies holding the batch
    auto first = m->ack(offsets.front());
    if (!first && first.code() != Errc::aborted) return 13;
    if (role == Role::leaver && handled >= 30 && offsets.size() > 1) return 0;  // leaves
    if (first && offsets.size() > 1) {
      auto rest = m->ack_up_to(offsets.back());
      if (!rest && rest.code() != Errc::aborted) return 14;
    }
  }
  return role == Role::worker ? 15 : 0;
}

struct KillPoint {
  const char* name;
  // 0: the victim runs alone, armed from the start (it is killed at its first takeover, of the
  // dropper's batch). Otherwise it runs beside another member, and is armed once it has
  // handled this many messages.
  std::uint64_t arm_after;
  Role role;  // what the victim does when it is not killed first
};

class GroupKillPoint : public ::testing::TestWithParam<KillPoint> {};

TEST_P(GroupKillPoint, EveryMessageIsHandledAndTheGroupCatchesUp) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with RINGBUS_FAULT_POINTS";
  const KillPoint kp = GetParam();
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;  // ~100 messages a lap: wrapped many times
  auto topic = tb.create("orders", o);
  const std::uint64_t n = std::min<std::uint64_t>(
      testing::env_or("RINGBUS_KILLPOINT_MESSAGES", 1500), std::size(Tally{}.total));
  Tally* tally = shared_tally();
  GroupOptions g;
  g.start = StartFrom::earliest();
  { ASSERT_TRUE(GroupMember::join(topic, "workers", g)); }  // the group starts at offset 0

  pid_t producer = fork_child([&] {
    auto t = tb.bus().open_topic("orders");
    if (!t) return 20;
    Producer p(*t);
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!p.publish({}, ConstBytes(reinterpret_cast<std::byte*>(&i), 8), Wait::spin_yield(90s))) {
        return 21;  // blocked for good
      }
    }
    return 0;
  });
  // A member dies holding a batch, so that the victim has a batch to take over.
  pid_t dropper = fork_child([&] { return run_member(tb, tally, n, Role::dropper); });
  ASSERT_EQ(wait_child(dropper, kChildTimeout), 0);
  // A second member works beside the victim, except where the victim must be the one to adopt
  // the dropper's batch.
  const bool beside = kp.arm_after > 0;
  pid_t victim = fork_child([&] {
    if (!beside) arm_kill_point(kp.name, 1);
    return run_member(tb, tally, n, kp.role, beside ? kp.name : nullptr, kp.arm_after);
  });
  pid_t worker = -1;
  if (beside) {
    // The worker starts once the victim is armed, so that the victim gets there first.
    const auto until = std::chrono::steady_clock::now() + 60s;
    while (__atomic_load_n(&tally->armed, __ATOMIC_ACQUIRE) == 0 &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(1ms);
    }
    worker = fork_child([&] { return run_member(tb, tally, n, Role::worker); });
  }
  EXPECT_EQ(wait_child(victim, kChildTimeout), kKilled) << "the victim never reached " << kp.name;
  if (!beside) worker = fork_child([&] { return run_member(tb, tally, n, Role::worker); });
  EXPECT_EQ(wait_child(worker, kChildTimeout), 0)
      << "the group did not catch up after a kill at " << kp.name;
  EXPECT_EQ(wait_child(producer, kChildTimeout), 0) << "the producer was blocked for good";
  std::uint64_t missing = 0, duplicated_first = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    missing += tally->total[i] == 0;
    duplicated_first += tally->first[i] > 1;
  }
  EXPECT_EQ(missing, 0u) << "messages never handled after a kill at " << kp.name;
  EXPECT_EQ(duplicated_first, 0u) << "messages handed out twice as first deliveries";
  EXPECT_TRUE(caught_up(topic, "workers"));
  ::munmap(tally, sizeof(Tally));
}

INSTANTIATE_TEST_SUITE_P(Steps, GroupKillPoint,
                         ::testing::Values(KillPoint{"group.take.published", 40, Role::worker},
                                           KillPoint{"group.take.dispatched", 40, Role::worker},
                                           KillPoint{"group.ack.cas", 40, Role::worker},
                                           KillPoint{"group.finish.cleared", 40, Role::worker},
                                           KillPoint{"group.takeover.decided", 0, Role::worker},
                                           KillPoint{"group.takeover.cas", 0, Role::worker},
                                           KillPoint{"group.takeover.rebuilt", 0, Role::worker},
                                           KillPoint{"group.finish.cleared", 0, Role::worker},
                                           KillPoint{"group.leave.marked", 0, Role::leaver}),
                         [](const ::testing::TestParamInfo<KillPoint>& param_info) {
                           std::string s = param_info.param.name;
                           for (char& c : s) {
                             if (c == '.') c = '_';
                           }
                           return s +
                                  (param_info.param.arm_after > 0 ? "_beside_a_worker" : "_alone");
                         });

// A small block topic for the group creation tests.
Topic create_orders(TempBus& tb) {
  TopicOptions o;
  o.capacity = 64 * 1024;
  return tb.create("orders", o);
}

// Memory shared with forked children for start/stop signals.
std::uint32_t* shared_gate() {
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return static_cast<std::uint32_t*>(p);
}

bool wait_for_flag(const std::uint32_t& flag) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (__atomic_load_n(&flag, __ATOMIC_ACQUIRE) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

int count_groups(const Topic& topic, const std::string& group) {
  int groups = 0;
  for (const auto& r : topic.snapshot().readers) groups += r.name == "group:" + group;
  return groups;
}

// A child that creates group "g" and, between contending for the name and turning its slot
// active, sets gate[0] and then runs `pause` (slow, or stopped). It stays a member until gate[1].
pid_t fork_paused_creator(TempBus& tb, std::uint32_t* gate, void (*pause)()) {
  return fork_child([&tb, gate, pause] {
    auto t = tb.bus().open_topic("orders");
    if (!t) return 10;
    struct Hook {
      std::uint32_t* gate;
      void (*pause)();
    } hook{gate, pause};
    detail::set_fault_hook(
        [](const char* name, void* arg) {
          if (std::strcmp(name, "slots.contending") != 0) return;
          auto* h = static_cast<Hook*>(arg);
          __atomic_store_n(&h->gate[0], 1, __ATOMIC_RELEASE);
          h->pause();
        },
        &hook);
    auto m = GroupMember::join(*t, "g");
    detail::set_fault_hook(nullptr, nullptr);
    if (!m) {
      std::fprintf(stderr, "join failed: %s\n", m.error().message().c_str());
      return 11;
    }
    return wait_for_flag(gate[1]) ? 0 : 12;
  });
}

TEST(GroupProcesses, ConcurrentCreatorsAndJoinersOfOneGroupEndUpInOneGroup) {
  const std::uint64_t rounds = testing::env_or("RINGBUS_GROUP_CREATE_ROUNDS", 40);
  TempBus tb;
  auto topic = create_orders(tb);
  constexpr int kMembers = 3;
  constexpr std::uint64_t kMessages = 30;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    const std::string group = "g" + std::to_string(round);
    Tally* tally = shared_tally();
    auto* gate = static_cast<std::uint32_t*>(
        ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(gate, MAP_FAILED);
    gate[0] = 0;  // start signal
    gate[1] = 0;  // members joined
    std::vector<pid_t> members;
    for (int k = 0; k < kMembers; ++k) {
      members.push_back(fork_child([&] {
        auto t = tb.bus().open_topic("orders");
        if (!t) return 10;
        while (__atomic_load_n(&gate[0], __ATOMIC_ACQUIRE) == 0) sched_yield();
        auto m = GroupMember::join(*t, group);  // from latest: this round's messages only
        if (!m) {
          std::fprintf(stderr, "join failed: %s\n", m.error().message().c_str());
          return 11;
        }
        __atomic_fetch_add(&gate[1], 1, __ATOMIC_RELEASE);
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (__atomic_load_n(&tally->distinct, __ATOMIC_ACQUIRE) < kMessages ||
               __atomic_load_n(&gate[2], __ATOMIC_ACQUIRE) == 0) {
          if (std::chrono::steady_clock::now() > deadline) return 12;
          std::uint64_t last = 0;
          bool any = false;
          auto r = m->poll(
              [&](const Message& msg) {
                const std::uint64_t v = value_of(msg);
                if (v < kMessages &&
                    __atomic_fetch_add(&tally->total[v], 1, __ATOMIC_RELAXED) == 0) {
                  __atomic_fetch_add(&tally->distinct, 1, __ATOMIC_RELEASE);
                }
                last = msg.offset;
                any = true;
              },
              4);
          if (!r) return 13;
          if (any && !m->ack_up_to(last)) return 14;
          if (!any) std::this_thread::sleep_for(1ms);
        }
        return 0;
      }));
    }
    __atomic_store_n(&gate[0], 1, __ATOMIC_RELEASE);
    const auto joined_by = std::chrono::steady_clock::now() + 60s;
    while (__atomic_load_n(&gate[1], __ATOMIC_ACQUIRE) < kMembers &&
           std::chrono::steady_clock::now() < joined_by) {
      std::this_thread::sleep_for(1ms);
    }
    int groups = 0;
    for (const auto& r : topic.snapshot().readers) groups += r.name == "group:" + group;
    EXPECT_EQ(groups, 1) << "round " << round;
    Producer p(topic);
    for (std::uint64_t i = 0; i < kMessages; ++i) {
      ASSERT_TRUE(
          p.publish({}, ConstBytes(reinterpret_cast<std::byte*>(&i), 8), Wait::spin_yield(30s)));
    }
    __atomic_store_n(&gate[2], 1, __ATOMIC_RELEASE);  // all published: stop once all handled
    for (pid_t pid : members) EXPECT_EQ(wait_child(pid, kChildTimeout), 0) << "round " << round;
    for (std::uint64_t i = 0; i < kMessages; ++i) {
      EXPECT_EQ(tally->total[i], 1u) << "round " << round << " message " << i;
    }
    // The round's group would hold producers back from now on: remove it.
    EXPECT_TRUE(topic.remove_reader("group:" + group)) << "round " << round;
    ::munmap(gate, 4096);
    ::munmap(tally, sizeof(Tally));
    if (::testing::Test::HasFailure()) break;
  }
}

// Joins "g" while the paused creator is (or was) making it: one group, both in it. Then lets
// the creator go.
void join_beside_creator(const Topic& topic, std::uint32_t* gate, pid_t creator) {
  auto joined = GroupMember::join(topic, "g");
  EXPECT_TRUE(joined) << joined.error().message();
  EXPECT_EQ(count_groups(topic, "g"), 1);
  __atomic_store_n(&gate[1], 1, __ATOMIC_RELEASE);
  EXPECT_EQ(wait_child(creator, kChildTimeout), 0);
  ::munmap(gate, 4096);
}

// A creator of a new group that is slow between contending for the name and turning its slot
// active (descheduled on a loaded machine) does not make a second joiner give up: the joiner
// waits for it and joins its group. (A joiner used to retry at once, see the slow creator
// again, and spend all its attempts in microseconds: "too much contention on reader slots".)
TEST(GroupProcesses, AJoinerWaitsForASlowCreatorOfTheSameGroup) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with fault points";
  TempBus tb;
  auto topic = create_orders(tb);
  std::uint32_t* gate = shared_gate();
  const pid_t creator = fork_paused_creator(tb, gate, [] { std::this_thread::sleep_for(300ms); });
  ASSERT_TRUE(wait_for_flag(gate[0]));
  join_beside_creator(topic, gate, creator);
}

// A creator stopped (SIGSTOP) between contending and finishing holds other creators of the
// same name back for a bounded time only: they get a busy error that names it, and once it
// runs again it finishes and they join its group.
TEST(GroupProcesses, ACreatorStoppedMidCreationGivesOthersABusyErrorNamingIt) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with fault points";
  TempBus tb;
  auto topic = create_orders(tb);
  std::uint32_t* gate = shared_gate();
  const pid_t creator = fork_paused_creator(tb, gate, [] { ::raise(SIGSTOP); });
  ASSERT_TRUE(wait_for_flag(gate[0]));
  int status = 0;
  ASSERT_EQ(::waitpid(creator, &status, WUNTRACED), creator);  // bounded: it stops itself
  ASSERT_TRUE(WIFSTOPPED(status));
  auto refused = GroupMember::join(topic, "g");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Errc::busy);
  EXPECT_TRUE(testing::contains(refused.error().message(),
                                "being created by live process " + std::to_string(creator)))
      << refused.error().message();
  EXPECT_EQ(count_groups(topic, "g"), 0);
  ASSERT_EQ(::kill(creator, SIGCONT), 0);
  join_beside_creator(topic, gate, creator);
}

}  // namespace
}  // namespace ringbus
