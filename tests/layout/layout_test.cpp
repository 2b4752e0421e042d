// Golden bytes of a freshly created topic: the file format must not drift by accident.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "layout/reader_slot_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

std::vector<unsigned char> read_file(const std::string& path) {
  std::vector<unsigned char> bytes;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return bytes;
  unsigned char buf[65536];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  ::close(fd);
  return bytes;
}

std::uint64_t u64(const std::vector<unsigned char>& b, std::size_t off) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b.at(off + static_cast<std::size_t>(i));
  return v;
}
std::uint32_t u32(const std::vector<unsigned char>& b, std::size_t off) {
  return static_cast<std::uint32_t>(u64(b, off) & 0xFFFFFFFFu);
}

TEST(Layout, FreshTopicHeaderGoldenBytes) {
  testing::TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.max_readers = 2;
  o.max_message = 1000;
  o.policy = Policy::overwrite;
  o.frame_alignment = 8;
  o.stuck_claim_timeout = std::chrono::milliseconds(1500);
  auto topic = tb.create("golden", o);
  auto b = read_file(topic.path());
  // 4096 header + 2 * 256 slots, rounded up to a page: the ring starts at 8192.
  ASSERT_EQ(b.size(), 8192u + 4096u);
  const unsigned char magic[8] = {'R', 'I', 'N', 'G', 'B', 'U', 'S', 0};
  EXPECT_EQ(std::memcmp(b.data(), magic, 8), 0);
  EXPECT_EQ(u32(b, 8), 1u);               // layout_version
  EXPECT_EQ(u32(b, 12), 1u);              // ready
  EXPECT_EQ(u64(b, 16), 12288u);          // file_size
  EXPECT_EQ(u64(b, 24), 4096u);           // capacity
  EXPECT_EQ(u64(b, 32), 1000u);           // max_message
  EXPECT_EQ(u32(b, 40), 2u);              // max_readers
  EXPECT_EQ(u32(b, 44), 1u);              // policy: overwrite
  EXPECT_EQ(u32(b, 48), 4096u);           // header_size
  EXPECT_EQ(u32(b, 52), 256u);            // slot_size
  EXPECT_EQ(u64(b, 56), 4096u);           // slots_offset
  EXPECT_EQ(u64(b, 64), 8192u);           // ring_offset
  EXPECT_EQ(u32(b, 72), 32u);             // frame_header_size
  EXPECT_EQ(u32(b, 76), 8u);              // frame_alignment
  EXPECT_EQ(u64(b, 80), 1'500'000'000u);  // stuck_claim_timeout_ns
  EXPECT_NE(u64(b, 88), 0u);              // created_unix_ns
  EXPECT_EQ(u32(b, 96), static_cast<std::uint32_t>(::getpid()));
  for (std::size_t i = 100; i < 8192 + 4096; ++i) {
    if (i >= 88 && i < 100) continue;
    ASSERT_EQ(b[i], 0) << "byte " << i << " should be zero in a fresh topic";
  }
}

TEST(Layout, FrameAndSlotGoldenBytes) {
  testing::TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.max_readers = 2;
  o.frame_alignment = 8;
  auto topic = tb.create("frames", o);
  SubscriberOptions so;
  so.name = "rec";
  auto sub = Subscriber::attach(topic, so);
  ASSERT_TRUE(sub);
  Producer producer(topic);
  ASSERT_TRUE(producer.try_publish(as_bytes("k"), as_bytes("hello")));
  ASSERT_TRUE(producer.try_publish({}, as_bytes("x")));
  auto r = sub->poll([](const Message&) {});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->messages, 2u);
  auto b = read_file(topic.path());
  ASSERT_EQ(b.size(), 12288u);
  EXPECT_EQ(u64(b, 128), 80u);  // tail_position: 40 + 40
  EXPECT_EQ(u64(b, 136), 2u);   // tail_messages
  const std::size_t ring = 8192;
  // commit word: lap 0 | kind data (2) << 30 | length 6
  EXPECT_EQ(u64(b, ring + 0), (std::uint64_t{2} << 30) | 6u);
  EXPECT_EQ(u64(b, ring + 8), 0u);   // sequence
  EXPECT_NE(u64(b, ring + 16), 0u);  // timestamp
  EXPECT_EQ(u32(b, ring + 24), 1u);  // key_length
  EXPECT_EQ(std::memcmp(b.data() + ring + 32, "khello", 6), 0);
  EXPECT_EQ(u64(b, ring + 40), (std::uint64_t{2} << 30) | 1u);
  EXPECT_EQ(u64(b, ring + 48), 1u);
  // Slot 0: position and messages published at the end of the poll.
  const std::size_t slot = 4096;
  EXPECT_EQ(u64(b, slot + 0), 80u);
  EXPECT_EQ(u64(b, slot + 8), 2u);
  EXPECT_EQ(u64(b, slot + 128), (std::uint64_t{1} << 8) | 2u);  // generation 1, active
  EXPECT_EQ(u32(b, slot + 136), 3u);                            // durable | persistent
  EXPECT_EQ(u32(b, slot + 140), static_cast<std::uint32_t>(::getpid()));
  EXPECT_EQ(u32(b, slot + 144), 1u);  // kind: subscriber
  EXPECT_EQ(std::memcmp(b.data() + slot + 184, "rec\0", 4), 0);
}

TEST(Layout, CommitWordPacksLapKindAndLength) {
  using namespace layout;
  std::uint64_t w = make_commit(0xABCDEF01u, FrameKind::kClaimed, 12345);
  EXPECT_EQ(commit_lap(w), 0xABCDEF01u);
  EXPECT_EQ(commit_kind(w), FrameKind::kClaimed);
  EXPECT_EQ(commit_length(w), 12345u);
  EXPECT_EQ(frame_stride(0), 32u);
  EXPECT_EQ(frame_stride(1), 40u);
  EXPECT_EQ(frame_stride(8), 40u);
  EXPECT_EQ(frame_stride(9), 48u);
  EXPECT_EQ(lap_of(4096 * 3 + 5, 12), 3u);
}

}  // namespace
}  // namespace ringbus
