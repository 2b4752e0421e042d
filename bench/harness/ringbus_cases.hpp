// The ringbus side of ringbus-bench: ping-pong latency and streaming throughput over real
// topics in a private bus directory, between pinned processes.
#pragma once

#include <string>

#include "harness/bench_common.hpp"

namespace ringbus::bench {

// A private bus directory under /dev/shm, removed at destruction.
class BenchBus {
 public:
  BenchBus();
  ~BenchBus();
  BenchBus(const BenchBus&) = delete;
  BenchBus& operator=(const BenchBus&) = delete;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Round trips over two topics (ping, pong): busy polling, or futex waits (p.wait).
// frame_alignment: the topics' frame alignment (64, the default, or 8).
LatencyStats ringbus_latency(const BenchBus& bus, const LatencyParams& p,
                             std::uint32_t frame_alignment = 64);

// `producers` producer processes stream p.messages in total to `subscribers` subscriber
// processes; the rate is the slowest subscriber's, first to last message. `batch` > 1: the
// producers publish batches of that many messages (Producer::try_publish_batch).
ThroughputStats ringbus_throughput(const BenchBus& bus, const ThroughputParams& p, int producers,
                                   int subscribers, std::uint32_t frame_alignment = 64,
                                   std::uint32_t batch = 1);

// One producer process streams p.messages to a queue group of `members` member processes
// (batches of 64, acked per batch); the rate is from the first to the last message handled.
ThroughputStats ringbus_group_throughput(const BenchBus& bus, const ThroughputParams& p,
                                         int members);

}  // namespace ringbus::bench
