// The `ringbus` tool end to end: the built binary runs as real processes against a temporary bus
// directory; the test process attaches readers of its own where a test needs one.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "layout/frame_layout.hpp"
#include "ringbus/bytes.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using ringbus::testing::CommandResult;
using ringbus::testing::contains;
using ringbus::testing::run_command;
using ringbus::testing::split_lines;
using ringbus::testing::TempBus;
using Json = nlohmann::json;

std::string ringbus_binary() { return testing::tool_path("ringbus"); }

// A command run through /bin/sh with its CPU time (user + system, the shell and everything it
// waited for) and wall time.
struct Measured {
  int status = -1;  // exit status, or 128 + signal
  double cpu_s = 0;
  double wall_s = 0;
};
Measured run_measured(const std::string& command) {
  Measured m;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (pid < 0) return m;
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid) return m;
  m.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
            static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  m.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return m;
}

class Cli : public ::testing::Test {
 protected:
  std::string command(const std::string& args) const {
    return ringbus_binary() + " --dir '" + bus_.dir() + "' " + args;
  }
  // stdout only: the shape of a command's output.
  CommandResult ringbus(const std::string& args, const std::string& input = {}) const {
    return run_command(command(args), input);
  }
  // stdout and stderr together: a failure's one-line message, or proof of silence.
  CommandResult ringbus_all(const std::string& args, const std::string& input = {}) const {
    return run_command(command(args) + " 2>&1", input);
  }
  Json describe(const std::string& topic) const {
    CommandResult r = ringbus("topic describe " + topic + " --json");
    EXPECT_EQ(r.status, 0);
    return Json::parse(r.out);
  }
  // Waits (bounded) until `topic` has `n` readers, so a consumer started in the background is
  // attached before anything is published.
  void wait_for_readers(const std::string& topic, std::size_t n) const {
    auto opened = bus_.bus().open_topic(topic);
    ASSERT_TRUE(opened) << opened.error().message();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (opened->snapshot().readers.size() != n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no reader attached to " << topic;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  TempBus bus_;
};

TEST_F(Cli, CreateListDescribeDeleteRoundTrip) {
  ASSERT_EQ(ringbus_all("topic create alpha --capacity 64KiB --policy overwrite --max-message 1k "
                        "--max-readers 8 --stuck-timeout-ms 500 --mode 0640")
                .status,
            0);
  ASSERT_EQ(ringbus_all("topic create beta --capacity 4096").status, 0);

  CommandResult list = ringbus("topic list");
  EXPECT_EQ(list.status, 0);
  EXPECT_EQ(list.out, "alpha\nbeta\n");

  Json j = describe("alpha");
  EXPECT_EQ(j["name"], "alpha");
  EXPECT_EQ(j["config"]["capacity"], 65536);
  EXPECT_EQ(j["config"]["max_message"], 1024);
  EXPECT_EQ(j["config"]["policy"], "overwrite");
  EXPECT_EQ(j["config"]["max_readers"], 8);
  EXPECT_EQ(j["config"]["stuck_claim_timeout_ms"], 500);
  EXPECT_EQ(j["tail"], 0);
  EXPECT_EQ(j["messages"], 0);
  EXPECT_EQ(j["aborted_claims"], 0);
  EXPECT_EQ(j["reaped_readers"], 0);
  EXPECT_TRUE(j["readers"].empty());
  EXPECT_EQ(
      std::filesystem::status(bus_.dir() + "/alpha").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
          std::filesystem::perms::group_read);

  CommandResult text = ringbus("topic describe beta");
  EXPECT_EQ(text.status, 0);
  EXPECT_TRUE(contains(text.out, "topic beta")) << text.out;
  EXPECT_TRUE(contains(text.out, "block")) << text.out;
  EXPECT_TRUE(contains(text.out, "readers: 0")) << text.out;

  EXPECT_EQ(ringbus_all("topic create beta --capacity 4096").status, 1) << "already exists";
  EXPECT_EQ(ringbus_all("topic delete alpha").status, 0);
  EXPECT_EQ(ringbus("topic list").out, "beta\n");
  CommandResult again = ringbus_all("topic delete alpha");
  EXPECT_NE(again.status, 0);
  EXPECT_EQ(again.out, "ringbus: topic 'alpha' not found\n");
}

TEST_F(Cli, RejectsBadTopicNameSayingWhatIsAllowed) {
  CommandResult r = ringbus_all("topic create 'no/slashes' --capacity 64K");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(split_lines(r.out).size(), 1U) << r.out;
  EXPECT_EQ(r.out.rfind("ringbus: ", 0), 0U) << r.out;
  EXPECT_TRUE(contains(r.out, "no/slashes")) << r.out;
  EXPECT_TRUE(contains(r.out, "allowed: 1-200 characters of A-Z a-z 0-9 . _ -")) << r.out;
  EXPECT_EQ(ringbus("topic list").out, "");
}

TEST_F(Cli, RejectsBadSizes) {
  for (const char* size : {"64X", "1.5M", "-4096", "0", "K", "99999999999999999999"}) {
    CommandResult r = ringbus_all(std::string("topic create t --capacity='") + size + "'");
    EXPECT_NE(r.status, 0) << size;
    EXPECT_TRUE(contains(r.out, std::string("ringbus: --capacity '") + size + "' is invalid"))
        << r.out;
    EXPECT_TRUE(contains(r.out, "K, KB, KiB, M, MB, MiB, G, GB or GiB")) << r.out;
  }
  CommandResult not_power = ringbus_all("topic create t --capacity 5000");
  EXPECT_NE(not_power.status, 0);
  EXPECT_TRUE(contains(not_power.out, "power of two")) << not_power.out;
  CommandResult bad_max = ringbus_all("topic create t --capacity 64K --max-message 1z");
  EXPECT_NE(bad_max.status, 0);
  EXPECT_TRUE(contains(bad_max.out, "--max-message '1z' is invalid")) << bad_max.out;
  EXPECT_EQ(ringbus("topic list").out, "");
}

TEST_F(Cli, ProducedLinesAreConsumedInOrder) {
  ASSERT_EQ(ringbus_all("topic create lines --capacity 1M").status, 0);
  std::string input;
  for (int i = 0; i < 1000; ++i) {
    // Some empty lines (empty messages) and lengths that vary the frame strides.
    if (i % 97 != 0) input += "line " + std::to_string(i) + std::string(i % 50, '.');
    input += '\n';
  }
  CommandResult produced = ringbus_all("produce lines --key k", input);
  EXPECT_EQ(produced.status, 0);
  EXPECT_EQ(produced.out, "");

  CommandResult consumed = ringbus("consume lines --from earliest --count 1000");
  EXPECT_EQ(consumed.status, 0);
  EXPECT_EQ(consumed.out, input);
  EXPECT_EQ(describe("lines")["messages"], 1000);
}

TEST_F(Cli, ConsumeJsonGivesParseableObjectsWithIncreasingOffsets) {
  ASSERT_EQ(ringbus_all("topic create js --capacity 64K").status, 0);
  // "\xff" is not UTF-8 and a quote and a backslash need escaping: none may break the JSON.
  const std::vector<std::string> values{"first", "with \"quotes\" and \\", "bad \xff byte", "",
                                        "x"};
  std::string input;
  for (const auto& v : values) input += v + "\n";
  ASSERT_EQ(ringbus_all("produce js --key the-key", input).status, 0);

  CommandResult r = ringbus("consume js --from earliest --count 5 --format json");
  ASSERT_EQ(r.status, 0);
  std::vector<std::string> lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), values.size()) << r.out;
  std::uint64_t previous_offset = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    Json j = Json::parse(lines[i], nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << lines[i];
    EXPECT_EQ(j["sequence"], i);
    EXPECT_EQ(j["key"], "the-key");
    EXPECT_GT(j["timestamp_ns"].get<std::int64_t>(), 0);
    const auto offset = j["offset"].get<std::uint64_t>();
    if (i > 0) {
      EXPECT_GT(offset, previous_offset);
    }
    previous_offset = offset;
    if (i == 2) {
      EXPECT_EQ(j["value"], "bad \xEF\xBF\xBD byte");  // U+FFFD replaces the bad byte
    } else {
      EXPECT_EQ(j["value"], values[i]);
    }
  }
  EXPECT_EQ(lines[0].rfind(R"({"offset":0,"sequence":0,)", 0), 0U) << lines[0];

