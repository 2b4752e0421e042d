// ringbus-monitor end to end: the built binary runs as a real process against a bus in a known
// state (positions, a stalled persistent reader, a dead reader killed with SIGKILL, a recorder's
// counters, bad files); its JSON, Prometheus and terminal (tmux) output are checked field by
// field.
#include "monitor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "metrics_server.hpp"
#include "ring/atomics.hpp"
#include "ringbus/bytes.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "ringbus/wait.hpp"
#include "support/test_support.hpp"
#include "topic/liveness.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using ringbus::testing::CommandResult;
using ringbus::testing::contains;
using ringbus::testing::run_command;
using ringbus::testing::split_lines;
using ringbus::testing::TempBus;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::uint64_t kStride = 64;  // a message of up to 32 bytes at the default alignment

std::string monitor_binary() { return RINGBUS_MONITOR_PATH; }
std::string ringbus_binary() { return testing::tool_path("ringbus"); }

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Polls `check` every 50 ms until it returns true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& check,
                std::chrono::milliseconds timeout = seconds(30)) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (check()) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(milliseconds(50));
  }
}

void publish_values(const Topic& topic, int count, const std::string& prefix = "m") {
  Producer producer(topic);
  for (int i = 0; i < count; ++i) {
    const std::string value = prefix + std::to_string(i);  // <= 32 bytes: one 64-byte frame
    auto published = producer.publish(ConstBytes{}, as_bytes(value));
    ASSERT_TRUE(published) << published.error().message();
  }
}

// A command run in the background through sh (exec'd, so signals reach it), stdout to
// /dev/null and stderr to a file. Killed and reaped at destruction if still running.
class Background {
 public:
  Background(const std::string& command, const std::string& err_path) {
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(err, 2);
      const std::string line = "exec " + command;
      ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) (void)testing::wait_child(pid_, milliseconds(0));
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  // Sends `signal` and returns the exit status (128 + signal if killed by it, -1 on timeout).
  int stop(int signal = SIGTERM) {
    ::kill(pid_, signal);
    const int status = testing::wait_child(pid_, seconds(30));
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
};

// One HTTP request to 127.0.0.1:port; the whole response (head and body), empty on failure.
std::string http_get(std::uint16_t port, const std::string& path,
                     const std::string& method = "GET") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  ::close(fd);
  return response;
}

