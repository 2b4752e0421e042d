// ForwardCounters: plain stores into the topic header's ForwardLink entry; readers take the
// figures one by one.
#include "ringbus/connector_counters.hpp"

#include <atomic>

#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "topic/liveness.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using detail::atomic;
constexpr auto kRelaxed = std::memory_order_relaxed;  // monitoring figures, each on its own

layout::ForwardLink& entry(const Topic& topic, std::size_t index) {
  return detail::mapping_of(topic).header().forward[index];
}

}  // namespace

Result<ForwardCounters> ForwardCounters::attach(const Topic& topic,
                                                const std::string& destination) {
  auto& h = detail::mapping_of(topic).header();
  const auto self = detail::self_identity();
  std::size_t chosen = layout::kForwardLinks;
  std::size_t free_entry = layout::kForwardLinks;
  for (std::size_t i = 0; i < layout::kForwardLinks; ++i) {
    auto& link = h.forward[i];
    const std::string dest = detail::read_fixed_text(link.destination, layout::kDestinationSize);
    if (dest == destination) {
      chosen = i;
      break;
    }
    const std::uint32_t pid = atomic(link.pid).load(kRelaxed);
    const bool alive = pid != 0 && detail::is_alive(pid, atomic(link.start_time).load(kRelaxed));
    if (free_entry == layout::kForwardLinks && (dest.empty() || !alive)) free_entry = i;
  }
  if (chosen == layout::kForwardLinks) chosen = free_entry;
  if (chosen == layout::kForwardLinks) {
    return Error(Errc::no_reader_slot, "topic '" + topic.name() + "' is forwarded on " +
                                           std::to_string(layout::kForwardLinks) +
                                           " live links already");
  }
  auto& link = h.forward[chosen];
  if (detail::read_fixed_text(link.destination, layout::kDestinationSize) != destination) {
    // A new entry: the acknowledged position starts at 0 (nothing is held yet).
    atomic(link.acked_position).store(0, std::memory_order_release);
    atomic(link.sent_position).store(0, kRelaxed);
    atomic(link.reconnects).store(0, kRelaxed);
    atomic(link.bytes_sent).store(0, kRelaxed);
    detail::write_fixed_text(link.destination, layout::kDestinationSize, destination);
  }
  atomic(link.start_time).store(self.start_time, kRelaxed);
  atomic(link.pid).store(self.pid, kRelaxed);
  atomic(link.state).store(layout::kForwardConnecting, kRelaxed);
  return ForwardCounters(topic, chosen);
}

void ForwardCounters::state(LinkState s) const {
  atomic(entry(topic_, index_).state).store(static_cast<std::uint32_t>(s), kRelaxed);
}

void ForwardCounters::sent(std::uint64_t position, std::uint64_t bytes) const {
  auto& link = entry(topic_, index_);
  atomic(link.sent_position).store(position, kRelaxed);
  atomic(link.bytes_sent).fetch_add(bytes, kRelaxed);
}

void ForwardCounters::acked(std::uint64_t position, std::uint64_t messages) const {
  auto& link = entry(topic_, index_);
  atomic(link.acked_messages).store(messages, kRelaxed);
  // release: pairs with the acquire load in Producer::wait_mirrored() and snapshots.
  atomic(link.acked_position).store(position, std::memory_order_release);
}

void ForwardCounters::reconnected() const {
  atomic(entry(topic_, index_).reconnects).fetch_add(1, kRelaxed);
}

void ForwardCounters::failed(const std::string& message) const {
  auto& link = entry(topic_, index_);
  detail::write_fixed_text(link.last_error, layout::kRecorderTextSize, message);
  // release: pairs with the acquire loads around the reader's copy of last_error.
  atomic(link.errors).fetch_add(1, std::memory_order_release);
}

void ForwardCounters::detach() const {
  auto& link = entry(topic_, index_);
  atomic(link.state).store(layout::kForwardStopped, kRelaxed);
  atomic(link.pid).store(0, kRelaxed);
}

}  // namespace ringbus
