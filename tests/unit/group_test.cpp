// Queue groups in one process: dispatch, acks, batches, takeover, deadlines, resume, back-pressure.
#include "ringbus/group.hpp"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "ringbus/producer.hpp"
#include "support/test_support.hpp"
#include "testing/fault_point.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::TempBus;

TopicOptions small() {
  TopicOptions o;
  o.capacity = 64 * 1024;
  return o;
}

GroupOptions from_earliest() {
  GroupOptions g;
  g.start = StartFrom::earliest();
  return g;
}

struct Got {
  std::uint64_t offset;
  std::string value;
  std::uint32_t delivery;
};

std::vector<Got> poll_all(GroupMember& m, std::size_t max = 64) {
  std::vector<Got> got;
  auto r = m.poll(
      [&](const Message& msg) {
        got.push_back({msg.offset, std::string(as_string(msg.value)), msg.delivery_count});
      },
      max);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return got;
}

void publish_n(Producer& p, int from, int to) {
  for (int i = from; i < to; ++i) ASSERT_TRUE(p.try_publish({}, as_bytes(std::to_string(i))));
}

TEST(Group, MemberReceivesBatchesAndMustAckBeforeTheNext) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  auto m = GroupMember::join(topic, "billing", from_earliest());
  ASSERT_TRUE(m) << m.error().message();
  Producer p(topic);
  publish_n(p, 0, 10);
  auto first = poll_all(*m, 4);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(first[0].value, "0");
  EXPECT_EQ(first[0].delivery, 1u);
  EXPECT_EQ(m->unacked(), 4u);
  EXPECT_TRUE(poll_all(*m, 4).empty());  // the batch is not acknowledged yet
  auto waiting = m->wait(Wait::busy_spin(1s));
  ASSERT_FALSE(waiting);
  EXPECT_EQ(waiting.code(), Errc::invalid_argument);
  EXPECT_NE(waiting.error().message().find("acknowledge"), std::string::npos);
  ASSERT_TRUE(m->ack(first[1].offset));
  ASSERT_TRUE(m->ack(first[0].offset));
  EXPECT_EQ(m->unacked(), 2u);
  auto bad = m->ack(first[0].offset + 1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.code(), Errc::invalid_argument);
  ASSERT_TRUE(m->ack_up_to(first[3].offset));
  EXPECT_EQ(m->unacked(), 0u);
  auto second = poll_all(*m, 64);
  ASSERT_EQ(second.size(), 6u);
  EXPECT_EQ(second[0].value, "4");
  ASSERT_TRUE(m->ack_up_to(second.back().offset));
  EXPECT_TRUE(poll_all(*m).empty());
  // Everything acknowledged: the group's committed position reached the tail.
  auto snap = topic.snapshot();
  bool found = false;
  for (const auto& r : snap.readers) {
    if (r.name == "group:billing") {
      found = true;
      EXPECT_EQ(r.position, snap.tail);
    }
  }
  EXPECT_TRUE(found);
}

// describe and the monitor show a group's lag in messages, not only in bytes (the group's slot
// keeps no sequence number; before, lag_messages was every message ever published).
TEST(Group, DescribeCountsTheGroupsLagInMessages) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  auto m = GroupMember::join(topic, "billing", from_earliest());
  ASSERT_TRUE(m) << m.error().message();
  Producer p(topic);
  auto group_info = [&] {
    for (const auto& r : topic.snapshot().readers) {
      if (r.name == "group:billing") return r;
    }
    ADD_FAILURE() << "no group in the snapshot";
    return ReaderInfo{};
  };
  publish_n(p, 0, 10);
  EXPECT_EQ(group_info().lag_messages, 10U);
  auto first = poll_all(*m, 4);
  ASSERT_EQ(first.size(), 4U);
  EXPECT_EQ(group_info().lag_messages, 10U) << "nothing acknowledged yet";
  ASSERT_TRUE(m->ack_up_to(first.back().offset));
  EXPECT_EQ(group_info().lag_messages, 6U);
  EXPECT_EQ(group_info().messages, 4U);
  auto rest = poll_all(*m, 64);
  ASSERT_EQ(rest.size(), 6U);
  ASSERT_TRUE(m->ack_up_to(rest.back().offset));
  EXPECT_EQ(group_info().lag_messages, 0U);
  EXPECT_EQ(group_info().lag_bytes, 0U);
}