// Prometheus samples by their full name with labels: `name{a="x",b="y"}` -> value text.
std::map<std::string, std::string> parse_metrics(const std::string& body) {
  std::map<std::string, std::string> samples;
  for (const std::string& line : split_lines(body)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

// The bus of most tests, in a state every figure of which is known:
//   alpha (block, 64 KiB): 10 messages of one 64-byte frame each (tail 640);
//     reader "slow": persistent, durable, read 4 and detached: stalled at 256, lag 384 / 6;
//     an ephemeral reader in a child process that read 2 and was killed: dead at 128, lag 512 / 8;
//     recorder counters as a bridge publishes them (recorded 512 = 8 messages, durable 448).
//   beta (overwrite, 4 KiB): empty, no readers.
//   junk: 100 bytes of text (corrupt); half: a header whose creation did not complete (not
//   ready); future: a header of layout version 99 (incompatible).
class MonitorState : public ::testing::Test {
 protected:
  void SetUp() override {
    Topic alpha = bus_.create("alpha", TopicOptions{.capacity = 64 * 1024});
    bus_.create("beta", TopicOptions{.capacity = 4096, .policy = Policy::overwrite});
    publish_values(alpha, 10);
    {
      SubscriberOptions options;
      options.name = "slow";
      options.start = StartFrom::earliest();
      auto slow = Subscriber::attach(alpha, options);
      ASSERT_TRUE(slow) << slow.error().message();
      int seen = 0;
      auto polled = slow->poll([&](const Message&) { ++seen; }, 4);
      ASSERT_TRUE(polled);
      ASSERT_EQ(seen, 4);
    }  // detached: keeps position 256
    start_dead_reader();
    publish_recorder(alpha);
    write_bad_files();
  }

  void start_dead_reader() {
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const std::string dir = bus_.dir();
    dead_pid_ = testing::fork_child([&]() -> int {
      ::close(ready[0]);
      auto topic = Bus(dir).open_topic("alpha");
      if (!topic) return 2;
      SubscriberOptions options;
      options.start = StartFrom::earliest();
      auto sub = Subscriber::attach(*topic, options);
      if (!sub) return 3;
      int seen = 0;
      if (!sub->poll([&](const Message&) { ++seen; }, 2) || seen != 2) return 4;
      if (::write(ready[1], "x", 1) != 1) return 5;
      for (;;) ::pause();  // killed here, still attached
    });
    ::close(ready[1]);
    char byte = 0;
    // Bounded: a child that fails exits, which closes the pipe and ends the read.
    const ssize_t n = ::read(ready[0], &byte, 1);
    ::close(ready[0]);
    ASSERT_EQ(n, 1) << "the reader child failed: exit "
                    << testing::wait_child(dead_pid_, seconds(5));
    ::kill(dead_pid_, SIGKILL);
    ASSERT_EQ(testing::wait_child(dead_pid_, seconds(30)), 128 + SIGKILL);
  }

  // What a ringbus-bridge recording alpha publishes in its header (this process plays the
  // bridge, so the recorder is alive).
  static void publish_recorder(const Topic& topic) {
    using detail::atomic;
    auto& h = detail::mapping_of(topic).header();
    const auto self = detail::self_identity();
    detail::write_fixed_text(h.log_dir, layout::kLogDirSize, "/var/lib/ringbus/log/alpha");
    detail::write_fixed_text(h.last_error, layout::kRecorderTextSize, "disk full");
    atomic(h.recorder_pid).store(self.pid, std::memory_order_relaxed);
    atomic(h.recorder_start_time).store(self.start_time, std::memory_order_relaxed);
    atomic(h.recorder_state).store(layout::kRecorderRecording, std::memory_order_relaxed);
    atomic(h.recorded_messages).store(8, std::memory_order_relaxed);
    atomic(h.durable_position).store(448, std::memory_order_relaxed);
    atomic(h.log_start).store(0, std::memory_order_relaxed);
    atomic(h.log_segments).store(2, std::memory_order_relaxed);
    atomic(h.log_bytes).store(600, std::memory_order_relaxed);
    atomic(h.recorder_errors).store(1, std::memory_order_release);
    atomic(h.recorded_position).store(512, std::memory_order_release);
  }

  void write_bad_files() const {
    write_file(bus_.dir() + "/junk", std::string(100, 'j'));
    std::string header(8192, '\0');
    const std::uint64_t magic = layout::kMagic;
    std::uint32_t version = layout::kLayoutVersion;
    std::memcpy(header.data(), &magic, 8);
    std::memcpy(header.data() + 8, &version, 4);  // ready (offset 12) stays 0
    write_file(bus_.dir() + "/half", header);
    version = 99;
    std::memcpy(header.data() + 8, &version, 4);
    write_file(bus_.dir() + "/future", header);
  }

  CommandResult monitor(const std::string& args) const {
    return run_command(monitor_binary() + " --dir '" + bus_.dir() + "' " + args);
  }

  static const Json* find_topic(const Json& j, const std::string& name) {
    for (const Json& t : j["topics"]) {
      if (t["name"] == name) return &t;
    }
    return nullptr;
  }

  TempBus bus_;
  pid_t dead_pid_ = -1;
};

TEST_F(MonitorState, JsonReportsEveryFigureOfAKnownBus) {
  const auto started = Clock::now();
  CommandResult r = monitor("--json --interval 0.3");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_GE(Clock::now() - started, milliseconds(300)) << "two samples, an interval apart";
  ASSERT_EQ(split_lines(r.out).size(), 1U) << "one JSON object on one line";
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["schema"], 1);
  EXPECT_EQ(j["directory"], bus_.dir());
  EXPECT_TRUE(j["directory_error"].is_null());
  EXPECT_GT(j["time_unix_ms"].get<std::int64_t>(), 1'600'000'000'000);
  EXPECT_GE(j["rate_window_s"].get<double>(), 0.29);
  EXPECT_LT(j["rate_window_s"].get<double>(), 30.0);
  ASSERT_EQ(j["topics"].size(), 5U) << j.dump(2);
  // Sorted by name.
  std::vector<std::string> names;
  for (const Json& t : j["topics"]) names.push_back(t["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "beta", "future", "half", "junk"}));

  const Json& a = *find_topic(j, "alpha");
  EXPECT_EQ(a["path"], bus_.dir() + "/alpha");
  EXPECT_EQ(a["ok"], true);
  EXPECT_TRUE(a["error"].is_null());
  EXPECT_EQ(a["config"]["capacity"], 65536);
  EXPECT_EQ(a["config"]["max_message"], 16384);
  EXPECT_EQ(a["config"]["policy"], "block");
  EXPECT_EQ(a["config"]["max_readers"], 64);
  EXPECT_EQ(a["config"]["stuck_claim_timeout_ms"], 2000);
  EXPECT_EQ(a["config"]["layout_version"], 1);
  EXPECT_EQ(a["config"]["ring_offset"], 20480);
  EXPECT_EQ(a["config"]["file_size"], 20480 + 65536);
  EXPECT_EQ(a["config"]["frame_alignment"], 64);
  EXPECT_EQ(a["earliest"], 0);
  EXPECT_EQ(a["tail"], 10 * kStride);
  EXPECT_EQ(a["messages"], 10);
  EXPECT_EQ(a["aborted_claims"], 0);
  EXPECT_EQ(a["reaped_readers"], 0);
  EXPECT_EQ(a["max_lag_bytes"], 512) << "the dead durable reader holds producers back most";
  EXPECT_DOUBLE_EQ(a["fill"].get<double>(), 512.0 / 65536.0);
  EXPECT_DOUBLE_EQ(a["publish_messages_per_second"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(a["publish_bytes_per_second"].get<double>(), 0.0);

  ASSERT_EQ(a["readers"].size(), 2U) << a.dump(2);
  const Json* slow = nullptr;
  const Json* dead = nullptr;
  for (const Json& r2 : a["readers"]) (r2["name"] == "slow" ? slow : dead) = &r2;
  ASSERT_NE(slow, nullptr);
  ASSERT_NE(dead, nullptr);
  EXPECT_EQ((*slow)["slot"], 0);
  EXPECT_EQ((*slow)["kind"], "subscriber");
  EXPECT_EQ((*slow)["group"], "");
  EXPECT_EQ((*slow)["persistent"], true);
  EXPECT_EQ((*slow)["durable"], true);
  EXPECT_EQ((*slow)["pid"], 0);
  EXPECT_EQ((*slow)["alive"], false);
  EXPECT_EQ((*slow)["state"], "stalled");
  EXPECT_EQ((*slow)["position"], 4 * kStride);
  EXPECT_EQ((*slow)["messages"], 4);
  EXPECT_EQ((*slow)["lag_bytes"], 6 * kStride);
  EXPECT_EQ((*slow)["lag_messages"], 6);
  EXPECT_EQ((*slow)["lost_bytes"], 0);
  EXPECT_EQ((*slow)["lost_messages"], 0);
  EXPECT_EQ((*slow)["in_flight"], 0);
  EXPECT_EQ((*slow)["delivery"], 0);
  EXPECT_EQ((*slow)["dispatch"], 0);
  EXPECT_DOUBLE_EQ((*slow)["read_messages_per_second"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ((*slow)["read_bytes_per_second"].get<double>(), 0.0);

  EXPECT_EQ((*dead)["slot"], 1);
  EXPECT_EQ((*dead)["name"], "");
  EXPECT_EQ((*dead)["kind"], "subscriber");
  EXPECT_EQ((*dead)["persistent"], false);
  EXPECT_EQ((*dead)["durable"], true);
  EXPECT_EQ((*dead)["pid"], dead_pid_);
  EXPECT_EQ((*dead)["alive"], false);
  EXPECT_EQ((*dead)["state"], "dead");
  EXPECT_EQ((*dead)["position"], 2 * kStride);
  EXPECT_EQ((*dead)["messages"], 2);
  EXPECT_EQ((*dead)["lag_bytes"], 8 * kStride);
  EXPECT_EQ((*dead)["lag_messages"], 8);

  const Json& rec = a["recorder"];
  ASSERT_TRUE(rec.is_object()) << a.dump(2);
  EXPECT_EQ(rec["state"], "recording");
  EXPECT_EQ(rec["pid"], ::getpid());
  EXPECT_EQ(rec["alive"], true);
  EXPECT_EQ(rec["log_dir"], "/var/lib/ringbus/log/alpha");
  EXPECT_EQ(rec["recorded_position"], 512);
  EXPECT_EQ(rec["recorded_messages"], 8);
  EXPECT_EQ(rec["durable_position"], 448);
  EXPECT_EQ(rec["log_start"], 0);
  EXPECT_EQ(rec["segments"], 2);
  EXPECT_EQ(rec["log_bytes"], 600);
  EXPECT_EQ(rec["errors"], 1);
  EXPECT_EQ(rec["last_error"], "disk full");
  EXPECT_EQ(rec["lag_bytes"], 640 - 512);

  const Json& b = *find_topic(j, "beta");
  EXPECT_EQ(b["config"]["policy"], "overwrite");
  EXPECT_EQ(b["config"]["capacity"], 4096);
  EXPECT_EQ(b["tail"], 0);
  EXPECT_EQ(b["messages"], 0);
  EXPECT_EQ(b["max_lag_bytes"], 0);
  EXPECT_DOUBLE_EQ(b["fill"].get<double>(), 0.0);
  EXPECT_TRUE(b["readers"].empty());
  EXPECT_TRUE(b["recorder"].is_null());

  const std::map<std::string, std::pair<std::string, std::string>> bad{
      {"junk", {"corrupt", "smaller than the 4096-byte header"}},
      {"half", {"not_ready", "is not ready (its creation did not complete)"}},
      {"future", {"incompatible", "has layout version 99"}},
  };
  for (const auto& [name, expected] : bad) {
    const Json& t = *find_topic(j, name);
    EXPECT_EQ(t["ok"], false) << name;
    EXPECT_EQ(t["path"], bus_.dir() + "/" + name);
    EXPECT_EQ(t["error"]["code"], expected.first) << name;
    EXPECT_TRUE(contains(t["error"]["message"].get<std::string>(), expected.second))
        << t["error"]["message"];
    EXPECT_FALSE(t.contains("tail")) << "a bad file has no figures";
  }
}

TEST_F(MonitorState, JsonWithoutAnIntervalTakesOneSampleAndHasNoRates) {
  CommandResult r = monitor("--json --interval 0");
  ASSERT_EQ(r.status, 0) << r.out;
  const Json j = Json::parse(r.out);
  EXPECT_EQ(j["rate_window_s"], 0.0);
  const Json& a = *find_topic(j, "alpha");
  EXPECT_TRUE(a["publish_messages_per_second"].is_null());
  EXPECT_TRUE(a["publish_bytes_per_second"].is_null());
  for (const Json& r2 : a["readers"]) EXPECT_TRUE(r2["read_bytes_per_second"].is_null());
  EXPECT_EQ(a["tail"], 640);
}

TEST_F(MonitorState, OnceAndDescribeReportBadFilesAndExitNormally) {
  CommandResult once = monitor("--once --interval 0");
  ASSERT_EQ(once.status, 0) << once.out;
  const std::vector<std::string> lines = split_lines(once.out);
  ASSERT_GE(lines.size(), 2U);
  EXPECT_TRUE(contains(lines[0], "5 topics (3 bad)")) << lines[0];
  EXPECT_EQ(words(lines[1])[0], "NAME") << lines[1];
  std::map<std::string, std::vector<std::string>> rows;
  for (const std::string& line : lines) {
    const auto w = words(line);
    if (!w.empty()) rows[w[0]] = w;
  }
  ASSERT_TRUE(rows.count("alpha")) << once.out;
  EXPECT_EQ(rows["alpha"][1], "block");
  EXPECT_EQ(rows["alpha"][2], "64KiB");
  EXPECT_EQ(rows["alpha"][3], "0.8%");  // 512 of 65536
  EXPECT_EQ(rows["alpha"][6], "640");
  EXPECT_EQ(rows["alpha"][7], "512");
  ASSERT_TRUE(rows.count("slow")) << once.out;
  EXPECT_EQ(rows["slow"][5], "stalled");
  EXPECT_EQ(rows["slow"][6], "256");
  EXPECT_EQ(rows["slow"][7], "384");
  EXPECT_EQ(rows["slow"][8], "6");
  ASSERT_TRUE(rows.count("slot")) << "the ephemeral reader is named by its slot: " << once.out;
  EXPECT_TRUE(contains(once.out, "dead")) << once.out;
  ASSERT_TRUE(rows.count("[recorder]")) << once.out;
  EXPECT_EQ(rows["[recorder]"][5], "recording");
  EXPECT_EQ(rows["[recorder]"][6], "512");
  EXPECT_EQ(rows["[recorder]"][7], "128");
  EXPECT_TRUE(contains(once.out, "last: disk full")) << once.out;
  for (const char* name : {"junk", "half", "future"}) {
    ASSERT_TRUE(rows.count(name)) << once.out;
    EXPECT_EQ(rows[name][1], "ERROR:") << name;
  }

  // describe fails cleanly (one line, status 1, no signal) on each bad file...
  for (const char* name : {"junk", "half", "future"}) {
    CommandResult d = run_command(ringbus_binary() + " --dir '" + bus_.dir() + "' topic describe " +
                                  name + " 2>&1");
    EXPECT_EQ(d.status, 1) << name << ": " << d.out;
    EXPECT_EQ(split_lines(d.out).size(), 1U) << d.out;
    EXPECT_EQ(d.out.rfind("ringbus: ", 0), 0U) << d.out;
  }
  // ...and still describes the good topic beside them, recorder included.
  CommandResult d =
      run_command(ringbus_binary() + " --dir '" + bus_.dir() + "' topic describe alpha --json");
  ASSERT_EQ(d.status, 0);
  const Json dj = Json::parse(d.out);
  EXPECT_EQ(dj["recorder"]["recorded_position"], 512);
  EXPECT_EQ(dj["recorder"]["durable_position"], 448);
  EXPECT_EQ(dj["recorder"]["segments"], 2);
  EXPECT_EQ(dj["recorder"]["last_error"], "disk full");
  EXPECT_EQ(dj["recorder"]["lag_bytes"], 128);
  EXPECT_TRUE(Json::parse(run_command(ringbus_binary() + " --dir '" + bus_.dir() +
                                      "' topic describe beta --json")
                              .out)["recorder"]
                  .is_null());
  CommandResult text =
      run_command(ringbus_binary() + " --dir '" + bus_.dir() + "' topic describe alpha");
  EXPECT_TRUE(contains(
      text.out, "recorder: recording (bridge pid " + std::to_string(::getpid()) + ", alive)"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "512 (8 messages)")) << text.out;

  // The monitor changed nothing: the dead reader was not reaped, the bad files are still there.
  auto alpha = bus_.bus().open_topic("alpha");
  ASSERT_TRUE(alpha);
  EXPECT_EQ(alpha->snapshot().readers.size(), 2U);
  EXPECT_EQ(alpha->snapshot().reaped_readers, 0U);
  EXPECT_EQ(read_file(bus_.dir() + "/junk"), std::string(100, 'j'));
}

TEST_F(MonitorState, PrometheusServesTheSameFigures) {
  const std::string err = bus_.dir() + "/.monitor.err";
  Background monitor(
      monitor_binary() + " --dir '" + bus_.dir() + "' --interval 0.1 --prometheus 127.0.0.1:0",
      err);
  std::uint16_t port = 0;
  ASSERT_TRUE(eventually([&] {
    const std::string text = read_file(err);
    const auto at = text.find("http://127.0.0.1:");
    if (at == std::string::npos) return false;
    port = static_cast<std::uint16_t>(std::stoi(text.substr(at + 17)));
    return true;
  })) << read_file(err);

  std::map<std::string, std::string> m;
  // The first samples may have no rates yet; wait for one that has.
  ASSERT_TRUE(eventually([&] {
    const std::string response = http_get(port, "/metrics");
    const auto body = response.find("\r\n\r\n");
    if (response.rfind("HTTP/1.1 200 OK\r\n", 0) != 0 || body == std::string::npos) return false;
    EXPECT_TRUE(contains(response.substr(0, body),
                         "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    m = parse_metrics(response.substr(body + 4));
    return m.count("ringbus_topic_publish_messages_per_second{topic=\"alpha\"}") > 0;
  })) << read_file(err);

  const std::string slow = R"({topic="alpha",slot="0",reader="slow",kind="subscriber",group=""})";
  const std::string dead = R"({topic="alpha",slot="1",reader="",kind="subscriber",group=""})";
  const std::map<std::string, std::string> expected{
      {"ringbus_directory_up", "1"},
      {"ringbus_topics", "5"},
      {R"(ringbus_topic_up{topic="alpha"})", "1"},
      {R"(ringbus_topic_up{topic="junk"})", "0"},
      {R"(ringbus_topic_error{topic="junk",code="corrupt"})", "1"},
      {R"(ringbus_topic_error{topic="half",code="not_ready"})", "1"},
      {R"(ringbus_topic_error{topic="future",code="incompatible"})", "1"},
      {R"(ringbus_topic_info{topic="alpha",policy="block"})", "1"},
      {R"(ringbus_topic_info{topic="beta",policy="overwrite"})", "1"},
      {R"(ringbus_topic_capacity_bytes{topic="alpha"})", "65536"},
      {R"(ringbus_topic_max_message_bytes{topic="alpha"})", "16384"},
      {R"(ringbus_topic_tail_position{topic="alpha"})", "640"},
      {R"(ringbus_topic_earliest_position{topic="alpha"})", "0"},
      {R"(ringbus_topic_messages_total{topic="alpha"})", "10"},
      {R"(ringbus_topic_aborted_claims_total{topic="alpha"})", "0"},
      {R"(ringbus_topic_reaped_readers_total{topic="alpha"})", "0"},
      {R"(ringbus_topic_readers{topic="alpha"})", "2"},
      {R"(ringbus_topic_max_lag_bytes{topic="alpha"})", "512"},
      {R"(ringbus_topic_fill_ratio{topic="alpha"})", "0.0078125"},
      {R"(ringbus_topic_publish_messages_per_second{topic="alpha"})", "0"},
      {R"(ringbus_topic_publish_bytes_per_second{topic="alpha"})", "0"},
      {R"(ringbus_topic_tail_position{topic="beta"})", "0"},
      {R"(ringbus_topic_readers{topic="beta"})", "0"},
      {R"(ringbus_recorder_info{topic="alpha",state="recording"})", "1"},
      {R"(ringbus_recorder_alive{topic="alpha"})", "1"},
      {R"(ringbus_recorder_recorded_position{topic="alpha"})", "512"},
      {R"(ringbus_recorder_recorded_messages_total{topic="alpha"})", "8"},
      {R"(ringbus_recorder_durable_position{topic="alpha"})", "448"},
      {R"(ringbus_recorder_log_start_position{topic="alpha"})", "0"},
      {R"(ringbus_recorder_lag_bytes{topic="alpha"})", "128"},
      {R"(ringbus_recorder_segments{topic="alpha"})", "2"},
      {R"(ringbus_recorder_log_bytes{topic="alpha"})", "600"},
      {R"(ringbus_recorder_errors_total{topic="alpha"})", "1"},
      {R"(ringbus_reader_info{topic="alpha",slot="0",state="stalled",durable="true",persistent="true"})",
       "1"},
      {R"(ringbus_reader_info{topic="alpha",slot="1",state="dead",durable="true",persistent="false"})",
       "1"},
      {"ringbus_reader_alive" + slow, "0"},
      {"ringbus_reader_pid" + slow, "0"},
      {"ringbus_reader_position" + slow, "256"},
      {"ringbus_reader_lag_bytes" + slow, "384"},
      {"ringbus_reader_lag_messages" + slow, "6"},
      {"ringbus_reader_lost_bytes_total" + slow, "0"},
      {"ringbus_reader_lost_messages_total" + slow, "0"},
      {"ringbus_reader_in_flight" + slow, "0"},
      {"ringbus_reader_read_messages_per_second" + slow, "0"},
      {"ringbus_reader_read_bytes_per_second" + slow, "0"},
      {"ringbus_reader_alive" + dead, "0"},
      {"ringbus_reader_pid" + dead, std::to_string(dead_pid_)},
      {"ringbus_reader_position" + dead, "128"},
      {"ringbus_reader_lag_bytes" + dead, "512"},
      {"ringbus_reader_lag_messages" + dead, "8"},
  };
  for (const auto& [name, value] : expected) {
    ASSERT_TRUE(m.count(name)) << "missing " << name;
    EXPECT_EQ(m[name], value) << name;
  }
  EXPECT_EQ(m.count(R"(ringbus_topic_tail_position{topic="junk"})"), 0U);
  EXPECT_EQ(m.count(R"(ringbus_recorder_alive{topic="beta"})"), 0U) << "beta has no recorder";

  // Every family is announced once, before its samples.
  const std::string body = http_get(port, "/metrics");
  EXPECT_EQ(body.find("# TYPE ringbus_topic_messages_total counter\n"),
            body.rfind("# TYPE ringbus_topic_messages_total counter\n"));
  EXPECT_LT(body.find("# TYPE ringbus_reader_lag_bytes gauge\n"),
            body.find("ringbus_reader_lag_bytes{"));

  // New figures appear within a few intervals.
  auto alpha = bus_.bus().open_topic("alpha");
  ASSERT_TRUE(alpha);
  publish_values(*alpha, 5, "n");
  EXPECT_TRUE(eventually([&] {
    return parse_metrics(http_get(
               port, "/metrics"))[R"(ringbus_topic_tail_position{topic="alpha"})"] == "960";
  }));

  EXPECT_EQ(http_get(port, "/other").rfind("HTTP/1.1 404", 0), 0U);
  EXPECT_EQ(http_get(port, "/metrics", "POST").rfind("HTTP/1.1 405", 0), 0U);
  const std::string head = http_get(port, "/metrics", "HEAD");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK", 0), 0U);
  EXPECT_EQ(head.find("ringbus_topics"), std::string::npos) << "HEAD has no body";
  EXPECT_EQ(monitor.stop(SIGTERM), 0) << "SIGTERM ends the monitor cleanly";
}

TEST_F(MonitorState, PrometheusRefusesAnAddressItCannotUse) {
  CommandResult r = run_command(monitor_binary() + " --dir '" + bus_.dir() +
                                "' --prometheus not-an-ip:9464 2>&1");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out,
            "ringbus-monitor: --prometheus 'not-an-ip:9464' is invalid: 'not-an-ip' is not an IP "
            "address (expected HOST:PORT, :PORT or PORT)\n");
  CommandResult usage = run_command(monitor_binary() + " --json --once 2>&1");
  EXPECT_EQ(usage.status, 2) << usage.out;
  CommandResult interval = run_command(monitor_binary() + " --interval -1 --once 2>&1");
  EXPECT_EQ(interval.status, 1) << interval.out;
  EXPECT_TRUE(contains(interval.out, "--interval -1 is invalid")) << interval.out;
}

TEST(MonitorCore, ParsesListenAddresses) {
  auto full = monitor::parse_listen_address("0.0.0.0:9464");
  ASSERT_TRUE(full);
  EXPECT_EQ(full->host, "0.0.0.0");
  EXPECT_EQ(full->port, 9464);
  auto port_only = monitor::parse_listen_address("9464");
  ASSERT_TRUE(port_only);
  EXPECT_EQ(port_only->host, "127.0.0.1") << "loopback unless asked otherwise";
  auto colon = monitor::parse_listen_address(":80");
  ASSERT_TRUE(colon);
  EXPECT_EQ(colon->host, "127.0.0.1");
  EXPECT_EQ(colon->port, 80);
  auto v6 = monitor::parse_listen_address("[::1]:9464");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_FALSE(monitor::parse_listen_address("127.0.0.1:70000"));
  EXPECT_FALSE(monitor::parse_listen_address("127.0.0.1:"));
  EXPECT_FALSE(monitor::parse_listen_address("[::1]9464"));
  EXPECT_FALSE(monitor::parse_listen_address("localhost:9464")) << "an IP address, not a name";
}

// A topic whose slowest durable reader is a persistent one with no process: stalled while there
// is room, blocked once the ring is full; every rendering names the reader.
TEST(MonitorCore, TopicHeldBackByAStalledReaderIsNotOk) {
  TempBus bus;
  TopicOptions o;
  o.capacity = 4096;
  auto topic = bus.create("held", o);
  {
    SubscriberOptions so;
    so.name = "slow";
    auto sub = Subscriber::attach(topic, so);
    ASSERT_TRUE(sub) << sub.error().message();
  }  // detached: its position still holds producers back
  monitor::Sampler sampler(bus.dir());
  const monitor::BusView quiet = sampler.sample();
  ASSERT_EQ(quiet.topics.size(), 1U);
  EXPECT_EQ(quiet.topics[0].state, "stalled");
  ASSERT_TRUE(quiet.topics[0].held_by);
  EXPECT_EQ(quiet.topics[0].held_by->reader.name, "slow");
  EXPECT_FALSE(quiet.topics[0].held_by->full);

  Producer producer(topic);
  while (producer.try_publish({}, as_bytes(std::string(100, 'x')))) {
  }
  const monitor::BusView full = sampler.sample();
  const monitor::TopicRow& row = full.topics[0];
  EXPECT_EQ(row.state, "blocked");
  ASSERT_TRUE(row.held_by);
  EXPECT_TRUE(row.held_by->stuck);
  EXPECT_TRUE(row.held_by->full);
  EXPECT_TRUE(contains(row.held_by->text, "persistent reader 'slow' has no live process"))
      << row.held_by->text;
  EXPECT_TRUE(contains(row.held_by->text, "ringbus topic remove-reader held slow"))
      << row.held_by->text;
  const std::string text = monitor::render_text(full);
  EXPECT_TRUE(contains(text, "held back by persistent reader 'slow'")) << text;
  const Json json = Json::parse(monitor::render_json(full));
  EXPECT_EQ(json["topics"][0]["state"], "blocked");
  EXPECT_EQ(json["topics"][0]["held_by"]["name"], "slow");
  EXPECT_EQ(json["topics"][0]["held_by"]["alive"], false);
  const std::string metrics = monitor::render_prometheus(full);
  EXPECT_TRUE(contains(metrics,
                       "ringbus_topic_held_back{topic=\"held\",state=\"blocked\","
                       "reader=\"slow\",slot=\"0\"} 1"))
      << metrics;

  ASSERT_TRUE(topic.remove_reader("slow"));
  const monitor::BusView freed = sampler.sample();
  EXPECT_EQ(freed.topics[0].state, "ok");
  EXPECT_FALSE(freed.topics[0].held_by);
}

TEST(Monitor, JsonMeasuresPublishAndReadRates) {
  TempBus bus;
  Topic topic = bus.create("busy", TopicOptions{.capacity = 1 << 20, .policy = Policy::overwrite});
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    Producer p(topic);
    std::uint64_t i = 0;
    while (!stop.load()) {
      (void)p.publish(ConstBytes{}, as_bytes("tick " + std::to_string(i++)));
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  std::thread reader([&] {
    SubscriberOptions options;
    options.start = StartFrom::latest();
    auto sub = Subscriber::attach(topic, options);
    if (!sub) return;
    while (!stop.load()) {
      (void)sub->poll_wait([](const Message&) {}, 64, Wait::futex(milliseconds(50)));
    }
  });
  CommandResult r =
      run_command(monitor_binary() + " --dir '" + bus.dir() + "' --json --interval 0.5");
  stop = true;
  producer.join();
  reader.join();
  ASSERT_EQ(r.status, 0);
  const Json j = Json::parse(r.out);
  ASSERT_EQ(j["topics"].size(), 1U);
  const Json& t = j["topics"][0];
  const double msgs = t["publish_messages_per_second"].get<double>();
  const double bytes = t["publish_bytes_per_second"].get<double>();
  EXPECT_GT(msgs, 10.0) << "a message every millisecond, even on a loaded machine";
  EXPECT_LT(msgs, 2000.0);
  // Every message is one 64-byte frame; the tail and the count are read a moment apart, so
  // they may disagree by a message or two at each end of the window.
  const double window = j["rate_window_s"].get<double>();
  EXPECT_NEAR(bytes, 64.0 * msgs, 2 * 2 * 64.0 / window);
  ASSERT_EQ(t["readers"].size(), 1U);
  EXPECT_EQ(t["readers"][0]["alive"], true);
  EXPECT_GT(t["readers"][0]["read_messages_per_second"].get<double>(), 5.0);
  EXPECT_GT(t["readers"][0]["read_bytes_per_second"].get<double>(), 5.0 * 64);
}

// With a real ringbus-bridge recording a topic: its counters reach the monitor's JSON while it
// records, and its state after it stops.
TEST(Monitor, ShowsTheRecorderOfARealBridge) {
  TempBus bus;
  Topic topic = bus.create("orders", TopicOptions{.capacity = 64 * 1024});
  const std::string log_dir = bus.dir() + "/.logs";
  Background bridge(std::string(RINGBUS_BRIDGE_PATH) + " --bus-dir '" + bus.dir() +
                        "' --log-dir '" + log_dir + "' --record orders --scan-interval 100ms",
                    bus.dir() + "/.bridge.err");
  publish_values(topic, 50);
  auto sample = [&] {
    CommandResult r =
        run_command(monitor_binary() + " --dir '" + bus.dir() + "' --json --interval 0");
    const Json j = Json::parse(r.out, nullptr, false);
    return j.is_discarded() || j["topics"].size() != 1 ? Json() : j["topics"][0];
  };
  Json t;
  ASSERT_TRUE(eventually([&] {
    t = sample();
    return t.is_object() && t["recorder"].is_object() &&
           t["recorder"]["durable_position"] == 50 * kStride;
  })) << t.dump(2)
      << read_file(bus.dir() + "/.bridge.err");
  const Json& rec = t["recorder"];
  EXPECT_EQ(rec["state"], "recording");
  EXPECT_EQ(rec["alive"], true);
  EXPECT_GT(rec["pid"].get<int>(), 0);
  EXPECT_EQ(rec["log_dir"], log_dir + "/orders");
  EXPECT_EQ(rec["recorded_position"], 50 * kStride);
  EXPECT_EQ(rec["recorded_messages"], 50);
  EXPECT_EQ(rec["lag_bytes"], 0);
  EXPECT_GE(rec["segments"].get<int>(), 1);
  EXPECT_EQ(rec["log_bytes"], 50 * kStride) << "the log holds the stream bytes verbatim";
  EXPECT_EQ(rec["errors"], 0);
  // The bridge reads like any other reader: its slot is listed too.
  ASSERT_EQ(t["readers"].size(), 1U) << t.dump(2);
  EXPECT_EQ(t["readers"][0]["pid"], rec["pid"]);
  EXPECT_EQ(t["readers"][0]["alive"], true);

  EXPECT_EQ(bridge.stop(SIGTERM), 0) << read_file(bus.dir() + "/.bridge.err");
  t = sample();
  ASSERT_TRUE(t.is_object() && t["recorder"].is_object()) << t.dump(2);
  EXPECT_EQ(t["recorder"]["state"], "stopped");
  EXPECT_EQ(t["recorder"]["alive"], false);
  EXPECT_EQ(t["recorder"]["recorded_position"], 50 * kStride) << "the counters stay";
}

// The terminal view in a real terminal: a private tmux server with a fixed-size window.
class MonitorTerminal : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_command("tmux -V").status != 0) GTEST_SKIP() << "tmux is not installed";
    socket_ = bus_.dir() + "/.tmux";
  }
  void TearDown() override {
    if (!socket_.empty()) (void)tmux("kill-server 2>/dev/null");
  }
  CommandResult tmux(const std::string& args) const {
    return run_command("tmux -S '" + socket_ + "' " + args);
  }
  std::string screen() const { return tmux("capture-pane -p -t mon").out; }
  // The words of the first screen line whose first word is `first`.
  std::vector<std::string> row(const std::string& first) const {
    for (const std::string& line : split_lines(screen())) {
      auto w = words(line);
      if (!w.empty() && w[0] == first) return w;
    }
    return {};
  }
  bool shows(const std::string& text) const { return contains(screen(), text); }

  TempBus bus_;
  std::string socket_;
};

TEST_F(MonitorTerminal, ShowsTopicsFollowsLagCopesWithChangesAndQuitsOnQ) {
  Topic live = bus_.create("live", TopicOptions{.capacity = 1 << 20});
  {
    SubscriberOptions options;
    options.name = "audit";
    options.start = StartFrom::earliest();
    auto audit = Subscriber::attach(live, options);
    ASSERT_TRUE(audit) << audit.error().message();
  }  // stalled at position 0
  const std::string rc = bus_.dir() + "/.rc";
  ASSERT_EQ(tmux("new-session -d -s mon -x 160 -y 30 \"'" + monitor_binary() + "' --dir '" +
                 bus_.dir() + "' --interval 0.2; echo \\$? > '" + rc + "'\"")
                .status,
            0);
  ASSERT_TRUE(eventually([&] { return row("live").size() > 5 && row("audit").size() > 8; }))
      << screen();
  EXPECT_EQ(row("live")[1], "block");
  EXPECT_EQ(row("audit")[5], "stalled");
  EXPECT_EQ(row("audit")[7], "0") << "no lag yet";
  EXPECT_TRUE(shows("q quit  s sort (name)  / filter")) << screen();

  // Lag follows a producer.
  publish_values(live, 100);
  EXPECT_TRUE(eventually([&] {
    auto audit = row("audit");
    return audit.size() > 8 && audit[7] == "6400" && audit[8] == "100";
  })) << screen();
  EXPECT_EQ(row("live")[6], "6400") << screen();

  // A topic appears, and a corrupt file shows as an error row.
  bus_.create("zeta", TopicOptions{.capacity = 4096});
  write_file(bus_.dir() + "/broken", "not a topic");
  EXPECT_TRUE(eventually([&] { return row("zeta").size() > 5 && row("broken").size() > 1; }))
      << screen();
  EXPECT_EQ(row("broken")[1], "ERROR:");

  // s cycles the sort column; / filters by name.
  ASSERT_EQ(tmux("send-keys -t mon s").status, 0);
  EXPECT_TRUE(eventually([&] { return shows("sort: publish rate"); })) << screen();
  ASSERT_EQ(tmux("send-keys -t mon / z e t Enter").status, 0);
  EXPECT_TRUE(eventually([&] {
    return shows("filter: zet (1 shown)") && row("zeta").size() > 5 && row("live").empty();
  })) << screen();
  ASSERT_EQ(tmux("send-keys -t mon / BSpace BSpace BSpace Enter").status, 0);
  EXPECT_TRUE(eventually([&] { return !row("live").empty() && !shows("filter:"); })) << screen();

  // Topics disappear.
  ASSERT_TRUE(bus_.bus().remove_topic("zeta"));
  EXPECT_TRUE(eventually([&] { return row("zeta").empty() && !row("live").empty(); })) << screen();

  // A resize redraws at the new size: the help line is on the new last row.
  ASSERT_EQ(tmux("resize-window -t mon -x 90 -y 12").status, 0);
  EXPECT_TRUE(eventually([&] {
    auto lines = split_lines(screen());
    return lines.size() == 12 && contains(lines.back(), "q quit") && !row("live").empty();
  })) << screen();

  ASSERT_EQ(tmux("send-keys -t mon q").status, 0);
  EXPECT_TRUE(eventually([&] { return read_file(rc) == "0\n"; })) << screen();
  EXPECT_TRUE(eventually([&] { return tmux("has-session -t mon 2>/dev/null").status != 0; }));
}

TEST_F(MonitorTerminal, PlainTextWithoutATerminalFollowsTopics) {
  Topic t = bus_.create("plain", TopicOptions{.capacity = 4096});
  const std::string out = bus_.dir() + "/.out";
  Background monitor(
      monitor_binary() + " --dir '" + bus_.dir() + "' --interval 0.1 > '" + out + "'",
      bus_.dir() + "/.err");
  EXPECT_TRUE(eventually([&] {
    for (const auto& line : split_lines(read_file(out))) {
      const auto w = words(line);
      if (w.size() > 6 && w[0] == "plain" && w[1] == "block") return true;
    }
    return false;
  })) << read_file(out);
  publish_values(t, 3);
  EXPECT_TRUE(eventually([&] {
    const auto lines = split_lines(read_file(out));
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      const auto w = words(*it);
      if (!w.empty() && w[0] == "plain") return w.size() > 6 && w[6] == "192";
    }
    return false;
  })) << read_file(out);
  EXPECT_EQ(monitor.stop(SIGINT), 0);
  EXPECT_FALSE(contains(read_file(out), "\x1b[")) << "no terminal escapes in plain text";
}

}  // namespace
}  // namespace ringbus
