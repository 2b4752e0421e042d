// libFuzzer target: a topic's disk log of arbitrary bytes, recovered as the bridge does at
// start (TopicLog::open) and then read as a replaying subscriber does (LogReader). Input:
//   byte 0      bit 0: write a chunk index for the first segment; bit 1: split the segment bytes
//               into two segments (the second without an index: it is rebuilt from its frames);
//               bit 2: 8-byte frame alignment (else 64); bit 3: a durable hint (state.json's
//               durable position: recovery must set damage below it aside, not cut it)
//   bytes 1-4   the index's length (reduced to what is left)
//   bytes 5-12  the durable hint
//   then        the index bytes, then the segment bytes
// Checked beyond "no crash": recovery is idempotent (opening the recovered log again finds the
// same end: a second recovery never cuts what the first kept), and the reader's walk stays
// within the log.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_support.hpp"
#include "log/log_reader.hpp"
#include "log/segments.hpp"
#include "topic_log.hpp"

namespace {

constexpr std::uint64_t kMaxMessage = 1024;

template <typename T>
T read_le(const std::uint8_t* p) {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

void walk(const std::string& dir, std::uint64_t start, std::uint64_t end, std::uint64_t alignment) {
  ringbus::detail::LogReader reader(dir, kMaxMessage, alignment);
  std::uint64_t position = start;
  for (int i = 0; i < 4096 && position < end; ++i) {
    const auto read = reader.read(position);
    using Status = ringbus::detail::LogReader::Status;
    if (read.status == Status::frame) {
      if (read.stride == 0 || read.frame == nullptr) __builtin_trap();  // would loop forever
      position += read.stride;
    } else if ((read.status == Status::gap || read.status == Status::out_of_range) &&
               read.next > position) {
      position = read.next;
    } else {
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ringbus::fuzz::ScratchDirectory scratch("log-recovery");
  if (size < 13) return 0;
  const std::uint8_t flags = data[0];
  std::size_t rest = size - 13;
  const std::size_t index_size = read_le<std::uint32_t>(data + 1) % (rest + 1);
  const std::uint64_t hint = (flags & 8U) != 0 ? read_le<std::uint64_t>(data + 5) : 0;
  const std::uint8_t* index = data + 13;
  const std::uint8_t* segment = index + index_size;
  const std::size_t segment_size = rest - index_size;

  const std::string dir = scratch.path() + "/topic";
  ringbus::fuzz::clear_directory(scratch.path());
  const std::size_t first = (flags & 2U) != 0 ? segment_size / 2 : segment_size;
  if (::mkdir(dir.c_str(), 0700) != 0) __builtin_trap();
  ringbus::fuzz::write_file(ringbus::detail::segment_file(dir, 0, ".log"), segment, first);
  if ((flags & 1U) != 0) {
    ringbus::fuzz::write_file(ringbus::detail::segment_file(dir, 0, ".idx"), index, index_size);
  }
  if ((flags & 2U) != 0) {
    ringbus::fuzz::write_file(ringbus::detail::segment_file(dir, first, ".log"), segment + first,
                              segment_size - first);
  }

  ringbus::detail::TopicLogOptions options;
  options.max_message = kMaxMessage;
  options.frame_alignment = (flags & 4U) != 0 ? 8 : 64;
  options.sync_on_roll = false;
  options.durable_hint = hint;
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  {
    auto log = ringbus::detail::TopicLog::open(dir, options);
    if (!log) return 0;
    start = log->start();
    end = log->end();
  }
  {
    auto again = ringbus::detail::TopicLog::open(dir, options);
    if (!again || again->end() != end || again->start() != start) __builtin_trap();
  }
  walk(dir, start, end, options.frame_alignment);
  return 0;
}
