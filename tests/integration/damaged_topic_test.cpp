// A topic file damaged while it is in use: every header field, reader slot field and frame field
// set to hostile values (unaligned, out of range, past the end, a lap from the future) under
// running readers, producers, group members, the monitor and the CLI. Each must end with a
// `corrupt` error, another clean error, or a reported gap: never a signal, a hang, or a message
// whose bytes lie outside what it may read.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "layout/reader_slot_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using namespace std::chrono_literals;
using testing::TempBus;

constexpr std::uint64_t kCapacity = 4096;
constexpr std::uint64_t kAll = ~std::uint64_t{0};

// Where a damage lands: the header, the slot of a named reader, or a frame.
enum class Region : std::uint8_t { header, reader_slot, group_slot, member_slot, frame };

struct Damage {
  std::string name;  // also the test's name
  Region region;
  std::size_t offset;  // within the region (a frame: within the frame at the lossy cursor)
  int width;           // 4 or 8 bytes; 0: fill `fill_length` bytes with `value`'s low byte
  std::uint64_t value;
  std::size_t fill_length = 0;
  // A frame's commit word: `value` holds kind and length, the lap is the cursor's.
  bool at_cursor_lap = false;
};

// gtest prints a failing case's parameter: its name, not its bytes.
void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

// A live bus: a topic with traffic, a durable persistent reader, a lossy reader, a queue group
// with one member holding a batch; then the damage.
class DamagedTopic : public ::testing::TestWithParam<Damage> {
 protected:
  void SetUp() override {
    TopicOptions o;
    o.capacity = kCapacity;
    o.max_readers = 8;
    o.frame_alignment = 8;
    o.stuck_claim_timeout = 50ms;
    topic_ = tb_.create("t", o);
    Producer producer(topic_);
    // Several laps, with frames of varied sizes, so old frames' bytes lie everywhere.
    SubscriberOptions lossy;
    lossy.durability = Durability::lossy;
    auto sub = Subscriber::attach(topic_, lossy);
    ASSERT_TRUE(sub) << sub.error().message();
    lossy_.emplace(std::move(*sub));
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(
          producer.try_publish({}, as_bytes(std::string(i % 90, static_cast<char>('a' + i % 26)))));
    }
    SubscriberOptions durable;
    durable.name = "keeper";
    durable.start = StartFrom::latest();
    auto keeper = Subscriber::attach(topic_, durable);
    ASSERT_TRUE(keeper) << keeper.error().message();
    durable_.emplace(std::move(*keeper));
    auto member = GroupMember::join(topic_, "g", {});
    ASSERT_TRUE(member) << member.error().message();
    member_.emplace(std::move(*member));
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(producer.try_publish(as_bytes("k"), as_bytes(std::string(i * 3, 'm'))));
    }
    ASSERT_TRUE(durable_->poll([](const Message&) {}, 5));
    ASSERT_TRUE(member_->poll([](const Message&) {}, 4));
    apply(GetParam());
  }

  std::byte* region(Region r) {
    auto& map = detail::mapping_of(topic_);
    switch (r) {
      case Region::header: return reinterpret_cast<std::byte*>(&map.header());
      case Region::reader_slot: return reinterpret_cast<std::byte*>(&map.slot(durable_->slot()));
      case Region::member_slot: return reinterpret_cast<std::byte*>(&map.slot(member_slot()));
      case Region::group_slot: return reinterpret_cast<std::byte*>(&map.slot(group_slot()));
      case Region::frame:
        return map.ring() + (durable_->position() & (topic_.config().capacity - 1));
    }
    return nullptr;
  }
  std::uint32_t group_slot() {
    for (const auto& r : topic_.snapshot().readers) {
      if (r.kind == "group") return r.slot;
    }
    return 0;
  }
  std::uint32_t member_slot() {
    for (const auto& r : topic_.snapshot().readers) {
      if (r.kind == "member") return r.slot;
    }
    return 0;
  }

  void apply(const Damage& d) {
    std::byte* at = region(d.region) + d.offset;
    std::uint64_t value = d.value;
    if (d.at_cursor_lap) {
      value |= std::uint64_t{layout::lap_of(durable_->position(),
                                            detail::mapping_of(topic_).lap_shift())}
               << 32;
    }
    if (d.width == 8) {
      std::memcpy(at, &value, 8);
    } else if (d.width == 4) {
      const auto v = static_cast<std::uint32_t>(value);
      std::memcpy(at, &v, 4);
    } else {
      std::memset(at, static_cast<int>(d.value & 0xFF), d.fill_length);
    }
  }

  // Runs `body` in a child process: a signal or a hang fails the test with `what`.
  void expect_clean_child(const std::string& what, const std::function<int()>& body) {
    const pid_t pid = testing::fork_child(body);
    const int status = testing::wait_child(pid, 60s);
    EXPECT_NE(status, -1) << what << " hung (killed after 60 s)";
    EXPECT_LT(status, 128) << what << " was killed by signal " << status - 128;
    EXPECT_EQ(status, 0) << what << " failed a check (exit " << status << ")";
  }

  TempBus tb_;
  Topic topic_;
  std::optional<Subscriber> lossy_;
  std::optional<Subscriber> durable_;
  std::optional<GroupMember> member_;
};

