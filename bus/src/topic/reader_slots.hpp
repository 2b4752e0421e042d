// Reader slots: attach (claim a free slot or resume a persistent one), detach, reap.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "ringbus/result.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus::detail {

struct SlotRequest {
  std::string_view name;  // empty: ephemeral
  bool durable = true;
  bool replaying = false;  // starts in the disk log: producers do not wait for it yet
  std::uint64_t expiry_ns = 0;
  std::uint32_t kind = layout::kReaderSubscriber;
  // A queue group's slot: owned by no process; attaching to an existing name joins it instead
  // of taking it over. `deadline_ns` is its processing deadline.
  bool shared = false;
  std::uint64_t deadline_ns = 0;
};

struct AcquiredSlot {
  std::uint32_t index = 0;
  bool resumed = false;  // a persistent reader taken over: its position is in the slot
};

// Claims a slot for this process. A new slot is registered at `position` / `messages`, with
// a sequentially consistent store, so a producer scan either sees it or read the tail before
// it was registered (see Subscriber::attach). Errors: no_reader_slot, busy.
Result<AcquiredSlot> acquire_slot(TopicMapping& map, const SlotRequest& request,
                                  std::uint64_t position, std::uint64_t messages);

// Ephemeral: frees the slot. Persistent: keeps its position, marks it as having no process.
void release_slot(TopicMapping& map, std::uint32_t index, bool persistent);

// True if the slot's owner process is alive (false for a persistent slot with no process).
bool slot_owner_alive(const layout::ReaderSlot& slot);

// The reader name stored in a slot.
std::string_view slot_name(const layout::ReaderSlot& slot);

// A slot whose process died asleep on the futex still counts in the header's sleepers (so
// every commit would make a wake-up call): un-count it. Only for slots with no live owner.
void uncount_dead_sleeper(TopicMapping& map, layout::ReaderSlot& slot);

// The index of the active persistent slot named `name` (a reader, or "group:<name>"), if any.
std::optional<std::uint32_t> find_persistent_slot(TopicMapping& map, std::string_view name);

// See Topic::reap_dead_readers(). Also un-counts sleepers whose process died asleep.
std::size_t reap_dead_readers(TopicMapping& map);

}  // namespace ringbus::detail
