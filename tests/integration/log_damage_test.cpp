// ringbus-bridge's disk log when things break, with real processes and files: damaged chunks
// and indexes (recovery keeps every valid chunk, readers and `ringbus consume` fail naming the
// damage), a failed fdatasync (rewritten from the ring, nothing lost), a restart that must not
// call unsynced bytes durable, segment size and retention lines, configuration holes.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "log/segments.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "support/test_support.hpp"
#include "testing/fault_point.hpp"

namespace ringbus {
namespace {

using Clock = std::chrono::steady_clock;
using testing::contains;
using testing::run_command;

std::string value_of(std::uint64_t i) { return std::to_string(i) + ":" + std::string(i % 40, 'x'); }

bool wait_until(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

class LogDamage : public ::testing::Test {
 protected:
  std::string log_dir() const { return logs_.path() + "/log"; }
  std::string topic_dir() const { return log_dir() + "/orders"; }

  // Starts ringbus-bridge on this test's bus, with `env` ("NAME=value") added.
  pid_t start(const std::vector<std::string>& extra = {}, const std::string& env = {}) {
    std::vector<std::string> args = {
        RINGBUS_BRIDGE_PATH, "--bus-dir", bus_.dir(),        "--log-dir", log_dir(),
        "--record",          "*",         "--scan-interval", "50ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string err = logs_.path() + "/bridge.err";
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      if (!env.empty()) ::putenv(const_cast<char*>(env.c_str()));
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

  void TearDown() override {
    for (pid_t pid : started_) {
      if (::kill(pid, 0) == 0) {
        ::kill(pid, SIGKILL);
        testing::wait_child(pid, std::chrono::seconds(10));
      }
    }
  }

  std::optional<RecorderInfo> recorder() const {
    auto t = bus_.bus().open_topic("orders");
    if (!t) return std::nullopt;
    return t->snapshot().recorder;
  }

  bool attached(pid_t pid) const {
    return wait_until(
        [&] {
          auto info = recorder();
          return info && info->pid == static_cast<std::uint32_t>(pid) && info->state == "recording";
        },
        std::chrono::seconds(60));
  }

  bool recorded_all(std::chrono::seconds timeout) const {
    return wait_until(
        [&] {
          auto t = bus_.bus().open_topic("orders");
          if (!t) return false;
          auto snap = t->snapshot();
          return snap.recorder && snap.recorder->recorded_position == snap.tail &&
                 snap.recorder->durable_position == snap.tail;
        },
        timeout);
  }

  void stop(pid_t pid) {
    ::kill(pid, SIGTERM);
    EXPECT_EQ(testing::wait_child(pid, std::chrono::seconds(60)), 0) << bridge_log();
  }
  void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(testing::wait_child(pid, std::chrono::seconds(30)), 128 + SIGKILL);
  }

  std::string bridge_log() const {
    std::ifstream in(logs_.path() + "/bridge.err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Publishes values [from, to) from a child process, waiting for space.
  void publish(std::uint64_t from, std::uint64_t to) const {
    std::string dir = bus_.dir();
    pid_t p = testing::fork_child([=] {
      auto t = Bus(dir).open_topic("orders");
      if (!t) return 10;
      Producer producer(*t);
      for (std::uint64_t i = from; i < to; ++i) {
        std::string v = value_of(i);
        if (!producer.publish({}, as_bytes(v), Wait::spin_yield(std::chrono::seconds(120)))) {
          return 11;
        }
      }
      return 0;
    });
    ASSERT_EQ(testing::wait_child(p, std::chrono::seconds(180)), 0);
  }

  // Reads from `start` until value `last` arrived; checks the values are consecutive and that
  // nothing was lost. Returns the index of the first value read.
  std::uint64_t read_consecutive(StartFrom start, std::uint64_t last) const {
    auto t = bus_.bus().open_topic("orders");
    EXPECT_TRUE(t);
    if (!t) return 0;
    SubscriberOptions o;
    o.start = start;
    o.durability = Durability::lossy;
    auto sub = Subscriber::attach(*t, o);
    EXPECT_TRUE(sub) << sub.error().message();
    if (!sub) return 0;
    std::uint64_t first = UINT64_MAX;
    std::uint64_t next = 0;
    bool done = false;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (!done && Clock::now() < deadline) {
      auto r = sub->poll(
          [&](const Message& m) {
            std::string v(as_string(m.value));
            std::uint64_t i = std::stoull(v.substr(0, v.find(':')));
            if (first == UINT64_MAX) first = next = i;
            EXPECT_EQ(v, value_of(next));
            next = i + 1;
            done = done || i == last;
          },
          256);
      if (!r) {
        ADD_FAILURE() << r.error().message();
        break;
      }
      EXPECT_EQ(r->lost_messages, 0U);
    }
    EXPECT_TRUE(done) << "never reached message " << last;
    return first;
  }

  std::string consume(const std::string& args) const {
    auto r = run_command(testing::tool_path("ringbus") + " --dir '" + bus_.dir() + "' consume " +
                         args + " 2>&1");
    last_status_ = r.status;
    return r.out;
  }

  testing::TempBus bus_;
  testing::TempDir logs_;
  std::vector<pid_t> started_;
  mutable int last_status_ = 0;
};

// Chunk ends of segment `base`, from its index.
std::vector<std::uint64_t> chunk_ends(const std::string& dir, std::uint64_t base) {
  std::vector<std::uint64_t> ends;
  int fd = ::open(detail::segment_file(dir, base, ".idx").c_str(), O_RDONLY);
  if (fd < 0) return ends;
  auto records = detail::read_chunk_records(fd, base, 0, base);
  ::close(fd);
  if (records) {
    for (const auto& r : *records) ends.push_back(r.end_position);
  }
  return ends;
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

TEST_F(LogDamage, FlippedByteInTheNewestSegmentIsSetAsideAndTheLaterChunksKept) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start();
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  // The first message recorded alone (a chunk of its own), then the rest: a small ring, many
  // chunks, all in one segment.
  publish(0, 1);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  publish(1, 3000);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  auto ends = chunk_ends(topic_dir(), 0);
  ASSERT_GE(ends.size(), 3U);
  // The chunk that holds byte 100 of the segment (the segment file is the stream from its
  // base): the first chunk, or the second when the first is a single message (the recorder
  // syncs the first bytes after a start at once, so it depends on timing).
  std::size_t hit = 0;
  while (hit < ends.size() && ends[hit] <= 100) ++hit;
  ASSERT_LT(hit + 1, ends.size()) << "no chunk after the damaged one";
  const std::uint64_t damaged_from = hit == 0 ? 0 : ends[hit - 1];
  const std::uint64_t damaged_to = ends[hit];
  flip_byte(detail::segment_file(topic_dir(), 0, ".log"), 100);

  bridge = start();
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  stop(bridge);
  const std::string aside = detail::segment_file(topic_dir(), damaged_from, ".corrupt");
  EXPECT_TRUE(contains(bridge_log(), "set aside in " + aside)) << bridge_log();
  EXPECT_TRUE(std::filesystem::exists(aside));
  // From the start: an error naming the damage and where to read on; exit status non-zero.
  auto out = consume("orders --from earliest --count 3000 --timeout-ms 3000");
  EXPECT_NE(last_status_, 0) << out;
  EXPECT_TRUE(contains(out, aside)) << out;
  EXPECT_TRUE(contains(out, "--from " + std::to_string(damaged_to))) << out;
  // Every later chunk is still there, to the last message.
  EXPECT_GT(read_consecutive(StartFrom::at(damaged_to), 2999), 0U);
}

TEST_F(LogDamage, AGroupReplayingTheLogStopsWithCorruptAtADamagedRange) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start();
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  publish(0, 3000);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  flip_byte(detail::segment_file(topic_dir(), 0, ".log"), 100);  // in the first chunk
  bridge = start();  // recovery sets the damaged chunk aside
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  auto t = bus_.bus().open_topic("orders");
  ASSERT_TRUE(t);
  GroupOptions g;
  g.start = StartFrom::earliest();
  auto member = GroupMember::join(*t, "replay", g);
  ASSERT_TRUE(member) << member.error().message();
  std::uint64_t delivered = 0;
  auto r = member->poll([&](const Message&) { ++delivered; });
  // Never a silent skip past damaged bytes: the poll says what is damaged and where.
  ASSERT_FALSE(r) << "delivered " << delivered << " messages past a damaged log range";
  EXPECT_EQ(r.code(), Errc::corrupt);
  EXPECT_TRUE(contains(r.error().message(), "disk log")) << r.error().message();
  EXPECT_TRUE(contains(r.error().message(), "remove-reader")) << r.error().message();
  EXPECT_EQ(delivered, 0U);
  // It stays there (a second poll says the same) rather than moving on.
  auto again = member->poll([&](const Message&) { ++delivered; });
  EXPECT_FALSE(again);
  EXPECT_EQ(delivered, 0U);
  stop(bridge);
}

TEST_F(LogDamage, MissingIndexOfAnOlderSegmentFailsReadersUntilTheBridgeRebuildsIt) {
  bus_.create("orders", {.capacity = 16 * 1024});
  pid_t bridge = start({"--segment-bytes", "8KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  publish(0, 2000);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  auto bases = detail::list_segments(topic_dir());
  ASSERT_TRUE(bases && bases->size() >= 4);
  const std::string index = detail::segment_file(topic_dir(), (*bases)[1], ".idx");
  ASSERT_EQ(::unlink(index.c_str()), 0);
  auto out = consume("orders --from earliest --count 2000 --timeout-ms 3000");
  EXPECT_NE(last_status_, 0) << out;
  EXPECT_TRUE(contains(out, index + " is missing")) << out.substr(0, 2000);
  EXPECT_FALSE(contains(out, "lapped")) << out.substr(0, 2000);

  bridge = start({"--segment-bytes", "8KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  stop(bridge);
  EXPECT_TRUE(contains(bridge_log(), "rebuilt the chunk index of")) << bridge_log();
  EXPECT_EQ(read_consecutive(StartFrom::earliest(), 1999), 0U);
}

TEST_F(LogDamage, FailedFdatasyncIsWrittenAgainFromTheRingAndNothingIsLost) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with RINGBUS_FAULT_POINTS";
  bus_.create("orders", {.capacity = 64 * 1024});
  pid_t bridge = start({"--retry-interval", "10ms"}, "RINGBUS_FAIL_AT=log.fdatasync:6");
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  publish(0, 20000);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(120))) << bridge_log();
  stop(bridge);
  const std::string log = bridge_log();
  EXPECT_TRUE(contains(log, "fdatasync of")) << log;
  EXPECT_TRUE(contains(log, "cut back to offset")) << log;
  EXPECT_EQ(read_consecutive(StartFrom::earliest(), 19999), 0U);
}

TEST_F(LogDamage, RestartCallsNothingDurableBeforeItsFirstSync) {
  if (!detail::kFaultPoints) GTEST_SKIP() << "needs a build with RINGBUS_FAULT_POINTS";
  bus_.create("orders", {.capacity = 1 << 20});
  // Syncs once at the start, then not for a year (the ring is too large to force one; a year,
  // not an hour, so a machine up for less than the interval still syncs first). The
  // first sync covers what the first read found: one message, which no read can split (with
  // more, a loaded machine may let the bridge read a few, sync, and hold the rest for an hour).
  std::vector<std::string> rare = {"--fsync", "interval", "--fsync-interval", "365d"};
  pid_t bridge = start(rare);
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  publish(0, 1);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  const std::uint64_t durable = recorder()->durable_position;
  publish(1, 1000);
  ASSERT_TRUE(
      wait_until([&] { return recorder()->recorded_messages == 1000; }, std::chrono::seconds(60)));
  ASSERT_EQ(recorder()->durable_position, durable);
  kill9(bridge);
  // The restart's first sync fails: it must not call the recorded bytes durable.
  auto with_fault = rare;
  with_fault.insert(with_fault.end(), {"--retry-interval", "1h"});
  bridge = start(with_fault, "RINGBUS_FAIL_AT=log.fdatasync:1");
  ASSERT_TRUE(
      wait_until([&] { return contains(bridge_log(), "fdatasync of"); }, std::chrono::seconds(60)))
      << bridge_log();
  EXPECT_EQ(recorder()->durable_position, durable);
  {
    std::ifstream in(topic_dir() + "/state.json");
    std::string state(std::istreambuf_iterator<char>(in), {});
    const auto at = state.find("\"durable_position\": ");
    ASSERT_NE(at, std::string::npos) << state;
    EXPECT_LE(std::stoull(state.substr(at + 20)), durable) << state;
  }
  kill9(bridge);
  bridge = start(rare);
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  stop(bridge);
  EXPECT_EQ(read_consecutive(StartFrom::earliest(), 999), 0U);
}

TEST_F(LogDamage, SegmentsHoldAtMostSegmentBytesAndRetentionIsOneShortLine) {
  bus_.create("orders", {.capacity = 64 * 1024});
  pid_t bridge = start({"--segment-bytes", "4KiB", "--retention-bytes", "16KiB"});
  ASSERT_TRUE(attached(bridge)) << bridge_log();
  publish(0, 5000);
  ASSERT_TRUE(recorded_all(std::chrono::seconds(60))) << bridge_log();
  ASSERT_TRUE(wait_until([&] { return contains(bridge_log(), "retention removed"); },
                         std::chrono::seconds(30)));
  stop(bridge);
  auto bases = detail::list_segments(topic_dir());
  ASSERT_TRUE(bases);
  for (std::uint64_t base : *bases) {
    EXPECT_LE(std::filesystem::file_size(detail::segment_file(topic_dir(), base, ".log")), 4096U);
  }
  for (const std::string& line : testing::split_lines(bridge_log())) {
    if (!contains(line, "retention removed")) continue;
    EXPECT_FALSE(contains(line, ".log")) << line;
    EXPECT_LT(line.size(), 300U) << line;
  }
}

TEST_F(LogDamage, ConfigurationHolesAreClosedWithClearMessages) {
  const std::string bridge = RINGBUS_BRIDGE_PATH;
  auto r = run_command(bridge + " --log-dir /tmp/x --record a --reader-name a/b 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "reader_name 'a/b' is not valid")) << r.out;
  EXPECT_TRUE(contains(r.out, "1 to 63 characters")) << r.out;
  r = run_command(bridge + " --log-dir /tmp/x --record a --reader-name " + std::string(64, 'r') +
                  " 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "1 to 63 characters")) << r.out;
  r = run_command(bridge + " --log-dir /tmp/x --record a --cpu 4294967296 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "not a core number")) << r.out;
  const std::string config = logs_.path() + "/bridge.toml";
  std::ofstream(config) << "log_dir = \"/tmp/x\"\nrecord = \"a\"\ncpu = 4294967296\n";
  r = run_command(bridge + " --config '" + config + "' 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, config + ":3: cpu 4294967296 is not a core number")) << r.out;
  std::ofstream(config) << "log_dir = \"/tmp/x\"\nrecord = \"a\"\nreader_name = \"a/b\"\n";
  r = run_command(bridge + " --config '" + config + "' 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "reader_name 'a/b' is not valid")) << r.out;
  r = run_command(bridge + " --config '" + logs_.path() + "' 2>&1");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.out, "is a directory")) << r.out;

  // A state.json that is not an object: the topic is not started, and the error says what to do.
  bus_.create("orders", {.capacity = 16 * 1024});
  std::filesystem::create_directories(topic_dir());
  std::ofstream(topic_dir() + "/state.json") << "[1,2]";
  pid_t pid = start();
  ASSERT_TRUE(
      wait_until([&] { return contains(bridge_log(), "Move it away"); }, std::chrono::seconds(60)))
      << bridge_log();
  EXPECT_TRUE(contains(bridge_log(), "holds a JSON array")) << bridge_log();
  kill9(pid);
}

}  // namespace
}  // namespace ringbus
