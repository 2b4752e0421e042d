// CPU pinning and topology (hwloc): pin a thread, pick a producer/consumer core pair.
// Every function here is a cold path (it loads the machine topology, ~ms); all are thread-safe.
#pragma once

#include <string>
#include <vector>

#include "ringbus/export.hpp"
#include "ringbus/result.hpp"

namespace ringbus {

struct CorePair {
  int producer = -1;  // OS processor index
  int consumer = -1;
  std::string shared_cache;  // closest cache both share, as lstopo names it ("L2", "L3"), or "none"
};

// Binds the calling thread (only it) to the OS processor `cpu`. Any processor the OS lets this
// process use (cgroup cpuset, online) is accepted, even outside its current affinity mask.
// Errors: invalid_argument (negative, no such processor, or not allowed), io_error (hwloc
// failed, or its topology is not this machine's, e.g. HWLOC_XMLFILE is set).
RINGBUS_API Result<void> pin_this_thread(int cpu);

// OS processor indices this process may run on, ascending: those the OS allows (cgroups) within
// the process's affinity (e.g. `taskset`), which is the union of its threads' masks, so a thread
// that pinned itself does not shrink the answer. Empty only if hwloc cannot load the topology.
RINGBUS_API std::vector<int> allowed_cpus();

// Two different processors from allowed_cpus() that share the closest cache: different cores
// if possible, else hyperthreads of one core, else any two. Deterministic for one machine.
// Errors: invalid_argument when fewer than two are allowed; io_error when hwloc fails.
RINGBUS_API Result<CorePair> pick_core_pair();

// A human-readable description of the machine: counts of packages, cores and PUs, the usable
// PUs, then the tree of packages, NUMA nodes, caches (with sizes), cores and PUs ("PU P#3").
RINGBUS_API std::string describe_topology();

}  // namespace ringbus
