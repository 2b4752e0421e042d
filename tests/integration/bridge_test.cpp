// ringbus-bridge as a real process: recording while producers publish, replay equal to what was
// published, kill -9 at random moments, a simulated power cut, a corrupt segment, retention,
// a full disk (file-size limit), a topic lost from the bus and restored, bad configuration.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "log/segments.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using Clock = std::chrono::steady_clock;
using testing::run_command;

// Payloads are a function of their index, so any process can check them.
std::string value_of(std::uint64_t i) {
  std::uint64_t h = testing::fnv1a(&i, sizeof i);
  return std::to_string(i) + ":" + std::string(h % 48, static_cast<char>('a' + h % 26));
}

bool wait_until(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

class Bridge : public ::testing::Test {
 protected:
  std::string log_dir() const { return logs_.path() + "/log"; }

  // Starts ringbus-bridge on this test's bus; `fsize_limit` > 0 caps the size of files it
  // writes (RLIMIT_FSIZE), as a full disk would.
  pid_t start(const std::vector<std::string>& extra = {}, rlim_t fsize_limit = 0) {
    std::vector<std::string> args = {
        RINGBUS_BRIDGE_PATH, "--bus-dir", bus_.dir(),        "--log-dir", log_dir(),
        "--record",          "*",         "--scan-interval", "50ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string err = logs_.path() + "/bridge.err";
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (fsize_limit > 0) {
        rlimit lim{fsize_limit, RLIM_INFINITY};
        ::setrlimit(RLIMIT_FSIZE, &lim);
      }
      // Never hold the test's own output open: a bridge outliving a failed test would keep
      // whoever reads it waiting.
      FILE* e = std::freopen(err.c_str(), "a", stderr);
      FILE* o = std::freopen("/dev/null", "w", stdout);
      (void)e;
      (void)o;
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    started_.push_back(pid);
    return pid;
  }

  // A test that failed half-way leaves no bridge behind.
  void TearDown() override {
    for (pid_t pid : started_) {
      if (::kill(pid, 0) == 0) {
        ::kill(pid, SIGKILL);
        testing::wait_child(pid, std::chrono::seconds(10));
      }
    }
  }

  // Waits until the bridge `pid` records `topic` (its counters name it, recording).
  bool attached(pid_t pid, const std::string& topic = "orders") const {
    return wait_until(
        [&] {
          auto info = recorder(topic);
          return info && info->pid == static_cast<std::uint32_t>(pid) && info->state == "recording";
        },
        std::chrono::seconds(30));
  }

  // SIGTERM: the bridge flushes and exits 0.
  void stop(pid_t pid) {
    EXPECT_TRUE(attached(pid)) << bridge_log();
    ::kill(pid, SIGTERM);
    EXPECT_EQ(testing::wait_child(pid, std::chrono::seconds(30)), 0) << bridge_log();
  }
  void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(testing::wait_child(pid, std::chrono::seconds(30)), 128 + SIGKILL);
  }

  std::string bridge_log() const {
    std::ifstream in(logs_.path() + "/bridge.err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  std::optional<RecorderInfo> recorder(const std::string& topic) const {
    auto t = bus_.bus().open_topic(topic);
    if (!t) return std::nullopt;
    return t->snapshot().recorder;
  }

  // Waits until the bridge recorded everything published to `topic` so far.
  bool recorded_all(const std::string& topic, std::chrono::seconds timeout) const {
    return wait_until(
        [&] {
          auto t = bus_.bus().open_topic(topic);
          if (!t) return false;
          auto snap = t->snapshot();
          return snap.recorder && snap.recorder->recorded_position == snap.tail &&
                 snap.recorder->durable_position == snap.tail;
        },
        timeout);
  }

  // A child process that publishes values [from, to) to `topic`, waiting for space; with
  // `pause_every`, it sleeps 1 ms after that many messages (to span a longer test).
  pid_t producer(const std::string& topic, std::uint64_t from, std::uint64_t to,
                 std::uint64_t pause_every = 0) const {
    std::string dir = bus_.dir();
    return testing::fork_child([=] {
      auto t = Bus(dir).open_topic(topic);
      if (!t) return 10;
      Producer p(*t);
      for (std::uint64_t i = from; i < to; ++i) {
        std::string v = value_of(i);
        if (!p.publish({}, as_bytes(v), Wait::spin_yield(std::chrono::seconds(60)))) return 11;
        if (pause_every != 0 && i % pause_every == 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
      return 0;
    });
  }

  // Reads `topic` from the earliest offset (disk log, then ring) and checks that it holds
  // exactly values [0, count) in order. Returns the number of messages read.
  std::uint64_t replay_and_check(const std::string& topic, std::uint64_t count) const {
    auto t = bus_.bus().open_topic(topic);
    EXPECT_TRUE(t);
    if (!t) return 0;
    SubscriberOptions o;
    o.start = StartFrom::earliest();
    o.durability = Durability::lossy;
    auto sub = Subscriber::attach(*t, o);
    EXPECT_TRUE(sub) << sub.error().message();
    if (!sub) return 0;
    std::uint64_t next = 0;
    std::uint64_t previous_offset = 0;
    bool ordered = true;
    auto deadline = Clock::now() + std::chrono::seconds(120);
    while (next < count && Clock::now() < deadline) {
      auto r = sub->poll(
          [&](const Message& m) {
            if (as_string(m.value) != value_of(next) || (next > 0 && m.offset <= previous_offset)) {
              if (ordered) {
                ADD_FAILURE() << "message " << next << " at offset " << m.offset << " is '"
                              << as_string(m.value) << "'";
              }
              ordered = false;
            }
            previous_offset = m.offset;
            ++next;
          },
          256);
      if (!r) {
        ADD_FAILURE() << r.error().message();
        break;
      }
      EXPECT_EQ(r->lost_messages, 0U);
      if (!ordered) break;
    }
    EXPECT_TRUE(ordered);
    // Nothing more than what was published.
    auto extra = sub->poll([](const Message&) {}, 16);
    EXPECT_TRUE(extra && extra->messages == 0);
    return next;
  }

  testing::TempBus bus_;
  testing::TempDir logs_;
  std::vector<pid_t> started_;
};

TEST_F(Bridge, RecordsWhilePublishingAndReplayFromEarliestEqualsThePublishedStream) {
  const std::uint64_t n = testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000);
  bus_.create("orders", {.capacity = 1 << 20});
  pid_t bridge = start({"--fsync", "never"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  pid_t p = producer("orders", 0, n);
  ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(300)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(120))) << bridge_log();
  stop(bridge);
  auto info = recorder("orders");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->state, "stopped");
  EXPECT_EQ(info->recorded_messages, n);
  EXPECT_GT(info->segments, 0U);
  // Most of it is only on disk now: the ring holds the last MiB.
  EXPECT_EQ(replay_and_check("orders", n), n);
}

TEST_F(Bridge, KillNineAtRandomMomentsNeitherLosesNorDuplicates) {
  const std::uint64_t n = testing::env_or("RINGBUS_STRESS_MESSAGES", 1'000'000) / 5;
  bus_.create("orders", {.capacity = 64 * 1024});
  pid_t bridge = start({"--segment-bytes", "256KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  // Paced to take a few seconds, so the kills land while it publishes.
  pid_t p = producer("orders", 0, n, std::max<std::uint64_t>(n / 3000, 1));
  std::mt19937 random(12345);
  int while_publishing = 0;
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + random() % 150));
    int status = 0;
    if (::waitpid(p, &status, WNOHANG) == 0) ++while_publishing;
    kill9(bridge);
    bridge = start({"--segment-bytes", "256KiB"});
  }
  EXPECT_GE(while_publishing, 10) << "most kills should hit a running producer";
  ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(300)), 0) << bridge_log();
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(120))) << bridge_log();
  stop(bridge);
  EXPECT_EQ(replay_and_check("orders", n), n);
  // The log alone, with the ring gone, still holds the whole stream from offset 0.
  auto info = recorder("orders");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->log_start, 0U);
  EXPECT_EQ(info->recorded_messages, n);
}