  // A consumer can start again at any of those offsets.
  Json fourth = Json::parse(lines[3]);
  CommandResult from = ringbus("consume js --count 2 --from " + fourth["offset"].dump());
  EXPECT_EQ(from.status, 0);
  EXPECT_EQ(from.out, "\nx\n");
}

TEST_F(Cli, ConsumeOfEmptyTopicTimesOutQuietly) {
  ASSERT_EQ(ringbus_all("topic create empty --capacity 4K").status, 0);
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = ringbus_all("consume empty --from earliest --timeout-ms 200");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_GE(elapsed, std::chrono::milliseconds(200));
  EXPECT_LT(elapsed, std::chrono::seconds(30));
  // The ephemeral reader detached on exit.
  EXPECT_TRUE(describe("empty")["readers"].empty());
}

TEST_F(Cli, WaitingConsumerWakesForLaterProducer) {
  ASSERT_EQ(ringbus_all("topic create live --capacity 4K").status, 0);
  CommandResult consumed;
  std::thread consumer(
      [&] { consumed = ringbus("consume live --from latest --count 100 --timeout-ms 20000"); });
  wait_for_readers("live", 1);
  std::string input;
  for (int i = 0; i < 100; ++i) input += std::to_string(i) + std::string(40, '-') + "\n";
  // 100 lines of ~43 bytes need more than the 4K ring: the producer waits for the reader too.
  CommandResult produced = ringbus_all("produce live --timeout-ms 20000", input);
  consumer.join();
  EXPECT_EQ(produced.status, 0) << produced.out;
  EXPECT_EQ(consumed.status, 0);
  EXPECT_EQ(consumed.out, input);
}

