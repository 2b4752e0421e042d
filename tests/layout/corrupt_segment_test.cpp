// Hostile and broken topic files: every case is a clear error, never a crash, hang or overread.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using testing::TempBus;

void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

template <class T>
void patch(const std::string& path, std::size_t offset, T value) {
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, &value, sizeof value, static_cast<off_t>(offset)),
            static_cast<ssize_t>(sizeof value));
  ::close(fd);
}

// Opens `name` and expects the given code with a message containing `words`.
void expect_open_error(const TempBus& tb, const std::string& name, Errc code,
                       const std::string& words) {
  auto r = tb.bus().open_topic(name);
  ASSERT_FALSE(r) << name << " opened";
  EXPECT_EQ(r.code(), code) << r.error().message();
  EXPECT_NE(r.error().message().find(words), std::string::npos) << r.error().message();
}

// A valid 4 KiB topic that the test then damages.
std::string make_valid(const TempBus& tb, const std::string& name) {
  TopicOptions o;
  o.capacity = 4096;
  o.max_readers = 2;
  return tb.create(name, o).path();
}

TEST(CorruptSegment, EmptyAndTruncatedFiles) {
  TempBus tb;
  write_file(tb.dir() + "/empty", {});
  expect_open_error(tb, "empty", Errc::corrupt, "truncated");
  write_file(tb.dir() + "/short", std::vector<unsigned char>(100, 0x52));
  expect_open_error(tb, "short", Errc::corrupt, "truncated");
  std::string path = make_valid(tb, "cut");
  ASSERT_EQ(::truncate(path.c_str(), 8192), 0);
  expect_open_error(tb, "cut", Errc::corrupt, "truncated or extended");
}

TEST(CorruptSegment, RandomBytesAreNotATopic) {
  TempBus tb;
  std::mt19937 rng(42);
  std::vector<unsigned char> bytes(64 * 1024);
  for (auto& c : bytes) c = static_cast<unsigned char>(rng());
  write_file(tb.dir() + "/noise", bytes);
  expect_open_error(tb, "noise", Errc::corrupt, "not a ringbus topic");
  std::vector<unsigned char> text(8192, 'a');
  write_file(tb.dir() + "/text", text);
  expect_open_error(tb, "text", Errc::corrupt, "not a ringbus topic");
}

