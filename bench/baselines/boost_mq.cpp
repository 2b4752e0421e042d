// Boost.Interprocess message_queue: a mutex and condition variables in POSIX shared memory, the
// usual "portable C++" answer to passing messages between processes.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>

#include "baselines/baselines.hpp"

namespace ringbus::bench {
namespace {

namespace bip = boost::interprocess;

constexpr std::size_t kLatencyDepth = 64;

// A name no other run or case uses: pid plus a per-process counter.
std::string queue_name(const char* role) {
  static std::atomic<unsigned> counter{0};
  return "ringbus-bench-bmq-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
         role;
}

// Timed calls take an absolute UTC time (Boost compares it with universal_time()).
boost::posix_time::ptime stall_deadline() {
  return boost::posix_time::microsec_clock::universal_time() +
         boost::posix_time::seconds(kStallTimeout.count());
}

// send() and receive() return false rather than throw once the child runs, so the caller can
// always kill and join it.
bool send(bip::message_queue& q, const void* data, std::size_t size, WaitMode mode) {
  try {
    if (mode == WaitMode::busy) return spin_until([&] { return q.try_send(data, size, 0); });
    return q.timed_send(data, size, 0, stall_deadline());
  } catch (const bip::interprocess_exception& e) {
    std::fprintf(stderr, "ringbus-bench: boost message_queue send: %s\n", e.what());
    return false;
  }
}

bool receive(bip::message_queue& q, void* data, std::size_t size, WaitMode mode) {
  bip::message_queue::size_type got = 0;
  unsigned priority = 0;
  try {
    const bool ok = mode == WaitMode::busy
                        ? spin_until([&] { return q.try_receive(data, size, got, priority); })
                        : q.timed_receive(data, size, got, priority, stall_deadline());
    return ok && got == size;
  } catch (const bip::interprocess_exception& e) {
    std::fprintf(stderr, "ringbus-bench: boost message_queue receive: %s\n", e.what());
    return false;
  }
}

// Creates a queue, then removes its name at once: both processes keep using the mapping (the
// child inherits it across fork), and nothing is left in /dev/shm even if one of them dies.
class Queue {
 public:
  Queue(const char* role, std::size_t depth, std::size_t size) : name_(queue_name(role)) {
    bip::message_queue::remove(name_.c_str());
    q_.emplace(bip::create_only, name_.c_str(), depth, size);
    bip::message_queue::remove(name_.c_str());
  }
  ~Queue() { bip::message_queue::remove(name_.c_str()); }
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  bip::message_queue& get() { return *q_; }

 private:
  std::string name_;
  std::optional<bip::message_queue> q_;
};

}  // namespace

// Boost's queue mutex is not robust: a process that dies holding it leaves the other blocked in
// pthread_mutex_lock forever, past any timeout. So both sides run in pinned children (A on
// p.cores.a) and the calling thread only watches them, killing one when the other dies.

LatencyStats boost_mq_latency(const LatencyParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  const std::uint64_t rounds = p.warmup + p.samples;
  try {
    Queue ab_queue("ab", kLatencyDepth, size);
    Queue ba_queue("ba", kLatencyDepth, size);
    bip::message_queue& ab = ab_queue.get();
    bip::message_queue& ba = ba_queue.get();
    // Side A's round trips, written in place (touched now so no page fault lands in a sample).
    SharedRegion region(std::max<std::size_t>(p.samples, 1) * sizeof(double));
    auto* rtt_shared = static_cast<double*>(region.data());
    std::fill_n(rtt_shared, p.samples, 0.0);

    const pid_t b_side = spawn_pinned(p.cores.b, [&] {
      std::vector<std::byte> buf(size);
      for (std::uint64_t i = 0; i < rounds; ++i) {
        if (!receive(ab, buf.data(), size, p.wait)) return 1;
        if (!send(ba, buf.data(), size, p.wait)) return 1;
      }
      return 0;
    });
    if (b_side < 0) return {};
    const pid_t a_side = spawn_pinned(p.cores.a, [&] {
      std::vector<std::byte> out(size, std::byte{0x5a});
      std::vector<std::byte> in(size);
      for (std::uint64_t i = 0; i < rounds; ++i) {
        std::memcpy(out.data(), &i, std::min(size, sizeof i));
        const std::int64_t t0 = now_ns();
        if (!send(ab, out.data(), size, p.wait) || !receive(ba, in.data(), size, p.wait)) return 1;
        const std::int64_t t1 = now_ns();
        if (std::memcmp(in.data(), out.data(), size) != 0) return 1;
        if (i >= p.warmup) rtt_shared[i - p.warmup] = static_cast<double>(t1 - t0);
      }
      return 0;
    });
    if (!join_pair(a_side, b_side)) return {};
    std::vector<double> rtt(rtt_shared, rtt_shared + p.samples);
    return one_way_stats(rtt);
  } catch (const bip::interprocess_exception& e) {  // creating the queue: no child yet
    std::fprintf(stderr, "ringbus-bench: boost message_queue: %s\n", e.what());
    return {};
  }
}

ThroughputStats boost_mq_throughput(const ThroughputParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  const std::uint64_t n = p.messages;
  if (n == 0) return {};
  const std::size_t depth = std::clamp<std::size_t>((std::size_t{1} << 20) / size, 64, 1024);
  try {
    Queue queue("tp", depth, size);
    bip::message_queue& q = queue.get();
    SharedRegion region(sizeof(ConsumerReport));
    auto* report = new (region.data()) ConsumerReport{};

    const pid_t consumer = spawn_pinned(p.cores.b, [&] {
      std::vector<std::byte> buf(size);
      report->mark_ready();
      std::int64_t start = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (!receive(q, buf.data(), size, WaitMode::busy)) return 1;
        if (i == 0) start = now_ns();
      }
      report->report(now_ns() - start);
      return 0;
    });
    if (consumer < 0) return {};
    const pid_t producer = spawn_pinned(p.cores.a, [&] {
      std::vector<std::byte> payload(size, std::byte{0x5a});
      if (!spin_until([&] { return report->is_ready(); })) return 1;
      for (std::uint64_t i = 0; i < n; ++i) {
        if (!send(q, payload.data(), size, WaitMode::busy)) return 1;
      }
      return 0;
    });
    if (!join_pair(producer, consumer)) return {};
    return throughput_stats(n, size, report->seconds());
  } catch (const bip::interprocess_exception& e) {  // creating the queue: no child yet
    std::fprintf(stderr, "ringbus-bench: boost message_queue: %s\n", e.what());
    return {};
  }
}

}  // namespace ringbus::bench