TEST(Group, EachMessageGoesToExactlyOneMember) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  auto a = GroupMember::join(topic, "workers", from_earliest());
  auto b = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  Producer p(topic);
  publish_n(p, 0, 100);
  std::multiset<std::string> seen;
  std::size_t from_a = 0, from_b = 0;
  for (int round = 0; round < 100; ++round) {
    for (auto* m : {&*a, &*b}) {
      auto got = poll_all(*m, 3);
      (m == &*a ? from_a : from_b) += got.size();
      for (auto& g : got) seen.insert(g.value);
      if (!got.empty()) {
        ASSERT_TRUE(m->ack_up_to(got.back().offset));
      }
    }
  }
  EXPECT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen.count(std::to_string(i)), 1u) << i;
  EXPECT_GT(from_a, 0u);  // work spread over both
  EXPECT_GT(from_b, 0u);
}

TEST(Group, DifferentGroupsEachSeeEveryMessage) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  auto a = GroupMember::join(topic, "billing", from_earliest());
  auto b = GroupMember::join(topic, "shipping", from_earliest());
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  Producer p(topic);
  publish_n(p, 0, 20);
  for (auto* m : {&*a, &*b}) {
    auto got = poll_all(*m);
    ASSERT_EQ(got.size(), 20u);
    for (int i = 0; i < 20; ++i)
      EXPECT_EQ(got[static_cast<std::size_t>(i)].value, std::to_string(i));
    ASSERT_TRUE(m->ack_up_to(got.back().offset));
  }
}

TEST(Group, UnacknowledgedMessagesOfALeavingMemberAreRedelivered) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  Producer p(topic);
  publish_n(p, 0, 5);
  auto b = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_TRUE(b);
  {
    auto a = GroupMember::join(topic, "workers", from_earliest());
    ASSERT_TRUE(a);
    auto got = poll_all(*a, 5);
    ASSERT_EQ(got.size(), 5u);
    ASSERT_TRUE(a->ack(got[0].offset));
    ASSERT_TRUE(a->ack(got[2].offset));
  }  // leaves with 1, 3, 4 unacknowledged
  std::vector<Got> again;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (again.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    again = poll_all(*b);
  }
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].value, "1");
  EXPECT_EQ(again[1].value, "3");
  EXPECT_EQ(again[2].value, "4");
  for (auto& g : again) EXPECT_EQ(g.delivery, 2u);
  ASSERT_TRUE(b->ack_up_to(again.back().offset));
}

TEST(Group, ABatchPastTheDeadlineGoesToAnotherMemberAndLateAcksFail) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  GroupOptions g = from_earliest();
  g.processing_deadline = 30ms;
  auto slow = GroupMember::join(topic, "workers", g);
  auto fast = GroupMember::join(topic, "workers", g);
  ASSERT_TRUE(slow);
  ASSERT_TRUE(fast);
  Producer p(topic);
  publish_n(p, 0, 3);
  auto held = poll_all(*slow);
  ASSERT_EQ(held.size(), 3u);
  ASSERT_TRUE(slow->ack(held[0].offset));
  std::vector<Got> taken;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (taken.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    taken = poll_all(*fast);
  }
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].value, "1");
  EXPECT_TRUE(taken[0].delivery > 1);
  auto late = slow->ack(held[1].offset);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.code(), Errc::aborted);
  ASSERT_TRUE(fast->ack_up_to(taken.back().offset));
}

TEST(Group, ANewMemberResumesAtTheCommittedPosition) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  Producer p(topic);
  publish_n(p, 0, 10);
  {
    auto a = GroupMember::join(topic, "workers", from_earliest());
    ASSERT_TRUE(a);
    auto got = poll_all(*a, 6);
    ASSERT_EQ(got.size(), 6u);
    ASSERT_TRUE(a->ack_up_to(got.back().offset));
  }
  publish_n(p, 10, 12);
  GroupOptions latest;  // ignored: the group exists
  auto b = GroupMember::join(topic, "workers", latest);
  ASSERT_TRUE(b);
  auto rest = poll_all(*b);
  ASSERT_EQ(rest.size(), 6u);
  EXPECT_EQ(rest.front().value, "6");
  EXPECT_EQ(rest.back().value, "11");
  for (auto& g : rest) EXPECT_EQ(g.delivery, 1u);
}