TEST_F(Cli, LappedConsumerReportsLostMessages) {
  ASSERT_EQ(ringbus_all("topic create lap --capacity 4K --policy overwrite").status, 0);
  const std::string flag = bus_.dir() + "/.drain";
  const std::string err = bus_.dir() + "/.err";
  // The consumer's stdout is a pipe nobody drains until the producer is done, so it blocks in
  // write after at most a pipe's worth (64 KiB) while 2 MB go through the 4 KiB ring.
  const std::string script = command("consume lap --timeout-ms 500") + " 2>" + err +
                             " | { while [ ! -e " + flag +
                             " ]; do sleep 0.02; done; cat >/dev/null; }";
  CommandResult consumed;
  std::thread consumer([&] { consumed = run_command("sh -c \"" + script + "\""); });
  wait_for_readers("lap", 1);
  std::string input;
  for (int i = 0; i < 2000; ++i) input += std::string(1000, static_cast<char>('a' + i % 26)) + "\n";
  CommandResult produced = ringbus_all("produce lap", input);
  std::ofstream(flag).put('\n');
  consumer.join();
  EXPECT_EQ(produced.status, 0) << produced.out;
  EXPECT_EQ(consumed.status, 0);
  std::ifstream in(err);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(contains(report, "ringbus: lapped: lost ")) << report;
  EXPECT_TRUE(contains(report, " messages (")) << report;
}

TEST_F(Cli, DescribeShowsDetachedPersistentReaderAndRemoveReaderRemovesIt) {
  ASSERT_EQ(ringbus_all("topic create keep --capacity 64K").status, 0);
  ASSERT_EQ(ringbus_all("produce keep", "a\nb\nc\n").status, 0);
  {
    auto topic = bus_.bus().open_topic("keep");
    ASSERT_TRUE(topic) << topic.error().message();
    SubscriberOptions options;
    options.name = "keeper";
    options.start = StartFrom::earliest();
    auto subscriber = Subscriber::attach(*topic, options);
    ASSERT_TRUE(subscriber) << subscriber.error().message();
    int seen = 0;
    ASSERT_TRUE(subscriber->poll([&](const Message&) { ++seen; }, 1));
    ASSERT_EQ(seen, 1);

    Json attached = describe("keep");
    ASSERT_EQ(attached["readers"].size(), 1U);
    EXPECT_EQ(attached["readers"][0]["alive"], true);
    CommandResult busy = ringbus_all("topic remove-reader keep keeper");
    EXPECT_NE(busy.status, 0);
    EXPECT_TRUE(contains(busy.out, "live process")) << busy.out;
  }  // detaches: the persistent slot keeps its position with no process

  Json j = describe("keep");
  ASSERT_EQ(j["readers"].size(), 1U) << j.dump();
  const Json& r = j["readers"][0];
  EXPECT_EQ(r["name"], "keeper");
  EXPECT_EQ(r["persistent"], true);
  EXPECT_EQ(r["durable"], true);
  EXPECT_EQ(r["alive"], false);
  EXPECT_EQ(r["state"], "stalled");
  EXPECT_EQ(r["pid"], 0);
  EXPECT_EQ(r["messages"], 1);
  EXPECT_EQ(r["lag_messages"], 2);
  EXPECT_GT(r["lag_bytes"].get<std::uint64_t>(), 0U);

  CommandResult text = ringbus("topic describe keep");
  EXPECT_TRUE(contains(text.out, "keeper")) << text.out;
  EXPECT_TRUE(contains(text.out, "stalled")) << text.out;
  EXPECT_TRUE(contains(text.out, "persistent")) << text.out;

  // The CLI resumes the same persistent reader where it stopped.
  CommandResult resumed = ringbus("consume keep --name keeper --count 1");
  EXPECT_EQ(resumed.status, 0);
  EXPECT_EQ(resumed.out, "b\n");

  EXPECT_EQ(ringbus_all("topic remove-reader keep keeper").status, 0);
  EXPECT_TRUE(describe("keep")["readers"].empty());
  CommandResult gone = ringbus_all("topic remove-reader keep keeper");
  EXPECT_NE(gone.status, 0);
  EXPECT_TRUE(contains(gone.out, "no persistent reader 'keeper'")) << gone.out;
}