TEST_F(Bridge, PowerCutGarbagePastTheDurablePositionIsCutAndRecordingContinues) {
  bus_.create("orders", {.capacity = 1 << 20});
  // Sync rarely, so the segment has bytes past the durable position when the power goes.
  pid_t bridge = start({"--fsync", "bytes", "--fsync-bytes", "1GiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 3000), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(wait_until([&] { return recorder("orders")->recorded_messages == 3000; },
                         std::chrono::seconds(30)));
  kill9(bridge);
  auto info = recorder("orders");
  ASSERT_TRUE(info);
  // The power cut: the last segment loses part of what was not durable, and the device
  // returns garbage after that.
  auto bases = detail::list_segments(info->log_dir);
  ASSERT_TRUE(bases && !bases->empty());
  std::string segment = detail::segment_file(info->log_dir, bases->back(), ".log");
  std::uint64_t cut =
      info->durable_position + (info->recorded_position - info->durable_position) / 2;
  ASSERT_EQ(::truncate(segment.c_str(), static_cast<off_t>(cut - bases->back())), 0);
  {
    std::ofstream out(segment, std::ios::app | std::ios::binary);
    std::string garbage(5000, '\0');
    for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
    out << garbage;
  }
  bridge = start();
  ASSERT_EQ(testing::wait_child(producer("orders", 3000, 5000), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  EXPECT_NE(bridge_log().find("log recovery: cut segment"), std::string::npos) << bridge_log();
  EXPECT_EQ(replay_and_check("orders", 5000), 5000U);
}

TEST_F(Bridge, CorruptMiddleSegmentIsReportedByTheReaderWithItsName) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start({"--segment-bytes", "8KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 2000), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  stop(bridge);
  auto info = recorder("orders");
  auto bases = detail::list_segments(info->log_dir);
  ASSERT_TRUE(bases && bases->size() >= 4);
  std::string victim = detail::segment_file(info->log_dir, (*bases)[1], ".log");
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  auto r = run_command(testing::tool_path("ringbus") + " --dir '" + bus_.dir() +
                       "' consume orders --from earliest --count 2000 --timeout-ms 5000 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("CRC32C mismatch"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(victim), std::string::npos) << r.out;
  // What came before the bad chunk was printed, in order, and nothing of the bad chunk.
  EXPECT_EQ(r.out.rfind(value_of(0), 0), 0U) << r.out.substr(0, 200);
}

TEST_F(Bridge, RetentionBySizeAndAgeAndOutOfRangeNamesTheEarliestOffset) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start({"--segment-bytes", "8KiB", "--retention-bytes", "32KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 4000), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  ASSERT_TRUE(wait_until([&] { return recorder("orders")->log_bytes <= 40 * 1024; },
                         std::chrono::seconds(30)))
      << bridge_log();
  auto info = recorder("orders");
  EXPECT_GT(info->log_start, 0U);
  EXPECT_NE(bridge_log().find("retention removed"), std::string::npos);
  auto r = run_command(testing::tool_path("ringbus") + " --dir '" + bus_.dir() +
                       "' consume orders --from 0 --count 1 --timeout-ms 1000 2>&1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("earliest available offset of topic 'orders' is " +
                       std::to_string(info->log_start)),
            std::string::npos)
      << r.out;
  stop(bridge);

  // By age: every closed segment older than 1s goes; the active one stays.
  bridge = start({"--segment-bytes", "8KiB", "--retention-age", "1s"});
  ASSERT_TRUE(
      wait_until([&] { return recorder("orders")->segments == 1; }, std::chrono::seconds(30)))
      << bridge_log();
  stop(bridge);
}

TEST_F(Bridge, FullDiskHoldsProducersBackAndLosesNothing) {
  bus_.create("orders", {.capacity = 64 * 1024});
  // Files may not grow past 128 KiB: the first segment fills, and writes fail with EFBIG.
  pid_t bridge = start({"--segment-bytes", "1MiB"}, 128 * 1024);
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  pid_t p = producer("orders", 0, 20000);
  ASSERT_TRUE(wait_until([&] { return recorder("orders")->errors > 0; }, std::chrono::seconds(60)))
      << bridge_log();
  auto info = recorder("orders");
  EXPECT_EQ(info->state, "failing");
  EXPECT_NE(info->last_error.find("File too large"), std::string::npos) << info->last_error;
  // Producers are held back: the recorder cannot advance, so the ring stays full.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int status = 0;
  EXPECT_EQ(::waitpid(p, &status, WNOHANG), 0) << "the producer finished: nothing held it back";
  // The disk gets space again: the bridge retries and catches up.
  rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
  ASSERT_EQ(::prlimit(bridge, RLIMIT_FSIZE, &unlimited, nullptr), 0);
  ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(120)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60))) << bridge_log();
  EXPECT_EQ(recorder("orders")->state, "recording");
  EXPECT_NE(bridge_log().find("recording again"), std::string::npos) << bridge_log();
  stop(bridge);
  EXPECT_EQ(replay_and_check("orders", 20000), 20000U);
}