TEST(Group, ProducersNeverOverwriteUnacknowledgedMessages) {
  TempBus tb;
  TopicOptions o = small();
  o.capacity = 4096;
  auto topic = tb.create("orders", o);
  auto m = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_TRUE(m);
  Producer p(topic);
  std::string value(100, 'v');
  int published = 0;
  while (p.try_publish({}, as_bytes(std::to_string(published) + value))) ++published;
  auto got = poll_all(*m);
  ASSERT_EQ(got.size(), static_cast<std::size_t>(published));
  // Delivered but not acknowledged: still no room.
  auto blocked = p.try_publish({}, as_bytes(value));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.code(), Errc::would_block);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].value, std::to_string(i) + value);  // intact
  }
  ASSERT_TRUE(m->ack_up_to(got.back().offset));
  EXPECT_TRUE(p.try_publish({}, as_bytes(value)));
}

TEST(Group, AGroupCanBeRemovedOnlyWithoutLiveMembers) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  {
    auto m = GroupMember::join(topic, "workers", from_earliest());
    ASSERT_TRUE(m);
    auto busy = topic.remove_reader("group:workers");
    ASSERT_FALSE(busy);
    EXPECT_EQ(busy.code(), Errc::busy);
    EXPECT_NE(busy.error().message().find("live member"), std::string::npos);
  }
  ASSERT_TRUE(topic.remove_reader("group:workers"));
  Producer p(topic);
  EXPECT_TRUE(p.try_publish({}, as_bytes("no longer held back by the group")));
}

TEST(Group, JoiningAnExistingGroupIgnoresItsStart) {
  TempBus tb;
  auto topic = tb.create("orders", small());
  { ASSERT_TRUE(GroupMember::join(topic, "workers", from_earliest())); }
  GroupOptions stale;
  stale.start = StartFrom::at(123456789);  // out of range, but the group exists
  EXPECT_TRUE(GroupMember::join(topic, "workers", stale));
  auto fresh = GroupMember::join(topic, "other", stale);
  ASSERT_FALSE(fresh);
  EXPECT_EQ(fresh.code(), Errc::offset_out_of_range);
}

TEST(Group, OverwriteTopicsAndBadNamesAreRejected) {
  TempBus tb;
  TopicOptions o = small();
  o.policy = Policy::overwrite;
  auto topic = tb.create("lossy", o);
  auto r = GroupMember::join(topic, "workers");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::invalid_argument);
  EXPECT_NE(r.error().message().find("block"), std::string::npos);
  auto block = tb.create("orders", small());
  auto bad = GroupMember::join(block, "no/slash");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.code(), Errc::invalid_argument);
}

// Fills the ring until producers would block; returns how many messages went in.
int fill_ring(Producer& p, int first) {
  int n = first;
  while (p.try_publish({}, as_bytes(std::to_string(n)))) ++n;
  return n - first;
}

// Polls `m` until it hands out something or 30 s pass.
std::vector<Got> poll_until_some(GroupMember& m) {
  std::vector<Got> got;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (got.empty() && std::chrono::steady_clock::now() < deadline) {
    got = poll_all(m);
    if (got.empty()) std::this_thread::sleep_for(5ms);
  }
  return got;
}

TEST(Group, ATakeoverAfterProducersWrappedTheRingRedeliversTheUnackedRest) {
  TempBus tb;
  TopicOptions o = small();
  o.capacity = 4096;
  auto topic = tb.create("orders", o);
  auto b = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_TRUE(b);
  Producer p(topic);
  publish_n(p, 0, 8);
  {
    auto a = GroupMember::join(topic, "workers", from_earliest());
    ASSERT_TRUE(a);
    auto got = poll_all(*a, 8);
    ASSERT_EQ(got.size(), 8u);
    ASSERT_TRUE(a->ack_up_to(got[3].offset));
    // Producers take every byte the group lets them have: more than a ring's worth in all,
    // so they write over the acknowledged part of a's batch if the group allows it.
    EXPECT_GT(fill_ring(p, 8), 0);
  }  // leaves with 4..7 unacknowledged
  auto again = poll_until_some(*b);
  ASSERT_EQ(again.size(), 4u);
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_EQ(again[i].value, std::to_string(4 + i));
    EXPECT_EQ(again[i].delivery, 2u);
  }
}