TEST_F(Cli, ProduceTimesOutWhenAStalledReaderHoldsTheRing) {
  ASSERT_EQ(ringbus_all("topic create full --capacity 4K").status, 0);
  // A persistent durable reader that read nothing: the ring fills and stays full.
  ASSERT_EQ(ringbus_all("consume full --name slow --count 0").status, 0);
  std::string input;
  for (int i = 0; i < 200; ++i) input += std::string(100, 'z') + "\n";
  CommandResult r = ringbus_all("produce full --timeout-ms 100", input);
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(split_lines(r.out).size(), 1U) << r.out;
  EXPECT_TRUE(contains(r.out, "no space in topic 'full' within 100 ms")) << r.out;
  EXPECT_TRUE(contains(r.out, "persistent reader 'slow' has no live process")) << r.out;
  EXPECT_TRUE(contains(r.out, "ringbus topic remove-reader full slow")) << r.out;
}

// A durable queue group with no member (as a bridge restores it after a reboot) holds a full
// ring: a waiting producer must sleep, not spin, and its error must name the group and what to
// do; the monitor must not call the topic ok.
TEST_F(Cli, ProduceBlockedByAMemberlessGroupSleepsAndNamesIt) {
  ASSERT_EQ(ringbus_all("topic create held --capacity 4K").status, 0);
  ASSERT_EQ(ringbus_all("consume held --group billing --count 0").status, 0);
  std::string input;
  for (int i = 0; i < 200; ++i) input += std::string(100, 'z') + "\n";
  const std::string in_path = bus_.dir() + "/.input";
  const std::string err_path = bus_.dir() + "/.err";
  std::ofstream(in_path) << input;
  const Measured m = run_measured(command("produce held --timeout-ms 2000") + " <" + in_path +
                                  " >/dev/null 2>" + err_path);
  std::ifstream err_in(err_path);
  const std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(m.status, 1) << err;
  EXPECT_GE(m.wall_s, 2.0);
  // Spinning (or yielding) uses about as much CPU as wall time; sleeping uses next to none. The
  // bound is far above what a sleeping producer uses, even on a loaded machine.
  EXPECT_LT(m.cpu_s, 0.25 * m.wall_s) << "cpu " << m.cpu_s << " s in " << m.wall_s << " s";
  RecordProperty("blocked_produce_cpu_ms", static_cast<int>(m.cpu_s * 1000));
  EXPECT_EQ(split_lines(err).size(), 1U) << err;
  EXPECT_TRUE(contains(err, "no space in topic 'held' within 2000 ms")) << err;
  EXPECT_TRUE(contains(err, "queue group 'billing' has no live member")) << err;
  EXPECT_TRUE(contains(err, "bytes (")) << err;
  EXPECT_TRUE(contains(err, "ringbus topic remove-reader held group:billing")) << err;

  CommandResult monitored =
      run_command(std::string(RINGBUS_MONITOR_PATH) + " --dir '" + bus_.dir() + "' --json");
  ASSERT_EQ(monitored.status, 0) << monitored.out;
  const Json view = Json::parse(monitored.out);
  ASSERT_EQ(view["topics"].size(), 1U);
  const Json& topic = view["topics"][0];
  EXPECT_EQ(topic["state"], "blocked") << topic.dump();
  EXPECT_EQ(topic["held_by"]["kind"], "group") << topic.dump();
  EXPECT_EQ(topic["held_by"]["name"], "group:billing") << topic.dump();
  EXPECT_EQ(topic["held_by"]["live_members"], 0) << topic.dump();
  CommandResult table =
      run_command(std::string(RINGBUS_MONITOR_PATH) + " --dir '" + bus_.dir() + "' --once");
  ASSERT_EQ(table.status, 0) << table.out;
  bool row = false;
  for (const std::string& line : split_lines(table.out)) {
    if (line.rfind("held ", 0) != 0) continue;
    row = true;
    EXPECT_TRUE(contains(line, " blocked ")) << line;
    EXPECT_FALSE(contains(line, " ok ")) << line;
    EXPECT_TRUE(contains(line, "group 'billing' has no live member")) << line;
  }
  EXPECT_TRUE(row) << table.out;

  CommandResult described = ringbus("topic describe held");
  EXPECT_TRUE(contains(described.out, "producers wait: queue group 'billing' has no live member"))
      << described.out;

  // Removing the group, as the message says, frees the producers.
  ASSERT_EQ(ringbus_all("topic remove-reader held group:billing").status, 0);
  EXPECT_EQ(ringbus_all("produce held --timeout-ms 20000", input).status, 0);
}

