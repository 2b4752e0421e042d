// Resolving a reader's start position in the disk log (start_position.hpp).
#include <string>

#include "log/log_reader.hpp"
#include "log/segments.hpp"
#include "ring/atomics.hpp"
#include "ring/start_position.hpp"
#include "topic/recorder_fields.hpp"

namespace ringbus::detail {

Result<std::optional<StartPoint>> resolve_log_start(TopicMapping& map, const StartFrom& start) {
  if (start.kind == StartFrom::Kind::latest) return std::optional<StartPoint>{};
  const std::string dir = log_dir_of(map.header());
  // acquire: pairs with the producers' reclaim CAS.
  const std::uint64_t ring_earliest =
      atomic(map.header().reclaimed).load(std::memory_order_acquire);
  if (dir.empty()) return std::optional<StartPoint>{};
  const auto& config = map.config();
  LogReader reader(dir, config.max_message, config.frame_alignment);
  std::uint64_t log_earliest = 0;
  if (!reader.earliest(log_earliest)) return std::optional<StartPoint>{};

  std::uint64_t position = log_earliest;
  if (start.kind == StartFrom::Kind::earliest) {
    if (log_earliest >= ring_earliest) return std::optional<StartPoint>{};
  } else {
    position = start.offset;
    if (position >= ring_earliest) return std::optional<StartPoint>{};
    if (position < log_earliest) {
      return Error(Errc::offset_out_of_range,
                   "offset " + std::to_string(position) + " is out of range: the earliest " +
                       "available offset of topic '" + map.name() + "' is " +
                       std::to_string(log_earliest) + " (disk log " + dir + ")");
    }
    // Prove it is a frame boundary: walk from the start of its segment.
    auto bases = list_segments(dir);
    if (!bases) return bases.error();
    std::uint64_t p = log_earliest;
    for (std::uint64_t base : *bases) {
      if (base <= position) p = base;
    }
    std::uint64_t frame_start = p;
    while (p < position) {
      auto r = reader.read(p);
      if (r.status == LogReader::Status::corrupt) return Error(Errc::corrupt, reader.error());
      if (r.status != LogReader::Status::frame) {
        return Error(Errc::offset_out_of_range,
                     "offset " + std::to_string(position) + " of topic '" + map.name() +
                         "' is neither in its ring (from " + std::to_string(ring_earliest) +
                         ") nor in its disk log");
      }
      frame_start = p;
      p = r.next;
    }
    if (p != position) {
      return Error(Errc::invalid_argument,
                   "offset " + std::to_string(position) + " is not a frame boundary (it is " +
                       "inside the frame at " + std::to_string(frame_start) + " to " +
                       std::to_string(p) + ")");
    }
  }
  StartPoint sp;
  sp.position = position;
  // The sequence number of the first message from here, if one is close.
  std::uint64_t p = position;
  for (int frames = 0; frames < 64; ++frames) {
    auto r = reader.read(p);
    if (r.status != LogReader::Status::frame) break;
    if (layout::commit_kind(r.frame->commit) == layout::FrameKind::kData) {
      sp.sequence = r.frame->sequence;
      sp.sequence_known = true;
      break;
    }
    p = r.next;
  }
  return std::optional<StartPoint>{sp};
}

}  // namespace ringbus::detail
