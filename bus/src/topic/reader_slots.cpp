// Reader slot lifecycle. Slots change state only by CAS on a generation-tagged state word.
#include "topic/reader_slots.hpp"

#include <sched.h>

#include <cstring>
#include <ctime>
#include <string>

#include "ring/atomics.hpp"
#include "testing/fault_point.hpp"
#include "topic/liveness.hpp"

namespace ringbus::detail {
namespace {

using layout::ReaderSlot;

std::uint64_t load_state(ReaderSlot& s) {
  // acquire: pairs with the seq_cst store of kActive in register_slot(), so the slot's other
  // fields are visible once the state says active.
  return atomic(s.state).load(std::memory_order_acquire);
}

bool is_persistent(const ReaderSlot& s) {
  return (atomic(const_cast<std::uint32_t&>(s.flags)).load(std::memory_order_relaxed) &
          layout::kSlotPersistent) != 0;
}

// Takes over persistent slot `i` from a dead (or absent) owner. Returns false if a live
// process holds it.
Result<bool> take_over(ReaderSlot& s, std::string_view name) {
  auto self = self_identity();
  std::uint32_t pid = atomic(s.pid).load(std::memory_order_acquire);
  std::uint64_t start = atomic(s.start_time).load(std::memory_order_relaxed);
  if (pid != 0 && is_alive(pid, start)) {
    return Error(Errc::busy, "persistent reader '" + std::string(name) +
                                 "' is attached by live process " + std::to_string(pid));
  }
  // acq_rel: exactly one process wins the takeover; pairs with other takers and release_slot().
  if (!atomic(s.pid).compare_exchange_strong(pid, self.pid, std::memory_order_acq_rel)) {
    return false;
  }
  atomic(s.start_time).store(self.start_time, std::memory_order_relaxed);
  atomic(s.dead_since_ns).store(0, std::memory_order_relaxed);
  // New generation: a reaper or remove-reader that looked at the slot before the takeover
  // now fails its CAS instead of freeing the slot under us.
  std::uint64_t word = load_state(s);
  while (layout::slot_state(word) == layout::kSlotActive) {
    // acq_rel: pairs with the reaper's and remove_reader's CAS on the same word.
    if (atomic(s.state).compare_exchange_weak(
            word, layout::make_slot_state(layout::kSlotActive, layout::slot_generation(word) + 1),
            std::memory_order_acq_rel)) {
      return true;
    }
  }
  return Error(Errc::busy, "persistent reader '" + std::string(name) +
                               "' was removed while being resumed; attach again");
}

void fill_slot(ReaderSlot& s, const SlotRequest& r, std::uint64_t position,
               std::uint64_t messages) {
  auto self = self_identity();
  auto relaxed = std::memory_order_relaxed;  // published by the state store that follows
  atomic(s.position).store(position, relaxed);
  atomic(s.messages).store(messages, relaxed);
  atomic(s.lost_bytes).store(0, relaxed);
  atomic(s.lost_messages).store(0, relaxed);
  atomic(s.flags).store((r.durable ? layout::kSlotDurable : 0U) |
                            (r.name.empty() ? 0U : layout::kSlotPersistent) |
                            (r.replaying ? layout::kSlotReplaying : 0U),
                        relaxed);
  atomic(s.pid).store(r.shared ? 0U : self.pid, relaxed);
  atomic(s.kind).store(r.kind, relaxed);
  atomic(s.sleeping).store(0, relaxed);
  atomic(s.start_time).store(r.shared ? 0U : self.start_time, relaxed);
  atomic(s.dispatch).store(position, relaxed);
  atomic(s.safe_from).store(~std::uint64_t{0}, relaxed);  // a new group: check everything
  atomic(s.deadline_ns).store(r.deadline_ns, relaxed);
  atomic(s.group_slot).store(~0U, relaxed);
  atomic(s.batch_count).store(0, relaxed);
  atomic(s.delivery).store(0, relaxed);
  atomic(s.batch_acked).store(0, relaxed);
  atomic(s.batch_start).store(layout::kNoBatch, relaxed);
  atomic(s.batch_end).store(layout::kNoBatch, relaxed);
  atomic(s.serving).store(layout::kNotServing, relaxed);
  atomic(s.serve_ns).store(0, relaxed);
  atomic(s.dead_since_ns).store(0, relaxed);
  atomic(s.expiry_ns).store(r.expiry_ns, relaxed);
  atomic(s.attached_unix_ns).store(static_cast<std::uint64_t>(realtime_ns()), relaxed);
  char name[layout::kReaderNameMax + 1] = {};
  if (!r.name.empty())
    std::memcpy(name, r.name.data(), std::min(r.name.size(), layout::kReaderNameMax));
  for (std::size_t i = 0; i < sizeof name; ++i) atomic(s.name[i]).store(name[i], relaxed);
}

// Whether slot `s` holds `name`. Each character is read like fill_slot() writes it (relaxed
// atomics): a slot may be freed and claimed again, its name rewritten, while we compare; the
// caller then re-checks the slot's state (a stale match only makes a creator back off and retry).
bool has_name(ReaderSlot& s, std::string_view name) {
  if (name.size() > layout::kReaderNameMax) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (atomic(s.name[i]).load(std::memory_order_relaxed) != name[i]) return false;
  }
  return name.size() == layout::kReaderNameMax ||
         atomic(s.name[name.size()]).load(std::memory_order_relaxed) == '\0';
}

// Index of the active persistent slot named `name`, or -1.
long find_named(TopicMapping& map, std::string_view name, std::uint32_t below) {
  for (std::uint32_t i = 0; i < below; ++i) {
    ReaderSlot& s = map.slot(i);
    if (layout::slot_state(load_state(s)) == layout::kSlotActive && is_persistent(s) &&
        has_name(s, name)) {
      return i;
    }
  }
  return -1;
}

// Decides, right after slot `self` began contending for a new persistent name, whether to keep
// it. Contending slots are invisible to joiners (find_named() wants kSlotActive), so nobody
// attaches to a slot that then backs off. Two processes creating one name at once both contend
// (seq_cst) and then look (seq_cst), so at least one sees the other. A slot backs off when it
// sees the name active, or a lower contender; seeing only higher contenders it waits a little
// for them to back off (they do if they saw it), and backs off itself if they stay (they did
// not see it, so they go on). A contender whose process died is ignored (and reaped).
bool keep_new_named_slot(TopicMapping& map, std::string_view name, std::uint32_t self) {
  const std::int64_t deadline = monotonic_ns() + 50'000'000;
  for (;;) {
    bool lower = false;
    bool higher = false;
    for (std::uint32_t i = 0; i < map.config().max_readers; ++i) {
      ReaderSlot& s = map.slot(i);
      if (i == self) continue;
      const std::uint64_t state =
          layout::slot_state(atomic(s.state).load(std::memory_order_seq_cst));
      if ((state != layout::kSlotActive && state != layout::kSlotContending) || !is_persistent(s) ||
          !has_name(s, name)) {
        continue;
      }
      if (state == layout::kSlotActive) return false;
      if (!slot_owner_alive(s)) {
        // Dead, or a group's winning creator that turned its slot active and then cleared the
        // pid (release; slot_owner_alive() loads it with acquire): look at the state again.
        if (layout::slot_state(atomic(s.state).load(std::memory_order_seq_cst)) ==
            layout::kSlotActive) {
          return false;
        }
        continue;
      }
      (i < self ? lower : higher) = true;
    }
    if (lower) return false;
    if (!higher) return true;
    if (monotonic_ns() > deadline) return false;
    sched_yield();
  }
}

// How long a creator of a new persistent name waits for another live creator of the same name
// to finish (turn its slot active or back off): a creator stopped (SIGSTOP) in between holds the
// others back this long, then they get a busy error that names it.
constexpr std::int64_t kCreatorPatienceNs = 5'000'000'000;

// Called by a creator that backed off from a new name: returns once the name is active (the
// next attempt joins or resumes it) or no live creator contends for it any more (the next
// attempt contends again). Without this wait, a creator that backs off from a descheduled
// lower one would retry at once, see it again and spend all its attempts in microseconds.
// Sleeps in a bounded back-off; busy after `deadline_ns` (monotonic).
Result<void> wait_for_other_creators(TopicMapping& map, std::string_view name,
                                     std::int64_t deadline_ns) {
  for (int round = 0;; ++round) {
    std::uint32_t creator = 0;
    for (std::uint32_t i = 0; i < map.config().max_readers; ++i) {
      ReaderSlot& s = map.slot(i);
      // seq_cst: like keep_new_named_slot(), so a creator's contending store is seen.
      const std::uint64_t state =
          layout::slot_state(atomic(s.state).load(std::memory_order_seq_cst));
      if ((state != layout::kSlotActive && state != layout::kSlotContending) || !is_persistent(s) ||
          !has_name(s, name)) {
        continue;
      }
      if (state == layout::kSlotActive) return {};
      if (slot_owner_alive(s)) creator = atomic(s.pid).load(std::memory_order_relaxed);
    }
    if (creator == 0) return {};
    if (monotonic_ns() > deadline_ns) {
      return Error(Errc::busy,
                   "reader '" + std::string(name) + "' is being created by live process " +
                       std::to_string(creator) + ", which has not finished for " +
                       std::to_string(kCreatorPatienceNs / 1'000'000'000) + " s; attach again");
    }
    if (round < 64) {
      sched_yield();
    } else {
      const timespec nap{0, 200'000};  // 0.2 ms: a descheduled creator needs a time slice
      nanosleep(&nap, nullptr);
    }
  }
}

}  // namespace

std::optional<std::uint32_t> find_persistent_slot(TopicMapping& map, std::string_view name) {
  long i = find_named(map, name, map.config().max_readers);
  if (i < 0) return std::nullopt;
  return static_cast<std::uint32_t>(i);
}

void uncount_dead_sleeper(TopicMapping& map, ReaderSlot& slot) {
  // The reader sets the flag after counting itself and clears it before un-counting, so a set
  // flag always stands for one count of its own.
  if (atomic(slot.sleeping).exchange(0, std::memory_order_relaxed) != 0) {
    atomic(map.header().sleepers).fetch_sub(1, std::memory_order_relaxed);
  }
}

std::string_view slot_name(const ReaderSlot& slot) {
  const char* name = slot.name;
  return {name, ::strnlen(name, layout::kReaderNameMax)};
}

bool slot_owner_alive(const ReaderSlot& slot) {
  auto& s = const_cast<ReaderSlot&>(slot);
  std::uint32_t pid = atomic(s.pid).load(std::memory_order_acquire);
  // acquire: pairs with the release stores that clear a new group slot's owner.
  return pid != 0 && is_alive(pid, atomic(s.start_time).load(std::memory_order_acquire));
}

Result<AcquiredSlot> acquire_slot(TopicMapping& map, const SlotRequest& request,
                                  std::uint64_t position, std::uint64_t messages) {
  const std::uint32_t n = map.config().max_readers;
  const std::int64_t creators_deadline = monotonic_ns() + kCreatorPatienceNs;
  for (int attempt = 0; attempt < 64; ++attempt) {
    if (!request.name.empty()) {
      long existing = find_named(map, request.name, n);
      if (existing >= 0 && request.shared) {
        return AcquiredSlot{static_cast<std::uint32_t>(existing), true};
      }
      if (existing >= 0) {
        auto& slot = map.slot(static_cast<std::uint32_t>(existing));
        auto taken = take_over(slot, request.name);
        if (!taken) return taken.error();
        if (*taken) {
          uncount_dead_sleeper(map, slot);  // its last process may have died asleep
          return AcquiredSlot{static_cast<std::uint32_t>(existing), true};
        }
        continue;  // lost a race with another taker: look again
      }
    }
    bool claimed = false;
    for (std::uint32_t i = 0; i < n && !claimed; ++i) {
      ReaderSlot& s = map.slot(i);
      std::uint64_t word = load_state(s);
      if (layout::slot_state(word) != layout::kSlotFree) continue;
      std::uint64_t gen = layout::slot_generation(word) + 1;
      // acquire: the slot is ours before we write its fields.
      if (!atomic(s.state).compare_exchange_strong(
              word, layout::make_slot_state(layout::kSlotClaiming, gen),
              std::memory_order_acquire)) {
        continue;
      }
      claimed = true;
      fill_slot(s, request, position, messages);
      // A new persistent name first contends with other creators of the same name (see
      // keep_new_named_slot()): one keeps its slot, the others back off and retry, resuming or
      // joining it. While it contends the slot shows its creator, so a creator that dies here
      // neither blocks the others nor leaks the slot (the reaper frees it).
      if (!request.name.empty()) {
        const auto self = self_identity();
        atomic(s.pid).store(self.pid, std::memory_order_relaxed);
        atomic(s.start_time).store(self.start_time, std::memory_order_relaxed);
        // seq_cst: pairs with the seq_cst loads of other creators' keep_new_named_slot().
        atomic(s.state).store(layout::make_slot_state(layout::kSlotContending, gen),
                              std::memory_order_seq_cst);
        kill_point("slots.contending");
        if (!keep_new_named_slot(map, request.name, i)) {
          // release: our reads of the slot are done.
          atomic(s.state).store(layout::make_slot_state(layout::kSlotFree, gen),
                                std::memory_order_release);
          auto settled = wait_for_other_creators(map, request.name, creators_deadline);
          if (!settled) return settled.error();
          break;
        }
      }
      // seq_cst: the registration point. Pairs with the producer's scan, which reads the tail
      // before the slots (Producer::rescan_limit) and with the reader's tail load after attach.
      atomic(s.state).store(layout::make_slot_state(layout::kSlotActive, gen),
                            std::memory_order_seq_cst);
      if (request.shared) {
        // A group's slot has no process of its own. Only now: a contender that showed no
        // process would look dead to the other creators, which would then keep theirs too.
        // release (both): pair with the acquire loads in slot_owner_alive(); a contender that
        // reads either cleared value then also sees the active state stored before them.
        atomic(s.start_time).store(0, std::memory_order_release);
        atomic(s.pid).store(0, std::memory_order_release);
      }
      // seq_cst: after the registration; producers that see the new epoch rescan the slots.
      if (request.durable)
        atomic(map.header().readers_epoch).fetch_add(1, std::memory_order_seq_cst);
      return AcquiredSlot{i, false};
    }
    if (!claimed && attempt == 0 && reap_dead_readers(map) > 0) continue;  // freed some
    if (!claimed) {
      return Error(Errc::no_reader_slot, "topic '" + map.name() + "' has no free reader slot (" +
                                             std::to_string(n) + " in use; see --max-readers)");
    }
  }
  return Error(Errc::busy, "could not attach reader: too much contention on reader slots");
}

void release_slot(TopicMapping& map, std::uint32_t index, bool persistent) {
  ReaderSlot& s = map.slot(index);
  if (persistent) {
    // release: our last published position is visible before the slot shows no owner.
    atomic(s.pid).store(0, std::memory_order_release);
    return;
  }
  std::uint64_t word = load_state(s);
  if (layout::slot_state(word) != layout::kSlotActive) return;
  // release: pairs with acquire loads of the state by scanners; our reads are done.
  atomic(s.state).compare_exchange_strong(
      word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
      std::memory_order_release);
}

std::size_t reap_dead_readers(TopicMapping& map) {
  std::size_t freed = 0;
  const auto now = static_cast<std::uint64_t>(realtime_ns());
  for (std::uint32_t i = 0; i < map.config().max_readers; ++i) {
    ReaderSlot& s = map.slot(i);
    std::uint64_t word = load_state(s);
    if (layout::slot_state(word) == layout::kSlotContending && !slot_owner_alive(s)) {
      // A creator that died while contending for a name: nobody else will free its slot.
      // acq_rel: the generation in `word` makes this fail if the slot moved on meanwhile.
      if (atomic(s.state).compare_exchange_strong(
              word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
              std::memory_order_acq_rel)) {
        ++freed;
      }
      continue;
    }
    if (layout::slot_state(word) != layout::kSlotActive || slot_owner_alive(s)) continue;
    // A dead group member's unacknowledged batch waits for a live member to take it over.
    if (atomic(s.kind).load(std::memory_order_relaxed) == layout::kReaderMember &&
        atomic(s.batch_start).load(std::memory_order_acquire) != layout::kNoBatch) {
      continue;
    }
    uncount_dead_sleeper(map, s);
    if (is_persistent(s)) {
      std::uint64_t since = atomic(s.dead_since_ns).load(std::memory_order_relaxed);
      if (since == 0) {
        atomic(s.dead_since_ns).compare_exchange_strong(since, now, std::memory_order_relaxed);
        continue;
      }
      std::uint64_t expiry = atomic(s.expiry_ns).load(std::memory_order_relaxed);
      if (expiry == 0 || now - since < expiry) continue;
    }
    // acq_rel: the generation in `word` makes this fail if the slot was reused meanwhile.
    if (atomic(s.state).compare_exchange_strong(
            word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
            std::memory_order_acq_rel)) {
      ++freed;
      atomic(map.header().reaped_readers).fetch_add(1, std::memory_order_relaxed);
    }
  }
  return freed;
}

}  // namespace ringbus::detail
