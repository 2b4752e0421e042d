// CPU pinning and topology through hwloc. Every call is a cold path: it loads the topology,
// answers, and destroys it, so no hwloc state outlives a call and the calls are thread-safe.
#include "ringbus/pin.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <hwloc.h>

#include "ringbus/result.hpp"

namespace ringbus {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* topology) const noexcept { hwloc_topology_destroy(topology); }
};
using Topology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* bitmap) const noexcept { hwloc_bitmap_free(bitmap); }
};
using Bitmap = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

// std::strerror may share a static buffer between threads; the error category does not.
std::string errno_text(int error) { return std::generic_category().message(error); }

// Loads this machine's topology, disallowed processors included so that "not allowed" can be
// told apart from "no such processor". I/O devices stay out (hwloc's default), which keeps
// the load in the low milliseconds.
Result<Topology> load_topology() {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    return Error(Errc::io_error, "hwloc: cannot initialise a topology: " + errno_text(errno));
  }
  Topology topology(raw);
  if (hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED) != 0 ||
      hwloc_topology_load(raw) != 0) {
    return Error(Errc::io_error, "hwloc: cannot load the machine topology: " + errno_text(errno));
  }
  return topology;
}

Result<Bitmap> new_bitmap() {
  Bitmap bitmap(hwloc_bitmap_alloc());
  if (!bitmap) return Error(Errc::io_error, "hwloc: out of memory for a cpu set");
  return bitmap;
}

// The processors this process may use: those the OS allows it (cgroup cpuset, online) and
// within its affinity (e.g. `taskset`). hwloc's process binding on Linux is the union of the
// masks of all its threads, so one thread that pinned itself does not shrink the answer.
Result<Bitmap> usable_cpuset(hwloc_topology_t topology) {
  Bitmap usable(hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topology)));
  if (!usable) return Error(Errc::io_error, "hwloc: out of memory for a cpu set");
  auto binding = new_bitmap();
  if (!binding) return binding.error();
  if (hwloc_get_cpubind(topology, binding->get(), HWLOC_CPUBIND_PROCESS) == 0 &&
      !hwloc_bitmap_iszero(binding->get())) {
    hwloc_bitmap_and(usable.get(), usable.get(), binding->get());
  }
  return usable;
}

std::vector<int> to_vector(hwloc_const_bitmap_t set) {
  std::vector<int> cpus;
  for (int id = hwloc_bitmap_first(set); id >= 0; id = hwloc_bitmap_next(set, id)) {
    cpus.push_back(id);
  }
  return cpus;
}

// "0-3,8,10-11": the cpu list syntax of taskset and /sys.
std::string list_text(hwloc_const_bitmap_t set) {
  std::string text;
  int id = hwloc_bitmap_first(set);
  while (id >= 0) {
    int last = id;
    while (hwloc_bitmap_isset(set, static_cast<unsigned>(last + 1)) != 0) ++last;
    if (!text.empty()) text += ',';
    text += std::to_string(id);
    if (last > id) text += '-' + std::to_string(last);
    id = hwloc_bitmap_next(set, last);
  }
  return text.empty() ? "none" : text;
}

std::string type_name(hwloc_obj_t object) {
  char buffer[64];
  hwloc_obj_type_snprintf(buffer, sizeof buffer, object, 0);
  return buffer;
}

// Sizes the way lstopo prints them: KB up to 10 MB, then MB, then GB (powers of 1024).
std::string size_text(unsigned long long bytes) {
  const unsigned long long kib = bytes / 1024;
  if (kib < 10ULL * 1024) return std::to_string(kib) + " KB";
  if (kib < 10ULL * 1024 * 1024) return std::to_string(kib / 1024) + " MB";
  return std::to_string(kib / (1024ULL * 1024)) + " GB";
}

// The core of a processor; the processor itself when hwloc found no core objects.
hwloc_obj_t core_of(hwloc_topology_t topology, hwloc_obj_t pu) {
  hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_CORE, pu);
  return core != nullptr ? core : pu;
}

// The closest data or unified cache holding both processors, or "none".
std::string shared_cache_name(hwloc_topology_t topology, int a, int b) {
  auto pair = new_bitmap();
  if (!pair) return "none";
  hwloc_bitmap_set(pair->get(), static_cast<unsigned>(a));
  hwloc_bitmap_set(pair->get(), static_cast<unsigned>(b));
  hwloc_obj_t cache = hwloc_get_cache_covering_cpuset(topology, pair->get());
  return cache != nullptr ? type_name(cache) : "none";
}

