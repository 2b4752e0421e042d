// RingInspector: the lossy subscriber's checks (lap tag, commit kind, bounds, copy then tail)
// without its reader slot or cursor.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "layout/frame_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/start_position.hpp"
#include "ringbus/inspector.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using layout::FrameHeader;
using layout::FrameKind;

// Nothing from `offset` on may be trusted once a producer claimed the space a ring further on.
bool overwritten(detail::TopicMapping& map, std::uint64_t offset) {
  // acquire: pairs with the producers' tail CAS; what was copied before it is checked here.
  return detail::atomic(map.header().tail_position).load(std::memory_order_acquire) >
         offset + map.config().capacity;
}

}  // namespace

RingInspector::RingInspector(Topic topic, std::size_t head_bytes)
    : topic_(std::move(topic)),
      head_bytes_(head_bytes),
      copy_((sizeof(layout::FrameHeader) + head_bytes + 7) / 8) {}

Result<std::uint64_t> RingInspector::resolve(const StartFrom& from) const {
  auto start = detail::resolve_start(detail::mapping_of(topic_), from);
  if (!start) return start.error();
  return start->position;
}

std::uint64_t RingInspector::tail() const noexcept {
  return detail::read_tail(detail::mapping_of(topic_).header()).position;
}

Result<InspectedFrame> RingInspector::read(std::uint64_t offset) {
  detail::TopicMapping& map = detail::mapping_of(topic_);
  const detail::RingView& ring = map.ring_view();
  InspectedFrame out;
  out.offset = offset;
  if (offset % ring.alignment != 0) {
    return Error(Errc::invalid_argument, "offset " + std::to_string(offset) +
                                             " is not a frame boundary of topic '" + topic_.name() +
                                             "'");
  }
  const auto* frame = detail::frame_at(ring, offset);
  // acquire: pairs with the producer's release of the commit word. Racy: a later lap may be
  // writing here now (the tail check below tells).
  const std::uint64_t word = detail::load_racy_acquire(&frame->commit);
  if (overwritten(map, offset)) {
    out.state = FrameState::overwritten;
    return out;
  }
  const detail::CommitWord commit = detail::classify(ring, offset, word);
  if (!detail::committed(commit.state)) {
    out.state = FrameState::pending;
    return out;
  }
  out.stride = commit.stride;
  auto damaged = [&](const std::string& why) -> Result<InspectedFrame> {
    if (overwritten(map, offset)) {
      out.state = FrameState::overwritten;
      return out;
    }
    return Error(Errc::corrupt,
                 "topic '" + topic_.name() + "': " + why + " at offset " + std::to_string(offset));
  };
  if (commit.state == detail::Commit::invalid) return damaged("an invalid frame");
  if (commit.kind == FrameKind::kPadding) {
    out.state = layout::is_gap(word) ? FrameState::gap : FrameState::padding;
    return out;
  }
  // Copy the frame header and the head of key + value, then check that no producer claimed
  // this space meanwhile (a seqlock read).
  out.length = layout::commit_length(word);
  const auto copied = static_cast<std::size_t>(std::min<std::uint64_t>(out.length, head_bytes_));
  if (!detail::copy_intact(map.header(), ring, offset, reinterpret_cast<const std::byte*>(frame),
                           (sizeof(FrameHeader) + copied + 7) / 8, copy_.data())) {
    out.state = FrameState::overwritten;
    return out;
  }
  FrameHeader header{};
  std::memcpy(&header, copy_.data(), sizeof header);
  if (header.key_length > out.length) return damaged("a key longer than its message");
  out.state = FrameState::data;
  out.sequence = header.sequence;
  out.timestamp_ns = header.timestamp_ns;
  out.key_length = header.key_length;
  out.head = ConstBytes(reinterpret_cast<const std::byte*>(copy_.data()) + sizeof header, copied);
  return out;
}

}  // namespace ringbus