// Polls `member` until `count` messages arrived, acknowledging each batch; returns the values.
std::vector<std::string> consume_group(GroupMember& member, std::size_t count) {
  std::vector<std::string> got;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (got.size() < count && Clock::now() < deadline) {
    std::uint64_t last = 0;
    auto r = member.poll(
        [&](const Message& m) {
          if (got.size() < count) got.emplace_back(as_string(m.value));
          last = m.offset;
        },
        std::min<std::size_t>(64, count - got.size()));
    if (!r) {
      ADD_FAILURE() << r.error().message();
      break;
    }
    if (r->messages > 0) {
      EXPECT_TRUE(member.ack_up_to(last));
    }
  }
  return got;
}

TEST_F(Bridge, TopicLostFromTheBusIsRestoredFromItsLogAndKeepsItsOffsets) {
  // Room for the 400 messages the group has not processed (it holds producers back).
  bus_.create("orders", {.capacity = 64 * 1024});
  pid_t bridge = start();
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  {
    // A queue group that has processed (acknowledged) the first 600 messages.
    auto topic = bus_.bus().open_topic("orders");
    GroupOptions o;
    o.start = StartFrom::earliest();
    auto member = GroupMember::join(*topic, "billing", o);
    ASSERT_TRUE(member) << member.error().message();
    pid_t p = producer("orders", 0, 1000);
    auto got = consume_group(*member, 600);
    ASSERT_EQ(got.size(), 600U);
    EXPECT_EQ(got.back(), value_of(599));
    ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(60)), 0);
  }
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  stop(bridge);
  const std::uint64_t end = recorder("orders")->recorded_position;
  // A reboot: the bus directory (shared memory) is gone, the log is not.
  ASSERT_TRUE(bus_.bus().remove_topic("orders"));
  bridge = start();
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  auto topic = bus_.bus().open_topic("orders");
  ASSERT_TRUE(topic);
  EXPECT_EQ(topic->snapshot().tail, end);  // offsets are never reused
  EXPECT_EQ(topic->config().capacity, 64U * 1024);
  // The group resumes at its committed position, from the log and then the ring, while
  // producers publish again.
  pid_t p = producer("orders", 1000, 1500);
  {
    auto member = GroupMember::join(*topic, "billing");
    ASSERT_TRUE(member) << member.error().message();
    auto got = consume_group(*member, 900);
    ASSERT_EQ(got.size(), 900U);
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], value_of(600 + i)) << i;
  }
  ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  stop(bridge);
  EXPECT_NE(bridge_log().find("restored the topic from its log"), std::string::npos);
  EXPECT_NE(bridge_log().find("restored queue group 'billing'"), std::string::npos) << bridge_log();
  EXPECT_EQ(replay_and_check("orders", 1500), 1500U);
}

