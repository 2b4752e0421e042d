// The disk log's format and its writer: CRC32C, chunk records, crash recovery, retention,
// state.json, and the LogReader that replay uses (corruption is detected, never returned).
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

#include "bridge_config.hpp"
#include "layout/frame_layout.hpp"
#include "log/crc32c.hpp"
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

constexpr std::uint64_t kAlign = 8;
constexpr std::uint64_t kMaxMessage = 1024;

// Frames as a recorder writes them: sequence numbers from `first`, values "m<seq>".
std::vector<std::byte> frames(std::uint64_t first, std::uint64_t count, std::uint64_t position) {
  std::vector<std::byte> out;
  for (std::uint64_t s = first; s < first + count; ++s) {
    std::string value = "m" + std::to_string(s);
    layout::FrameHeader h{};
    h.commit = layout::make_commit(0, layout::FrameKind::kData, value.size());
    h.sequence = s;
    h.timestamp_ns = static_cast<std::int64_t>(s);
    std::uint64_t stride = layout::frame_stride(value.size(), kAlign);
    std::size_t at = out.size();
    out.resize(at + stride);
    std::memcpy(out.data() + at, &h, sizeof h);
    std::memcpy(out.data() + at + sizeof h, value.data(), value.size());
    position += stride;
  }
  return out;
}

TopicLogOptions options(std::uint64_t segment_bytes = 1 << 20) {
  return TopicLogOptions{segment_bytes, kMaxMessage, kAlign};
}

// Appends `count` messages at the log's end; returns the next sequence number.
std::uint64_t append(TopicLog& log, std::uint64_t first, std::uint64_t count) {
  auto bytes = frames(first, count, log.end());
  std::uint64_t last = first + count - 1;
  auto ok = log.append(log.end(), bytes.data(), bytes.size(), &last);
  EXPECT_TRUE(ok) << (ok ? "" : ok.error().message());
  return first + count;
}

// Reads every message from `position` with a LogReader; the values, in order.
std::vector<std::string> replay(const std::string& dir, std::uint64_t position,
                                std::string* error = nullptr) {
  LogReader reader(dir, kMaxMessage, kAlign);
  std::vector<std::string> values;
  for (int guard = 0; guard < 1'000'000; ++guard) {
    auto r = reader.read(position);
    if (r.status == LogReader::Status::corrupt && error != nullptr) *error = reader.error();
    if (r.status != LogReader::Status::frame) break;
    if (layout::commit_kind(r.frame->commit) == layout::FrameKind::kData) {
      const auto* payload = reinterpret_cast<const char*>(r.frame + 1);
      values.emplace_back(payload, layout::commit_length(r.frame->commit));
    }
    position = r.next;
  }
  return values;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<std::uint64_t>(st.st_size);
}

TEST(Crc32c, MatchesTheCastagnoliCheckValue) {
  const char* check = "123456789";
  EXPECT_EQ(detail::crc32c(check, 9), 0xE3069283U);
  // Continuing a CRC gives the same result as one pass, across the 8-byte steps.
  std::string long_text(1000, 'x');
  for (std::size_t i = 0; i < long_text.size(); ++i) long_text[i] = static_cast<char>(i * 7);
  std::uint32_t whole = detail::crc32c(long_text.data(), long_text.size());
  std::uint32_t parts = detail::crc32c(long_text.data(), 333);
  parts = detail::crc32c(long_text.data() + 333, long_text.size() - 333, parts);
  EXPECT_EQ(whole, parts);
  EXPECT_NE(whole, detail::crc32c(long_text.data(), long_text.size() - 1));
}

// A plain bitwise CRC32C (reflected polynomial 0x82F63B78), the definition, for comparison.
std::uint32_t reference_crc32c(const unsigned char* p, std::size_t size) {
  std::uint32_t c = ~0U;
  for (std::size_t i = 0; i < size; ++i) {
    c ^= p[i];
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ (0x82F63B78U & (0U - (c & 1U)));
  }
  return ~c;
}