// Every data or unified cache, closest to the processors first (L1 before L2 before L3).
std::vector<hwloc_obj_t> caches_closest_first(hwloc_topology_t topology) {
  std::vector<hwloc_obj_t> caches;
  int depths = hwloc_topology_get_depth(topology);
  for (int depth = 0; depth < depths; ++depth) {
    for (hwloc_obj_t object = hwloc_get_next_obj_by_depth(topology, depth, nullptr);
         object != nullptr; object = hwloc_get_next_obj_by_depth(topology, depth, object)) {
      if (hwloc_obj_type_is_dcache(object->type) != 0) caches.push_back(object);
    }
  }
  std::stable_sort(caches.begin(), caches.end(), [](hwloc_obj_t x, hwloc_obj_t y) {
    return x->attr->cache.depth < y->attr->cache.depth;
  });
  return caches;
}

// The usable processors in `set`, as PU objects in OS index order.
std::vector<hwloc_obj_t> usable_pus_in(hwloc_topology_t topology, hwloc_const_cpuset_t set,
                                       hwloc_const_bitmap_t usable) {
  std::vector<hwloc_obj_t> pus;
  for (int id = hwloc_bitmap_first(set); id >= 0; id = hwloc_bitmap_next(set, id)) {
    if (hwloc_bitmap_isset(usable, static_cast<unsigned>(id)) == 0) continue;
    hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topology, static_cast<unsigned>(id));
    if (pu != nullptr) pus.push_back(pu);
  }
  return pus;
}

// Writes `object` and, while it has exactly one child and no memory, that child on the same
// line joined by " + " (as lstopo does); then the rest of the tree indented below.
void describe_object(hwloc_obj_t object, hwloc_const_bitmap_t usable, int indent,
                     std::string& out) {
  out.append(static_cast<std::size_t>(indent) * 2, ' ');
  for (;;) {
    out += type_name(object);
    if (object->type == HWLOC_OBJ_PU) {
      out += " P#" + std::to_string(object->os_index);
      if (hwloc_bitmap_isset(usable, object->os_index) == 0) out += " (not usable)";
    } else if (object->type != HWLOC_OBJ_MACHINE) {
      out += " L#" + std::to_string(object->logical_index);
      if (hwloc_obj_type_is_cache(object->type) != 0) {
        out += " (" + size_text(object->attr->cache.size) + ")";
      }
    }
    if (object->arity != 1 || object->memory_arity != 0) break;
    out += " + ";
    object = object->first_child;
  }
  out += '\n';
  for (hwloc_obj_t memory = object->memory_first_child; memory != nullptr;
       memory = memory->next_sibling) {
    out.append(static_cast<std::size_t>(indent + 1) * 2, ' ');
    out += type_name(memory) + " P#" + std::to_string(memory->os_index);
    if (memory->type == HWLOC_OBJ_NUMANODE) {
      out += " (" + size_text(memory->attr->numanode.local_memory) + ")";
    }
    out += '\n';
  }
  for (hwloc_obj_t child = object->first_child; child != nullptr; child = child->next_sibling) {
    describe_object(child, usable, indent + 1, out);
  }
}

std::string count_text(int count, const char* singular, const char* plural) {
  return std::to_string(count) + ' ' + (count == 1 ? singular : plural);
}

}  // namespace