TEST_F(Bridge, UnwritableLogDirectoryIsReportedAndRecordingStartsOnceItIsFixed) {
  bus_.create("orders", {.capacity = 16 * 1024});
  // The topic's log directory cannot be created: a file is in its way (this holds for root
  // too, unlike permissions).
  std::filesystem::create_directories(log_dir());
  std::ofstream(log_dir() + "/orders") << "not a directory";
  pid_t bridge = start({"--fsync", "never"});
  ASSERT_TRUE(wait_until(
      [&] {
        auto info = recorder("orders");
        return info && info->errors > 0;
      },
      std::chrono::seconds(30)))
      << bridge_log();
  auto info = recorder("orders");
  EXPECT_EQ(info->state, "failing");
  EXPECT_NE(info->last_error.find("Not a directory"), std::string::npos) << info->last_error;
  EXPECT_NE(info->last_error.find(log_dir() + "/orders"), std::string::npos) << info->last_error;
  EXPECT_NE(bridge_log().find("orders: error: "), std::string::npos) << bridge_log();
  // The bridge's reader attaches only once the log opens, so nothing is held back yet. Fix the
  // directory: recording starts at the next retry.
  std::filesystem::remove(log_dir() + "/orders");
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 500), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  EXPECT_EQ(replay_and_check("orders", 500), 500U);
}

