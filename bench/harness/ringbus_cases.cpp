// ringbus measured like the baselines: forked, pinned processes; RTT/2 per sample.
#include "harness/ringbus_cases.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <thread>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace ringbus::bench {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kTopicCapacity = std::uint64_t{4} << 20;

Topic make_topic(const BenchBus& bus, const std::string& name, std::uint32_t frame_alignment) {
  Bus b(bus.dir());
  (void)b.remove_topic(name);
  TopicOptions o;
  o.capacity = kTopicCapacity;
  o.frame_alignment = frame_alignment;
  auto t = b.create_topic(name, o);
  if (!t) {
    std::fprintf(stderr, "ringbus-bench: %s\n", t.error().message().c_str());
    std::exit(1);
  }
  return *t;
}

Topic open_topic(const BenchBus& bus, const std::string& name) {
  auto t = Bus(bus.dir()).open_topic(name);
  if (!t) {
    std::fprintf(stderr, "ringbus-bench: %s\n", t.error().message().c_str());
    std::exit(1);
  }
  return *t;
}

// Spins (busy) or sleeps on the futex (blocking) until one message arrives; returns false after
// 30 s without one.
bool receive_one(Subscriber& sub, WaitMode mode, std::byte* out, std::size_t size) {
  bool got = false;
  auto handler = [&](const Message& m) {
    std::memcpy(out, m.value.data(), std::min(size, m.value.size()));
    got = true;
  };
  if (mode == WaitMode::busy) {
    for (std::uint64_t spins = 0; !got; ++spins) {
      if (!sub.poll(handler, 1)) return false;
      if ((spins & 0xFFFFFF) == 0xFFFFFF && spins > (std::uint64_t{1} << 32)) return false;
    }
    return true;
  }
  while (!got) {
    auto r = sub.poll_wait(handler, 1, Wait::futex(30s));
    if (!r) return false;
  }
  return true;
}

void detail_relax() { __builtin_ia32_pause(); }

bool send_one(Producer& producer, const std::byte* data, std::size_t size) {
  for (;;) {
    auto claim = producer.try_claim(size);
    if (claim) {
      std::memcpy(claim->bytes().data(), data, size);
      return static_cast<bool>(claim->commit());
    }
    if (claim.code() != Errc::would_block) return false;
  }
}

// Publishes one batch, retrying while the ring is full.
bool send_batch(Producer& producer, std::span<const Record> records) {
  for (;;) {
    auto published = producer.try_publish_batch(records);
    if (published) return true;
    if (published.code() != Errc::would_block) return false;
  }
}

}  // namespace

BenchBus::BenchBus() {
  std::string pattern = "/dev/shm/ringbus-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  dir_ = pattern;
}

BenchBus::~BenchBus() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

LatencyStats ringbus_latency(const BenchBus& bus, const LatencyParams& p,
                             std::uint32_t frame_alignment) {
  Topic ping = make_topic(bus, "ping", frame_alignment);
  Topic pong = make_topic(bus, "pong", frame_alignment);
  auto* ready = static_cast<std::atomic<int>*>(shared_anonymous(sizeof(std::atomic<int>)));
  new (ready) std::atomic<int>(0);
  const std::uint64_t total = p.warmup + p.samples;
  pid_t echo = spawn_pinned(p.cores.b, [&] {
    auto sub = Subscriber::attach(open_topic(bus, "ping"), {});
    if (!sub) return 2;
    Producer producer(open_topic(bus, "pong"));
    ready->store(1);
    std::vector<std::byte> buf(p.size);
    for (std::uint64_t i = 0; i < total; ++i) {
      if (!receive_one(*sub, p.wait, buf.data(), p.size)) return 3;
      if (!send_one(producer, buf.data(), p.size)) return 4;
    }
    return 0;
  });
  pin(p.cores.a);
  auto sub = Subscriber::attach(pong, {});
  Producer producer(ping);
  while (ready->load() == 0) std::this_thread::yield();
  std::vector<std::byte> buf(p.size, std::byte{0x5A});
  std::vector<double> rtt;
  rtt.reserve(p.samples);
  for (std::uint64_t i = 0; i < total; ++i) {
    std::int64_t t0 = now_ns();
    if (!send_one(producer, buf.data(), p.size) || !receive_one(*sub, p.wait, buf.data(), p.size)) {
      break;
    }
    std::int64_t t1 = now_ns();
    if (i >= p.warmup) rtt.push_back(static_cast<double>(t1 - t0));
  }
  join(echo);
  return one_way_stats(rtt);
}