TEST(Crc32c, ThreeStreamPathMatchesTheDefinitionAtEverySize) {
  std::vector<unsigned char> data(3 * 8192 * 3 + 77);
  std::uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (auto& b : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x);
  }
  for (std::size_t size : {0UL, 1UL, 7UL, 8UL, 24575UL, 24576UL, 24577UL, 49152UL, data.size()}) {
    EXPECT_EQ(detail::crc32c(data.data(), size), reference_crc32c(data.data(), size)) << size;
  }
  // Continuing across the long path's rounds.
  std::uint32_t parts = detail::crc32c(data.data(), 30000);
  parts = detail::crc32c(data.data() + 30000, data.size() - 30000, parts);
  EXPECT_EQ(parts, reference_crc32c(data.data(), data.size()));
}

TEST(Segments, NamesAreTwentyDigitOffsets) {
  EXPECT_EQ(detail::segment_file("/d", 4096, ".log"), "/d/00000000000000004096.log");
  EXPECT_EQ(detail::parse_segment_name("00000000000000004096.log"),
            std::optional<std::uint64_t>(4096));
  EXPECT_FALSE(detail::parse_segment_name("00000000000000004096.idx"));
  EXPECT_FALSE(detail::parse_segment_name("0000000000000000409x.log"));
  EXPECT_FALSE(detail::parse_segment_name("99999999999999999999.log"));  // over 2^64
}

TEST(TopicLog, AppendsAndRecoversItsEndAfterReopening) {
  testing::TempDir dir;
  std::uint64_t end = 0;
  {
    auto log = TopicLog::open(dir.path(), options());
    ASSERT_TRUE(log) << log.error().message();
    EXPECT_TRUE(log->empty());
    std::uint64_t next = append(*log, 0, 10);
    next = append(*log, next, 5);
    end = log->end();
    EXPECT_GT(end, 0U);
  }
  auto log = TopicLog::open(dir.path(), options());
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_EQ(log->end(), end);
  EXPECT_TRUE(log->recovery().empty()) << log->recovery();
  std::uint64_t sequence = 0;
  ASSERT_TRUE(log->end_sequence(sequence));
  EXPECT_EQ(sequence, 15U);
  auto values = replay(dir.path(), 0);
  ASSERT_EQ(values.size(), 15U);
  EXPECT_EQ(values.front(), "m0");
  EXPECT_EQ(values.back(), "m14");
}

TEST(TopicLog, SecondWriterIsRefusedWhileTheFirstHoldsTheLog) {
  testing::TempDir dir;
  auto first = TopicLog::open(dir.path(), options());
  ASSERT_TRUE(first);
  // flock is per open file description: a second open in this process conflicts too.
  auto second = TopicLog::open(dir.path(), options());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Errc::busy);
  EXPECT_NE(second.error().message().find("another ringbus-bridge"), std::string::npos);
}

TEST(TopicLog, RecoveryCutsGarbageWrittenPastTheLastChunk) {
  testing::TempDir dir;
  std::uint64_t end = 0;
  std::string segment = detail::segment_file(dir.path(), 0, ".log");
  {
    auto log = TopicLog::open(dir.path(), options());
    ASSERT_TRUE(log);
    append(*log, 0, 20);
    end = log->end();
  }
  // A power cut: the page cache had more bytes than the device; what reached it is garbage.
  {
    std::ofstream out(segment, std::ios::app | std::ios::binary);
    std::string garbage(700, '\xAB');
    out << garbage;
  }
  {
    // ...and a torn index record after the last good one.
    std::ofstream idx(detail::segment_file(dir.path(), 0, ".idx"),
                      std::ios::app | std::ios::binary);
    idx << std::string(9, '\x01');
  }
  auto log = TopicLog::open(dir.path(), options());
  ASSERT_TRUE(log) << log.error().message();
  EXPECT_EQ(log->end(), end);
  EXPECT_EQ(file_size(segment), end);
  EXPECT_NE(log->recovery().find("cut segment"), std::string::npos) << log->recovery();
  EXPECT_EQ(replay(dir.path(), 0).size(), 20U);
  // Appending continues right after the last valid chunk.
  append(*log, 20, 3);
  EXPECT_EQ(replay(dir.path(), 0).back(), "m22");
}