Result<void> pin_this_thread(int cpu) {
  if (cpu < 0) {
    return Error(Errc::invalid_argument,
                 "cpu " + std::to_string(cpu) + ": processor numbers are not negative");
  }
  auto topology = load_topology();
  if (!topology) return topology.error();
  hwloc_topology_t topo = topology->get();
  const auto id = static_cast<unsigned>(cpu);
  hwloc_const_cpuset_t allowed = hwloc_topology_get_allowed_cpuset(topo);
  if (hwloc_get_pu_obj_by_os_index(topo, id) == nullptr) {
    return Error(Errc::invalid_argument,
                 "cpu " + std::to_string(cpu) + ": no such processor on this machine (it has " +
                     list_text(hwloc_topology_get_topology_cpuset(topo)) + ")");
  }
  if (hwloc_bitmap_isset(allowed, id) == 0) {
    return Error(Errc::invalid_argument,
                 "cpu " + std::to_string(cpu) +
                     ": not allowed for this process (allowed: " + list_text(allowed) + ")");
  }
  // A topology hwloc did not read from this machine (HWLOC_XMLFILE, HWLOC_SYNTHETIC, ...)
  // would make binding a silent no-op.
  if (hwloc_topology_is_thissystem(topo) == 0) {
    return Error(Errc::io_error,
                 "hwloc: the topology is not this machine's (HWLOC_XMLFILE, HWLOC_SYNTHETIC or "
                 "HWLOC_FSROOT set?), so threads cannot be pinned");
  }
  auto set = new_bitmap();
  if (!set) return set.error();
  hwloc_bitmap_only(set->get(), id);
  if (hwloc_set_cpubind(topo, set->get(), HWLOC_CPUBIND_THREAD) != 0) {
    const int error = errno;
    // EINVAL: the kernel refused the set, e.g. the cgroup changed since the topology loaded.
    return Error(error == EINVAL ? Errc::invalid_argument : Errc::io_error,
                 "cannot pin this thread to cpu " + std::to_string(cpu) + ": " + errno_text(error));
  }
  return {};
}

std::vector<int> allowed_cpus() {
  auto topology = load_topology();
  if (!topology) return {};
  auto usable = usable_cpuset(topology->get());
  if (!usable) return {};
  return to_vector(usable->get());
}

Result<CorePair> pick_core_pair() {
  auto topology = load_topology();
  if (!topology) return topology.error();
  hwloc_topology_t topo = topology->get();
  auto usable_set = usable_cpuset(topo);
  if (!usable_set) return usable_set.error();
  hwloc_const_bitmap_t usable = usable_set->get();
  if (hwloc_bitmap_weight(usable) < 2) {
    return Error(
        Errc::invalid_argument,
        "a core pair needs two usable processors, this process may use only " + list_text(usable));
  }

  // 1. Two different cores under the closest cache that holds any two: messages then move
  //    through that cache and neither side steals the other's core resources.
  for (hwloc_obj_t cache : caches_closest_first(topo)) {
    std::vector<hwloc_obj_t> pus = usable_pus_in(topo, cache->cpuset, usable);
    if (pus.size() < 2) continue;
    hwloc_obj_t first_core = core_of(topo, pus.front());
    for (std::size_t i = 1; i < pus.size(); ++i) {
      if (core_of(topo, pus[i]) != first_core) {
        return CorePair{static_cast<int>(pus.front()->os_index), static_cast<int>(pus[i]->os_index),
                        type_name(cache)};
      }
    }
  }

  std::vector<hwloc_obj_t> all = usable_pus_in(topo, usable, usable);
  // 2. Hyperthread siblings of one core (they share its L1 and L2).
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      if (core_of(topo, all[i]) == core_of(topo, all[j])) {
        int a = static_cast<int>(all[i]->os_index);
        int b = static_cast<int>(all[j]->os_index);
        return CorePair{a, b, shared_cache_name(topo, a, b)};
      }
    }
  }
  // 3. Any two, e.g. cores on different packages that share no cache.
  if (all.size() >= 2) {
    int a = static_cast<int>(all[0]->os_index);
    int b = static_cast<int>(all[1]->os_index);
    return CorePair{a, b, shared_cache_name(topo, a, b)};
  }
  return Error(Errc::invalid_argument, "hwloc found fewer than two usable processors");
}

std::string describe_topology() {
  auto topology = load_topology();
  if (!topology) return "topology unavailable: " + topology.error().message() + "\n";
  hwloc_topology_t topo = topology->get();
  auto usable = usable_cpuset(topo);
  if (!usable) return "topology unavailable: " + usable.error().message() + "\n";

  const int packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  const int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  const int pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  std::string out = count_text(packages, "package", "packages") + ", " +
                    count_text(cores, "core", "cores") + ", " + count_text(pus, "PU", "PUs") +
                    " (processing units: hardware threads)\n";
  out += "usable PUs: " + std::to_string(hwloc_bitmap_weight(usable->get())) + " (" +
         list_text(usable->get()) + ")\n";
  describe_object(hwloc_get_root_obj(topo), usable->get(), 0, out);
  return out;
}

}  // namespace ringbus
