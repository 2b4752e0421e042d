// The bridge's recorder in-process, with subscribers replaying its log: from the log to the ring
// without gap or duplicate, old offsets, retention's out-of-range error, lapped readers of an
// overwrite topic continuing from the log, and producers held back until data is on disk.
#include "recorder.hpp"

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "bridge_config.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using bridge::BridgeConfig;
using bridge::TopicRecorder;
using Clock = std::chrono::steady_clock;

BridgeConfig config_for(const std::string& log_dir) {
  BridgeConfig c;
  c.log_dir = log_dir;
  c.record = {"*"};
  c.segment_bytes = 16 * 1024;
  c.fsync = bridge::FsyncPolicy::never;
  return c;
}

std::string value_of(std::uint64_t i) {
  // Sizes vary so frames wrap the ring at different places and padding appears.
  return "v" + std::to_string(i) + std::string(i % 97, static_cast<char>('a' + i % 26));
}

// Publishes values [from, to), stepping the recorder whenever the ring is full.
void publish_range(Producer& p, TopicRecorder& recorder, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t i = from; i < to; ++i) {
    std::string v = value_of(i);
    for (int attempt = 0;; ++attempt) {
      auto r = p.try_publish({}, as_bytes(v));
      if (r) break;
      ASSERT_EQ(r.error().code(), Errc::would_block) << r.error().message();
      ASSERT_LT(attempt, 1'000'000) << "the recorder never made room";
      recorder.step(Clock::now());
    }
  }
}

// Polls until `count` messages arrived (bounded); returns their values.
std::vector<std::string> read_n(Subscriber& s, std::size_t count, PollResult* totals = nullptr) {
  std::vector<std::string> got;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (got.size() < count && Clock::now() < deadline) {
    auto r = s.poll([&](const Message& m) { got.emplace_back(as_string(m.value)); }, 64);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    if (!r) break;
    if (totals != nullptr) {
      totals->lost_bytes += r->lost_bytes;
      totals->lost_messages += r->lost_messages;
    }
  }
  return got;
}

SubscriberOptions starting(StartFrom start) {
  SubscriberOptions o;
  o.start = start;
  return o;
}

std::unique_ptr<TopicRecorder> start_recorder(const Topic& topic, const BridgeConfig& c) {
  auto r = TopicRecorder::start(topic, c);
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? std::move(*r) : nullptr;
}

TEST(Recorder, SubscriberReplaysFromTheLogThenTheRingWithoutGapOrDuplicate) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 8192});
  auto recorder = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(recorder);
  Producer p(topic);
  publish_range(p, *recorder, 0, 3000);
  recorder->step(Clock::now());

  auto sub = Subscriber::attach(topic, starting(StartFrom::earliest()));
  ASSERT_TRUE(sub) << sub.error().message();
  EXPECT_TRUE(sub->replaying());
  EXPECT_EQ(sub->position(), 0U);
  auto got = read_n(*sub, 3000);
  ASSERT_EQ(got.size(), 3000U);
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(i)) << i;
  EXPECT_FALSE(sub->replaying());
  EXPECT_EQ(sub->lost_messages(), 0U);
  // Now in the ring: new messages arrive there, and it holds producers back again.
  publish_range(p, *recorder, 3000, 3020);
  auto more = read_n(*sub, 20);
  ASSERT_EQ(more.size(), 20U);
  EXPECT_EQ(more.front(), value_of(3000));
  EXPECT_EQ(more.back(), value_of(3019));
  recorder->stop();
}