TEST(Group, ALateBatchTakenOverAfterAWrapKeepsItsUnackedMessages) {
  TempBus tb;
  TopicOptions o = small();
  o.capacity = 4096;
  auto topic = tb.create("orders", o);
  GroupOptions g = from_earliest();
  g.processing_deadline = 20ms;
  auto slow = GroupMember::join(topic, "workers", g);
  auto fast = GroupMember::join(topic, "workers", g);
  ASSERT_TRUE(slow);
  ASSERT_TRUE(fast);
  Producer p(topic);
  publish_n(p, 0, 8);
  auto held = poll_all(*slow, 8);
  ASSERT_EQ(held.size(), 8u);
  ASSERT_TRUE(slow->ack_up_to(held[5].offset));
  EXPECT_GT(fill_ring(p, 8), 0);
  std::this_thread::sleep_for(40ms);
  auto taken = poll_until_some(*fast);
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].value, "6");
  EXPECT_EQ(taken[1].value, "7");
}

TEST(Group, AFailedJoinLeavesNoGroupBehind) {
  TempBus tb;
  TopicOptions o = small();
  o.capacity = 4096;
  o.max_readers = 1;  // room for the group's slot, none for the member's
  auto topic = tb.create("orders", o);
  auto m = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.code(), Errc::no_reader_slot);
  for (const auto& r : topic.snapshot().readers) EXPECT_NE(r.name, "group:workers");
  // Nothing holds producers back: they can write several rings' worth.
  Producer p(topic);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(p.try_publish({}, as_bytes(std::to_string(i)))) << i;
}

TEST(Group, AFrameDamagedAfterItWasHandedOutIsCorruptNotAHugeMessage) {
  TempBus tb;
  TopicOptions o = small();
  o.capacity = 4096;
  auto topic = tb.create("orders", o);
  auto m = GroupMember::join(topic, "workers", from_earliest());
  ASSERT_TRUE(m);
  Producer p(topic);
  auto first = p.try_publish({}, as_bytes("first"));
  auto second = p.try_publish({}, as_bytes("second"));
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  auto& map = detail::mapping_of(topic);
  auto* frame = reinterpret_cast<layout::FrameHeader*>(map.ring() + (*second & 4095));
  std::size_t largest = 0;
  int calls = 0;
  auto r = m->poll([&](const Message& msg) {
    largest = std::max(largest, msg.value.size());
    if (++calls == 1) {
      // Damage the second frame while the first is being handled: a length far past the ring.
      frame->commit = layout::make_commit(layout::commit_lap(frame->commit),
                                          layout::FrameKind::kData, std::uint64_t{1} << 29);
    }
  });
  EXPECT_LE(largest, o.capacity);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
}

// Interleaves a late owner's next batch into a takeover, at the step after the taker decided
// that the batch it looks at is late.
struct LateOwner {
  GroupMember* owner;
  std::vector<Got>* first;
  std::vector<Got> second;
  bool done = false;
};

TEST(Group, ATakeoverNeverStealsTheFreshBatchOfALiveOwner) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with RINGBUS_FAULT_POINTS";
  TempBus tb;
  auto topic = tb.create("orders", small());
  GroupOptions g = from_earliest();
  g.processing_deadline = 30ms;
  auto owner = GroupMember::join(topic, "workers", g);
  auto taker = GroupMember::join(topic, "workers", g);
  ASSERT_TRUE(owner);
  ASSERT_TRUE(taker);
  Producer p(topic);
  publish_n(p, 0, 4);
  auto first = poll_all(*owner, 2);
  ASSERT_EQ(first.size(), 2u);
  std::this_thread::sleep_for(60ms);  // the first batch is late now
  LateOwner late{&*owner, &first, {}};
  detail::set_fault_hook(
      [](const char* name, void* arg) {
        auto& l = *static_cast<LateOwner*>(arg);
        if (l.done || std::string_view(name) != "group.takeover.decided") return;
        l.done = true;
        // The owner finishes the late batch and takes a fresh one before the taker acts.
        EXPECT_TRUE(l.owner->ack_up_to(l.first->back().offset));
        l.second = poll_all(*l.owner, 2);
      },
      &late);
  auto stolen = poll_all(*taker);
  detail::set_fault_hook(nullptr, nullptr);
  ASSERT_TRUE(late.done) << "the takeover never reached its decision point";
  ASSERT_EQ(late.second.size(), 2u);
  EXPECT_EQ(late.second[0].value, "2");
  for (auto& s : stolen) EXPECT_EQ(s.delivery, 1u) << "redelivered " << s.value;
  // The owner's fresh batch is still its own.
  EXPECT_TRUE(owner->ack_up_to(late.second.back().offset));
}

}  // namespace
}  // namespace ringbus