TEST(TopicLog, RecoveryDropsAChunkWhoseBytesWereOnlyPartlyWritten) {
  testing::TempDir dir;
  std::string segment = detail::segment_file(dir.path(), 0, ".log");
  std::uint64_t first_end = 0;
  {
    auto log = TopicLog::open(dir.path(), options());
    ASSERT_TRUE(log);
    append(*log, 0, 10);
    first_end = log->end();
    append(*log, 10, 10);
  }
  ASSERT_EQ(::truncate(segment.c_str(), static_cast<off_t>(first_end + 17)), 0);
  auto log = TopicLog::open(dir.path(), options());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->end(), first_end);
  std::uint64_t sequence = 0;
  ASSERT_TRUE(log->end_sequence(sequence));
  EXPECT_EQ(sequence, 10U);
  EXPECT_EQ(replay(dir.path(), 0).size(), 10U);
}

TEST(TopicLog, RollsSegmentsAndTheReaderCrossesThem) {
  testing::TempDir dir;
  auto log = TopicLog::open(dir.path(), options(4096));
  ASSERT_TRUE(log);
  std::uint64_t next = 0;
  for (int i = 0; i < 40; ++i) next = append(*log, next, 10);
  EXPECT_GT(log->segment_count(), 3U);
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases);
  EXPECT_EQ(bases->size(), log->segment_count());
  auto values = replay(dir.path(), 0);
  ASSERT_EQ(values.size(), 400U);
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], "m" + std::to_string(i));
}

TEST(TopicLog, RetentionBySizeDeletesWholeOldestSegmentsAndReadersSeeOutOfRange) {
  testing::TempDir dir;
  auto log = TopicLog::open(dir.path(), options(4096));
  ASSERT_TRUE(log);
  std::uint64_t next = 0;
  for (int i = 0; i < 40; ++i) next = append(*log, next, 10);
  const std::uint64_t before = log->segment_count();
  auto removed = log->apply_retention(3 * 4096, std::chrono::milliseconds(0));
  EXPECT_GT(removed.segments, 0U);
  EXPECT_LE(log->bytes(), 3U * 4096);
  EXPECT_EQ(log->segment_count(), before - removed.segments);
  EXPECT_GT(log->start(), 0U);
  LogReader reader(dir.path(), kMaxMessage, kAlign);
  auto r = reader.read(0);
  EXPECT_EQ(r.status, LogReader::Status::out_of_range);
  EXPECT_EQ(r.next, log->start());
  // What is left is still whole and in order, up to the last message.
  auto values = replay(dir.path(), log->start());
  ASSERT_FALSE(values.empty());
  EXPECT_EQ(values.back(), "m399");
}

TEST(TopicLog, RetentionByAgeKeepsTheActiveSegment) {
  testing::TempDir dir;
  auto log = TopicLog::open(dir.path(), options(4096));
  ASSERT_TRUE(log);
  std::uint64_t next = 0;
  for (int i = 0; i < 20; ++i) next = append(*log, next, 10);
  // Age every segment by an hour.
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases);
  for (std::uint64_t base : *bases) {
    timespec times[2] = {{0, UTIME_OMIT}, {::time(nullptr) - 3600, 0}};
    std::string path = detail::segment_file(dir.path(), base, ".log");
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
  EXPECT_EQ(log->apply_retention(0, std::chrono::hours(2)).segments, 0U);
  auto removed = log->apply_retention(0, std::chrono::minutes(30));
  EXPECT_EQ(removed.segments, bases->size() - 1);
  EXPECT_EQ(log->segment_count(), 1U);
  EXPECT_EQ(replay(dir.path(), log->start()).back(), "m199");
}

TEST(LogReader, ReportsACorruptMiddleSegmentByItsChecksum) {
  testing::TempDir dir;
  {
    auto log = TopicLog::open(dir.path(), options(4096));
    ASSERT_TRUE(log);
    std::uint64_t next = 0;
    for (int i = 0; i < 30; ++i) next = append(*log, next, 10);
  }
  auto bases = detail::list_segments(dir.path());
  ASSERT_TRUE(bases);
  ASSERT_GE(bases->size(), 3U);
  // Flip one byte in the middle of the second segment's value bytes.
  std::string victim = detail::segment_file(dir.path(), (*bases)[1], ".log");
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(file_size(victim) / 2));
    f.put('\x7f');
  }
  std::string error;
  auto values = replay(dir.path(), 0, &error);
  EXPECT_NE(error.find("CRC32C mismatch"), std::string::npos) << error;
  EXPECT_NE(error.find(victim), std::string::npos) << error;
  // Everything before the bad chunk was returned, nothing from it.
  ASSERT_FALSE(values.empty());
  EXPECT_LT(values.size(), 300U);
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], "m" + std::to_string(i));
}

