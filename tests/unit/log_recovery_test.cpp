// The damaged-log suite, in-process: a flipped byte in the first, middle and last chunk of a
// segment, truncated, missing, empty and damaged chunk indexes, a zeroed record CRC, segments
// removed by hand, segment size limits, garbage state.json. Recovery keeps every valid chunk
// and reports the rest; readers get `corrupt` naming the file and the offsets, never a silent
// gap.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "layout/log_layout.hpp"
#include "log/log_reader.hpp"
#include "log/segments.hpp"
#include "log_state.hpp"
#include "support/test_support.hpp"
#include "topic_log.hpp"

namespace ringbus {
namespace {

using bridge::TopicLog;
using bridge::TopicLogOptions;
using detail::LogReader;
using testing::contains;

constexpr std::uint64_t kAlign = 8;
constexpr std::uint64_t kMaxMessage = 1024;

std::vector<std::byte> frames(std::uint64_t first, std::uint64_t count) {
  std::vector<std::byte> out;
  for (std::uint64_t s = first; s < first + count; ++s) {
    std::string value = "m" + std::to_string(s);
    layout::FrameHeader h{};
    h.commit = layout::make_commit(0, layout::FrameKind::kData, value.size());
    h.sequence = s;
    std::size_t at = out.size();
    out.resize(at + layout::frame_stride(value.size(), kAlign));
    std::memcpy(out.data() + at, &h, sizeof h);
    std::memcpy(out.data() + at + sizeof h, value.data(), value.size());
  }
  return out;
}

TopicLogOptions options(std::uint64_t segment_bytes, std::uint64_t durable_hint = 0) {
  TopicLogOptions o{segment_bytes, kMaxMessage, kAlign};
  o.durable_hint = durable_hint;
  return o;
}

// A log of `chunks` chunks of 10 messages each; returns the end offset of each chunk.
std::vector<std::uint64_t> write_log(const std::string& dir, int chunks,
                                     std::uint64_t segment_bytes = 1 << 20) {
  auto log = TopicLog::open(dir, options(segment_bytes));
  EXPECT_TRUE(log) << log.error().message();
  std::vector<std::uint64_t> ends;
  for (int c = 0; c < chunks; ++c) {
    const std::uint64_t first = static_cast<std::uint64_t>(c) * 10;
    auto bytes = frames(first, 10);
    const std::uint64_t last = first + 9;
    auto ok = log->append(log->end(), bytes.data(), bytes.size(), &last);
    EXPECT_TRUE(ok) << ok.error().message();
    ends.push_back(log->end());
  }
  return ends;
}

struct Replay {
  std::vector<std::string> values;
  LogReader::Status status = LogReader::Status::end;  // what stopped it
  std::string error;
  std::uint64_t lost = 0;  // bytes skipped as gaps
};

Replay replay(const std::string& dir, std::uint64_t position) {
  LogReader reader(dir, kMaxMessage, kAlign);
  Replay out;
  for (int guard = 0; guard < 100'000; ++guard) {
    auto r = reader.read(position);
    if (r.status == LogReader::Status::gap) {
      out.lost += r.next - position;
      position = r.next;
      continue;
    }
    if (r.status != LogReader::Status::frame) {
      out.status = r.status;
      out.error = reader.error();
      break;
    }
    if (layout::commit_kind(r.frame->commit) == layout::FrameKind::kData) {
      const auto* payload = reinterpret_cast<const char*>(r.frame + 1);
      out.values.emplace_back(payload, layout::commit_length(r.frame->commit));
    }
    position = r.next;
  }
  return out;
}

void flip_byte(const std::string& path, std::uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x5a));
}

std::string seg(const std::string& dir, std::uint64_t base, const char* suffix = ".log") {
  return detail::segment_file(dir, base, suffix);
}

std::uint64_t size_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<std::uint64_t>(st.st_size);
}

std::string m(std::uint64_t i) { return "m" + std::to_string(i); }

