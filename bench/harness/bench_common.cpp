// Shared pieces of ringbus-bench: statistics, pinned child processes, shared memory.
#include "harness/bench_common.hpp"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <exception>
#include <thread>

#include "ringbus/pin.hpp"

namespace ringbus::bench {

LatencyStats one_way_stats(std::vector<double>& round_trips_ns) {
  LatencyStats s;
  if (round_trips_ns.empty()) return s;
  std::sort(round_trips_ns.begin(), round_trips_ns.end());
  const std::size_t last = round_trips_ns.size() - 1;
  const auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(std::floor(q * static_cast<double>(last)));
    return round_trips_ns[std::min(i, last)] / 2;
  };
  s.samples = round_trips_ns.size();
  s.p50 = at(0.5);
  s.p90 = at(0.9);
  s.p99 = at(0.99);
  s.p999 = at(0.999);
  s.p9999 = at(0.9999);
  s.max = round_trips_ns[last] / 2;
  return s;
}

ThroughputStats throughput_stats(std::uint64_t messages, std::size_t size, double seconds) {
  ThroughputStats s;
  s.messages = messages;
  s.seconds = seconds;
  if (seconds > 0) {
    s.messages_per_second = static_cast<double>(messages) / seconds;
    s.bytes_per_second = s.messages_per_second * static_cast<double>(size);
  }
  return s;
}

pid_t spawn_pinned(int cpu, const std::function<int()>& body) {
  const pid_t parent = getpid();
  // Unflushed stdio output would otherwise be written twice, once by each process.
  fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "ringbus-bench: fork failed: %s\n", strerror(errno));
    return -1;
  }
  if (pid > 0) return pid;
  // The child must not outlive the parent spinning on a core: die with it. (The signal follows
  // the forking thread, which is the one that joins the child.)
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(126);
  pin(cpu);
  int code = 125;
  try {
    code = body();
  } catch (const std::exception& e) {
    fprintf(stderr, "ringbus-bench: child failed: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "ringbus-bench: child failed with an unknown exception\n");
  }
  fflush(nullptr);
  _exit(code);
}

int join(pid_t pid, std::chrono::seconds timeout) {
  if (pid <= 0) return -1;
  const std::int64_t deadline = now_ns() + std::chrono::nanoseconds(timeout).count();
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0 && errno != EINTR) return -1;  // not our child (ECHILD)
    if (now_ns() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return -1;
}

int end_child(pid_t pid, bool parent_ok) {
  if (pid > 0 && !parent_ok) kill(pid, SIGKILL);
  return join(pid);
}

bool join_pair(pid_t a, pid_t b) {
  if (a <= 0 || b <= 0) {
    end_child(a, false);
    end_child(b, false);
    return false;
  }
  // The watcher sleeps in poll() on pidfds, so it never wakes on the children's cores while
  // they run; without pidfds it checks every 10 ms.
  struct Child {
    pid_t pid;
    int pidfd;
  } children[2] = {{a, static_cast<int>(syscall(SYS_pidfd_open, a, 0))},
                   {b, static_cast<int>(syscall(SYS_pidfd_open, b, 0))}};
  bool ok = true;
  for (int running = 2;;) {
    for (Child& c : children) {
      if (c.pid <= 0) continue;
      int status = 0;
      const pid_t r = waitpid(c.pid, &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      c.pid = -1;
      if (c.pidfd >= 0) close(c.pidfd);
      c.pidfd = -1;
      --running;
      if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ok = false;
        for (const Child& other : children) {
          if (other.pid > 0) kill(other.pid, SIGKILL);
        }
      }
    }
    if (running == 0) return ok;
    pollfd fds[2];
    nfds_t n = 0;
    bool all_pidfds = true;
    for (const Child& c : children) {
      if (c.pid <= 0) continue;
      all_pidfds = all_pidfds && c.pidfd >= 0;
      fds[n++] = pollfd{c.pidfd, POLLIN, 0};
    }
    if (all_pidfds) {
      poll(fds, n, -1);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

void pin(int cpu) {
  if (cpu < 0) return;
  (void)pin_this_thread(cpu);
}

void* shared_anonymous(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    fprintf(stderr, "ringbus-bench: mmap of %zu shared bytes failed: %s\n", bytes, strerror(errno));
    abort();
  }
  return p;
}

SharedRegion::SharedRegion(std::size_t bytes) : data_(shared_anonymous(bytes)), bytes_(bytes) {}

SharedRegion::~SharedRegion() { munmap(data_, bytes_); }

}  // namespace ringbus::bench
