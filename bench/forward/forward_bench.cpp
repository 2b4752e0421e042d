// ringbus-forward-bench: forwarding a topic to another bridge over loopback TCP, against raw TCP
// carrying the same bytes in the same run. Throughput: catch-up (a full ring streamed after the
// receiver was away) and streaming (a producer publishing while the link runs), each the best of
// --repeat runs alternating with raw TCP of as many bytes (ring-sized buffers, and hot 1 MiB
// ones). Latency: a paced producer on A, a subscriber on B timing each message from its commit
// (sleeping on the futex), against a paced raw TCP sender timing each message the same way
// (sleeping in read(2)). Acks: the cost of Producer::wait_mirrored and wait_durable per message
// and per batch.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bridge_config.hpp"
#include "forwarder.hpp"
#include "receiver.hpp"
#include "recorder.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void die(const std::string& message) {
  std::fprintf(stderr, "ringbus-forward-bench: %s\n", message.c_str());
  std::exit(1);
}

std::int64_t realtime_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr std::uint64_t kMaxMessage = 64 * 1024;

// A port nothing listens on now (bound to port 0, then closed).
std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    die("cannot find a free port");
  }
  ::close(s);
  return ntohs(addr.sin_port);
}

// Two "hosts": a bus directory each, a receiving bridge on B, a forwarder on A.
struct Pair {
  std::string root;
  Bus a;
  Bus b;
  std::unique_ptr<bridge::Receiver> receiver;
  std::unique_ptr<bridge::Forwarder> forwarder;
  Topic topic;