// Whoever may read a topic may replay its log, and nobody else: a private topic's log is
// owner-only, a group-readable topic's log is readable (never writable) by the group.
TEST(Recorder, LogFilesAreOwnerOnlyUnlessTheTopicIsShared) {
  testing::TempBus tb;
  testing::TempDir logs;
  const mode_t old_umask = ::umask(0);  // the modes below are the ones asked for, not masked
  for (const auto& [name, topic_mode, file_mode, dir_mode] :
       {std::tuple{"private", 0600U, 0600U, 0700U}, std::tuple{"shared", 0660U, 0640U, 0750U}}) {
    SCOPED_TRACE(name);
    TopicOptions options;
    options.capacity = 8192;
    options.mode = topic_mode;
    Topic topic = tb.create(name, options);
    auto recorder = start_recorder(topic, config_for(logs.path()));
    ASSERT_TRUE(recorder);
    Producer p(topic);
    publish_range(p, *recorder, 0, 200);
    recorder->step(Clock::now());
    recorder->stop();  // writes state.json
    const std::string dir = logs.path() + "/" + name;
    struct stat st {};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, dir_mode);
    std::size_t files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 07777, file_mode) << entry.path();
      ++files;
    }
    EXPECT_GE(files, 4U) << "a segment, its index, the lock and state.json";
  }
  ::umask(old_umask);
}

TEST(Recorder, ReplayStartsAtAnOldOffsetAndRetentionGivesOutOfRange) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 8192});
  BridgeConfig c = config_for(logs.path());
  c.segment_bytes = 4096;
  auto recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  Producer p(topic);
  std::vector<std::uint64_t> offsets;
  for (std::uint64_t i = 0; i < 2000; ++i) {
    std::string v = value_of(i);
    for (;;) {
      auto r = p.try_publish({}, as_bytes(v));
      if (r) {
        offsets.push_back(*r);
        break;
      }
      recorder->step(Clock::now());
    }
  }
  recorder->step(Clock::now());
  ASSERT_LT(offsets[500], topic.snapshot().earliest);  // only in the log now

  auto at = Subscriber::attach(topic, starting(StartFrom::at(offsets[500])));
  ASSERT_TRUE(at) << at.error().message();
  auto got = read_n(*at, 1500);
  ASSERT_EQ(got.size(), 1500U);
  EXPECT_EQ(got.front(), value_of(500));
  EXPECT_EQ(got.back(), value_of(1999));

  auto misaligned = Subscriber::attach(topic, starting(StartFrom::at(offsets[500] + 8)));
  ASSERT_FALSE(misaligned);
  EXPECT_EQ(misaligned.error().code(), Errc::invalid_argument);

  // Retention: keep about 3 segments; older offsets are out of range, naming the earliest.
  recorder->stop();
  recorder.reset();
  c.retention_bytes = 3 * 4096;
  recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  recorder->step(Clock::now());
  auto snap = topic.snapshot();
  ASSERT_TRUE(snap.recorder);
  const std::uint64_t log_start = snap.recorder->log_start;
  ASSERT_GT(log_start, offsets[0]);
  auto gone = Subscriber::attach(topic, starting(StartFrom::at(offsets[0])));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code(), Errc::offset_out_of_range);
  EXPECT_NE(gone.error().message().find("earliest available offset of topic 'orders' is " +
                                        std::to_string(log_start)),
            std::string::npos)
      << gone.error().message();
  auto earliest = Subscriber::attach(topic, starting(StartFrom::earliest()));
  ASSERT_TRUE(earliest);
  EXPECT_EQ(earliest->position(), log_start);
  recorder->stop();
}

