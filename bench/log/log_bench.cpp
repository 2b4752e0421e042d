// ringbus-log-bench: the disk log's speed against the same bytes written and read plainly, in the
// same run and directory. Recording: the bridge's recorder copies a pre-filled ring into segment
// files (fsync off, and every 10 ms) versus write(2) of as many bytes in 256 KiB chunks (same
// sync). Replay: a subscriber reading the log from the page cache versus read(2) of the files.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bridge_config.hpp"
#include "log/segments.hpp"
#include "recorder.hpp"
#include "ringbus/pin.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kWriteChunk = 256 * 1024;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Figures {
  double seconds = 0;
  std::uint64_t bytes = 0;
  double mb_per_s() const { return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0; }
};

void die(const std::string& message) {
  std::fprintf(stderr, "ringbus-log-bench: %s\n", message.c_str());
  std::exit(1);
}

bridge::BridgeConfig config(const std::string& log_dir, bool fsync) {
  bridge::BridgeConfig c;
  c.log_dir = log_dir;
  c.record = {"*"};
  c.segment_bytes = std::uint64_t{64} << 20;
  c.fsync = fsync ? bridge::FsyncPolicy::interval : bridge::FsyncPolicy::never;
  c.fsync_interval = std::chrono::milliseconds(10);
  return c;
}

void publish(Producer& p, std::uint64_t messages, std::size_t size) {
  std::string value(size, 'x');
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::memcpy(value.data(), &i, std::min(sizeof i, size));
    if (!p.try_publish({}, as_bytes(value))) die("the ring is too small for the pre-fill");
  }
}

// The recorder, attached before the messages were published (as a running bridge is, so its
// reader reads them in place), copies the whole ring to disk.
Figures record(const Topic& topic, std::unique_ptr<bridge::TopicRecorder>& recorder, bool fsync) {
  const std::uint64_t tail = topic.snapshot().tail;
  auto start = Clock::now();
  while (recorder->recorded() < tail || (fsync && recorder->durable() < tail)) {
    recorder->step(Clock::now());
  }
  Figures f{seconds_since(start), tail};
  recorder->stop();
  return f;
}

// write(2) of the same bytes (the ring's first `bytes`, from the same shared memory) in
// 256 KiB chunks to one file in `dir`; fdatasync every 10 ms and at the end when `fsync`.
Figures plain_write(const std::string& dir, const std::byte* source, std::uint64_t bytes,
                    bool fsync) {
  std::string path = dir + "/plain.bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
  if (fd < 0) die("cannot create " + path + ": " + std::strerror(errno));
  auto start = Clock::now();
  auto last_sync = start;
  for (std::uint64_t done = 0; done < bytes;) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kWriteChunk, bytes - done));
    ssize_t w = ::write(fd, source + done, n);
    if (w <= 0) die(std::string("write failed: ") + std::strerror(errno));
    done += static_cast<std::uint64_t>(w);
    if (fsync && Clock::now() - last_sync >= std::chrono::milliseconds(10)) {
      ::fdatasync(fd);
      last_sync = Clock::now();
    }
  }
  if (fsync) ::fdatasync(fd);
  Figures f{seconds_since(start), bytes};
  ::close(fd);
  ::unlink(path.c_str());
  return f;
}

// A subscriber at `earliest` reads every message; all but the ring's last MiB come from the log.
Figures replay(const Topic& topic, std::uint64_t messages) {
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  o.durability = Durability::lossy;
  auto sub = Subscriber::attach(topic, o);
  if (!sub) die(sub.error().message());
  if (!sub->replaying()) die("the subscriber did not start in the log");
  std::uint64_t read = 0;
  std::uint64_t sum = 0;
  auto start = Clock::now();
  while (read < messages) {
    auto r = sub->poll(
        [&](const Message& m) {
          std::uint64_t v = 0;
          std::memcpy(&v, m.value.data(), std::min(sizeof v, m.value.size()));
          sum += v;
        },
        256);
    if (!r) die(r.error().message());
    read += r->messages;
  }
  Figures f{seconds_since(start), sub->position()};
  if (sum == 42) std::puts("");  // keep the checksum alive
  return f;
}

// read(2) of every segment file into one buffer.
Figures plain_read(const std::string& log_dir) {
  auto bases = detail::list_segments(log_dir);
  if (!bases) die(bases.error().message());
  std::vector<char> buffer(kWriteChunk);
  Figures f;
  auto start = Clock::now();
  for (std::uint64_t base : *bases) {
    std::string path = detail::segment_file(log_dir, base, ".log");
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) die("cannot open " + path);
    for (ssize_t n; (n = ::read(fd, buffer.data(), buffer.size())) > 0;) {
      f.bytes += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
  }
  f.seconds = seconds_since(start);
  return f;
}