// Touches every byte of a message and checks its sizes: reading past a mapping or a copy
// shows as a signal (or under ASan a report), not as a passing test.
int check_message(const Message& m, std::uint64_t max_message) {
  if (m.key.size() + m.value.size() > max_message) return 10;
  volatile std::uint64_t sum = 0;
  for (std::byte b : m.key) sum = sum + static_cast<std::uint8_t>(b);
  for (std::byte b : m.value) sum = sum + static_cast<std::uint8_t>(b);
  return 0;
}

// Polls (bounded) until nothing more comes or an error: both are fine here. Then waits and
// polls for `watch`: a wait that keeps returning at once with nothing to poll is a busy loop
// (returns 30).
int drain(Subscriber& sub, std::uint64_t max_message,
          std::chrono::milliseconds watch = std::chrono::milliseconds(60)) {
  int bad = 0;
  auto check = [&](const Message& m) { bad = bad != 0 ? bad : check_message(m, max_message); };
  for (int i = 0; i < 200; ++i) {
    auto r = sub.poll(check);
    if (bad != 0) return bad;
    if (!r) return 0;
    if (r->messages == 0) break;
  }
  int empty_wakeups = 0;
  const auto end = std::chrono::steady_clock::now() + watch;
  while (std::chrono::steady_clock::now() < end) {
    auto r = sub.poll_wait(check, 64, Wait::futex(50ms));
    if (bad != 0) return bad;
    if (!r && r.code() != Errc::timed_out) return 0;
    if (r && r->messages == 0) ++empty_wakeups;
  }
  // A few are expected: a wait returns when a stuck claim's timeout (50 ms here) has passed.
  return empty_wakeups > 50 ? 30 : 0;
}

TEST_P(DamagedTopic, ReadersAndProducersFailCleanly) {
  expect_clean_child("readers and producers", [&] {
    const std::uint64_t max_message = topic_.config().max_message;
    if (int bad = drain(*lossy_, max_message, 300ms); bad != 0) return bad;
    if (int bad = drain(*durable_, max_message, 300ms); bad != 0) return bad + 1;
    for (StartFrom start : {StartFrom::latest(), StartFrom::earliest(), StartFrom::at(64)}) {
      for (Durability durability : {Durability::durable, Durability::lossy}) {
        SubscriberOptions o;
        o.start = start;
        o.durability = durability;
        auto sub = Subscriber::attach(topic_, o);
        if (sub) {
          if (int bad = drain(*sub, max_message); bad != 0) return bad + 2;
        }
      }
    }
    SubscriberOptions resume;
    resume.name = "keeper";
    durable_.reset();  // detach, then resume the persistent reader from its (damaged) slot
    if (auto again = Subscriber::attach(topic_, resume)) {
      if (int bad = drain(*again, max_message); bad != 0) return bad + 3;
    }
    Producer producer(topic_);
    for (int i = 0; i < 50; ++i) {
      auto p = producer.try_publish({}, as_bytes(std::string(i % 70, 'p')));
      if (!p && p.code() != Errc::would_block && p.code() != Errc::corrupt) return 20;
    }
    auto waited = producer.publish({}, as_bytes("w"), Wait::futex(50ms));
    if (!waited && waited.error().message().empty()) return 21;
    auto snapshot = topic_.snapshot();
    (void)back_pressure(topic_.name(), snapshot);
    (void)topic_.reap_dead_readers();
    return 0;
  });
}