TEST(Recorder, NewGroupAtEarliestReadsTheLogThenTheRingExactlyOnce) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 8192});
  auto recorder = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(recorder);
  Producer p(topic);
  publish_range(p, *recorder, 0, 1000);
  recorder->step(Clock::now());
  ASSERT_GT(topic.snapshot().earliest, 0U);  // the oldest messages are only in the log
  GroupOptions o;
  o.start = StartFrom::earliest();
  auto a = GroupMember::join(topic, "billing", o);
  auto b = GroupMember::join(topic, "billing", o);
  ASSERT_TRUE(a && b);
  std::vector<int> seen(1030, 0);
  std::uint64_t received = 0;
  auto drain = [&](GroupMember& m) {
    std::uint64_t last = 0;
    auto r = m.poll(
        [&](const Message& msg) {
          std::string v(as_string(msg.value));
          auto index = std::stoul(v.substr(1, v.find_first_not_of("0123456789", 1) - 1));
          if (index < seen.size()) ++seen[index];
          ++received;
          last = msg.offset;
        },
        16);
    ASSERT_TRUE(r) << r.error().message();
    if (r->messages > 0) {
      ASSERT_TRUE(m.ack_up_to(last));
    }
  };
  auto deadline = Clock::now() + std::chrono::seconds(30);
  bool published_more = false;
  while (received < 1030 && Clock::now() < deadline) {
    drain(*a);
    drain(*b);
    recorder->step(Clock::now());
    if (!published_more && received >= 1000) {
      publish_range(p, *recorder, 1000, 1030);  // these come from the ring
      published_more = true;
    }
  }
  ASSERT_EQ(received, 1030U);
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "message " << i;
  recorder->stop();
}

TEST(Recorder, GroupWhoseLogWasDeletedByRetentionSkipsAheadInsteadOfStalling) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 8192});
  BridgeConfig c = config_for(logs.path());
  c.segment_bytes = 4096;
  auto recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  Producer p(topic);
  publish_range(p, *recorder, 0, 2000);
  recorder->step(Clock::now());
  GroupOptions o;
  o.start = StartFrom::earliest();
  auto member = GroupMember::join(topic, "billing", o);
  ASSERT_TRUE(member) << member.error().message();
  // Retention now deletes what the new group was about to read.
  recorder->stop();
  recorder.reset();
  c.retention_bytes = 2 * 4096;
  recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  recorder->step(Clock::now());
  std::vector<std::string> got;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while ((got.empty() || got.back() != value_of(1999)) && Clock::now() < deadline) {
    std::uint64_t last = 0;
    auto r = member->poll(
        [&](const Message& m) {
          got.emplace_back(as_string(m.value));
          last = m.offset;
        },
        16);
    ASSERT_TRUE(r) << r.error().message();
    if (r->messages > 0) {
      ASSERT_TRUE(member->ack_up_to(last));
    }
  }
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back(), value_of(1999));
  EXPECT_LT(got.size(), 2000U);  // the deleted part is skipped...
  std::uint64_t group_lost = 0;
  for (const auto& r : topic.snapshot().readers) {
    if (r.kind == "group") group_lost = r.lost_bytes;
  }
  EXPECT_GT(group_lost, 0U);  // ...and counted
  // What was delivered is in order, without gaps after the skip.
  auto first = std::stoul(got.front().substr(1));
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(first + i)) << i;
  recorder->stop();
}

TEST(Recorder, LappedSubscriberOfAnOverwriteTopicContinuesFromTheLog) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("ticks", {.capacity = 8192, .policy = Policy::overwrite});
  auto recorder = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(recorder);
  auto sub = Subscriber::attach(topic, starting(StartFrom::earliest()));
  ASSERT_TRUE(sub);
  Producer p(topic);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    std::string v = value_of(i);
    ASSERT_TRUE(p.try_publish({}, as_bytes(v)));
    recorder->step(Clock::now());  // the recorder keeps up; the subscriber does not
  }
  PollResult totals;
  auto got = read_n(*sub, 2000, &totals);
  ASSERT_EQ(got.size(), 2000U);
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(i)) << i;
  EXPECT_EQ(totals.lost_messages, 0U);
  EXPECT_EQ(sub->lost_bytes(), 0U);
  recorder->stop();
}