void row(const char* what, std::size_t size, const Figures& ours, const Figures& plain) {
  std::printf("%-26s %6zu B  %9.0f MB/s  %9.0f MB/s  %6.2fx\n", what, size, ours.mb_per_s(),
              plain.mb_per_s(), ours.mb_per_s() / plain.mb_per_s());
}

}  // namespace
}  // namespace ringbus::bench

int main(int argc, char** argv) {
  using namespace ringbus;
  using namespace ringbus::bench;
  CLI::App app{"ringbus-log-bench: disk log recording and replay against plain file I/O"};
  std::string dir = "/var/tmp";
  std::uint64_t messages = 1'000'000;
  std::vector<std::size_t> sizes{64, 1024};
  int cpu = -1;
  app.add_option("--dir", dir, "Directory on the disk to measure (default /var/tmp)");
  app.add_option("--messages", messages, "Messages per case (default 1000000)");
  app.add_option("--sizes", sizes, "Value sizes in bytes (default 64 1024)");
  app.add_option("--cpu", cpu, "Pin to this core (default: the first allowed)");
  CLI11_PARSE(app, argc, argv);

  if (cpu < 0) cpu = allowed_cpus().empty() ? 0 : allowed_cpus().front();
  if (auto ok = pin_this_thread(cpu); !ok) die(ok.error().message());
  // Topics live in shared memory as in production; only the logs go to `dir`.
  std::string work = dir + "/ringbus-log-bench-" + std::to_string(::getpid());
  std::string bus_dir = "/dev/shm/ringbus-log-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(work);
  std::filesystem::create_directories(bus_dir);
  Bus bus(bus_dir);
  std::printf("ringbus-log-bench: %llu messages per case, directory %s, core %d\n",
              static_cast<unsigned long long>(messages), dir.c_str(), cpu);
  std::printf("%-26s %8s  %14s  %14s  %7s\n", "case", "value", "ringbus", "plain I/O", "ratio");
  for (std::size_t size : sizes) {
    // A ring big enough for the whole pre-fill, so recording alone is timed.
    std::uint64_t frame = (32 + size + 63) / 64 * 64;
    std::uint64_t capacity = 4096;
    while (capacity < messages * frame + (1 << 20)) capacity <<= 1;
    for (bool fsync : {false, true}) {
      // Best of three, alternating, so that neither side always runs right after the other's
      // writeback.
      Figures best_plain;
      Figures best_ours;
      for (int round = 0; round < 3; ++round) {
        std::string name = "rec" + std::to_string(size) + (fsync ? "s" : "n");
        TopicOptions o;
        o.capacity = capacity;
        auto topic = bus.create_topic(name, o);
        if (!topic) die(topic.error().message());
        std::string log_dir = work + "/log-" + name;
        auto recorder = bridge::TopicRecorder::start(*topic, config(log_dir, fsync));
        if (!recorder) die(recorder.error().message());
        {
          Producer p(*topic);
          publish(p, messages, size);
        }
        Figures plain;
        Figures ours;
        if (round % 2 == 0) {
          plain =
              plain_write(work, detail::mapping_of(*topic).ring(), topic->snapshot().tail, fsync);
          ours = record(*topic, *recorder, fsync);
        } else {
          ours = record(*topic, *recorder, fsync);
          plain =
              plain_write(work, detail::mapping_of(*topic).ring(), topic->snapshot().tail, fsync);
        }
        if (plain.mb_per_s() > best_plain.mb_per_s()) best_plain = plain;
        if (ours.mb_per_s() > best_ours.mb_per_s()) best_ours = ours;
        (void)bus.remove_topic(name);
        std::filesystem::remove_all(log_dir);
      }
      row(fsync ? "record, fsync every 10 ms" : "record, fsync off", size, best_ours, best_plain);
    }
    // Replay: record through a 1 MiB ring, then read everything back from the page cache.
    std::string name = "replay" + std::to_string(size);
    TopicOptions o;
    o.capacity = 1 << 20;
    auto topic = bus.create_topic(name, o);
    if (!topic) die(topic.error().message());
    std::string log_dir = work + "/log-" + name;
    {
      auto recorder = bridge::TopicRecorder::start(*topic, config(log_dir, false));
      if (!recorder) die(recorder.error().message());
      Producer p(*topic);
      std::string value(size, 'z');
      for (std::uint64_t i = 0; i < messages; ++i) {
        std::memcpy(value.data(), &i, std::min(sizeof i, size));
        while (!p.try_publish({}, as_bytes(value))) (*recorder)->step(Clock::now());
      }
      while (topic->snapshot().recorder->recorded_position < topic->snapshot().tail) {
        (*recorder)->step(Clock::now());
      }
      (*recorder)->stop();
    }
    Figures plain = plain_read(log_dir + "/" + name);
    Figures ours = replay(*topic, messages);
    row("replay from page cache", size, ours, plain);
    (void)bus.remove_topic(name);
  }
  std::filesystem::remove_all(work);
  std::filesystem::remove_all(bus_dir);
  return 0;
}
