// Topic: describe (snapshot), reap dead readers, remove a persistent reader.
#include "ringbus/topic.hpp"

#include <string>

#include "ring/atomics.hpp"
#include "topic/reader_slots.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

const std::string& Topic::name() const noexcept { return map_->name(); }
const std::string& Topic::path() const noexcept { return map_->path(); }
const TopicConfig& Topic::config() const noexcept { return map_->config(); }

TopicSnapshot Topic::snapshot() const {
  using detail::atomic;
  auto relaxed = std::memory_order_relaxed;  // a monitoring view: each field on its own
  auto& h = map_->header();
  TopicSnapshot snap;
  snap.config = map_->config();
  snap.earliest = atomic(h.reclaimed).load(std::memory_order_acquire);
  snap.tail = atomic(h.tail_position).load(std::memory_order_acquire);
  snap.messages = atomic(h.tail_messages).load(relaxed);
  snap.aborted_claims = atomic(h.aborted_claims).load(relaxed);
  snap.reaped_readers = atomic(h.reaped_readers).load(relaxed);
  for (std::uint32_t i = 0; i < snap.config.max_readers; ++i) {
    auto& s = map_->slot(i);
    // acquire: pairs with the seq_cst registration store in acquire_slot().
    std::uint64_t word = atomic(s.state).load(std::memory_order_acquire);
    if (layout::slot_state(word) != layout::kSlotActive) continue;
    ReaderInfo r;
    r.slot = i;
    r.name = std::string(detail::slot_name(s));
    std::uint32_t flags = atomic(s.flags).load(relaxed);
    r.persistent = (flags & layout::kSlotPersistent) != 0;
    r.durable = (flags & layout::kSlotDurable) != 0;
    r.pid = atomic(s.pid).load(relaxed);
    r.alive = detail::slot_owner_alive(s);
    r.position = atomic(s.position).load(relaxed);
    r.messages = atomic(s.messages).load(relaxed);
    r.lag_bytes = snap.tail > r.position ? snap.tail - r.position : 0;
    r.lag_messages = snap.messages > r.messages ? snap.messages - r.messages : 0;
    r.lost_bytes = atomic(s.lost_bytes).load(relaxed);
    r.lost_messages = atomic(s.lost_messages).load(relaxed);
    snap.readers.push_back(std::move(r));
  }
  return snap;
}

std::size_t Topic::reap_dead_readers() const { return detail::reap_dead_readers(*map_); }

Result<void> Topic::remove_reader(std::string_view reader_name) const {
  using detail::atomic;
  for (std::uint32_t i = 0; i < map_->config().max_readers; ++i) {
    auto& s = map_->slot(i);
    std::uint64_t word = atomic(s.state).load(std::memory_order_acquire);
    if (layout::slot_state(word) != layout::kSlotActive ||
        (atomic(s.flags).load(std::memory_order_relaxed) & layout::kSlotPersistent) == 0 ||
        detail::slot_name(s) != reader_name) {
      continue;
    }
    if (detail::slot_owner_alive(s)) {
      return Error(Errc::busy, "reader '" + std::string(reader_name) + "' of topic '" + name() +
                                   "' is attached by live process " +
                                   std::to_string(atomic(s.pid).load(std::memory_order_relaxed)));
    }
    // acq_rel: fails if the slot was resumed or reused since we looked.
    if (atomic(s.state).compare_exchange_strong(
            word, layout::make_slot_state(layout::kSlotFree, layout::slot_generation(word)),
            std::memory_order_acq_rel)) {
      return {};
    }
    return Error(Errc::busy, "reader '" + std::string(reader_name) + "' changed; try again");
  }
  return Error(Errc::not_found, "topic '" + name() + "' has no persistent reader '" +
                                    std::string(reader_name) + "'");
}

}  // namespace ringbus
