// The transports ringbus is compared with, measured in the same run with the same pinning.
#pragma once

#include "harness/bench_common.hpp"

namespace ringbus::bench {

// Physical limits: two processes bounce flags in shared memory.
// Same line: ping and pong flags in one cache line. Split line: on two lines (the ring pattern).
LatencyStats cache_line_same(const LatencyParams& p);
LatencyStats cache_line_split(const LatencyParams& p);
// A minimal single-producer single-consumer copy ring of fixed slots of p.size bytes that
// publishes its cursors every 32 messages: the throughput limit.
ThroughputStats copy_ring(const ThroughputParams& p);
// A bare futex ping-pong between two processes (blocking wake-up limit).
LatencyStats futex_pingpong(const LatencyParams& p);

// Boost.Interprocess message_queue: blocking send/receive, or busy-polling try_receive.
LatencyStats boost_mq_latency(const LatencyParams& p);
ThroughputStats boost_mq_throughput(const ThroughputParams& p);

// Unix domain socket (SOCK_SEQPACKET socketpair): blocking, or non-blocking busy-poll recv.
LatencyStats unix_socket_latency(const LatencyParams& p);
ThroughputStats unix_socket_throughput(const ThroughputParams& p);

// POSIX message queues (mq_open): blocking, or O_NONBLOCK busy-poll mq_receive.
LatencyStats posix_mq_latency(const LatencyParams& p);
ThroughputStats posix_mq_throughput(const ThroughputParams& p);

}  // namespace ringbus::bench