  bool spin = false;
  Pair(const std::string& dir, const std::string& name, std::uint64_t capacity,
       bool connect_now = true, bool busy_spin = false)
      : root(dir), a(dir + "/a"), b(dir + "/b"), spin(busy_spin) {
    std::filesystem::create_directories(dir + "/a");
    std::filesystem::create_directories(dir + "/b");
    TopicOptions o;
    o.capacity = capacity;
    o.max_message = kMaxMessage;
    auto t = a.create_topic(name, o);
    if (!t) die(t.error().message());
    topic = *t;
    bridge::BridgeConfig config;
    config.listen.address = "127.0.0.1:" + std::to_string(free_port());
    config.link_busy_spin = spin;
    auto r = bridge::Receiver::start(config, b);
    if (!r) die(r.error().message());
    receiver = std::move(*r);
    if (connect_now) connect();
  }
  void connect() {
    bridge::ForwarderOptions fo;
    fo.destination = "127.0.0.1:" + std::to_string(receiver->port());
    fo.reader_name = "bench-forward";
    fo.busy_spin = spin;
    forwarder = std::make_unique<bridge::Forwarder>(topic, fo);
  }
  ~Pair() {
    forwarder.reset();
    receiver.reset();
    mirror.reset();
    std::filesystem::remove_all(root);
  }
  // B's mirror once the first batch created it, and its applied position.
  std::uint64_t applied(const std::string& name) {
    if (!mirror) {  // opened once: mapping a large ring for every look would skew the timing
      auto m = b.open_topic(name);
      if (!m) return 0;
      mirror = *m;
    }
    auto snap = mirror->snapshot();
    return snap.mirror ? snap.mirror->applied_position : 0;
  }
  std::optional<Topic> mirror;
  void wait_applied(const std::string& name, std::uint64_t position) {
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (applied(name) < position) {
      if (Clock::now() > deadline) die("the mirror did not catch up within 120 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
};

// A connected loopback TCP pair (raw baseline).
std::pair<int, int> tcp_pair() {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    die("raw tcp: bind/listen failed");
  }
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
  int server = ::accept(listener, nullptr, nullptr);
  ::close(listener);
  int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return {client, server};
}

// Raw TCP moving `bytes` in 1 MiB writes and reads. With `footprint` > 1 MiB the sender takes
// its bytes from, and the reader puts them into, successive windows of buffers that large (both
// touched first), as the forwarder reads a ring and the receiver writes one; 1 MiB is one hot
// buffer on each side.
constexpr std::uint64_t kWindow = 1 << 20;

double raw_tcp_seconds(std::uint64_t bytes, std::uint64_t footprint = kWindow) {
  footprint = std::max<std::uint64_t>(footprint, kWindow);
  auto [out, in] = tcp_pair();
  std::vector<char> source(footprint, 'x');
  std::vector<char> destination(footprint, 'y');
  std::thread reader([in = in, bytes, &destination] {
    std::uint64_t got = 0;
    while (got < bytes) {
      const std::uint64_t at = got % destination.size();
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(destination.size() - at, kWindow));
      ssize_t r = ::read(in, destination.data() + at, n);
      if (r <= 0) break;
      got += static_cast<std::uint64_t>(r);
    }
  });
  const auto start = Clock::now();
  std::uint64_t sent = 0;
  while (sent < bytes) {
    const std::uint64_t at = sent % source.size();
    const std::size_t n = static_cast<std::size_t>(
        std::min<std::uint64_t>({source.size() - at, kWindow, bytes - sent}));
    ssize_t w = ::write(out, source.data() + at, n);
    if (w <= 0) die("raw tcp: write failed");
    sent += static_cast<std::uint64_t>(w);
  }
  reader.join();
  const double s = seconds_since(start);
  ::close(out);
  ::close(in);
  return s;
}

// One timed forwarding run: seconds, and the stream bytes it moved.
struct Timed {
  double seconds = 0;
  std::uint64_t bytes = 0;
};

// The link's capacity: the ring on A is filled first (as a forwarder that catches up after the
// receiver was away finds it: its persistent reader holds the frames), then the forwarder
// streams it all to B.
constexpr std::uint64_t kCatchUpRing = std::uint64_t{256} << 20;

std::uint64_t stride_of(std::size_t size) { return (32 + size + 63) & ~std::uint64_t{63}; }

std::uint64_t catch_up_messages(std::uint64_t messages, std::size_t size) {
  return std::min<std::uint64_t>(messages, kCatchUpRing / stride_of(size) * 9 / 10);
}

Timed catch_up(const std::string& dir, std::uint64_t messages, std::size_t size) {
  Pair pair(dir, "t", kCatchUpRing, false);
  // The mirror exists (and its memory is touched) before the clock starts, as after a reconnect.
  TopicOptions mo;
  mo.capacity = kCatchUpRing;
  mo.max_message = kMaxMessage;
  mo.mirror_of = "bench";
  if (auto m = pair.b.create_topic("t", mo); !m) die(m.error().message());
  {
    // The forwarder's persistent reader exists (it was connected before the receiver went
    // away), so when it resumes it reads the frames in place, as a real catch-up does.
    SubscriberOptions so;
    so.name = "bench-forward";
    so.durability = Durability::durable;
    so.manual_commit = true;
    so.start = StartFrom::at(0);
    if (auto sub = Subscriber::attach(pair.topic, so); !sub) die(sub.error().message());
  }
  Producer producer(pair.topic);
  std::string value(size, 'v');
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::memcpy(value.data(), &i, std::min(sizeof i, size));
    auto r = producer.try_publish({}, as_bytes(value));
    if (!r) die(r.error().message());
  }
  const std::uint64_t total = pair.topic.snapshot().tail;
  pair.connect();
  // Timed from the first bytes applied on B (the connection and handshake excluded).
  std::uint64_t first = 0;
  while ((first = pair.applied("t")) == 0)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  const auto start = Clock::now();
  pair.wait_applied("t", total);
  return {seconds_since(start), total - first};
}

constexpr std::uint64_t kStreamRing = std::uint64_t{16} << 20;

