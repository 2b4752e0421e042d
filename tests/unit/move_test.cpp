// Moving the owning handles (Subscriber, GroupMember, Claim): the target gives up what it held
// (its slot, its membership, its claim) and takes over the source's; the moved-from handle owns
// nothing, so destroying it touches nothing.
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

ConstBytes bytes_of(const std::string& s) {
  return ConstBytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

std::size_t readers_of_kind(const Topic& t, const std::string& kind) {
  std::size_t n = 0;
  for (const ReaderInfo& r : t.snapshot().readers) n += r.kind == kind ? 1 : 0;
  return n;
}

std::vector<std::string> poll_values(Subscriber& s) {
  std::vector<std::string> values;
  auto r = s.poll([&](const Message& m) {
    values.emplace_back(reinterpret_cast<const char*>(m.value.data()), m.value.size());
  });
  EXPECT_TRUE(r) << r.error().message();
  return values;
}

TEST(Moves, SubscriberAssignedOverAnotherDetachesItAndContinuesTheSource) {
  testing::TempBus bus;
  Topic t = bus.create("moves");
  auto ra = Subscriber::attach(t, {});  // from the next message published
  auto rb = Subscriber::attach(t, {});
  ASSERT_TRUE(ra && rb);
  std::optional<Subscriber> a(std::move(*ra));
  std::optional<Subscriber> b(std::move(*rb));
  Producer p(t);
  ASSERT_TRUE(p.publish({}, bytes_of("one")));
  ASSERT_TRUE(p.publish({}, bytes_of("two")));
  EXPECT_EQ(poll_values(*a), (std::vector<std::string>{"one", "two"}));
  ASSERT_EQ(readers_of_kind(t, "subscriber"), 2U);
  *b = std::move(*a);  // b's own slot is freed; b reads on where a stopped
  EXPECT_EQ(readers_of_kind(t, "subscriber"), 1U);
  a.reset();  // moved from: frees nothing
  EXPECT_EQ(readers_of_kind(t, "subscriber"), 1U);
  ASSERT_TRUE(p.publish({}, bytes_of("three")));
  EXPECT_EQ(poll_values(*b), (std::vector<std::string>{"three"}));
  b.reset();
  EXPECT_EQ(readers_of_kind(t, "subscriber"), 0U);
}

TEST(Moves, GroupMemberAssignedOverAnotherLeavesItsGroup) {
  testing::TempBus bus;
  Topic t = bus.create("moves");
  auto first = GroupMember::join(t, "g");
  auto second = GroupMember::join(t, "g");
  auto other = GroupMember::join(t, "h");
  ASSERT_TRUE(first && second && other);
  ASSERT_EQ(readers_of_kind(t, "member"), 3U);
  *second = std::move(*other);  // second leaves g and becomes h's member
  EXPECT_EQ(readers_of_kind(t, "member"), 2U);
  Producer p(t);
  ASSERT_TRUE(p.publish({}, bytes_of("m")));
  std::size_t got = 0;
  auto polled = second->poll([&](const Message&) { ++got; });
  ASSERT_TRUE(polled) << polled.error().message();
  EXPECT_EQ(got, 1U) << "h's member sees the message";
  { GroupMember gone(std::move(*first)); }  // leaves g
  EXPECT_EQ(readers_of_kind(t, "member"), 1U);
}

TEST(Moves, ClaimAssignedOverAnotherAbortsItAndCommitsTheSource) {
  testing::TempBus bus;
  Topic t = bus.create("moves");
  auto sub = Subscriber::attach(t, {});
  ASSERT_TRUE(sub);
  Producer p(t);
  auto first = p.try_claim(5);
  auto second = p.try_claim(6);
  ASSERT_TRUE(first && second);
  std::memcpy(first->bytes().data(), "first", 5);
  std::memcpy(second->bytes().data(), "second", 6);
  *second = std::move(*first);  // the second claim becomes padding
  EXPECT_FALSE(first->active());
  ASSERT_TRUE(second->active());
  ASSERT_TRUE(second->commit());
  EXPECT_EQ(poll_values(*sub), (std::vector<std::string>{"first"}));
}

}  // namespace
}  // namespace ringbus