TEST_F(Bridge, DeletedActiveSegmentIsReportedAndRecordingContinuesInANewOne) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start({"--fsync", "never"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 300), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  auto info = recorder("orders");
  auto bases = detail::list_segments(info->log_dir);
  ASSERT_TRUE(bases && bases->size() == 1);
  std::string segment = detail::segment_file(info->log_dir, bases->front(), ".log");
  ASSERT_EQ(::unlink(segment.c_str()), 0);
  ASSERT_TRUE(wait_until([&] { return recorder("orders")->errors > 0; }, std::chrono::seconds(30)))
      << bridge_log();
  EXPECT_NE(recorder("orders")->last_error.find("was deleted"), std::string::npos);
  ASSERT_EQ(testing::wait_child(producer("orders", 300, 600), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60))) << bridge_log();
  EXPECT_EQ(recorder("orders")->state, "recording");
  stop(bridge);
  // The log now starts after the deleted bytes; the later messages are all there.
  auto after = detail::list_segments(info->log_dir);
  ASSERT_TRUE(after && after->size() == 1);
  EXPECT_GT(after->front(), bases->front());
}

TEST_F(Bridge, ConsumeFromEarliestPrintsTheLogThenTheRing) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start({"--segment-bytes", "8KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_EQ(testing::wait_child(producer("orders", 0, 2000), std::chrono::seconds(60)), 0);
  ASSERT_TRUE(recorded_all("orders", std::chrono::seconds(60)));
  auto r = run_command(testing::tool_path("ringbus") + " --dir '" + bus_.dir() +
                       "' consume orders --from earliest --count 2000 --timeout-ms 5000");
  ASSERT_EQ(r.status, 0);
  std::istringstream lines(r.out);
  std::uint64_t i = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    ASSERT_EQ(line, value_of(i)) << "line " << i;
  }
  EXPECT_EQ(i, 2000U);
  stop(bridge);
}

TEST_F(Bridge, BadConfigurationIsOneClearLineAndExitStatusTwo) {
  std::string config = logs_.path() + "/bridge.toml";
  std::ofstream(config) << "log_dir = \"/tmp/x\"\nrecord = [\"*\"]\n[fsync]\npolicy = 3\n";
  auto r = run_command(std::string(RINGBUS_BRIDGE_PATH) + " --config '" + config + "' 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find(config + ":4: fsync.policy must be a string"), std::string::npos) << r.out;
  auto no_log = run_command(std::string(RINGBUS_BRIDGE_PATH) + " --record '*' 2>&1");
  EXPECT_EQ(no_log.status, 2);
  EXPECT_NE(no_log.out.find("no log directory"), std::string::npos) << no_log.out;
  auto bad_size = run_command(std::string(RINGBUS_BRIDGE_PATH) +
                              " --log-dir /tmp/x --record a --segment-bytes 12parsecs 2>&1");
  EXPECT_EQ(bad_size.status, 2);
  EXPECT_NE(bad_size.out.find("--segment-bytes"), std::string::npos) << bad_size.out;
}

}  // namespace
}  // namespace ringbus