// A lossy reader whose cursor sits on a claim that died before its mark was written, where the
// stale bytes look like a later lap's frame: consume skips it after the stuck-claim timeout and
// stops after --timeout-ms, without spinning.
TEST_F(Cli, ConsumeOfADeadClaimBehindStaleBytesHonoursItsTimeout) {
  ASSERT_EQ(ringbus_all("topic create stale --capacity 4K --policy overwrite "
                        "--stuck-timeout-ms 50")
                .status,
            0);
  {
    auto topic = bus_.bus().open_topic("stale");
    ASSERT_TRUE(topic) << topic.error().message();
    auto& header = detail::mapping_of(*topic).header();
    header.tail_position = 128;  // a producer's tail CAS; it died before writing its mark
    header.tail_messages = 1;
    auto* frame = reinterpret_cast<layout::FrameHeader*>(detail::mapping_of(*topic).ring());
    frame->commit = layout::make_commit(5, layout::FrameKind::kData, 16);
  }
  const Measured m =
      run_measured("timeout -s KILL 60 " +
                   command("consume stale --from earliest --timeout-ms 1000") + " >/dev/null 2>&1");
  EXPECT_EQ(m.status, 0);
  EXPECT_LT(m.wall_s, 30.0) << "consume ignored --timeout-ms";
  EXPECT_LT(m.cpu_s, 0.5 * m.wall_s) << "cpu " << m.cpu_s << " s in " << m.wall_s << " s";
}

TEST_F(Cli, ProduceRejectsALineLargerThanTheMaxMessage) {
  ASSERT_EQ(ringbus_all("topic create small --capacity 4K").status, 0);
  CommandResult r = ringbus_all("produce small", "ok\n" + std::string(2000, 'x') + "\nnever\n");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.out,
            "ringbus: line 2: message of 2000 bytes (key and value) exceeds the max message size "
            "1024 of topic 'small'\n");
  EXPECT_EQ(describe("small")["messages"], 1) << "the lines before it were published";
}

TEST_F(Cli, ConsumeOfMissingTopicFails) {
  CommandResult r = ringbus_all("consume missing --timeout-ms 100");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(split_lines(r.out).size(), 1U) << r.out;
  EXPECT_TRUE(contains(r.out, "ringbus: topic 'missing' not found")) << r.out;
}