// Streaming: the forwarder is connected and a producer publishes as fast as it can; timed from
// the first message to the mirror holding the last.
Timed streaming(const std::string& dir, std::uint64_t messages, std::size_t size) {
  Pair pair(dir, "s", kStreamRing);
  Producer producer(pair.topic);
  std::string value(size, 'v');
  auto first = producer.publish({}, as_bytes(value));
  if (!first) die(first.error().message());
  pair.wait_applied("s", pair.topic.snapshot().tail);
  const std::uint64_t from = pair.topic.snapshot().tail;
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::memcpy(value.data(), &i, std::min(sizeof i, size));
    auto r = producer.publish({}, as_bytes(value), Wait::spin_yield());
    if (!r) die(r.error().message());
  }
  const std::uint64_t to = pair.topic.snapshot().tail;
  pair.wait_applied("s", to);
  return {seconds_since(start), to - from};
}

// The producer alone: the same messages published into a ring of the same size that nothing
// reads, the most a forwarded stream can carry when the producer shares the machine with it.
Timed publish_alone(const std::string& dir, std::uint64_t messages, std::size_t size) {
  std::filesystem::create_directories(dir);
  Bus bus(dir);
  TopicOptions o;
  o.capacity = kStreamRing;
  o.max_message = kMaxMessage;
  auto t = bus.create_topic("alone", o);
  if (!t) die(t.error().message());
  Producer producer(*t);
  std::string value(size, 'v');
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < messages; ++i) {
    std::memcpy(value.data(), &i, std::min(sizeof i, size));
    auto r = producer.publish({}, as_bytes(value), Wait::spin_yield());
    if (!r) die(r.error().message());
  }
  const Timed timed{seconds_since(start), t->snapshot().tail};
  std::filesystem::remove_all(dir);
  return timed;
}

// Runs a throughput case `repeat` times, each followed by raw TCP of as many bytes with buffers
// the size of the rings and with one hot 1 MiB buffer a side, and prints the fastest of each
// (this VM is shared: the slow runs are other tenants, the ratio of the best runs holds).
void throughput(const char* name, std::size_t size, std::uint64_t messages, int repeat,
                std::uint64_t footprint, const std::function<Timed()>& once) {
  double forwarded = 1e30, raw = 1e30, hot = 1e30;
  std::uint64_t bytes = 0;
  for (int i = 0; i < repeat; ++i) {
    const Timed t = once();
    bytes = t.bytes;
    forwarded = std::min(forwarded, t.seconds);
    raw = std::min(raw, raw_tcp_seconds(t.bytes, footprint));
    hot = std::min(hot, raw_tcp_seconds(t.bytes));
  }
  const auto mbps = [&](double seconds) { return static_cast<double>(bytes) / seconds / 1e6; };
  std::printf(
      "%-10s %5zu B x %7llu: forwarded %7.1f MB/s (%5.2f M msg/s)  raw TCP %7.1f MB/s (hot 1 MiB "
      "buffers %7.1f)  ratio %.2fx (%.2fx)  best of %d\n",
      name, size, static_cast<unsigned long long>(messages), mbps(forwarded),
      mbps(forwarded) / static_cast<double>(stride_of(size)), mbps(raw), mbps(hot), raw / forwarded,
      hot / forwarded, repeat);
}

struct Percentiles {
  double p50 = 0;
  double p99 = 0;
};

Percentiles percentiles(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {static_cast<double>(v[v.size() / 2]) / 1e3,
          static_cast<double>(v[v.size() * 99 / 100]) / 1e3};
}

