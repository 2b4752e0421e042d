// Unix domain sockets: a socketpair between the two processes, SOCK_SEQPACKET (message
// boundaries kept) while a message fits the send buffer, SOCK_STREAM with full reads above that.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <vector>

#include "baselines/baselines.hpp"

namespace ringbus::bench {
namespace {

// Linux refuses a SOCK_SEQPACKET message longer than the send buffer less this (EMSGSIZE).
constexpr int kSeqpacketOverhead = 32;

// Both ends of a socketpair; each process closes the end it does not use, so that the death of
// one side shows as end-of-file (or EPIPE) on the other.
class SocketPair {
 public:
  SocketPair() = default;
  ~SocketPair() {
    close_end(0);
    close_end(1);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;

  // Busy mode makes both ends non-blocking; blocking mode bounds every call by kStallTimeout.
  bool open(std::size_t size, WaitMode mode) {
    if (!make(SOCK_SEQPACKET)) return false;
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    if (getsockopt(fd_[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) != 0 ||
        size + kSeqpacketOverhead > static_cast<std::size_t>(sndbuf)) {
      close_end(0);
      close_end(1);
      stream_ = true;
      if (!make(SOCK_STREAM)) return false;
    }
    for (const int fd : fd_) {
      if (mode == WaitMode::busy) {
        // The flag lives in the open file description, which the child shares after fork.
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return fail("fcntl");
      } else {
        const timeval tv{static_cast<time_t>(kStallTimeout.count()), 0};
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
          return fail("setsockopt");
        }
      }
    }
    return true;
  }

  int fd(int end) const { return fd_[end]; }
  bool stream() const { return stream_; }
  void close_end(int end) {
    if (fd_[end] >= 0) ::close(fd_[end]);
    fd_[end] = -1;
  }

 private:
  bool make(int type) {
    if (socketpair(AF_UNIX, type, 0, fd_) == 0) return true;
    return fail("socketpair");
  }
  static bool fail(const char* what) {
    std::fprintf(stderr, "ringbus-bench: unix socket: %s: %s\n", what, std::strerror(errno));
    return false;
  }

  int fd_[2] = {-1, -1};
  bool stream_ = false;
};

// Runs `step` (true once finished, successfully or not) to the end: spinning through EAGAIN in
// busy mode, bounded by kStallTimeout; in blocking mode the socket timeouts bound each call.
template <class Step>
bool drive(Step&& step, WaitMode mode) {
  if (mode == WaitMode::busy) return spin_until(step);
  while (!step()) {
  }
  return true;
}

bool write_message(int fd, const std::byte* data, std::size_t size, WaitMode mode) {
  std::size_t done = 0;
  bool failed = false;
  const auto step = [&] {
    const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += static_cast<std::size_t>(n);
      return done == size;
    }
    if (errno == EINTR || (errno == EAGAIN && mode == WaitMode::busy)) return false;
    failed = true;  // EPIPE: the peer is gone; EAGAIN when blocking: SO_SNDTIMEO expired
    return true;
  };
  return drive(step, mode) && !failed;
}

bool read_message(int fd, std::byte* data, std::size_t size, WaitMode mode, bool stream) {
  std::size_t done = 0;
  bool failed = false;
  const auto step = [&] {
    const ssize_t n = ::recv(fd, data + done, size - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      if (!stream && done != size) failed = true;  // a datagram of the wrong size
      return failed || done == size;
    }
    if (n < 0 && (errno == EINTR || (errno == EAGAIN && mode == WaitMode::busy))) return false;
    failed = true;  // 0: the peer is gone; EAGAIN when blocking: SO_RCVTIMEO expired
    return true;
  };
  return drive(step, mode) && !failed;
}

}  // namespace

LatencyStats unix_socket_latency(const LatencyParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  const std::uint64_t rounds = p.warmup + p.samples;
  SocketPair pair;
  if (!pair.open(size, p.wait)) return {};

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    pair.close_end(0);
    const int fd = pair.fd(1);
    std::vector<std::byte> buf(size);
    for (std::uint64_t i = 0; i < rounds; ++i) {
      if (!read_message(fd, buf.data(), size, p.wait, pair.stream())) return 1;
      if (!write_message(fd, buf.data(), size, p.wait)) return 1;
    }
    return 0;
  });
  if (child < 0) return {};
  pair.close_end(1);
  pin(p.cores.a);

  const int fd = pair.fd(0);
  std::vector<std::byte> out(size, std::byte{0x5a});
  std::vector<std::byte> in(size);
  std::vector<double> rtt;
  rtt.reserve(p.samples);
  bool ok = true;
  for (std::uint64_t i = 0; i < rounds && ok; ++i) {
    std::memcpy(out.data(), &i, std::min(size, sizeof i));
    const std::int64_t t0 = now_ns();
    ok = write_message(fd, out.data(), size, p.wait) &&
         read_message(fd, in.data(), size, p.wait, pair.stream());
    const std::int64_t t1 = now_ns();
    ok = ok && std::memcmp(in.data(), out.data(), size) == 0;
    if (i >= p.warmup) rtt.push_back(static_cast<double>(t1 - t0));
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return one_way_stats(rtt);
}

// Both sides busy-poll (non-blocking sockets), like the other throughput cases.
ThroughputStats unix_socket_throughput(const ThroughputParams& p) {
  const std::size_t size = std::max<std::size_t>(p.size, 1);
  const std::uint64_t n = p.messages;
  if (n == 0) return {};
  SocketPair pair;
  if (!pair.open(size, WaitMode::busy)) return {};
  SharedRegion region(sizeof(ConsumerReport));
  auto* report = new (region.data()) ConsumerReport{};

  const pid_t child = spawn_pinned(p.cores.b, [&] {
    pair.close_end(0);
    const int fd = pair.fd(1);
    std::vector<std::byte> buf(size);
    report->mark_ready();
    std::int64_t start = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!read_message(fd, buf.data(), size, WaitMode::busy, pair.stream())) return 1;
      if (i == 0) start = now_ns();
    }
    report->report(now_ns() - start);
    return 0;
  });
  if (child < 0) return {};
  pair.close_end(1);
  pin(p.cores.a);

  const int fd = pair.fd(0);
  std::vector<std::byte> payload(size, std::byte{0x5a});
  bool ok = spin_until([&] { return report->is_ready(); });
  for (std::uint64_t i = 0; i < n && ok; ++i) {
    ok = write_message(fd, payload.data(), size, WaitMode::busy);
  }
  if (end_child(child, ok) != 0 || !ok) return {};
  return throughput_stats(n, size, report->seconds());
}

}  // namespace ringbus::bench