// Names in state.json come from the topic's shared memory, which another process may have
// damaged: bytes that are not UTF-8 are written as U+FFFD, not thrown at the recorder (the
// chaos soak's corrupting writer made the bridge abort in nlohmann's dump()).
TEST(LogState, NamesThatAreNotUtf8AreWrittenReplacedNotThrown) {
  testing::TempDir dir;
  bridge::LogState s;
  s.topic = "orders";
  s.groups.push_back({std::string("bill\xdf\xffing"), 2048, 40});
  s.forwards.push_back({"10.0.0.2:7460", 1984, 31, 3, std::string("refused \xc3")});
  ASSERT_TRUE(bridge::write_log_state(dir.path(), s, false));
  auto back = bridge::read_log_state(dir.path());
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->groups.size(), 1U);
  EXPECT_EQ(back->groups[0].name, "bill\xef\xbf\xbd\xef\xbf\xbding");
  EXPECT_EQ(back->groups[0].position, 2048U);
}

TEST(LogState, RoundTripsAndRejectsDamagedFiles) {
  testing::TempDir dir;
  bridge::LogState s;
  s.topic = "orders";
  s.durable_position = 4096;
  s.durable_messages = 77;
  s.log_start = 1024;
  s.config.capacity = 65536;
  s.config.max_message = 1000;
  s.config.policy = Policy::overwrite;
  s.config.max_readers = 8;
  s.config.frame_alignment = 64;
  s.config.stuck_claim_timeout = std::chrono::milliseconds(1500);
  s.groups.push_back({"billing", 2048, 40});
  s.forwards.push_back({"10.0.0.2:7460", 1984, 31, 3, "connecting to 10.0.0.2:7460 timed out"});
  ASSERT_TRUE(bridge::write_log_state(dir.path(), s, true));
  auto back = bridge::read_log_state(dir.path());
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->topic, "orders");
  EXPECT_EQ(back->durable_position, 4096U);
  EXPECT_EQ(back->durable_messages, 77U);
  EXPECT_EQ(back->log_start, 1024U);
  EXPECT_EQ(back->config.policy, Policy::overwrite);
  EXPECT_EQ(back->config.frame_alignment, 64U);
  EXPECT_EQ(back->config.stuck_claim_timeout.count(), 1500);
  ASSERT_EQ(back->groups.size(), 1U);
  EXPECT_EQ(back->groups[0].name, "billing");
  EXPECT_EQ(back->groups[0].position, 2048U);
  ASSERT_EQ(back->forwards.size(), 1U);
  EXPECT_EQ(back->forwards[0].destination, "10.0.0.2:7460");
  EXPECT_EQ(back->forwards[0].acked_position, 1984U);
  EXPECT_EQ(back->forwards[0].acked_messages, 31U);
  EXPECT_EQ(back->forwards[0].reconnects, 3U);
  EXPECT_EQ(back->forwards[0].last_error, "connecting to 10.0.0.2:7460 timed out");
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/state.json.tmp"));

  std::ofstream(dir.path() + "/state.json") << "{\"format\": \"ringbus-log-state\", \"version\"";
  auto torn = bridge::read_log_state(dir.path());
  ASSERT_FALSE(torn);
  EXPECT_EQ(torn.error().code(), Errc::corrupt);
  std::ofstream(dir.path() + "/state.json") << R"({"format": "ringbus-log-state", "version": 9})";
  auto future = bridge::read_log_state(dir.path());
  ASSERT_FALSE(future);
  EXPECT_EQ(future.error().code(), Errc::incompatible);
}