TEST_P(DamagedTopic, GroupMembersFailCleanly) {
  expect_clean_child("group members", [&] {
    const std::uint64_t max_message = topic_.config().max_message;
    int bad = 0;
    auto check = [&](const Message& m) {
      if (bad == 0) bad = check_message(m, max_message);
    };
    for (int i = 0; i < 50 && bad == 0; ++i) {
      auto r = member_->poll(check, 8);
      if (!r) break;
      for (int k = 0; k < 8; ++k) (void)member_->ack_up_to(topic_.snapshot().tail);
      if (r->messages == 0) (void)member_->wait(Wait::futex(10ms));
    }
    if (bad != 0) return bad;
    auto second = GroupMember::join(topic_, "g", {});
    if (second) {
      for (int i = 0; i < 20 && bad == 0; ++i) {
        auto r = second->poll(check, 8);
        if (!r || r->messages == 0) break;
      }
    }
    return bad;
  });
}

TEST_P(DamagedTopic, CliAndMonitorFailCleanly) {
  const std::string dir = "'" + tb_.dir() + "'";
  const std::string ringbus = testing::tool_path("ringbus") + " --dir " + dir + " ";
  const std::vector<std::string> commands = {
      ringbus + "topic describe t",
      ringbus + "topic describe t --json",
      ringbus + "topic dump t --from earliest",
      ringbus + "consume t --from earliest --timeout-ms 100 --lossy",
      ringbus + "consume t --group g --timeout-ms 100",
      ringbus + "produce t --timeout-ms 100",
      std::string(RINGBUS_MONITOR_PATH) + " --dir " + dir + " --json",
      std::string(RINGBUS_MONITOR_PATH) + " --dir " + dir + " --once",
  };
  for (const std::string& c : commands) {
    // The tools exit 0 (fine), 1 (an error, on one line) or 2 (usage); 124 and up: killed
    // by `timeout`, or by a signal.
    auto r =
        testing::run_command("timeout -s KILL 60 " + c + " >/dev/null 2>&1; echo $?", "one\ntwo\n");
    const int status = std::atoi(r.out.c_str());
    EXPECT_LE(status, 2) << c << " exited " << status;
  }
}