TEST_F(Cli, GroupConsumersInSequenceShareTheMessagesAndOtherGroupsSeeAll) {
  ASSERT_EQ(ringbus_all("topic create jobs --capacity 64K").status, 0);
  std::string input;
  std::vector<std::string> lines;
  for (int i = 0; i < 100; ++i) {
    lines.push_back("job " + std::to_string(i));
    input += lines.back() + "\n";
  }
  ASSERT_EQ(ringbus_all("produce jobs", input).status, 0);

  // The first member acknowledges its 50 as it prints them; the second resumes after them.
  CommandResult first = ringbus("consume jobs --group g --from earliest --count 50");
  CommandResult second = ringbus("consume jobs --group g --from earliest --count 50");
  EXPECT_EQ(first.status, 0);
  EXPECT_EQ(second.status, 0);
  std::vector<std::string> got = split_lines(first.out);
  EXPECT_EQ(got.size(), 50U) << first.out;
  for (const auto& line : split_lines(second.out)) got.push_back(line);
  EXPECT_EQ(got, lines) << "each message exactly once, in order";

  // Another group sees every message, with its first delivery.
  CommandResult other =
      ringbus("consume jobs --group g2 --from earliest --count 100 --format json");
  EXPECT_EQ(other.status, 0);
  std::vector<std::string> other_lines = split_lines(other.out);
  ASSERT_EQ(other_lines.size(), 100U) << other.out;
  for (std::size_t i = 0; i < other_lines.size(); ++i) {
    Json j = Json::parse(other_lines[i], nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << other_lines[i];
    EXPECT_EQ(j["value"], lines[i]);
    EXPECT_EQ(j["delivery_count"], 1);
    EXPECT_EQ(j["redelivered"], false);
  }

  Json d = describe("jobs");
  ASSERT_EQ(d["groups"].size(), 2U) << d.dump();
  bool found = false;
  for (const Json& g : d["groups"]) {
    if (g["group"] != "g") continue;
    found = true;
    EXPECT_EQ(g["name"], "group:g");
    EXPECT_EQ(g["position"], d["tail"]) << "everything acknowledged";
    EXPECT_EQ(g["dispatch"], d["tail"]);
    EXPECT_EQ(g["lag_bytes"], 0);
    EXPECT_EQ(g["in_flight"], 0);
    EXPECT_EQ(g["members"], 0) << "both members left";
  }
  EXPECT_TRUE(found) << d.dump();
  // The group's slot stays (it keeps the committed position); the members' slots are freed.
  ASSERT_EQ(d["readers"].size(), 2U) << d.dump();
  for (const Json& r : d["readers"]) {
    EXPECT_EQ(r["kind"], "group");
    EXPECT_EQ(r["state"], "shared");
  }

  CommandResult text = ringbus("topic describe jobs");
  EXPECT_TRUE(contains(text.out, "groups: 2")) << text.out;
  EXPECT_TRUE(contains(text.out, "COMMITTED")) << text.out;

  // Nothing left for either group.
  CommandResult drained = ringbus_all("consume jobs --group g --timeout-ms 100");
  EXPECT_EQ(drained.status, 0);
  EXPECT_EQ(drained.out, "");
}

TEST_F(Cli, DescribeShowsAGroupMemberAndItsBatch) {
  ASSERT_EQ(ringbus_all("topic create held --capacity 64K").status, 0);
  ASSERT_EQ(ringbus_all("produce held", "a\nb\nc\n").status, 0);
  auto topic = bus_.bus().open_topic("held");
  ASSERT_TRUE(topic) << topic.error().message();
  auto member = GroupMember::join(*topic, "workers", GroupOptions{StartFrom::earliest()});
  ASSERT_TRUE(member) << member.error().message();
  std::vector<std::uint64_t> offsets;
  auto polled = member->poll([&](const Message& m) { offsets.push_back(m.offset); });
  ASSERT_TRUE(polled);
  ASSERT_EQ(offsets.size(), 3U);
  ASSERT_TRUE(member->ack(offsets[0]));

  Json d = describe("held");
  ASSERT_EQ(d["groups"].size(), 1U) << d.dump();
  const Json& g = d["groups"][0];
  EXPECT_EQ(g["group"], "workers");
  EXPECT_EQ(g["in_flight"], 2);
  EXPECT_EQ(g["members"], 1);
  // The committed position stays at the batch's start until the whole batch is acknowledged
  // (whoever takes the batch over must find all of it in the ring).
  EXPECT_EQ(g["position"], offsets[0]) << "committed up to the start of the batch in flight";
  EXPECT_EQ(g["dispatch"], d["tail"]);
  bool found = false;
  for (const Json& r : d["readers"]) {
    if (r["kind"] != "member") continue;
    found = true;
    EXPECT_EQ(r["group"], "workers");
    EXPECT_EQ(r["alive"], true);
    EXPECT_EQ(r["in_flight"], 2);
    EXPECT_EQ(r["delivery"], 1);
  }
  EXPECT_TRUE(found) << d.dump();
  CommandResult text = ringbus("topic describe held");
  EXPECT_TRUE(contains(text.out, "members: 1")) << text.out;
  EXPECT_TRUE(contains(text.out, "workers")) << text.out;
}

TEST_F(Cli, GroupNeedsABlockTopicAndExcludesNameAndLossy) {
  ASSERT_EQ(ringbus_all("topic create fast --capacity 4K --policy overwrite").status, 0);
  CommandResult r = ringbus_all("consume fast --group g --timeout-ms 100");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(split_lines(r.out).size(), 1U) << r.out;
  EXPECT_EQ(r.out.rfind("ringbus: ", 0), 0U) << r.out;
  EXPECT_TRUE(contains(r.out, "block")) << r.out;
  EXPECT_TRUE(describe("fast")["readers"].empty()) << "no slot left behind";

  EXPECT_EQ(ringbus_all("consume fast --group g --name n").status, 2);
  EXPECT_EQ(ringbus_all("consume fast --group g --lossy").status, 2);
}

TEST_F(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(ringbus_all("").status, 2);
  EXPECT_EQ(ringbus_all("topic create t").status, 2) << "--capacity is required";
  CommandResult r = ringbus_all("consume t --format xml");
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out.rfind("ringbus: ", 0), 0U) << r.out;
  CommandResult negative = ringbus_all("consume t --count -1");
  EXPECT_EQ(negative.status, 1);
  EXPECT_EQ(negative.out, "ringbus: --count -1 is invalid: it must not be negative\n");
  EXPECT_EQ(ringbus_all("--help").status, 0);
}

