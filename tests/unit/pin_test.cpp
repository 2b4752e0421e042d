// Unit tests for CPU pinning and topology: pinning really binds, bad cpus fail cleanly, and the
// chosen core pair and the description agree with what the process may use.
#include "ringbus/pin.hpp"

#include <sched.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/result.hpp"

namespace ringbus {
namespace {

// The calling thread's affinity mask as a list of cpus.
std::vector<int> thread_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

bool contains(const std::vector<int>& cpus, int cpu) {
  return std::find(cpus.begin(), cpus.end(), cpu) != cpus.end();
}

TEST(Pin, AllowedCpusAreSortedDistinctAndInOurAffinity) {
  const std::vector<int> allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  EXPECT_TRUE(std::is_sorted(allowed.begin(), allowed.end()));
  EXPECT_EQ(std::adjacent_find(allowed.begin(), allowed.end()), allowed.end());
  const std::vector<int> affinity = thread_affinity();
  for (int cpu : allowed) EXPECT_TRUE(contains(affinity, cpu)) << "cpu " << cpu;
}

TEST(Pin, PinsThreadToRequestedCpu) {
  // Each allowed cpu, each in a fresh thread so the test process keeps its own mask.
  for (int cpu : allowed_cpus()) {
    std::vector<int> mask_after;
    int running_on = -1;
    std::string error;
    std::thread worker([&] {
      if (auto pinned = pin_this_thread(cpu); !pinned) {
        error = pinned.error().message();
        return;
      }
      mask_after = thread_affinity();
      running_on = sched_getcpu();
    });
    worker.join();
    ASSERT_TRUE(error.empty()) << "cpu " << cpu << ": " << error;
    EXPECT_EQ(mask_after, std::vector<int>{cpu});
    EXPECT_EQ(running_on, cpu);
  }
}

TEST(Pin, PinningDoesNotChangeOtherThreads) {
  const std::vector<int> before = thread_affinity();
  const std::vector<int> allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  std::thread worker([&] { ASSERT_TRUE(pin_this_thread(allowed.back())); });
  worker.join();
  EXPECT_EQ(thread_affinity(), before);
  EXPECT_EQ(allowed_cpus(), allowed);
}

TEST(Pin, RejectsCpuThatDoesNotExist) {
  std::vector<int> mask_after;
  Result<void> pinned;
  std::thread worker([&] {
    pinned = pin_this_thread(100000);
    mask_after = thread_affinity();
  });
  worker.join();
  ASSERT_FALSE(pinned);
  EXPECT_EQ(pinned.code(), Errc::invalid_argument);
  EXPECT_NE(pinned.error().message().find("100000"), std::string::npos) << pinned.error().message();
  EXPECT_EQ(mask_after, thread_affinity());  // a failed pin leaves the mask alone
}

TEST(Pin, RejectsNegativeCpu) {
  Result<void> pinned;
  std::thread worker([&] { pinned = pin_this_thread(-1); });
  worker.join();
  ASSERT_FALSE(pinned);
  EXPECT_EQ(pinned.code(), Errc::invalid_argument);
}

TEST(Pin, PicksTwoDistinctAllowedCpus) {
  const std::vector<int> allowed = allowed_cpus();
  if (allowed.size() < 2) GTEST_SKIP() << "needs two allowed cpus, have " << allowed.size();
  auto pair = pick_core_pair();
  ASSERT_TRUE(pair) << pair.error().message();
  EXPECT_NE(pair->producer, pair->consumer);
  EXPECT_TRUE(contains(allowed, pair->producer)) << pair->producer;
  EXPECT_TRUE(contains(allowed, pair->consumer)) << pair->consumer;
  EXPECT_FALSE(pair->shared_cache.empty());
  // The cache is named like lstopo names it ("L2", "L3", "L1d") or is "none".
  if (pair->shared_cache != "none") {
    EXPECT_EQ(pair->shared_cache.front(), 'L');
  }
}

TEST(Pin, PickedPairCanBePinned) {
  if (allowed_cpus().size() < 2) GTEST_SKIP() << "needs two allowed cpus";
  auto pair = pick_core_pair();
  ASSERT_TRUE(pair) << pair.error().message();
  for (int cpu : {pair->producer, pair->consumer}) {
    std::vector<int> mask_after;
    std::thread worker([&] {
      if (pin_this_thread(cpu)) mask_after = thread_affinity();
    });
    worker.join();
    EXPECT_EQ(mask_after, std::vector<int>{cpu});
  }
}

TEST(Pin, PickFailsWithFewerThanTwoAllowedCpus) {
  const std::vector<int> allowed = allowed_cpus();
  ASSERT_FALSE(allowed.empty());
  // allowed_cpus() is the union of the masks of all threads, so narrow this (main) thread,
  // ask, then restore its mask.
  const std::vector<int> before = thread_affinity();
  ASSERT_TRUE(pin_this_thread(allowed.front()));
  const std::size_t narrowed = allowed_cpus().size();
  Result<CorePair> pair = pick_core_pair();
  cpu_set_t restore;
  CPU_ZERO(&restore);
  for (int cpu : before) CPU_SET(cpu, &restore);
  ASSERT_EQ(sched_setaffinity(0, sizeof restore, &restore), 0);
  ASSERT_EQ(thread_affinity(), before);
  // A sanitizer's background thread keeps the process mask wide.
  if (narrowed != 1) GTEST_SKIP() << "another thread of this process is not narrowed";
  ASSERT_FALSE(pair);
  EXPECT_EQ(pair.code(), Errc::invalid_argument);
}

TEST(Pin, DescribesEveryAllowedPu) {
  const std::string text = describe_topology();
  const std::vector<int> allowed = allowed_cpus();
  EXPECT_NE(text.find("PU"), std::string::npos) << text;
  EXPECT_NE(text.find("usable PUs: " + std::to_string(allowed.size())), std::string::npos) << text;
  for (int cpu : allowed) {
    EXPECT_NE(text.find("PU P#" + std::to_string(cpu)), std::string::npos)
        << "cpu " << cpu << " missing from:\n"
        << text;
  }
  EXPECT_NE(text.find("core"), std::string::npos) << text;
}

}  // namespace
}  // namespace ringbus
