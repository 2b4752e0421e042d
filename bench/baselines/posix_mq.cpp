// POSIX message queues (mq_open): kernel-copied messages with a fixed maximum size and depth,
// limited by /proc/sys/fs/mqueue (msg_max, msgsize_max) and RLIMIT_MSGQUEUE.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include <mqueue.h>

#include "baselines/baselines.hpp"

namespace ringbus::bench {
namespace {

long proc_limit(const char* path, long fallback) {
  std::ifstream in(path);
  long value = 0;
  return in >> value && value > 0 ? value : fallback;
}

long max_msg_size() { return proc_limit("/proc/sys/fs/mqueue/msgsize_max", 8192); }
long max_depth() { return proc_limit("/proc/sys/fs/mqueue/msg_max", 10); }

// A queue opened, then unlinked at once: both processes keep using the descriptor (the child
// inherits it across fork, with its O_NONBLOCK flag), and nothing is left in /dev/mqueue even if
// one of them dies.
class Queue {
 public:
  Queue() = default;
  ~Queue() {
    if (q_ != static_cast<mqd_t>(-1)) mq_close(q_);
  }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Asks for `depth` messages, fewer if RLIMIT_MSGQUEUE refuses that many.
  bool open(const char* role, long depth, std::size_t size, WaitMode mode) {
    static std::atomic<unsigned> counter{0};
    const std::string name = "/ringbus-bench-pmq-" + std::to_string(getpid()) + "-" +
                             std::to_string(counter++) + "-" + role;
    mq_attr attr{};
    attr.mq_msgsize = static_cast<long>(size);
    const int flags = O_RDWR | O_CREAT | O_EXCL | (mode == WaitMode::busy ? O_NONBLOCK : 0);
    mq_unlink(name.c_str());
    for (attr.mq_maxmsg = depth;; attr.mq_maxmsg /= 2) {
      q_ = mq_open(name.c_str(), flags, 0600, &attr);
      if (q_ != static_cast<mqd_t>(-1) || errno != EMFILE || attr.mq_maxmsg == 1) break;
    }
    if (q_ == static_cast<mqd_t>(-1)) {
      std::fprintf(stderr, "ringbus-bench: mq_open %s: %s\n", name.c_str(), std::strerror(errno));
      return false;
    }
    mq_unlink(name.c_str());
    return true;
  }

  mqd_t get() const { return q_; }

 private:
  mqd_t q_ = static_cast<mqd_t>(-1);
};

timespec stall_deadline() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);  // the clock mq_timed* deadlines are on
  ts.tv_sec += static_cast<time_t>(kStallTimeout.count());
  return ts;
}

// Busy mode spins on EAGAIN (bounded by kStallTimeout); blocking mode waits at most that long.
bool send(mqd_t q, const std::byte* data, std::size_t size, WaitMode mode) {
  const auto* bytes = reinterpret_cast<const char*>(data);
  if (mode == WaitMode::busy) {
    bool failed = false;
    const bool done = spin_until([&] {
      if (mq_send(q, bytes, size, 0) == 0) return true;
      failed = errno != EAGAIN && errno != EINTR;
      return failed;
    });
    return done && !failed;
  }
  const timespec deadline = stall_deadline();
  for (;;) {
    if (mq_timedsend(q, bytes, size, 0, &deadline) == 0) return true;
    if (errno != EINTR) return false;
  }
}

bool receive(mqd_t q, std::byte* data, std::size_t size, WaitMode mode) {
  auto* bytes = reinterpret_cast<char*>(data);
  ssize_t got = -1;
  if (mode == WaitMode::busy) {
    bool failed = false;
    const bool done = spin_until([&] {
      got = mq_receive(q, bytes, size, nullptr);
      if (got >= 0) return true;
      failed = errno != EAGAIN && errno != EINTR;
      return failed;
    });
    return done && !failed && static_cast<std::size_t>(got) == size;
  }
  const timespec deadline = stall_deadline();
  for (;;) {
    got = mq_timedreceive(q, bytes, size, nullptr, &deadline);
    if (got >= 0) return static_cast<std::size_t>(got) == size;
    if (errno != EINTR) return false;
  }
}

}  // namespace

LatencyStats posix_mq_latency(const LatencyParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  if (size > static_cast<std::size_t>(max_msg_size())) return {};  // not measured
  const std::uint64_t rounds = p.warmup + p.samples;
  const long depth = std::min(max_depth(), 10L);
  Queue ab;
  Queue ba;
  if (!ab.open("ab", depth, size, p.wait) || !ba.open("ba", depth, size, p.wait)) return {};

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    std::vector<std::byte> buf(size);
    for (std::uint64_t i = 0; i < rounds; ++i) {
      if (!receive(ab.get(), buf.data(), size, p.wait)) return 1;
      if (!send(ba.get(), buf.data(), size, p.wait)) return 1;
    }
    return 0;
  });
  if (child < 0) return {};
  pin(p.cores.a);

  std::vector<std::byte> out(size, std::byte{0x5a});
  std::vector<std::byte> in(size);
  std::vector<double> rtt;
  rtt.reserve(p.samples);
  bool ok = true;
  for (std::uint64_t i = 0; i < rounds && ok; ++i) {
    std::memcpy(out.data(), &i, std::min(size, sizeof i));
    const std::int64_t t0 = now_ns();
    ok = send(ab.get(), out.data(), size, p.wait) && receive(ba.get(), in.data(), size, p.wait);
    const std::int64_t t1 = now_ns();
    ok = ok && std::memcmp(in.data(), out.data(), size) == 0;
    if (i >= p.warmup) rtt.push_back(static_cast<double>(t1 - t0));
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return one_way_stats(rtt);
}

// Both sides busy-poll (O_NONBLOCK), like the other throughput cases; the queue is as deep as
// msg_max allows.
ThroughputStats posix_mq_throughput(const ThroughputParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  const std::uint64_t n = p.messages;
  if (n == 0 || size > static_cast<std::size_t>(max_msg_size())) return {};  // not measured
  Queue queue;
  if (!queue.open("tp", std::min(max_depth(), 1024L), size, WaitMode::busy)) return {};
  SharedRegion region(sizeof(ConsumerReport));
  auto* report = new (region.data()) ConsumerReport{};

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    std::vector<std::byte> buf(size);
    report->mark_ready();
    std::int64_t start = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!receive(queue.get(), buf.data(), size, WaitMode::busy)) return 1;
      if (i == 0) start = now_ns();
    }
    report->report(now_ns() - start);
    return 0;
  });
  if (child < 0) return {};
  pin(p.cores.a);

  std::vector<std::byte> payload(size, std::byte{0x5a});
  bool ok = spin_until([&] { return report->is_ready(); });
  for (std::uint64_t i = 0; i < n && ok; ++i) {
    ok = send(queue.get(), payload.data(), size, WaitMode::busy);
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return throughput_stats(n, size, report->seconds());
}

}  // namespace ringbus::bench
