// libFuzzer target: arbitrary bytes in the ring of a sound topic. The header is valid (a small
// topic created for each input) but the frames are whatever the input says, and so are the
// tail and the reclaimed position within the bounds producers keep:
//   byte 0       bit 0: overwrite policy (else block), bit 1: 8-byte frame alignment (else 64)
//   bytes 1-8    the tail, reduced to an aligned position below four laps of the ring
//   bytes 9-16   the messages claimed so far (the tail's sequence number)
//   the rest     the ring's bytes, from its first byte
// Readers (inspector, subscriber, group member) must report corruption or skip what a stuck
// claim would, never crash, read out of bounds or hang; the search for the end of a claim
// without a mark (ring/stuck_claim.hpp) answers a boundary between it and the tail, or none.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fuzz_support.hpp"
#include "ring/stuck_claim.hpp"
#include "ringbus/topic.hpp"
#include "topic/topic_mapping.hpp"

namespace {

constexpr std::uint64_t kCapacity = 4096;

std::uint64_t read_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ringbus::fuzz::ScratchDirectory bus_dir("ring-frames");
  if (size < 17) return 0;
  ringbus::Bus bus(bus_dir.path());
  (void)bus.remove_topic("fuzzed");
  ringbus::TopicOptions options;
  options.capacity = kCapacity;
  options.max_readers = 4;
  options.policy = (data[0] & 1U) != 0 ? ringbus::Policy::overwrite : ringbus::Policy::block;
  options.frame_alignment = (data[0] & 2U) != 0 ? 8 : 64;
  auto topic = bus.create_topic("fuzzed", options);
  if (!topic) __builtin_trap();  // a sound topic in our own directory: must work

  auto& map = ringbus::detail::mapping_of(*topic);
  auto& header = map.header();
  const auto& ring = map.ring_view();
  const std::uint64_t tail = read_u64(data + 1) % (4 * kCapacity) & ~(ring.alignment - 1);
  header.tail_position = tail;
  header.tail_messages = read_u64(data + 9);
  header.reclaimed = tail > kCapacity ? tail - kCapacity : 0;
  std::memcpy(ring.base, data + 17, std::min<std::size_t>(size - 17, kCapacity));

  // The walk that finds where a claim without a mark ended reads whatever the ring holds: from
  // every frame boundary below the tail it must answer nothing, or a boundary past it and
  // below the tail.
  const std::uint64_t from = header.reclaimed;
  for (std::uint64_t p = from; p < tail; p += ring.alignment * 7) {
    const std::uint64_t end = ringbus::detail::end_of_unmarked_claim(header, ring, p);
    if (end != 0 && (end <= p || end >= tail || end % ring.alignment != 0)) __builtin_trap();
  }
  (void)ringbus::fuzz::read_topic_every_way(*topic);
  return 0;
}
