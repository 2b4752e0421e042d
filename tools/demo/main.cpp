// ringbus-demo: creates a topic on the default bus, forks a pinned producer and subscribers,
// and prints what they received with a one-line latency and throughput summary.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace {

using namespace std::chrono_literals;
using ringbus::as_bytes;

constexpr const char* kTopic = "demo.orders";
constexpr std::uint64_t kThroughputMessages = 1'000'000;
constexpr std::uint64_t kLatencyMessages = 20'000;
constexpr std::size_t kValueSize = 64;
constexpr int kSubscribers = 2;

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void die(const std::string& what, const ringbus::Error& e) {
  std::fprintf(stderr, "ringbus-demo: %s: %s\n", what.c_str(), e.message().c_str());
  // Other threads may be running: no exit() handlers, but what was printed goes out.
  std::fflush(nullptr);
  std::_Exit(1);
}

// One subscriber process: reads every message, checks order, measures one-way latency of the
// paced phase (frame timestamp to receipt; same host, same clock).
// What each child reports to the parent for the summary line.
struct Report {
  double messages_per_second = 0;
  std::int64_t p50_ns = 0;
  std::int64_t p99_ns = 0;
};

void send_report(int fd, const Report& r) { (void)!::write(fd, &r, sizeof r); }

// Subscriber 1 busy-spins on the consumer core (the latency figure); subscriber 2 is not pinned
// and sleeps on the topic's futex when idle, so it leaves that core alone.
int run_subscriber(const ringbus::Topic& topic, int index, int cpu, int report_fd, int result_fd) {
  const bool busy = index == 1;
  if (!busy) cpu = -1;
  if (cpu >= 0) (void)ringbus::pin_this_thread(cpu);
  ringbus::SubscriberOptions options;
  options.start = ringbus::StartFrom::earliest();
  auto sub = ringbus::Subscriber::attach(topic, options);
  if (!sub) die("attach subscriber", sub.error());
  (void)!::write(report_fd, "r", 1);  // attached
  const std::uint64_t total = kThroughputMessages + kLatencyMessages;
  std::uint64_t received = 0;
  bool in_order = true;
  std::string first;
  std::string last;
  std::vector<std::int64_t> latency;
  latency.reserve(kLatencyMessages);
  while (received < total) {
    auto r = sub->poll_wait(
        [&](const ringbus::Message& m) {
          in_order = in_order && m.sequence == received;
          if (received == 0) first = ringbus::as_string(m.value).substr(0, 24);
          if (received >= kThroughputMessages) latency.push_back(now_ns() - m.timestamp_ns);
          if (received + 1 == total) last = ringbus::as_string(m.value).substr(0, 24);
          ++received;
        },
        256, busy ? ringbus::Wait::busy_spin(30s) : ringbus::Wait::futex(30s));
    if (!r) die("subscriber " + std::to_string(index), r.error());
  }
  std::sort(latency.begin(), latency.end());
  auto pct = [&](double p) {
    auto at = static_cast<std::size_t>(p * static_cast<double>(latency.size()));
    return latency[std::min(latency.size() - 1, at)];
  };
  std::printf(
      "  subscriber %d (pid %d, cpu %d): received %llu/%llu, %s; first \"%s\", last \"%s\"\n",
      index, ::getpid(), cpu, static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(total), in_order ? "in order" : "OUT OF ORDER", first.c_str(),
      last.c_str());
  std::printf(
      "  subscriber %d one-way latency (paced, %s): p50 %lld ns, p99 %lld ns, max %lld ns\n", index,
      busy ? "busy-spin" : "futex", static_cast<long long>(pct(0.50)),
      static_cast<long long>(pct(0.99)), static_cast<long long>(latency.back()));
  std::fflush(stdout);
  if (busy) send_report(result_fd, {0, pct(0.50), pct(0.99)});
  return in_order && received == total ? 0 : 1;
}

// One member of the queue group "billing": handles its share of the messages, acknowledging
// each batch after processing it; records every sequence number it saw in shared memory.
constexpr int kMembers = 2;
constexpr const char* kGroup = "billing";

int run_member(const ringbus::Topic& topic, int index, std::uint8_t* seen,
               std::uint64_t* handled_total) {
  auto member = ringbus::GroupMember::join(topic, kGroup);
  if (!member) die("join group", member.error());
  const std::uint64_t total = kThroughputMessages + kLatencyMessages;
  std::uint64_t handled = 0;
  while (__atomic_load_n(handled_total, __ATOMIC_ACQUIRE) < total) {
    std::uint64_t last = 0;
    auto r = member->poll_wait(
        [&](const ringbus::Message& m) {
          if (m.sequence < total) __atomic_fetch_add(&seen[m.sequence], 1, __ATOMIC_RELAXED);
          last = m.offset;
        },
        64, ringbus::Wait::futex(std::chrono::milliseconds(100)));
    if (!r) {
      if (r.code() == ringbus::Errc::timed_out) continue;
      die("group member " + std::to_string(index), r.error());
    }
    if (r->messages == 0) continue;
    if (auto acked = member->ack_up_to(last); !acked) die("ack", acked.error());
    handled += r->messages;
    __atomic_fetch_add(handled_total, r->messages, __ATOMIC_RELEASE);
  }
  std::printf("  group %s member %d (pid %d): handled %llu messages\n", kGroup, index, ::getpid(),
              static_cast<unsigned long long>(handled));
  std::fflush(stdout);
  return 0;
}