// `topic dump`: the words of each frame row (offset, length, type, sequence, timestamp, key,
// value), header line excluded.
std::vector<std::vector<std::string>> dump_rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : split_lines(out)) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    if (!words.empty() && words[0] != "OFFSET") rows.push_back(words);
  }
  return rows;
}

TEST_F(Cli, DumpPrintsKnownFrames) {
  ASSERT_EQ(ringbus_all("topic create d --capacity 4K").status, 0);
  ASSERT_EQ(ringbus_all("produce d --key k1", "hello\nworld\n\n").status, 0);
  ASSERT_EQ(ringbus_all("produce d", std::string("bin\x01\x02\n")).status, 0);

  CommandResult all = ringbus_all("topic dump d");
  ASSERT_EQ(all.status, 0) << all.out;
  EXPECT_EQ(split_lines(all.out)[0].rfind("OFFSET", 0), 0U) << all.out;
  auto rows = dump_rows(all.out);
  ASSERT_EQ(rows.size(), 4U) << all.out;
  const std::vector<std::vector<std::string>> expected{
      {"0", "7", "data", "0", "\"k1\"", "\"hello\""},
      {"64", "7", "data", "1", "\"k1\"", "\"world\""},
      {"128", "2", "data", "2", "\"k1\"", "\"\""},
      {"192", "5", "data", "3", "-", "0x62696e0102"},
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 7U) << all.out;
    EXPECT_EQ(rows[i][0], expected[i][0]);
    EXPECT_EQ(rows[i][1], expected[i][1]) << "key + value bytes";
    EXPECT_EQ(rows[i][2], expected[i][2]);
    EXPECT_EQ(rows[i][3], expected[i][3]);
    EXPECT_EQ(rows[i][4].size(), 30U) << "UTC timestamp with nanoseconds: " << rows[i][4];
    EXPECT_EQ(rows[i][4].back(), 'Z');
    EXPECT_EQ(rows[i][5], expected[i][4]);
    EXPECT_EQ(rows[i][6], expected[i][5]);
  }

  auto one = dump_rows(ringbus("topic dump d --from 64 --count 1").out);
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0][0], "64");
  EXPECT_EQ(one[0][6], "\"world\"");
  EXPECT_TRUE(dump_rows(ringbus("topic dump d --from latest").out).empty());

  CommandResult bad = ringbus_all("topic dump d --from 65");
  EXPECT_EQ(bad.status, 1);
  EXPECT_EQ(bad.out,
            "ringbus: offset 65 is not a frame boundary (it is inside the frame at 64 to 128)\n");
  CommandResult missing = ringbus_all("topic dump nothing");
  EXPECT_EQ(missing.status, 1);
  EXPECT_TRUE(contains(missing.out, "topic 'nothing' not found")) << missing.out;
  EXPECT_TRUE(describe("d")["readers"].empty()) << "dump takes no reader slot";
}