TEST(LogRecovery, FlippedByteInTheFirstChunkOfTheNewestSegmentKeepsTheLaterChunks) {
  testing::TempDir dir;
  auto ends = write_log(dir.path(), 5);
  flip_byte(seg(dir.path(), 0), 40);
  // state.json said all of it was durable.
  auto log = TopicLog::open(dir.path(), options(1 << 20, ends.back()));
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_EQ(log->end(), ends.back());
  EXPECT_TRUE(contains(log->recovery(), "[0, " + std::to_string(ends[0]) + ")")) << log->recovery();
  EXPECT_TRUE(contains(log->recovery(), "set aside")) << log->recovery();
  EXPECT_EQ(size_of(seg(dir.path(), 0, ".corrupt")), ends[0]);
  // The four valid chunks are all there.
  auto later = replay(dir.path(), ends[0]);
  ASSERT_EQ(later.values.size(), 40U);
  EXPECT_EQ(later.values.front(), m(10));
  EXPECT_EQ(later.values.back(), m(49));
  // A reader from the start meets the damage: corrupt, naming the range and the file.
  auto from_start = replay(dir.path(), 0);
  EXPECT_EQ(from_start.status, LogReader::Status::corrupt);
  EXPECT_TRUE(from_start.values.empty());
  EXPECT_TRUE(contains(from_start.error, seg(dir.path(), 0, ".corrupt"))) << from_start.error;
  EXPECT_TRUE(contains(from_start.error, "--from " + std::to_string(ends[0]))) << from_start.error;
  LogReader reader(dir.path(), kMaxMessage, kAlign);
  std::uint64_t earliest = 99;
  ASSERT_TRUE(reader.earliest(earliest));
  EXPECT_EQ(earliest, 0U);  // `--from earliest` meets the damage too
  // Appending continues after the kept chunks.
  auto bytes = frames(50, 3);
  const std::uint64_t last = 52;
  ASSERT_TRUE(log->append(log->end(), bytes.data(), bytes.size(), &last));
  EXPECT_EQ(replay(dir.path(), ends[0]).values.back(), m(52));
}

TEST(LogRecovery, FlippedByteInAMiddleChunkSplitsTheSegmentAroundIt) {
  testing::TempDir dir;
  auto ends = write_log(dir.path(), 5);
  flip_byte(seg(dir.path(), 0), ends[1] + 50);  // in chunk 2
  auto log = TopicLog::open(dir.path(), options(1 << 20, ends.back()));
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_EQ(log->end(), ends.back());
  EXPECT_EQ(size_of(seg(dir.path(), 0)), ends[1]);
  EXPECT_EQ(size_of(seg(dir.path(), ends[1], ".corrupt")), ends[2] - ends[1]);
  EXPECT_EQ(size_of(seg(dir.path(), ends[2])), ends[4] - ends[2]);
  auto r = replay(dir.path(), 0);
  ASSERT_EQ(r.values.size(), 20U);  // chunks 0 and 1, then the damage
  EXPECT_EQ(r.values.back(), m(19));
  EXPECT_EQ(r.status, LogReader::Status::corrupt);
  EXPECT_EQ(r.lost, 0U);  // never a silent gap
  EXPECT_EQ(replay(dir.path(), ends[2]).values.size(), 20U);
  // A second recovery finds nothing more to do.
  log = Error(Errc::io_error, "closed");
  auto again = TopicLog::open(dir.path(), options(1 << 20, ends.back()));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->recovery().empty()) << again->recovery();
  EXPECT_EQ(again->end(), ends.back());
}

TEST(LogRecovery, FlippedByteInTheLastChunkIsSetAsideBelowTheDurablePositionAndCutAboveIt) {
  for (bool durable : {true, false}) {
    testing::TempDir dir;
    auto ends = write_log(dir.path(), 5);
    flip_byte(seg(dir.path(), 0), ends[3] + 20);
    auto log = TopicLog::open(dir.path(), options(1 << 20, durable ? ends[4] : ends[3]));
    ASSERT_TRUE(log) << log.error().message();
    auto r = replay(dir.path(), 0);
    EXPECT_EQ(r.values.size(), 40U);
    if (durable) {
      EXPECT_EQ(log->end(), ends[4]);  // those offsets are never written again
      EXPECT_TRUE(contains(log->recovery(), "damaged")) << log->recovery();
      EXPECT_EQ(size_of(seg(dir.path(), ends[3], ".corrupt")), ends[4] - ends[3]);
      // Appending leaves the damaged range in place: a reader meets it, not a gap.
      auto bytes = frames(50, 3);
      const std::uint64_t last = 52;
      ASSERT_TRUE(log->append(log->end(), bytes.data(), bytes.size(), &last));
      r = replay(dir.path(), 0);
      EXPECT_EQ(r.status, LogReader::Status::corrupt) << r.error;
      EXPECT_TRUE(contains(r.error, "[" + std::to_string(ends[3]))) << r.error;
    } else {
      // Past the durable position it was never promised: a torn tail, cut and reported.
      EXPECT_EQ(log->end(), ends[3]);
      EXPECT_TRUE(contains(log->recovery(), "cut segment")) << log->recovery();
      EXPECT_FALSE(std::filesystem::exists(seg(dir.path(), ends[3], ".corrupt")));
      EXPECT_EQ(r.status, LogReader::Status::end);
    }
  }
}