TEST(BridgeConfig, ReadsEveryOptionFromToml) {
  testing::TempDir dir;
  std::string path = dir.path() + "/bridge.toml";
  std::ofstream(path) << R"(
log_dir = "/var/lib/ringbus/log"
record = ["orders", "md.*"]
segment_bytes = "1MiB"
reader_name = "recorder"
scan_interval = "500ms"
cpu = 1
[fsync]
policy = "bytes"
bytes = 65536
[retention]
bytes = "2GiB"
age = "7d"
)";
  auto c = bridge::load_config_file(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->log_dir, "/var/lib/ringbus/log");
  ASSERT_EQ(c->record.size(), 2U);
  EXPECT_EQ(c->record[1], "md.*");
  EXPECT_EQ(c->segment_bytes, 1U << 20);
  EXPECT_EQ(c->reader_name, "recorder");
  EXPECT_EQ(c->scan_interval.count(), 500);
  EXPECT_EQ(c->cpu, 1);
  EXPECT_EQ(c->fsync, bridge::FsyncPolicy::bytes);
  EXPECT_EQ(c->fsync_bytes, 65536U);
  EXPECT_EQ(c->retention_bytes, std::uint64_t{2} << 30);
  EXPECT_EQ(c->retention_age, std::chrono::hours(24 * 7));
  EXPECT_TRUE(bridge::validate_config(*c));
}

TEST(BridgeConfig, TheExampleFileInTheRepositoryIsValidAndHoldsTheDefaults) {
  auto c = bridge::load_config_file(RINGBUS_BRIDGE_EXAMPLE_CONFIG);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_TRUE(bridge::validate_config(*c));
  const bridge::BridgeConfig defaults;
  EXPECT_EQ(c->segment_bytes, defaults.segment_bytes);
  EXPECT_EQ(c->fsync, defaults.fsync);
  EXPECT_EQ(c->fsync_interval, defaults.fsync_interval);
  EXPECT_EQ(c->fsync_bytes, defaults.fsync_bytes);
  EXPECT_EQ(c->reader_name, defaults.reader_name);
  EXPECT_EQ(c->scan_interval, defaults.scan_interval);
  EXPECT_EQ(c->retry_interval, defaults.retry_interval);
  EXPECT_EQ(c->restore_topics, defaults.restore_topics);
}

TEST(BridgeConfig, RetentionZeroMeansNoLimitInEveryForm) {
  testing::TempDir dir;
  std::string path = dir.path() + "/bridge.toml";
  for (const char* bytes : {"0", "\"0\""}) {
    std::ofstream(path) << "log_dir = \"/x\"\nrecord = \"*\"\n[retention]\nbytes = " << bytes
                        << "\nage = 0\n";
    auto c = bridge::load_config_file(path);
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->retention_bytes, 0U);
    EXPECT_EQ(c->retention_age.count(), 0);
  }
}

TEST(BridgeConfig, ErrorsNameTheFileLineAndOption) {
  testing::TempDir dir;
  std::string path = dir.path() + "/bridge.toml";
  std::ofstream(path) << "log_dir = \"/x\"\nrecord = \"*\"\nsegmnt_bytes = 5\n";
  auto unknown = bridge::load_config_file(path);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message().find(path + ":3: segmnt_bytes"), std::string::npos)
      << unknown.error().message();
  std::ofstream(path) << "log_dir = \"/x\"\n[fsync]\npolicy = \"sometimes\"\n";
  auto policy = bridge::load_config_file(path);
  ASSERT_FALSE(policy);
  EXPECT_NE(policy.error().message().find("never, interval or bytes"), std::string::npos);
  std::ofstream(path) << "log_dir = [\n";
  auto syntax = bridge::load_config_file(path);
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code(), Errc::invalid_argument);
  auto missing = bridge::load_config_file(dir.path() + "/none.toml");
  ASSERT_FALSE(missing);
  bridge::BridgeConfig empty;
  EXPECT_FALSE(bridge::validate_config(empty));
  EXPECT_FALSE(bridge::parse_duration("5 weeks", "retention.age"));
  EXPECT_EQ(bridge::parse_duration("90s", "x")->count(), 90'000);
}

}  // namespace
}  // namespace ringbus