std::vector<Damage> damages() {
  using layout::FrameKind;
  using layout::make_commit;
  const std::uint64_t c = kCapacity;
  return {
      // Header: positions and counters producers and readers trust.
      {"TailUnalignedNearTheEnd", Region::header, 128, 8, c * 7 - 4},
      {"TailUnaligned", Region::header, 128, 8, c * 7 + 3},
      {"TailLapsInTheFuture", Region::header, 128, 8, c * 1000},
      {"TailBehindTheReaders", Region::header, 128, 8, 0},
      {"TailHuge", Region::header, 128, 8, kAll - 7},
      {"TailMessagesHuge", Region::header, 136, 8, kAll},
      {"ReclaimedUnaligned", Region::header, 144, 8, 3},
      {"ReclaimedPastTheTail", Region::header, 144, 8, c * 50},
      {"ReclaimedZero", Region::header, 144, 8, 0},
      {"ReclaimedHuge", Region::header, 144, 8, kAll - 7},
      {"FutexWordAndSleepers", Region::header, 256, 8, kAll},
      {"AbortedAndReapedCounters", Region::header, 384, 0, 0xFF, 16},
      {"ReadersEpoch", Region::header, 400, 8, kAll},
      {"BasePositionUnaligned", Region::header, 104, 8, 5},
      {"BaseMessagesHuge", Region::header, 112, 8, kAll},
      // Cold fields changed after creation: processes that validated them keep their copy;
      // new ones refuse the file.
      {"CapacityNotAPowerOfTwo", Region::header, 24, 8, 5000},
      {"MaxMessageHuge", Region::header, 32, 8, kAll},
      {"MaxReadersHuge", Region::header, 40, 4, 100000},
      {"FrameAlignmentOdd", Region::header, 76, 4, 3},
      {"StuckTimeoutZero", Region::header, 80, 8, 0},
      // The recorder's counters (a bridge's, or anybody's who can write the file).
      {"RecorderPidOfInit", Region::header, 512, 4, 1},
      {"RecorderPositionsHuge", Region::header, 528, 0, 0xFF, 40},
      {"RecorderErrorTextUnterminated", Region::header, 640, 0, 'E', 128},
      {"LogDirUnterminated", Region::header, 768, 0, 'D', 256},
      // The durable reader's slot.
      {"ReaderPositionUnaligned", Region::reader_slot, 0, 8, 3},
      {"ReaderPositionInTheFuture", Region::reader_slot, 0, 8, c * 1000},
      {"ReaderPositionZero", Region::reader_slot, 0, 8, 0},
      {"ReaderMessagesHuge", Region::reader_slot, 8, 8, kAll},
      {"ReaderLostCountersHuge", Region::reader_slot, 16, 0, 0xFF, 16},
      {"ReaderStateGarbage", Region::reader_slot, 128, 8, kAll},
      {"ReaderFlagsAll", Region::reader_slot, 136, 4, 0xFFFFFFFF},
      {"ReaderPidOfInit", Region::reader_slot, 140, 4, 1},
      {"ReaderKindUnknown", Region::reader_slot, 144, 4, 99},
      {"ReaderNameUnterminated", Region::reader_slot, 184, 0, 'N', 64},
      // The queue group's slot and its member's.
      {"GroupPositionUnaligned", Region::group_slot, 0, 8, 3},
      {"GroupPositionInTheFuture", Region::group_slot, 0, 8, c * 1000},
      {"GroupDispatchUnaligned", Region::group_slot, 32, 8, 5},
      {"GroupDispatchInTheFuture", Region::group_slot, 32, 8, c * 1000},
      {"GroupTakeoversHuge", Region::group_slot, 52, 4, 0xFFFFFFFF},
      {"GroupSafeFromZero", Region::group_slot, 120, 8, 0},
      {"MemberGroupSlotOutOfRange", Region::member_slot, 48, 4, 100000},
      {"MemberBatchCountHuge", Region::member_slot, 52, 4, 1000},
      {"MemberBatchStartUnaligned", Region::member_slot, 80, 8, 3},
      {"MemberBatchEndInTheFuture", Region::member_slot, 88, 8, c * 1000},
      {"MemberLowWaterHuge", Region::member_slot, 96, 8, kAll},
      // The frame at the durable reader's cursor (the member's batch is near it).
      {"FrameLapFromTheFuture", Region::frame, 0, 8, make_commit(9999, FrameKind::kData, 8)},
      {"FrameNeverWritten", Region::frame, 0, 8, 0},
      {"FrameClaimedHugeLength", Region::frame, 0, 8,
       make_commit(0, FrameKind::kClaimed, layout::kMaxFrameLength), 0, true},
      {"FrameClaimedPastTheRing", Region::frame, 0, 8, make_commit(0, FrameKind::kClaimed, c), 0,
       true},
      {"FrameDataLengthPastTheRing", Region::frame, 0, 8,
       make_commit(0, FrameKind::kData, layout::kMaxFrameLength), 0, true},
      {"FrameDataLongerThanMaxMessage", Region::frame, 0, 8,
       make_commit(0, FrameKind::kData, c / 4 + 8), 0, true},
      {"FramePaddingUnaligned", Region::frame, 0, 8, make_commit(0, FrameKind::kPadding, 12), 0,
       true},
      {"FramePaddingZero", Region::frame, 0, 8, make_commit(0, FrameKind::kPadding, 0), 0, true},
      {"FramePaddingPastTheRing", Region::frame, 0, 8, make_commit(0, FrameKind::kPadding, c), 0,
       true},
      {"FrameSequenceHuge", Region::frame, 8, 8, kAll},
      {"FrameKeyLengthHuge", Region::frame, 24, 4, 0xFFFFFFFF},
      {"FrameReservedGarbage", Region::frame, 28, 4, 0xFFFFFFFF},
  };
}