TEST(LogRecovery, ZeroedChunkCrcIsDamageNotALoss) {
  testing::TempDir dir;
  auto ends = write_log(dir.path(), 4);
  // Chunk 1's record with a zeroed data CRC (and a record CRC that matches that): its bytes
  // no longer match it.
  {
    auto record = detail::make_chunk_record(ends[1], 0);
    std::fstream f(seg(dir.path(), 0, ".idx"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 + 16);
    f.write(reinterpret_cast<const char*>(&record), sizeof record);
  }
  auto r = replay(dir.path(), 0);
  EXPECT_EQ(r.values.size(), 10U);
  EXPECT_EQ(r.status, LogReader::Status::corrupt);
  EXPECT_EQ(r.lost, 0U);
}

// Closed segments (not the newest) whose chunk index is damaged in some way.
class OlderSegmentIndex : public ::testing::TestWithParam<const char*> {};

TEST_P(OlderSegmentIndex, IsCorruptForReadersAndRebuiltFromTheSegmentAtOpen) {
  const std::string damage = GetParam();
  testing::TempDir dir;
  write_log(dir.path(), 40, 2048);
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases && bases->size() >= 4);
  const std::uint64_t victim = (*bases)[1];
  const std::string idx = seg(dir.path(), victim, ".idx");
  if (damage == "missing") {
    ASSERT_EQ(::unlink(idx.c_str()), 0);
  } else if (damage == "empty") {
    ASSERT_EQ(::truncate(idx.c_str(), 0), 0);
  } else if (damage == "truncated") {
    ASSERT_EQ(::truncate(idx.c_str(), static_cast<off_t>(size_of(idx) - 16)), 0);
  } else if (damage == "header") {
    flip_byte(idx, 3);
  } else if (damage == "record_crc") {
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 + 12);
    f.write("\0\0\0\0", 4);
  }
  // Readers: an error that names the segment, never "lapped" past the rest of the log.
  auto r = replay(dir.path(), 0);
  EXPECT_EQ(r.status, LogReader::Status::corrupt);
  EXPECT_EQ(r.lost, 0U);
  EXPECT_LT(r.values.size(), 400U);
  EXPECT_TRUE(contains(r.error, std::to_string(victim))) << r.error;
  // The writer rebuilds the index from the frames: everything is readable again.
  auto log = TopicLog::open(dir.path(), options(2048));
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_TRUE(contains(log->recovery(), "rebuilt the chunk index of " + seg(dir.path(), victim)))
      << log->recovery();
  auto after = replay(dir.path(), 0);
  ASSERT_EQ(after.values.size(), 400U) << after.error;
  for (std::uint64_t i = 0; i < 400; ++i) ASSERT_EQ(after.values[i], m(i));
  EXPECT_EQ(after.lost, 0U);
}

INSTANTIATE_TEST_SUITE_P(Damage, OlderSegmentIndex,
                         ::testing::Values("missing", "empty", "truncated", "header",
                                           "record_crc"));

// A symbolic link planted at a segment's name (here the newest segment, pointing at a copy of it
// outside the log directory) is never followed: the writer refuses to open the log, loudly,
// instead of appending to whatever file the link names, and readers report an error.
TEST(LogRecovery, ASymbolicLinkAtASegmentNameIsNeverFollowed) {
  testing::TempDir dir;
  testing::TempDir outside;
  write_log(dir.path(), 40, 2048);
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases && !bases->empty());
  const std::string newest = seg(dir.path(), bases->back());
  const std::string target = outside.path() + "/elsewhere";
  std::filesystem::copy_file(newest, target);
  const std::uint64_t target_size = size_of(target);
  ASSERT_EQ(::unlink(newest.c_str()), 0);
  ASSERT_EQ(::symlink(target.c_str(), newest.c_str()), 0);

  auto log = TopicLog::open(dir.path(), options(2048));
  if (log) {  // it must not have written through the link
    auto bytes = frames(400, 10);
    const std::uint64_t last = 409;
    (void)log->append(log->end(), bytes.data(), bytes.size(), &last);
  }
  EXPECT_FALSE(log) << "the log opened with a link for its newest segment";
  if (!log) {
    EXPECT_TRUE(contains(log.error().message(), newest)) << log.error().message();
  }
  EXPECT_EQ(size_of(target), target_size) << "written through the link";
  const auto r = replay(dir.path(), 0);
  EXPECT_NE(r.status, LogReader::Status::end);
  EXPECT_LT(r.values.size(), 400U);
}

