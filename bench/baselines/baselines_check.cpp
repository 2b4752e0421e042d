// A smoke test of every baseline: runs each once with small parameters on the core pair ringbus
// would pick and prints one line apiece. Exits non-zero if a baseline that applies measured
// nothing.
#include <cstdio>

#include "baselines/baselines.hpp"
#include "ringbus/pin.hpp"

namespace {

using namespace ringbus::bench;

int failures = 0;

void print(const char* name, const LatencyStats& s) {
  if (s.samples == 0) {
    std::printf("%-28s FAILED (no samples)\n", name);
    ++failures;
    return;
  }
  std::printf("%-28s one-way p50 %8.0f ns  p99 %8.0f ns  max %9.0f ns  (%llu samples)\n", name,
              s.p50, s.p99, s.max, static_cast<unsigned long long>(s.samples));
}

void print(const char* name, const ThroughputStats& s) {
  if (s.messages == 0) {
    std::printf("%-28s FAILED (no messages)\n", name);
    ++failures;
    return;
  }
  std::printf("%-28s %8.2f M msgs/s  %8.1f MB/s  (%llu messages)\n", name,
              s.messages_per_second / 1e6, s.bytes_per_second / 1e6,
              static_cast<unsigned long long>(s.messages));
}

}  // namespace

int main() {
  Cores cores;
  if (auto pair = ringbus::pick_core_pair()) {
    cores = {pair->producer, pair->consumer};
    std::printf("cores %d and %d (shared cache: %s)\n", cores.a, cores.b,
                pair->shared_cache.c_str());
  } else {
    std::printf("cores: not pinned (%s)\n", pair.error().message().c_str());
  }

  const LatencyParams busy{
      .size = 64, .warmup = 200, .samples = 2000, .wait = WaitMode::busy, .cores = cores};
  LatencyParams blocking = busy;
  blocking.wait = WaitMode::blocking;
  const ThroughputParams tp{.size = 64, .messages = 50'000, .cores = cores, .spread = {}};

  print("cache line, same line", cache_line_same(busy));
  print("cache line, split line", cache_line_split(busy));
  print("futex ping-pong", futex_pingpong(blocking));
  print("boost mq, busy", boost_mq_latency(busy));
  print("boost mq, blocking", boost_mq_latency(blocking));
  print("unix socket, busy", unix_socket_latency(busy));
  print("unix socket, blocking", unix_socket_latency(blocking));
  print("posix mq, busy", posix_mq_latency(busy));
  print("posix mq, blocking", posix_mq_latency(blocking));

  print("copy ring", copy_ring(tp));
  print("boost mq", boost_mq_throughput(tp));
  print("unix socket", unix_socket_throughput(tp));
  print("posix mq", posix_mq_throughput(tp));

  // Sizes past a transport's limits: SOCK_STREAM for the socket, "not measured" for POSIX mq.
  LatencyParams big = busy;
  big.size = 256 * 1024;
  big.samples = 200;
  print("unix socket 256 KiB, busy", unix_socket_latency(big));
  if (posix_mq_latency(big).samples != 0) {
    std::printf("posix mq 256 KiB: measured, expected 'not measured'\n");
    ++failures;
  } else {
    std::printf("%-28s not measured (over msgsize_max), as expected\n", "posix mq 256 KiB");
  }
  return failures == 0 ? 0 : 1;
}
