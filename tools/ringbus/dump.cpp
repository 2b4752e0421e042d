// `ringbus topic dump`: the frames of a topic's ring, one per line, for debugging. It maps the
// topic read-only and takes no reader slot, so it never holds producers back; instead it checks
// every frame's lap tag and, after copying a frame, that no producer reclaimed its space (the
// same seqlock-style check lossy readers make), and starts again at the earliest offset if so.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <ostream>
#include <string>
#include <thread>

#include "cli.hpp"
#include "layout/frame_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/start_position.hpp"
#include "ringbus/subscriber.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus::cli {
namespace {

using layout::FrameHeader;
using layout::FrameKind;

constexpr std::size_t kPreviewBytes = 48;  // of a key or value, shown per frame
constexpr std::size_t kCopyLimit = 4096;   // bytes of payload copied per frame (for previews)
constexpr int kClaimRetries = 200;         // x 1 ms: how long to wait for a claim in flight

std::string timestamp_text(std::int64_t ns) {
  if (ns <= 0) return std::to_string(ns);
  const auto seconds = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%s.%09lldZ", date, static_cast<long long>(ns % 1'000'000'000));
  return text;
}

// Printable ASCII as a quoted string, anything else as hex; at most kPreviewBytes of `total`.
std::string preview(const std::byte* bytes, std::size_t available, std::size_t total) {
  const auto shown = std::min<std::size_t>({available, total, kPreviewBytes});
  bool printable = true;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    printable = printable && c >= 0x20 && c < 0x7f;
  }
  std::string text;
  if (printable) {
    text = "\"";
    for (std::size_t i = 0; i < shown; ++i) {
      const char c = static_cast<char>(bytes[i]);
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += shown < total ? "\"..." : "\"";
  } else {
    static const char kHex[] = "0123456789abcdef";
    text = "0x";
    for (std::size_t i = 0; i < shown; ++i) {
      const auto c = static_cast<unsigned char>(bytes[i]);
      text += kHex[c >> 4];
      text += kHex[c & 15];
    }
    if (shown < total) text += "...";
  }
  if (shown < total) text += " (" + std::to_string(total) + " bytes)";
  return text;
}

std::string row(const std::string& offset, const std::string& length, const std::string& type,
                const std::string& sequence, const std::string& timestamp, const std::string& key,
                const std::string& value) {
  char head[160];
  std::snprintf(head, sizeof head, "%-14s %-8s %-8s %-10s %-30s ", offset.c_str(), length.c_str(),
                type.c_str(), sequence.c_str(), timestamp.c_str());
  std::string text = head;
  text += key.size() < 12 ? key + std::string(12 - key.size(), ' ') : key;
  text += ' ';
  text += value;
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text + '\n';
}

// Nothing from `p` on may be trusted once a producer claimed the space one ring further on.
bool overwritten(detail::TopicMapping& map, std::uint64_t p) {
  return detail::atomic(map.header().tail_position).load(std::memory_order_acquire) >
         p + map.config().capacity;
}

}  // namespace

Result<void> topic_dump(const Bus& bus, const DumpArgs& args, const Io& io) {
  auto from = parse_from(args.from);
  if (!from) return from.error();
  if (args.count && *args.count < 0) {
    return Error(Errc::invalid_argument,
                 "--count " + std::to_string(*args.count) + " is invalid: it must not be negative");
  }
  auto topic = bus.open_topic(args.topic, OpenOptions{.lock_memory = false, .read_only = true});
  if (!topic) return topic.error();
  detail::TopicMapping& map = topic->mapping();
  const TopicConfig& config = map.config();
  const std::uint64_t mask = config.capacity - 1;
  const std::uint32_t shift = map.lap_shift();

  auto start = detail::resolve_start(map, *from);
  if (!start) return start.error();
  std::uint64_t p = start->position;
  // Frames published after the dump began are not shown: a busy topic still gives a finite dump.
  const std::uint64_t end = detail::read_tail(map.header()).position;
  const std::uint64_t limit = args.count ? static_cast<std::uint64_t>(*args.count)
                                         : std::numeric_limits<std::uint64_t>::max();

  io.out << row("OFFSET", "LENGTH", "TYPE", "SEQUENCE", "TIMESTAMP", "KEY", "VALUE");
  std::uint64_t shown = 0;
  int retries = 0;
  alignas(8) std::byte payload[kCopyLimit];
  while (p < end && shown < limit) {
    const auto* frame = reinterpret_cast<const FrameHeader*>(map.ring() + (p & mask));
    // acquire: pairs with the producer's release store of the commit word.
    const std::uint64_t word = detail::load_racy_acquire(&frame->commit);
    const FrameKind kind = layout::commit_kind(word);
    const bool this_lap = layout::commit_lap(word) == layout::lap_of(p, shift);
    if (overwritten(map, p)) {
      auto earliest = detail::resolve_start(map, StartFrom::earliest());
      if (!earliest) return earliest.error();
      if (earliest->position <= p) {
        return Error(Errc::corrupt, "topic '" + topic->name() +
                                        "' is corrupt: its tail is a ring "
                                        "past offset " +
                                        std::to_string(p) + " but its earliest offset is not");
      }
      io.err << "ringbus: frames from offset " << p
             << " were overwritten while dumping; going on at offset " << earliest->position
             << std::endl;
      p = earliest->position;
      continue;
    }
    if (!this_lap || kind == FrameKind::kNone || kind == FrameKind::kClaimed) {
      // A producer holds this space and has not committed yet: wait a little, then stop.
      if (++retries <= kClaimRetries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      io.err << "ringbus: stopped at offset " << p
             << ": a claim there is not committed (a producer is writing it, or died)" << std::endl;
      break;
    }
    retries = 0;
    const std::uint64_t stride = layout::committed_stride(
        word, p & mask, config.capacity, config.max_message, config.frame_alignment);
    if (stride == 0) {
      if (overwritten(map, p)) continue;  // reused under us: handled at the top
      return Error(Errc::corrupt,
                   "topic '" + topic->name() + "': invalid frame at offset " + std::to_string(p));
    }
    if (kind == FrameKind::kPadding) {
      io.out << row(std::to_string(p), std::to_string(stride),
                    layout::is_gap(word) ? "gap" : "padding", "-", "-", "-", "-");
      p += stride;
      continue;
    }
    // Copy, then check that the copy was not overwritten (a seqlock read).
    FrameHeader header{};
    detail::copy_racy(reinterpret_cast<std::uint64_t*>(&header),
                      reinterpret_cast<const std::byte*>(frame), sizeof header / 8);
    const std::uint64_t length = layout::commit_length(word);
    const auto copied = static_cast<std::size_t>(std::min<std::uint64_t>(length, kCopyLimit));
    detail::copy_racy(reinterpret_cast<std::uint64_t*>(payload),
                      reinterpret_cast<const std::byte*>(frame + 1), (copied + 7) / 8);
    detail::load_load_barrier();
    if (overwritten(map, p)) continue;
    if (header.key_length > length) {
      return Error(Errc::corrupt, "topic '" + topic->name() + "': frame at offset " +
                                      std::to_string(p) + " has a key longer than the message");
    }
    const std::size_t key_copied = std::min<std::size_t>(header.key_length, copied);
    io.out << row(std::to_string(p), std::to_string(length), "data",
                  std::to_string(header.sequence), timestamp_text(header.timestamp_ns),
                  header.key_length == 0 ? "-" : preview(payload, key_copied, header.key_length),
                  preview(payload + key_copied, copied - key_copied, length - header.key_length));
    ++shown;
    p += stride;
  }
  return {};
}

}  // namespace ringbus::cli
