// ringbus-bench: ringbus latency and throughput between pinned processes, side by side with
// the physical limits and the usual IPC transports, all measured in this one run.
#include <sched.h>
#include <sys/utsname.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "baselines/baselines.hpp"
#include "harness/ringbus_cases.hpp"
#include "ringbus/pin.hpp"

namespace ringbus::bench {
namespace {

struct LatencyRow {
  std::string transport;
  std::size_t size;
  std::string wait;  // "busy" or "blocking"
  LatencyStats stats;
};

struct ThroughputRow {
  std::string transport;
  std::size_t size;
  int producers;
  int subscribers;
  ThroughputStats stats;
};

struct Options {
  bool quick = false;
  std::string json_path;
  std::uint64_t samples = 1'000'000;
  std::uint64_t blocking_samples = 100'000;
  std::uint64_t messages = 2'000'000;
  std::vector<std::size_t> sizes{32, 64, 1024, 16384};
  bool blocking = true;
  std::string only;  // run only the transports whose name contains this
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

const LatencyRow* find(const std::vector<LatencyRow>& rows, const std::string& transport,
                       std::size_t size) {
  for (const auto& r : rows) {
    if (r.transport == transport && r.size == size && r.stats.samples > 0) return &r;
  }
  return nullptr;
}

const ThroughputRow* find(const std::vector<ThroughputRow>& rows, const std::string& transport,
                          std::size_t size) {
  for (const auto& r : rows) {
    if (r.transport == transport && r.size == size && r.stats.messages > 0) return &r;
  }
  return nullptr;
}

void print_latency_table(const std::vector<LatencyRow>& rows, std::size_t size,
                         const std::string& wait, const std::string& baseline) {
  const LatencyRow* base = find(rows, baseline, size);
  std::printf("\nlatency, one-way = RTT/2 in ns, %zu B, %s wait (ratio: p50 and p99 / %s)\n", size,
              wait.c_str(), baseline.c_str());
  std::printf("  %-28s %9s %9s %9s %9s %9s %10s %8s %8s\n", "transport", "p50", "p90", "p99",
              "p99.9", "p99.99", "max", "x p50", "x p99");
  for (const auto& r : rows) {
    if (r.size != size || r.wait != wait) continue;
    if (r.stats.samples == 0) {
      std::printf("  %-28s %9s\n", r.transport.c_str(), "n/a");
      continue;
    }
    const auto& s = r.stats;
    std::printf("  %-28s %9.0f %9.0f %9.0f %9.0f %9.0f %10.0f", r.transport.c_str(), s.p50, s.p90,
                s.p99, s.p999, s.p9999, s.max);
    if (base != nullptr) {
      std::printf(" %7.2fx %7.2fx", s.p50 / base->stats.p50, s.p99 / base->stats.p99);
    }
    std::printf("\n");
  }
}

void print_throughput_table(const std::vector<ThroughputRow>& rows, std::size_t size) {
  const ThroughputRow* base = find(rows, "copy ring (limit)", size);
  const ThroughputRow* boost = find(rows, "boost message_queue", size);
  std::printf("\nthroughput, %zu B messages (ratio to the copy-ring limit and to Boost mq)\n",
              size);
  std::printf("  %-28s %5s %5s %12s %10s %9s %9s\n", "transport", "prod", "subs", "msg/s", "MB/s",
              "x limit", "x boost");
  for (const auto& r : rows) {
    if (r.size != size) continue;
    if (r.stats.messages == 0) {
      std::printf("  %-28s %5d %5d %12s\n", r.transport.c_str(), r.producers, r.subscribers, "n/a");
      continue;
    }
    std::printf("  %-28s %5d %5d %12.0f %10.1f", r.transport.c_str(), r.producers, r.subscribers,
                r.stats.messages_per_second, r.stats.bytes_per_second / 1e6);
    if (base != nullptr) {
      std::printf(" %8.2fx", r.stats.messages_per_second / base->stats.messages_per_second);
    }
    if (boost != nullptr) {
      std::printf(" %8.1fx", r.stats.messages_per_second / boost->stats.messages_per_second);
    }
    std::printf("\n");
  }
}

nlohmann::json to_json(const LatencyStats& s) {
  return {{"samples", s.samples}, {"p50", s.p50},      {"p90", s.p90}, {"p99", s.p99},
          {"p99_9", s.p999},      {"p99_99", s.p9999}, {"max", s.max}};
}

// Target checks from the benchmark issue, for 64-byte messages.
nlohmann::json check_targets(const std::vector<LatencyRow>& lat,
                             const std::vector<ThroughputRow>& thr, bool print) {
  nlohmann::json out = nlohmann::json::object();
  // `name`: the key in the JSON `targets` object; `what`: the ratio, for the printed table.
  auto report = [&](const std::string& name, const std::string& what, double value, double target,
                    bool at_most) {
    bool ok = at_most ? value <= target : value >= target;
    out[name] = {{"value", value}, {"target", target}, {"met", ok}};
    if (print) {
      std::printf("  %-24s %-52s %8.2f  (%s %.2f)  %s\n", name.c_str(), what.c_str(), value,
                  at_most ? "<=" : ">=", target, ok ? "met" : "MISSED");
    }
  };
  if (print) std::printf("\ntargets (64 B, same run)\n");
  const LatencyRow* rb = find(lat, "ringbus", 64);
  const LatencyRow* split = find(lat, "split-line limit", 64);
  if (rb != nullptr && split != nullptr) {
    report("latency_p50_ratio", "ringbus p50 / split-line limit p50",
           rb->stats.p50 / split->stats.p50, 1.1, true);
    report("latency_p99_ratio", "ringbus p99 / split-line limit p99",
           rb->stats.p99 / split->stats.p99, 1.5, true);
  }
  double best_kernel = 0;
  for (const char* t : {"boost message_queue (poll)", "unix socket (poll)", "posix mq (poll)"}) {
    if (const auto* k = find(lat, t, 64); k != nullptr) {
      best_kernel = best_kernel == 0 ? k->stats.p50 : std::min(best_kernel, k->stats.p50);
    }
  }
  if (rb != nullptr && best_kernel > 0) {
    report("latency_vs_kernel", "best busy-polling kernel transport p50 / ringbus p50",
           best_kernel / rb->stats.p50, 8.0, false);
  }
  const LatencyRow* rb_futex = find(lat, "ringbus (futex)", 64);
  const LatencyRow* bare_futex = find(lat, "bare futex ping-pong", 64);
  if (rb_futex != nullptr && bare_futex != nullptr) {
    report("futex_p50_ratio", "ringbus futex p50 / bare futex p50",
           rb_futex->stats.p50 / bare_futex->stats.p50, 1.2, true);
  }
  const ThroughputRow* rb_thr = nullptr;
  for (const auto& r : thr) {
    if (r.transport == "ringbus" && r.size == 64 && r.producers == 1 && r.subscribers == 1) {
      rb_thr = &r;
    }
  }
  const ThroughputRow* ring = find(thr, "copy ring (limit)", 64);
  const ThroughputRow* boost = find(thr, "boost message_queue", 64);
  if (rb_thr != nullptr && rb_thr->stats.messages > 0 && ring != nullptr) {
    report("throughput_1p1s", "ringbus 1P1S msg/s / copy-ring limit",
           rb_thr->stats.messages_per_second / ring->stats.messages_per_second, 0.5, false);
  }
  const ThroughputRow* rb_batch = find(thr, "ringbus batches of 32", 64);
  if (rb_batch != nullptr && rb_batch->stats.messages > 0 && ring != nullptr) {
    report("throughput_1p1s_batch", "ringbus batches of 32 msg/s / copy-ring limit",
           rb_batch->stats.messages_per_second / ring->stats.messages_per_second, 0.8, false);
  }
  if (rb_thr != nullptr && rb_thr->stats.messages > 0 && boost != nullptr) {
    report("throughput_vs_boost_mq", "ringbus 1P1S msg/s / Boost message_queue",
           rb_thr->stats.messages_per_second / boost->stats.messages_per_second, 10.0, false);
  }
  return out;
}

// The CPUs this process may run on, in order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// --scaling: streaming throughput with many producer and subscriber processes (and queue-group
// members), one pinned core each, beside the 1P1S copy-ring limit and Boost message_queue of
// the same run. Meant for machines with many cores; shapes that need more processes than
// cores are skipped.
int run_scaling(const Options& o) {
  const std::vector<int> cpus = allowed_cpus();
  const int n = static_cast<int>(cpus.size());
  auto pair = pick_core_pair();
  Cores cores{pair ? pair->producer : -1, pair ? pair->consumer : -1};
  utsname uts{};
  ::uname(&uts);
  std::printf("ringbus-bench --scaling: %s; %d cores; kernel %s\n", cpu_model().c_str(), n,
              uts.release);
  std::fflush(stdout);
  BenchBus bus;
  std::vector<ThroughputRow> thr;
  for (std::size_t size : o.sizes) {
    ThroughputParams base;
    base.size = size;
    base.cores = cores;
    base.messages = size >= 16384 ? o.messages / 10 : o.messages;
    auto stream = [&](const std::string& name, int producers, int subscribers, auto&& fn) {
      if (producers + subscribers > n) return;
      ThroughputParams p = base;
      p.spread = cpus;
      std::fprintf(stderr, "  throughput %-22s %6zu B %dP%dS ...\n", name.c_str(), size, producers,
                   subscribers);
      thr.push_back({name, size, producers, subscribers, fn(p)});
    };
    thr.push_back({"copy ring (limit)", size, 1, 1, copy_ring(base)});
    thr.push_back({"boost message_queue", size, 1, 1, boost_mq_throughput(base)});
    const std::pair<int, int> shapes[] = {{1, 1}, {2, 1}, {4, 1},  {8, 1}, {14, 1}, {1, 2},
                                          {1, 4}, {1, 8}, {1, 14}, {2, 2}, {4, 4},  {8, 7}};
    for (auto [producers, subscribers] : shapes) {
      stream("ringbus", producers, subscribers, [&](const ThroughputParams& p) {
        return ringbus_throughput(bus, p, producers, subscribers);
      });
    }
    for (int members : {1, 2, 4, 8, 14}) {
      stream("ringbus group", 1, members,
             [&](const ThroughputParams& p) { return ringbus_group_throughput(bus, p, members); });
    }
    const ThroughputRow* one = nullptr;
    for (const auto& r : thr) {
      if (r.transport == "ringbus" && r.size == size && r.producers == 1 && r.subscribers == 1) {
        one = &r;
      }
    }
    const ThroughputRow* limit = find(thr, "copy ring (limit)", size);
    std::printf(
        "\nscaling, %zu B messages (msg/s counts each message once, however many readers"
        " get it)\n",
        size);
    std::printf("  %-22s %3s %3s %14s %12s %14s\n", "transport", "P", "S", "msg/s", "x ringbus 1:1",
                "x copy limit");
    for (const auto& r : thr) {
      if (r.size != size) continue;
      if (r.stats.messages == 0) {
        std::printf("  %-22s %3d %3d %14s\n", r.transport.c_str(), r.producers, r.subscribers,
                    "failed");
        continue;
      }
      const double x1 = one != nullptr && one->stats.messages > 0
                            ? r.stats.messages_per_second / one->stats.messages_per_second
                            : 0;
      const double xl = limit != nullptr && limit->stats.messages > 0
                            ? r.stats.messages_per_second / limit->stats.messages_per_second
                            : 0;
      std::printf("  %-22s %3d %3d %14.0f %12.2fx %13.3fx\n", r.transport.c_str(), r.producers,
                  r.subscribers, r.stats.messages_per_second, x1, xl);
    }
  }
  if (!o.json_path.empty()) {
    nlohmann::json j;
    j["schema"] = 1;
    j["mode"] = "scaling";
    j["cpu"] = cpu_model();
    j["cores"] = n;
    for (const auto& r : thr) {
      j["throughput"].push_back({{"transport", r.transport},
                                 {"size", r.size},
                                 {"producers", r.producers},
                                 {"subscribers", r.subscribers},
                                 {"messages_per_second", r.stats.messages_per_second}});
    }
    std::ofstream(o.json_path) << j.dump(2) << "\n";
    std::printf("\nwrote %s\n", o.json_path.c_str());
  }
  return 0;
}

int run(const Options& o) {
  auto pair = pick_core_pair();
  Cores cores{pair ? pair->producer : -1, pair ? pair->consumer : -1};
  utsname uts{};
  ::uname(&uts);
  std::printf("ringbus-bench: %s; cores %d and %d (shared cache %s); kernel %s%s\n",
              cpu_model().c_str(), cores.a, cores.b, pair ? pair->shared_cache.c_str() : "?",
              uts.release, o.quick ? "; --quick" : "");
  std::fflush(stdout);
  BenchBus bus;
  std::vector<LatencyRow> lat;
  std::vector<ThroughputRow> thr;
  using LatencyFn = std::function<LatencyStats(const LatencyParams&)>;
  auto measure = [&](const std::string& name, std::size_t size, WaitMode wait,
                     const LatencyFn& fn) {
    LatencyParams p;
    p.size = size;
    p.wait = wait;
    p.cores = cores;
    p.samples = wait == WaitMode::busy ? o.samples : o.blocking_samples;
    p.warmup = std::min<std::uint64_t>(p.samples / 10, 10'000);
    if (!o.only.empty() && name.find(o.only) == std::string::npos) return;
    std::fprintf(stderr, "  latency %-28s %6zu B ...\n", name.c_str(), size);
    lat.push_back({name, size, wait == WaitMode::busy ? "busy" : "blocking", fn(p)});
  };
  using ThroughputFn = std::function<ThroughputStats(const ThroughputParams&)>;
  auto stream = [&](const std::string& name, std::size_t size, int producers, int subscribers,
                    const ThroughputFn& fn) {
    ThroughputParams p;
    p.size = size;
    p.cores = cores;
    p.messages = size >= 16384 ? o.messages / 10 : o.messages;
    if (!o.only.empty() && name.find(o.only) == std::string::npos) return;
    std::fprintf(stderr, "  throughput %-25s %6zu B %dP%dS ...\n", name.c_str(), size, producers,
                 subscribers);
    thr.push_back({name, size, producers, subscribers, fn(p)});
  };

  for (std::size_t size : o.sizes) {
    measure("same-line limit", size, WaitMode::busy, cache_line_same);
    measure("split-line limit", size, WaitMode::busy, cache_line_split);
    measure("ringbus", size, WaitMode::busy,
            [&](const LatencyParams& p) { return ringbus_latency(bus, p); });
    measure("ringbus (8-byte frame alignment)", size, WaitMode::busy,
            [&](const LatencyParams& p) { return ringbus_latency(bus, p, 8); });
    measure("boost message_queue (poll)", size, WaitMode::busy, boost_mq_latency);
    measure("unix socket (poll)", size, WaitMode::busy, unix_socket_latency);
    measure("posix mq (poll)", size, WaitMode::busy, posix_mq_latency);
    if (o.blocking) {
      measure("bare futex ping-pong", size, WaitMode::blocking, futex_pingpong);
      measure("ringbus (futex)", size, WaitMode::blocking,
              [&](const LatencyParams& p) { return ringbus_latency(bus, p); });
      measure("boost message_queue", size, WaitMode::blocking, boost_mq_latency);
      measure("unix socket", size, WaitMode::blocking, unix_socket_latency);
      measure("posix mq", size, WaitMode::blocking, posix_mq_latency);
    }
    stream("copy ring (limit)", size, 1, 1, copy_ring);
    for (auto [producers, subscribers] : {std::pair{1, 1}, {2, 1}, {1, 3}}) {
      if (o.quick && producers + subscribers > 2) continue;
      stream("ringbus", size, producers, subscribers, [&](const ThroughputParams& p) {
        return ringbus_throughput(bus, p, producers, subscribers);
      });
    }
    stream("ringbus (8-byte frame alignment)", size, 1, 1,
           [&](const ThroughputParams& p) { return ringbus_throughput(bus, p, 1, 1, 8); });
    stream("ringbus batches of 32", size, 1, 1,
           [&](const ThroughputParams& p) { return ringbus_throughput(bus, p, 1, 1, 64, 32); });
    stream("ringbus group of 2", size, 1, 2,
           [&](const ThroughputParams& p) { return ringbus_group_throughput(bus, p, 2); });
    stream("boost message_queue", size, 1, 1, boost_mq_throughput);
    stream("unix socket", size, 1, 1, unix_socket_throughput);
    stream("posix mq", size, 1, 1, posix_mq_throughput);
  }

  for (std::size_t size : o.sizes) {
    print_latency_table(lat, size, "busy", "split-line limit");
    if (o.blocking) print_latency_table(lat, size, "blocking", "bare futex ping-pong");
    print_throughput_table(thr, size);
  }
  nlohmann::json targets = check_targets(lat, thr, true);

  if (!o.json_path.empty()) {
    nlohmann::json j;
    j["schema"] = 1;
    j["machine"] = {{"cpu", cpu_model()},
                    {"kernel", uts.release},
                    {"cores", {cores.a, cores.b}},
                    {"shared_cache", pair ? pair->shared_cache : ""}};
    j["quick"] = o.quick;
    for (const auto& r : lat) {
      auto row = to_json(r.stats);
      row["transport"] = r.transport;
      row["size"] = r.size;
      row["wait"] = r.wait;
      j["latency"].push_back(row);
    }
    for (const auto& r : thr) {
      j["throughput"].push_back({{"transport", r.transport},
                                 {"size", r.size},
                                 {"producers", r.producers},
                                 {"subscribers", r.subscribers},
                                 {"messages", r.stats.messages},
                                 {"seconds", r.stats.seconds},
                                 {"messages_per_second", r.stats.messages_per_second},
                                 {"bytes_per_second", r.stats.bytes_per_second}});
    }
    j["targets"] = targets;
    std::ofstream(o.json_path) << j.dump(2) << "\n";
    std::printf("\nwrote %s\n", o.json_path.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace ringbus::bench

int main(int argc, char** argv) {
  ringbus::bench::Options o;
  CLI::App app{"ringbus-bench: ringbus against the physical limits and other IPC, same run"};
  app.add_flag("--quick", o.quick, "64-byte latency and throughput only, all baselines, < 1 min");
  app.add_option("--json", o.json_path, "also write every number to this JSON file");
  app.add_option("--samples", o.samples, "busy-wait latency samples per case (default 1000000)");
  app.add_option("--blocking-samples", o.blocking_samples,
                 "blocking latency samples per case (default 100000)");
  app.add_option("--messages", o.messages, "throughput messages per case (default 2000000)");
  app.add_option("--sizes", o.sizes, "message sizes in bytes")->delimiter(',');
  app.add_option("--only", o.only, "run only the transports whose name contains this text");
  bool scaling = false;
  app.add_flag("--scaling", scaling,
               "throughput with many producers, subscribers and group members, a core each "
               "(for machines with many cores)");
  bool no_blocking = false;
  app.add_flag("--no-blocking", no_blocking, "skip the blocking (futex, kernel) latency cases");
  CLI11_PARSE(app, argc, argv);
  o.blocking = !no_blocking;
  if (o.quick) {
    o.sizes = {64};
    o.samples = std::min<std::uint64_t>(o.samples, 200'000);
    o.blocking_samples = std::min<std::uint64_t>(o.blocking_samples, 20'000);
    o.messages = std::min<std::uint64_t>(o.messages, 1'000'000);
  }
  if (scaling) {
    if (app.count("--sizes") == 0) o.sizes = {64, 1024};
    return ringbus::bench::run_scaling(o);
  }
  return ringbus::bench::run(o);
}