ThroughputStats ringbus_throughput(const BenchBus& bus, const ThroughputParams& p, int producers,
                                   int subscribers, std::uint32_t frame_alignment,
                                   std::uint32_t batch) {
  Topic topic = make_topic(bus, "stream", frame_alignment);
  struct Shared {
    std::atomic<int> attached;
    std::atomic<int> go;
    std::atomic<std::int64_t> slowest_ns;
  };
  auto* shared = static_cast<Shared*>(shared_anonymous(sizeof(Shared)));
  new (shared) Shared{{0}, {0}, {0}};
  const std::uint64_t per_producer =
      p.messages / static_cast<std::uint64_t>(producers) / batch * batch;
  const std::uint64_t total = per_producer * static_cast<std::uint64_t>(producers);
  std::vector<pid_t> children;
  for (int s = 0; s < subscribers; ++s) {
    const int core = spread_core(p, static_cast<std::size_t>(s), s == 0 ? p.cores.b : -1);
    children.push_back(spawn_pinned(core, [&] {
      auto sub = Subscriber::attach(open_topic(bus, "stream"), {});
      if (!sub) return 2;
      shared->attached.fetch_add(1);
      std::uint64_t received = 0;
      std::int64_t first = 0;
      std::uint64_t sink = 0;
      auto handler = [&](const Message& m) {
        if (received == 0) first = now_ns();
        sink += static_cast<std::uint64_t>(m.value[0]);  // touch the payload
        ++received;
      };
      while (received < total) {
        auto r = sub->poll_wait(handler, 256, Wait::busy_spin(30s));
        if (!r) return 3;
      }
      std::int64_t elapsed = now_ns() - first;
      std::int64_t prev = shared->slowest_ns.load();
      while (elapsed > prev && !shared->slowest_ns.compare_exchange_weak(prev, elapsed)) {
      }
      return sink == 0xFFFFFFFFFFFFFFFF ? 1 : 0;
    }));
  }
  while (shared->attached.load() < subscribers) std::this_thread::yield();
  for (int q = 0; q < producers; ++q) {
    const int core =
        spread_core(p, static_cast<std::size_t>(subscribers + q), q == 0 ? p.cores.a : -1);
    children.push_back(spawn_pinned(core, [&] {
      Producer producer(open_topic(bus, "stream"));
      std::vector<std::byte> value(p.size, std::byte{1});
      if (batch > 1) {
        const std::vector<Record> records(batch, Record{{}, {value.data(), value.size()}});
        for (std::uint64_t i = 0; i < per_producer; i += batch) {
          if (!send_batch(producer, records)) return 4;
        }
        return 0;
      }
      for (std::uint64_t i = 0; i < per_producer; ++i) {
        if (!send_one(producer, value.data(), p.size)) return 4;
      }
      return 0;
    }));
  }
  int failures = 0;
  for (pid_t pid : children) failures += join(pid) != 0;
  if (failures != 0) return {};
  return throughput_stats(total, p.size, static_cast<double>(shared->slowest_ns.load()) / 1e9);
}

ThroughputStats ringbus_group_throughput(const BenchBus& bus, const ThroughputParams& p,
                                         int members) {
  Topic topic = make_topic(bus, "queue", 64);
  struct Shared {
    std::atomic<int> joined;
    std::atomic<std::uint64_t> handled;
    std::atomic<std::int64_t> first_ns;
    std::atomic<std::int64_t> last_ns;
  };
  auto* shared = static_cast<Shared*>(shared_anonymous(sizeof(Shared)));
  new (shared) Shared{{0}, {0}, {0}, {0}};
  GroupOptions options;
  options.start = StartFrom::earliest();
  { (void)GroupMember::join(topic, "workers", options); }  // the group starts at offset 0
  std::vector<pid_t> children;
  for (int m = 0; m < members; ++m) {
    const int core = spread_core(p, static_cast<std::size_t>(m), m == 0 ? p.cores.b : -1);
    children.push_back(spawn_pinned(core, [&] {
      auto member = GroupMember::join(open_topic(bus, "queue"), "workers", options);
      if (!member) return 2;
      shared->joined.fetch_add(1);
      std::uint64_t sink = 0;
      while (shared->handled.load(std::memory_order_relaxed) < p.messages) {
        std::uint64_t last = 0;
        auto r = member->poll(
            [&](const Message& msg) {
              sink += static_cast<std::uint64_t>(msg.value[0]);
              last = msg.offset;
            },
            64);
        if (!r) return 3;
        if (r->messages == 0) {
          detail_relax();
          continue;
        }
        std::int64_t expected = 0;
        shared->first_ns.compare_exchange_strong(expected, now_ns());
        if (!member->ack_up_to(last)) return 4;
        if (shared->handled.fetch_add(r->messages) + r->messages >= p.messages) {
          shared->last_ns.store(now_ns());
        }
      }
      return sink == 0xFFFFFFFFFFFFFFFF ? 1 : 0;
    }));
  }
  while (shared->joined.load() < members) std::this_thread::yield();
  children.push_back(
      spawn_pinned(spread_core(p, static_cast<std::size_t>(members), p.cores.a), [&] {
        Producer producer(open_topic(bus, "queue"));
        std::vector<std::byte> value(p.size, std::byte{1});
        for (std::uint64_t i = 0; i < p.messages; ++i) {
          if (!send_one(producer, value.data(), p.size)) return 4;
        }
        return 0;
      }));
  int failures = 0;
  for (pid_t pid : children) failures += join(pid) != 0;
  if (failures != 0) return {};
  return throughput_stats(
      p.messages, p.size,
      static_cast<double>(shared->last_ns.load() - shared->first_ns.load()) / 1e9);
}

}  // namespace ringbus::bench