TEST_F(Cli, DumpShowsPaddingAndLongValuesAfterTheRingWrapped) {
  ASSERT_EQ(ringbus_all("topic create wrap --capacity 4K").status, 0);
  // 98-byte values take 192 bytes each: 21 fit before 4032, the 22nd leaves 64 bytes of
  // padding and wraps to 4096, reclaiming the oldest frames (with the producers' slack).
  std::string input;
  for (int i = 0; i < 22; ++i) input += std::string(98, static_cast<char>('a' + i)) + "\n";
  ASSERT_EQ(ringbus_all("produce wrap", input).status, 0);
  const auto earliest = describe("wrap")["earliest"].get<std::uint64_t>();
  ASSERT_GT(earliest, 0U);
  ASSERT_EQ(earliest % 192, 0U);
  auto rows = dump_rows(ringbus("topic dump wrap").out);
  ASSERT_EQ(rows.size(), (4032 - earliest) / 192 + 2);
  EXPECT_EQ(rows.front()[0], std::to_string(earliest));
  EXPECT_EQ(rows.front()[1], "98");
  EXPECT_EQ(rows.front()[3], std::to_string(earliest / 192));
  const auto& padding = rows[rows.size() - 2];
  EXPECT_EQ(padding[0], "4032");
  EXPECT_EQ(padding[1], "64");
  EXPECT_EQ(padding[2], "padding");
  const auto& last = rows.back();
  EXPECT_EQ(last[0], "4096");
  EXPECT_EQ(last[3], "21");
  // A value longer than the preview shows its start and its size.
  EXPECT_EQ(last[6], "\"" + std::string(48, 'v') + "\"...");
  ASSERT_EQ(last.size(), 9U);
  EXPECT_EQ(last[7], "(98");
  EXPECT_EQ(last[8], "bytes)");
}

TEST_F(Cli, DumpOfATopicBeingOverwrittenPrintsOnlyIntactFrames) {
  ASSERT_EQ(ringbus_all("topic create hot --capacity 4K --policy overwrite").status, 0);
  auto topic = bus_.bus().open_topic("hot");
  ASSERT_TRUE(topic);
  // Each value names its own sequence number, so a torn or stale frame cannot go unnoticed.
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    Producer p(*topic);
    for (std::uint64_t i = 0; !stop.load(); ++i) {
      const std::string value = "seq " + std::to_string(i) + std::string(i % 40, '.');
      (void)p.publish(ConstBytes{}, as_bytes(value));
      // Bursts of 16 (a ring every two bursts) with pauses between them: a dump sees frames
      // and is still overwritten under it, often in the middle of a copy.
      if (i % 16 == 15) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  std::size_t frames = 0;
  for (int run = 0; run < 20; ++run) {
    CommandResult r = ringbus("topic dump hot");
    EXPECT_EQ(r.status, 0);
    for (const auto& row : dump_rows(r.out)) {
      if (row[2] != "data") continue;
      ++frames;
      // The value "seq N..." is two words, then "(N bytes)" once it is longer than the preview
      // (from 7-digit sequence numbers on). EXPECT, not ASSERT: the producer must be joined.
      const bool long_value = row.size() == 10 && row[9] == "bytes)";
      EXPECT_TRUE(row.size() == 8U || long_value) << row.size() << " words";
      if (row.size() < 8) continue;
      EXPECT_EQ(row[6], "\"seq");
      EXPECT_EQ(row[7].substr(0, row[7].find_first_of(".\"")), row[3])
          << "sequence " << row[3] << ": " << row[6] << " " << row[7];
    }
  }
  stop = true;
  producer.join();
  EXPECT_GT(frames, 0U);
}

TEST_F(Cli, TopoPrintsTheTopologyAndCorePairs) {
  CommandResult r = ringbus_all("topo");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(contains(r.out, "usable PUs: ")) << r.out;
  EXPECT_TRUE(contains(r.out, "PU P#")) << r.out;
  const unsigned cpus = std::thread::hardware_concurrency();
  if (cpus >= 2) {
    EXPECT_TRUE(contains(r.out, "recommended producer/consumer pairs")) << r.out;
    std::size_t pairs = 0;
    for (const std::string& line : split_lines(r.out)) {
      if (line.rfind("  producer ", 0) == 0) {
        ++pairs;
        EXPECT_TRUE(contains(line, "  consumer ")) << line;
        EXPECT_TRUE(contains(line, "  shared cache ")) << line;
      }
    }
    EXPECT_GE(pairs, 1U);
    EXPECT_LE(pairs, cpus / 2) << "each processor in at most one pair";
  }
}

}  // namespace
}  // namespace ringbus