TEST(Recorder, HoldsProducersBackUntilItsCommitAndResumesWithoutGap) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 4096});
  BridgeConfig c = config_for(logs.path());
  c.fsync = bridge::FsyncPolicy::interval;
  c.fsync_interval = std::chrono::milliseconds(1);
  auto recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  Producer p(topic);
  // Without the recorder running, the ring fills and producers are refused.
  std::uint64_t published = 0;
  for (;; ++published) {
    std::string v = value_of(published);
    auto r = p.try_publish({}, as_bytes(v));
    if (!r) {
      EXPECT_EQ(r.error().code(), Errc::would_block);
      break;
    }
    ASSERT_LT(published, 1000U);
  }
  ASSERT_GT(published, 0U);
  // Stop and start again: the new recorder resumes at what was committed.
  recorder->stop();
  recorder.reset();
  recorder = start_recorder(topic, c);
  ASSERT_TRUE(recorder);
  publish_range(p, *recorder, published, 600);
  recorder->stop();
  auto snap = topic.snapshot();
  ASSERT_TRUE(snap.recorder);
  EXPECT_EQ(snap.recorder->recorded_position, snap.tail);
  EXPECT_EQ(snap.recorder->durable_position, snap.tail);
  EXPECT_EQ(snap.recorder->state, "stopped");
  auto sub = Subscriber::attach(topic, starting(StartFrom::earliest()));
  ASSERT_TRUE(sub);
  auto got = read_n(*sub, 600);
  ASSERT_EQ(got.size(), 600U);
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(i)) << i;
}

TEST(Recorder, StartAndStopWithAnEmptyLogOnAWrappedRingCanStartAgain) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 4096});
  {
    Producer p(topic);  // no durable reader yet: the ring wraps freely
    for (std::uint64_t i = 0; i < 200; ++i) {
      std::string v = value_of(i);
      ASSERT_TRUE(p.try_publish({}, as_bytes(v)));
    }
  }
  ASSERT_GT(topic.snapshot().earliest, 0U);
  auto first = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(first);
  first->stop();  // nothing new arrived: the empty log's end must not become its position
  first.reset();
  auto second = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(second);
  Producer p(topic);
  publish_range(p, *second, 1000, 1010);
  second->step(Clock::now());
  EXPECT_EQ(second->recorded(), topic.snapshot().tail);
  second->stop();
}

TEST(Recorder, ReplayMergesWithTheRingWhileProducersKeepPublishing) {
  testing::TempBus tb;
  testing::TempDir logs;
  Topic topic = tb.create("orders", {.capacity = 8192});
  auto recorder = start_recorder(topic, config_for(logs.path()));
  ASSERT_TRUE(recorder);
  const std::uint64_t total = testing::env_or("RINGBUS_STRESS_MESSAGES", 100000) / 10;
  std::atomic<bool> done{false};
  std::thread bridge_thread([&] {
    while (!done.load(std::memory_order_acquire)) recorder->step(Clock::now());
  });
  std::thread producer([&] {
    Producer p(topic);
    for (std::uint64_t i = 0; i < total; ++i) {
      std::string v = value_of(i);
      auto r = p.publish({}, as_bytes(v), Wait::spin_yield(std::chrono::seconds(30)));
      if (!r) {
        ADD_FAILURE() << r.error().message();
        return;
      }
    }
  });
  // Join from the log once a good part is only there.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (topic.snapshot().earliest == 0 && Clock::now() < deadline) std::this_thread::yield();
  auto sub = Subscriber::attach(topic, starting(StartFrom::earliest()));
  ASSERT_TRUE(sub) << sub.error().message();
  auto got = read_n(*sub, total);
  producer.join();
  done.store(true, std::memory_order_release);
  bridge_thread.join();
  auto snap = topic.snapshot();
  ASSERT_EQ(got.size(), total) << "position " << sub->position() << " replaying "
                               << sub->replaying() << " lost " << sub->lost_messages() << "/"
                               << sub->lost_bytes() << " tail " << snap.tail << " earliest "
                               << snap.earliest << " recorded "
                               << (snap.recorder ? snap.recorder->recorded_position : 0);
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(i)) << i;
  recorder->stop();
}

}  // namespace
}  // namespace ringbus
