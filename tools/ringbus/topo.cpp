// `ringbus topo`: the machine's topology as hwloc sees it, and which processors to pin a
// producer and a consumer to (pairs that share the closest cache).
#include <sched.h>

#include <algorithm>
#include <ostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "ringbus/pin.hpp"

namespace ringbus::cli {
namespace {

// Every disjoint pair, best first. The library picks one pair among the processors this
// process may use, so each further pair is picked with this thread's affinity narrowed to the
// processors not paired yet (the CLI is single-threaded, so the thread's mask is the process's
// mask that the library reads). The affinity is restored afterwards.
std::vector<CorePair> disjoint_pairs(std::vector<int> remaining) {
  std::vector<CorePair> pairs;
  cpu_set_t original;
  CPU_ZERO(&original);
  if (::sched_getaffinity(0, sizeof original, &original) != 0) return pairs;
  while (remaining.size() >= 2) {
    cpu_set_t narrowed;
    CPU_ZERO(&narrowed);
    for (int cpu : remaining) {
      if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &narrowed);
    }
    if (::sched_setaffinity(0, sizeof narrowed, &narrowed) != 0) break;
    auto pair = pick_core_pair();
    if (!pair) break;
    pairs.push_back(*pair);
    std::erase(remaining, pair->producer);
    std::erase(remaining, pair->consumer);
  }
  (void)::sched_setaffinity(0, sizeof original, &original);
  return pairs;
}

}  // namespace

Result<void> topo(const Io& io) {
  io.out << describe_topology();
  const std::vector<int> allowed = allowed_cpus();
  auto best = pick_core_pair();
  if (!best) {
    io.out << "recommended producer/consumer pair: none (" << best.error().message() << ")\n";
    return {};
  }
  std::vector<CorePair> pairs = disjoint_pairs(allowed);
  if (pairs.empty()) pairs.push_back(*best);
  io.out << "recommended producer/consumer pairs (best first; use --cpu with produce and "
            "consume):\n";
  for (const CorePair& p : pairs) {
    io.out << "  producer " << p.producer << "  consumer " << p.consumer << "  shared cache "
           << p.shared_cache << '\n';
  }
  return {};
}

}  // namespace ringbus::cli
