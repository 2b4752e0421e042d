// The publish/poll fast path (single messages and batches) allocates nothing: this binary counts
// every operator new.
#include <array>
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions (for this test binary only). They
// pair malloc with free on purpose, which GCC's mismatch warning cannot see through.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace ringbus {
namespace {

TEST(HotPath, PublishClaimCommitAndPollAllocateNothing) {
  testing::TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  for (Policy policy : {Policy::block, Policy::overwrite}) {
    std::string name = policy == Policy::block ? "block" : "overwrite";
    o.policy = policy;
    auto topic = tb.create(name, o);
    auto durable = Subscriber::attach(topic, {});
    SubscriberOptions lossy_options;
    lossy_options.durability = Durability::lossy;
    auto lossy = Subscriber::attach(topic, lossy_options);
    ASSERT_TRUE(durable);
    ASSERT_TRUE(lossy);
    Producer producer(topic);
    std::uint64_t sum = 0;
    auto handler = [&](const Message& m) { sum += m.value.size(); };
    // Warm up (first calls may size internal buffers), then count.
    ASSERT_TRUE(producer.try_publish(as_bytes("k"), as_bytes("warm-up")));
    ASSERT_TRUE(durable->poll(handler));
    ASSERT_TRUE(lossy->poll(handler));
    std::array<Record, 8> records;
    records.fill(Record{as_bytes("k"), as_bytes("a batched value")});
    const std::uint64_t before = g_allocations.load();
    for (int i = 0; i < 10'000; ++i) {
      ASSERT_TRUE(producer.try_publish(as_bytes("key"), as_bytes("a value of some length")));
      auto claim = producer.try_claim(48);
      ASSERT_TRUE(claim);
      ASSERT_TRUE(claim->commit());
      ASSERT_TRUE(producer.try_publish_batch(records));
      ASSERT_TRUE(durable->poll(handler));
      ASSERT_TRUE(lossy->poll(handler));
    }
    EXPECT_EQ(g_allocations.load() - before, 0u) << name;
    EXPECT_GT(sum, 0u);
  }
}

}  // namespace
}  // namespace ringbus