// A topic's log directory that is a symbolic link, or that other users can write to, is not
// recorded into: the writer refuses it, saying why, and writes nothing there.
TEST(LogRecovery, ALinkedOrWorldWritableLogDirectoryIsRefused) {
  testing::TempDir root;
  const std::string real = root.path() + "/real";
  ASSERT_EQ(::mkdir(real.c_str(), 0750), 0);
  const std::string link = root.path() + "/link";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  auto linked = TopicLog::open(link, options(2048));
  ASSERT_FALSE(linked);
  EXPECT_TRUE(contains(linked.error().message(), "log directory " + link + " is a symbolic link"))
      << linked.error().message();
  ASSERT_EQ(::chmod(real.c_str(), 0777), 0);
  auto open = TopicLog::open(real, options(2048));
  ASSERT_FALSE(open);
  EXPECT_TRUE(contains(open.error().message(), "writable by other users (mode 0777)"))
      << open.error().message();
  EXPECT_TRUE(std::filesystem::is_empty(real));
  ASSERT_EQ(::chmod(real.c_str(), 0750), 0);
  EXPECT_TRUE(TopicLog::open(real, options(2048)));
}

TEST(LogRecovery, NewestSegmentWithADamagedIndexHeaderKeepsItsDurableBytes) {
  testing::TempDir dir;
  auto ends = write_log(dir.path(), 3);
  flip_byte(seg(dir.path(), 0, ".idx"), 20);
  auto log = TopicLog::open(dir.path(), options(1 << 20, ends.back()));
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_EQ(log->end(), ends.back());
  EXPECT_EQ(replay(dir.path(), 0).values.size(), 30U);
}

TEST(LogRecovery, AgeRetentionContinuesPastASegmentRemovedByHand) {
  testing::TempDir dir;
  write_log(dir.path(), 40, 2048);
  auto log = TopicLog::open(dir.path(), options(2048));
  ASSERT_TRUE(log);
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases && bases->size() >= 4);
  for (std::uint64_t base : *bases) {
    timespec times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, seg(dir.path(), base).c_str(), times, 0), 0);
  }
  ASSERT_EQ(::unlink(seg(dir.path(), bases->front()).c_str()), 0);
  auto removed = log->apply_retention(0, std::chrono::minutes(30));
  EXPECT_EQ(removed.vanished, 1U);
  EXPECT_EQ(removed.segments, bases->size() - 2);
  EXPECT_EQ(log->segment_count(), 1U);
  EXPECT_EQ(removed.from, (*bases)[1]);
  EXPECT_EQ(removed.to, bases->back());
}

TEST(LogRecovery, SegmentsDoNotGrowPastSegmentBytesWhenAChunkIsLarger) {
  testing::TempDir dir;
  auto log = TopicLog::open(dir.path(), options(4096));
  ASSERT_TRUE(log);
  auto bytes = frames(0, 2000);  // about 32 KiB in one chunk
  const std::uint64_t last = 1999;
  ASSERT_TRUE(log->append(0, bytes.data(), bytes.size(), &last));
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases);
  EXPECT_GE(bases->size(), bytes.size() / 4096);
  for (std::uint64_t base : *bases) EXPECT_LE(size_of(seg(dir.path(), base)), 4096U) << base;
  std::uint64_t sequence = 0;
  ASSERT_TRUE(log->end_sequence(sequence));
  EXPECT_EQ(sequence, 2000U);
  auto r = replay(dir.path(), 0);
  ASSERT_EQ(r.values.size(), 2000U);
  EXPECT_EQ(r.values.back(), m(1999));
}

TEST(LogState, GarbageStateSaysWhatIsWrongAndWhatToDo) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/state.json";
  std::ofstream(path) << "[1,2]";
  auto array = bridge::read_log_state(dir.path());
  ASSERT_FALSE(array);
  EXPECT_EQ(array.error().code(), Errc::corrupt);
  EXPECT_TRUE(contains(array.error().message(), "array")) << array.error().message();
  EXPECT_TRUE(contains(array.error().message(), "Move it away")) << array.error().message();
  bridge::LogState s;
  s.topic = "t";
  ASSERT_TRUE(bridge::write_log_state(dir.path(), s, false));
  std::string text;
  {
    std::ifstream in(path);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto at = text.find("\"durable_position\": 0");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, std::strlen("\"durable_position\": 0"), "\"durable_position\": -5");
  std::ofstream(path) << text;
  auto negative = bridge::read_log_state(dir.path());
  ASSERT_FALSE(negative);
  EXPECT_TRUE(contains(negative.error().message(), "durable_position is -5"))
      << negative.error().message();
  EXPECT_TRUE(contains(negative.error().message(), "Move it away"));
}

}  // namespace
}  // namespace ringbus