TEST(CorruptSegment, WrongLayoutVersionNamesBothVersions) {
  TempBus tb;
  std::string path = make_valid(tb, "v2");
  patch<std::uint32_t>(path, 8, 2);
  auto r = tb.bus().open_topic("v2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::incompatible);
  EXPECT_NE(r.error().message().find("version 2"), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("version 1"), std::string::npos) << r.error().message();
}

TEST(CorruptSegment, NotReadyIsDistinguishedFromCorrupt) {
  TempBus tb;
  std::string path = make_valid(tb, "unready");
  patch<std::uint32_t>(path, 12, 0);
  expect_open_error(tb, "unready", Errc::not_ready, "not ready");
}

TEST(CorruptSegment, EveryBadHeaderFieldIsNamed) {
  TempBus tb;
  struct Case {
    std::size_t offset;
    std::uint64_t value;
    int width;
    const char* words;
  };
  const Case cases[] = {
      {24, 5000, 8, "capacity"},
      {24, 0, 8, "capacity"},
      {24, 1ULL << 40, 8, "capacity"},
      {32, 4096, 8, "max message"},
      {40, 0, 4, "max readers"},
      {40, 100000, 4, "max readers"},
      {44, 7, 4, "policy"},
      {48, 64, 4, "header size"},
      {52, 128, 4, "slot size"},
      {56, 0, 8, "slots offset"},
      {64, 4096, 8, "ring offset"},
      {16, 999, 8, "file size"},
      {72, 16, 4, "frame header"},
      {80, 0, 8, "stuck-claim timeout"},
  };
  int n = 0;
  for (const auto& c : cases) {
    std::string name = "bad" + std::to_string(n++);
    std::string path = make_valid(tb, name);
    if (c.width == 8) {
      patch<std::uint64_t>(path, c.offset, c.value);
    } else {
      patch<std::uint32_t>(path, c.offset, static_cast<std::uint32_t>(c.value));
    }
    SCOPED_TRACE(c.words);
    expect_open_error(tb, name, Errc::corrupt, c.words);
  }
}

TEST(CorruptSegment, DirectoryInPlaceOfATopic) {
  TempBus tb;
  ASSERT_EQ(::mkdir((tb.dir() + "/adir").c_str(), 0700), 0);
  expect_open_error(tb, "adir", Errc::corrupt, "not a regular file");
}

// Corrupt frames inside a valid topic: poll reports corrupt and never reads out of bounds. A bad
// word of the current lap could also be stale bytes where a producer has not written its claim
// mark yet, so it is reported once it stays past the stuck-claim timeout (short here).
class CorruptFrame : public ::testing::Test {
 protected:
  void SetUp() override {
    TopicOptions o;
    o.capacity = 4096;
    o.max_readers = 2;
    o.stuck_claim_timeout = std::chrono::milliseconds(20);
    topic_ = tb_.create("frames", o);
    auto sub = Subscriber::attach(topic_, {});
    ASSERT_TRUE(sub);
    sub_.emplace(std::move(*sub));
    Producer producer(topic_);
    ASSERT_TRUE(producer.try_publish({}, as_bytes("good")));
  }
  layout::FrameHeader& frame() {
    return *reinterpret_cast<layout::FrameHeader*>(detail::mapping_of(topic_).ring());
  }
  // Polls until an error or a message, or 30 s (a bad frame is "not yet" until the timeout).
  Result<PollResult> poll() { return poll_until_settled(*sub_); }
  static Result<PollResult> poll_until_settled(Subscriber& sub) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto r = sub.poll([](const Message&) {});
      if (!r || r->messages > 0 || std::chrono::steady_clock::now() > deadline) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  TempBus tb_;
  Topic topic_;
  std::optional<Subscriber> sub_;
};

TEST_F(CorruptFrame, LengthBeyondMaxMessage) {
  frame().commit = layout::make_commit(0, layout::FrameKind::kData, 100000);
  auto r = poll();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
  EXPECT_NE(r.error().message().find("offset 0"), std::string::npos) << r.error().message();
}

TEST_F(CorruptFrame, KeyLongerThanFrame) {
  frame().key_length = 1000;
  auto r = poll();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
}

TEST_F(CorruptFrame, PaddingOfZeroOrPastTheEnd) {
  frame().commit = layout::make_commit(0, layout::FrameKind::kPadding, 0);
  auto zero = poll();
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.code(), Errc::corrupt);
  frame().commit = layout::make_commit(0, layout::FrameKind::kPadding, 8192);
  auto past = poll();
  ASSERT_FALSE(past);
  EXPECT_EQ(past.code(), Errc::corrupt);
  frame().commit = layout::make_commit(0, layout::FrameKind::kPadding, 12);
  auto unaligned = poll();
  ASSERT_FALSE(unaligned);
  EXPECT_EQ(unaligned.code(), Errc::corrupt);
}

TEST_F(CorruptFrame, InconsistentReclaimedPositionIsReportedAtAttach) {
  auto& header = detail::mapping_of(topic_).header();
  header.reclaimed = topic_.config().capacity - 8;  // beyond the tail
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  auto r = Subscriber::attach(topic_, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
  EXPECT_NE(r.error().message().find("reclaimed"), std::string::npos) << r.error().message();
  header.reclaimed = 3;  // not on a frame boundary
  auto unaligned = Subscriber::attach(topic_, o);
  ASSERT_FALSE(unaligned);
  EXPECT_EQ(unaligned.code(), Errc::corrupt);
}

TEST_F(CorruptFrame, AttachAtACorruptFrameFailsCleanlyOrPollReportsIt) {
  frame().commit = layout::make_commit(0, layout::FrameKind::kData, 4000);  // runs off the ring
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  auto sub = Subscriber::attach(topic_, o);
  ASSERT_TRUE(sub) << sub.error().message();
  auto r = poll_until_settled(*sub);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::corrupt);
  o.start = StartFrom::at(40);
  auto at = Subscriber::attach(topic_, o);
  ASSERT_FALSE(at);
  EXPECT_EQ(at.code(), Errc::corrupt);
}

TEST_F(CorruptFrame, GarbageReaderSlotsDoNotBreakProducersOrSnapshots) {
  auto& slot = detail::mapping_of(topic_).slot(1);
  std::memset(&slot, 0xFF, sizeof slot);  // state word says garbage, name unterminated
  auto snap = topic_.snapshot();
  EXPECT_EQ(snap.readers.size(), 1u);  // only the real reader
  Producer producer(topic_);
  EXPECT_TRUE(producer.try_publish({}, as_bytes("still works")));
  EXPECT_GE(topic_.reap_dead_readers(), 0u);
}

}  // namespace
}  // namespace ringbus