void latency(const std::string& dir, std::size_t samples, std::size_t size, bool spin) {
  constexpr auto kPace = std::chrono::microseconds(200);
  std::vector<std::int64_t> forwarded;
  {
    Pair pair(dir, "lat", std::uint64_t{4} << 20, true, spin);
    Producer producer(pair.topic);
    std::string value(size, 'v');
    auto first = producer.publish({}, as_bytes(value));
    if (!first) die(first.error().message());
    pair.wait_applied("lat", pair.topic.snapshot().tail);
    auto mirror = pair.b.open_topic("lat");
    if (!mirror) die(mirror.error().message());
    SubscriberOptions so;
    so.start = StartFrom::latest();
    auto sub = Subscriber::attach(*mirror, so);
    if (!sub) die(sub.error().message());
    std::atomic<bool> done{false};
    std::thread reader([&] {
      while (forwarded.size() < samples && !done.load()) {
        auto polled = sub->poll_wait(
            [&](const Message& m) { forwarded.push_back(realtime_ns() - m.timestamp_ns); }, 64,
            Wait::futex(milliseconds(100)));
        (void)polled;
      }
    });
    for (std::size_t i = 0; i < samples; ++i) {
      auto r = producer.publish({}, as_bytes(value));
      if (!r) die(r.error().message());
      std::this_thread::sleep_for(kPace);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (forwarded.size() < samples && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    done = true;
    reader.join();
  }
  std::vector<std::int64_t> raw;
  {
    auto [out, in] = tcp_pair();
    std::thread reader([&, in = in] {
      std::vector<char> message(size + 8);
      while (raw.size() < samples) {
        std::size_t got = 0;
        while (got < message.size()) {
          ssize_t n = ::read(in, message.data() + got, message.size() - got);
          if (n <= 0) return;
          got += static_cast<std::size_t>(n);
        }
        std::int64_t sent = 0;
        std::memcpy(&sent, message.data(), 8);
        raw.push_back(realtime_ns() - sent);
      }
    });
    std::vector<char> message(size + 8, 'v');
    for (std::size_t i = 0; i < samples; ++i) {
      const std::int64_t now = realtime_ns();
      std::memcpy(message.data(), &now, 8);
      if (::write(out, message.data(), message.size()) <= 0) die("raw tcp write");
      std::this_thread::sleep_for(kPace);
    }
    reader.join();
    ::close(out);
    ::close(in);
  }
  const auto f = percentiles(forwarded);
  const auto r = percentiles(raw);
  std::printf(
      "latency    %5zu B x %zu (paced 200 us, links %s): forwarded p50 %7.1f us p99 %8.1f us   raw "
      "TCP "
      "p50 %6.1f us p99 %7.1f us   p50 ratio %.2fx\n",
      size, forwarded.size(), spin ? "spin " : "sleep", f.p50, f.p99, r.p50, r.p99,
      r.p50 > 0 ? f.p50 / r.p50 : 0);
}

void acks(const std::string& dir, std::size_t rounds) {
  Pair pair(dir, "acks", std::uint64_t{4} << 20);
  Producer producer(pair.topic);
  std::string value(64, 'v');
  auto first = producer.publish({}, as_bytes(value));
  if (!first) die(first.error().message());
  pair.wait_applied("acks", pair.topic.snapshot().tail);
  auto time_per = [&](std::size_t batch, auto wait) {
    const auto start = Clock::now();
    for (std::size_t i = 0; i < rounds; ++i) {
      std::uint64_t last = 0;
      for (std::size_t j = 0; j < batch; ++j) {
        auto r = producer.publish({}, as_bytes(value));
        if (!r) die(r.error().message());
        last = *r;
      }
      if (auto ok = wait(last); !ok) die(ok.error().message());
    }
    return seconds_since(start) / static_cast<double>(rounds) * 1e6;  // us per batch
  };
  auto none = [](std::uint64_t) { return Result<void>{}; };
  auto mirrored = [&](std::uint64_t o) {
    return producer.wait_mirrored(o, 1, Wait::spin_yield(std::chrono::seconds(10)));
  };
  const double none1 = time_per(1, none);
  const double mirror1 = time_per(1, mirrored);
  const double mirror64 = time_per(64, mirrored);
  std::printf(
      "acks       64 B: publish alone %6.2f us/msg; wait_mirrored per message %7.1f us; "
      "per batch of 64 %7.1f us (%5.2f us/msg)\n",
      none1, mirror1, mirror64, mirror64 / 64);
  // wait_durable: a recorder on A (as ringbus-bridge runs it), fsync every 10 ms and never.
  for (bool fsync : {false, true}) {
    bridge::BridgeConfig c;
    c.log_dir = dir + "/log-" + (fsync ? "sync" : "nosync");
    c.record = {"*"};
    c.fsync = fsync ? bridge::FsyncPolicy::interval : bridge::FsyncPolicy::never;
    c.reader_name = fsync ? "rec-sync" : "rec-nosync";
    auto rec = bridge::TopicRecorder::start(pair.topic, c);
    if (!rec) die(rec.error().message());
    std::atomic<bool> stop{false};
    std::thread stepper([&] {
      while (!stop.load()) {
        if (!(*rec)->step(Clock::now()))
          std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    });
    auto durable = [&](std::uint64_t o) {
      return producer.wait_durable(o, Wait::spin_yield(std::chrono::seconds(10)));
    };
    const std::size_t saved = rounds;
    rounds = std::min<std::size_t>(rounds, fsync ? 100 : rounds);
    const double d1 = time_per(1, durable);
    const double d64 = time_per(64, durable);
    rounds = saved;
    stop = true;
    stepper.join();
    (*rec)->stop();
    std::printf(
        "acks       64 B: wait_durable (fsync %s) per message %8.1f us; per batch of 64 "
        "%8.1f us (%6.2f us/msg)\n",
        fsync ? "10ms " : "never", d1, d64, d64 / 64);
  }
}

}  // namespace
}  // namespace ringbus::bench

int main(int argc, char** argv) {
  using namespace ringbus::bench;
  CLI::App app{"ringbus-forward-bench: forwarding over loopback against raw TCP"};
  std::uint64_t messages = 1'000'000;
  std::size_t samples = 5000;
  std::size_t rounds = 2000;
  std::vector<std::size_t> sizes{64, 1024};
  std::string dir = "/dev/shm/ringbus-forward-bench-" + std::to_string(::getpid());
  app.add_option("--messages", messages, "Messages per throughput case");
  app.add_option("--samples", samples, "Latency samples");
  app.add_option("--rounds", rounds, "Ack rounds");
  int repeat = 3;
  app.add_option("--repeat", repeat, "Throughput runs per case (the fastest is kept)")
      ->check(CLI::Range(1, 100));
  app.add_option("--sizes", sizes, "Value sizes");
  app.add_option("--dir", dir, "Scratch directory (removed afterwards)");
  std::vector<std::string> only;
  app.add_option("--only", only, "Run only these cases")
      ->check(CLI::IsMember({"catch-up", "streaming", "latency", "acks"}));
  CLI11_PARSE(app, argc, argv);
  auto wanted = [&](const std::string& name) {
    return only.empty() || std::find(only.begin(), only.end(), name) != only.end();
  };
  if (wanted("catch-up")) {
    for (std::size_t size : sizes) {
      const std::uint64_t n = catch_up_messages(messages, size);
      throughput("catch-up", size, n, repeat, kCatchUpRing,
                 [&] { return catch_up(dir + "/tp", n, size); });
    }
  }
  if (wanted("streaming")) {
    for (std::size_t size : sizes) {
      throughput("streaming", size, messages, repeat, kStreamRing,
                 [&] { return streaming(dir + "/st", messages, size); });
      double alone = 1e30;
      for (int i = 0; i < repeat; ++i) {
        alone = std::min(alone, publish_alone(dir + "/alone", messages, size).seconds);
      }
      std::printf("  the producer alone (nothing reads its ring): %5.2f M msg/s\n",
                  static_cast<double>(messages) / alone / 1e6);
    }
  }
  if (wanted("latency")) {
    for (bool spin : {false, true}) {
      for (std::size_t size : sizes) latency(dir + "/lat", samples, size, spin);
    }
  }
  if (wanted("acks")) acks(dir + "/acks", rounds);
  std::filesystem::remove_all(dir);
  return 0;
}