int run_producer(const ringbus::Topic& topic, int cpu, int result_fd) {
  if (cpu >= 0) (void)ringbus::pin_this_thread(cpu);
  ringbus::Producer producer(topic);
  char value[kValueSize];
  auto start = std::chrono::steady_clock::now();
  for (std::uint64_t i = 0; i < kThroughputMessages; ++i) {
    std::memset(value, ' ', sizeof value);
    std::snprintf(value, sizeof value, "order %llu qty %llu", static_cast<unsigned long long>(i),
                  static_cast<unsigned long long>(i % 100 + 1));
    auto r =
        producer.publish({}, ringbus::ConstBytes(reinterpret_cast<std::byte*>(value), sizeof value),
                         ringbus::Wait::spin_yield(30s));
    if (!r) die("publish", r.error());
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Paced phase for latency: one message every 20 us, so queues stay empty.
  for (std::uint64_t i = 0; i < kLatencyMessages; ++i) {
    auto until = std::chrono::steady_clock::now() + 20us;
    while (std::chrono::steady_clock::now() < until) {
    }
    std::snprintf(value, sizeof value, "paced %llu", static_cast<unsigned long long>(i));
    if (auto r = producer.publish(
            {}, ringbus::ConstBytes(reinterpret_cast<std::byte*>(value), sizeof value));
        !r) {
      die("publish", r.error());
    }
  }
  std::printf(
      "  producer (pid %d, cpu %d): %llu x %zu B in %.3f s = %.2f M msg/s, %.1f MB/s "
      "(to %d subscribers)\n",
      ::getpid(), cpu, static_cast<unsigned long long>(kThroughputMessages), kValueSize, seconds,
      kThroughputMessages / seconds / 1e6, kThroughputMessages * kValueSize / seconds / 1e6,
      kSubscribers);
  std::fflush(stdout);
  send_report(result_fd, {kThroughputMessages / seconds, 0, 0});
  return 0;
}

}  // namespace

int main() {
  ringbus::Bus bus;
  std::printf("ringbus demo: bus directory %s\n", bus.directory().c_str());
  (void)bus.remove_topic(kTopic);
  ringbus::TopicOptions options;
  options.capacity = 1 << 20;
  auto topic = bus.create_topic(kTopic, options);
  if (!topic) die("create topic", topic.error());
  std::printf("  topic %s: %llu-byte ring, policy %s\n", kTopic,
              static_cast<unsigned long long>(topic->config().capacity),
              std::string(ringbus::to_string(topic->config().policy)).c_str());

  auto pair = ringbus::pick_core_pair();
  int producer_cpu = pair ? pair->producer : -1;
  int consumer_cpu = pair ? pair->consumer : -1;
  std::printf("  cores: producer %d, subscribers %d (shared cache: %s)\n", producer_cpu,
              consumer_cpu, pair ? pair->shared_cache.c_str() : "unknown");
  std::fflush(stdout);

  int ready[2];
  int results[2];
  if (::pipe(ready) != 0 || ::pipe(results) != 0) return 1;
  std::vector<pid_t> children;
  for (int i = 1; i <= kSubscribers; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(run_subscriber(*topic, i, consumer_cpu, ready[1], results[1]));
    children.push_back(pid);
  }
  for (int i = 0; i < kSubscribers; ++i) {
    char c = 0;
    if (::read(ready[0], &c, 1) != 1) return 1;
  }
  // A queue group of two members: every message goes to exactly one of them.
  const std::uint64_t total = kThroughputMessages + kLatencyMessages;
  void* shared =
      ::mmap(nullptr, total + 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return 1;
  auto* handled_total = static_cast<std::uint64_t*>(shared);
  auto* seen = static_cast<std::uint8_t*>(shared) + 64;
  ringbus::GroupOptions group_options;
  group_options.start = ringbus::StartFrom::earliest();
  if (auto g = ringbus::GroupMember::join(*topic, kGroup, group_options); !g) {
    die("create group", g.error());
  }
  for (int i = 1; i <= kMembers; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) ::_exit(run_member(*topic, i, seen, handled_total));
    children.push_back(pid);
  }
  pid_t producer = ::fork();
  if (producer == 0) ::_exit(run_producer(*topic, producer_cpu, results[1]));
  children.push_back(producer);

  int failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  ::close(results[1]);
  Report summary;
  Report r;
  while (::read(results[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r)) {
    summary.messages_per_second = std::max(summary.messages_per_second, r.messages_per_second);
    summary.p50_ns = std::max(summary.p50_ns, r.p50_ns);
    summary.p99_ns = std::max(summary.p99_ns, r.p99_ns);
  }
  std::uint64_t once = 0;
  for (std::uint64_t i = 0; i < total; ++i) once += seen[i] == 1;
  std::printf("  group %s: %llu of %llu messages handled exactly once\n", kGroup,
              static_cast<unsigned long long>(once), static_cast<unsigned long long>(total));
  if (once != total) ++failures;
  auto snap = topic->snapshot();
  std::printf(
      "ringbus demo: %s: %llu messages, 1 producer -> %d subscribers + a group of 2, %.2f M msg/s "
      "(%zu B), one-way latency (busy-spin subscriber) p50 %lld ns p99 %lld ns\n",
      failures == 0 ? "ok" : "FAILED", static_cast<unsigned long long>(snap.messages), kSubscribers,
      summary.messages_per_second / 1e6, kValueSize, static_cast<long long>(summary.p50_ns),
      static_cast<long long>(summary.p99_ns));
  (void)bus.remove_topic(kTopic);
  return failures == 0 ? 0 : 1;
}
