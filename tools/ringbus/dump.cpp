// `ringbus topic dump`: the frames of a topic's ring, one per line, for debugging. It maps the
// topic read-only and reads it with a RingInspector (ringbus/inspector.hpp): no reader slot, so
// it never holds producers back; a frame overwritten while it is read sends it on at the
// earliest offset, and a claim that stays uncommitted ends the dump.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <ostream>
#include <string>
#include <thread>

#include "cli.hpp"
#include "ringbus/inspector.hpp"
#include "ringbus/subscriber.hpp"

namespace ringbus::cli {
namespace {

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
  RingInspector ring(*topic, kCopyLimit);
  auto start = ring.resolve(*from);
  if (!start) return start.error();
  std::uint64_t p = *start;
  // Frames published after the dump began are not shown: a busy topic still gives a finite dump.
  const std::uint64_t end = ring.tail();
  const std::uint64_t limit = args.count ? static_cast<std::uint64_t>(*args.count)
                                         : std::numeric_limits<std::uint64_t>::max();

  io.out << row("OFFSET", "LENGTH", "TYPE", "SEQUENCE", "TIMESTAMP", "KEY", "VALUE");
  std::uint64_t shown = 0;
  int retries = 0;
  while (p < end && shown < limit) {
    auto frame = ring.read(p);
    if (!frame) return frame.error();
    switch (frame->state) {
      case FrameState::overwritten: {
        auto earliest = ring.resolve(StartFrom::earliest());
        if (!earliest) return earliest.error();
        if (*earliest <= p) {
          return Error(Errc::corrupt, "topic '" + topic->name() +
                                          "' is corrupt: its tail is a ring past offset " +
                                          std::to_string(p) + " but its earliest offset is not");
        }
        io.err << "ringbus: frames from offset " << p
               << " were overwritten while dumping; going on at offset " << *earliest << std::endl;
        p = *earliest;
        continue;
      }
      case FrameState::pending:
        // A producer holds this space and has not committed yet: wait a little, then stop.
        if (++retries <= kClaimRetries) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        io.err << "ringbus: stopped at offset " << p
               << ": a claim there is not committed (a producer is writing it, or died)"
               << std::endl;
        return {};
      case FrameState::padding:
      case FrameState::gap:
        io.out << row(std::to_string(p), std::to_string(frame->stride),
                      frame->state == FrameState::gap ? "gap" : "padding", "-", "-", "-", "-");
        break;
      case FrameState::data: {
        const std::size_t copied = frame->head.size();
        const std::size_t key_copied = std::min<std::size_t>(frame->key_length, copied);
        const std::byte* head = frame->head.data();
        io.out << row(
            std::to_string(p), std::to_string(frame->length), "data",
            std::to_string(frame->sequence), timestamp_text(frame->timestamp_ns),
            frame->key_length == 0 ? "-" : preview(head, key_copied, frame->key_length),
            preview(head + key_copied, copied - key_copied, frame->length - frame->key_length));
        ++shown;
        break;
      }
    }
    retries = 0;
    p += frame->stride;
  }
  return {};
}

}  // namespace ringbus::cli