// Damage while everything runs: random bytes written all over the ring, and the tail and
// reclaimed positions set to random values now and then, while producer and reader threads
// (one child), a group's members (another child), and the tools work on the topic.
void run_damaged_while_running(bool ring_actors, bool group_actors) {
  TempBus tb;
  TopicOptions o;
  o.capacity = kCapacity;
  o.frame_alignment = 8;
  o.stuck_claim_timeout = 20ms;
  auto topic = tb.create("t", o);
  constexpr auto kRunFor = 2s;
  auto until = [](std::chrono::steady_clock::time_point end) {
    return std::chrono::steady_clock::now() < end;
  };
  std::vector<std::pair<const char*, pid_t>> children;
  if (ring_actors)
    children.emplace_back(
        "ring", testing::fork_child([&] {
          const auto end = std::chrono::steady_clock::now() + kRunFor;
          std::vector<std::thread> threads;
          int bad = 0;
          for (int id = 0; id < 2; ++id) {
            threads.emplace_back([&, id] {
              Producer p(topic);
              for (std::uint64_t i = 0; until(end); ++i) {
                (void)p.publish({}, as_bytes(std::string(i % 150, static_cast<char>('a' + id))),
                                Wait::futex(20ms));
              }
            });
          }
          for (Durability d : {Durability::durable, Durability::lossy}) {
            threads.emplace_back([&, d] {
              SubscriberOptions so;
              so.durability = d;
              while (until(end)) {
                auto sub = Subscriber::attach(topic, so);
                if (!sub) continue;
                while (until(end)) {
                  auto r = sub->poll_wait(
                      [&](const Message& m) {
                        if (bad == 0) bad = check_message(m, topic.config().max_message);
                      },
                      16, Wait::futex(20ms));
                  if (!r && r.code() != Errc::timed_out) break;  // corrupt: attach again
                }
              }
            });
          }
          for (auto& t : threads) t.join();
          return bad;
        }));
  if (group_actors)
    children.emplace_back("group", testing::fork_child([&] {
                            const auto end = std::chrono::steady_clock::now() + kRunFor;
                            int bad = 0;
                            while (until(end)) {
                              auto member = GroupMember::join(topic, "g", {});
                              if (!member) continue;
                              while (until(end)) {
                                std::uint64_t last = 0;
                                auto r = member->poll_wait(
                                    [&](const Message& m) {
                                      if (bad == 0)
                                        bad = check_message(m, topic.config().max_message);
                                      last = m.offset;
                                    },
                                    8, Wait::futex(20ms));
                                if (!r && r.code() != Errc::timed_out) break;
                                if (r && r->messages > 0) (void)member->ack_up_to(last);
                              }
                            }
                            return bad;
                          }));
  // The damage, from this process, while the tools run too.
  std::atomic<bool> stop{false};
  std::thread vandal([&] {
    std::mt19937_64 rng(7);
    auto& header = detail::mapping_of(topic).header();
    std::byte* ring = detail::mapping_of(topic).ring();
    for (std::uint64_t n = 0; !stop.load(); ++n) {
      const std::uint64_t word = rng();
      const std::size_t at = (rng() % (kCapacity / 8)) * 8;
      std::memcpy(ring + at, &word, 8);
      // Half of the positions just short of a lap's end, where an unaligned one makes an
      // 8-byte load or store cross the end of the ring.
      auto position = [&] {
        const std::uint64_t lap = rng() % 64;
        return lap * kCapacity + (rng() % 2 == 0 ? kCapacity - 1 - rng() % 8 : rng() % kCapacity);
      };
      if (n % 200 == 0) std::atomic_ref<std::uint64_t>(header.tail_position).store(position());
      if (n % 200 == 100) std::atomic_ref<std::uint64_t>(header.reclaimed).store(position());
      std::this_thread::sleep_for(20us);
    }
  });
  const std::string dir = "'" + tb.dir() + "'";
  const auto end = std::chrono::steady_clock::now() + kRunFor;
  while (until(end)) {
    for (const std::string& c : {testing::tool_path("ringbus") + " --dir " + dir +
                                     " consume t --from earliest --lossy --timeout-ms 50",
                                 std::string(RINGBUS_MONITOR_PATH) + " --dir " + dir + " --json"}) {
      auto r = testing::run_command("timeout -s KILL 60 " + c + " >/dev/null 2>&1; echo $?");
      EXPECT_LE(std::atoi(r.out.c_str()), 2) << c;
    }
  }
  stop = true;
  vandal.join();
  for (const auto& [what, pid] : children) {
    const int status = testing::wait_child(pid, 60s);
    EXPECT_NE(status, -1) << what << " child hung";
    // 1: a sanitizer report (ASan and UBSan exit with 1).
    EXPECT_EQ(status, 0) << what << " child: exit " << status;
  }
}

TEST(DamagedWhileRunning, RandomWritesUnderProducersReadersAndTools) {
  run_damaged_while_running(true, false);
}

TEST(DamagedWhileRunning, RandomWritesUnderGroupMembers) { run_damaged_while_running(false, true); }

INSTANTIATE_TEST_SUITE_P(Fields, DamagedTopic, ::testing::ValuesIn(damages()),
                         [](const ::testing::TestParamInfo<Damage>& p) { return p.param.name; });

}  // namespace
}  // namespace ringbus
