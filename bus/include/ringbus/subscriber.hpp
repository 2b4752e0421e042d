// Subscribers (pub-sub): each has its own cursor and reads every message in publish order.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringbus/bytes.hpp"
#include "ringbus/export.hpp"
#include "ringbus/function_ref.hpp"
#include "ringbus/result.hpp"
#include "ringbus/ring_view.hpp"
#include "ringbus/stuck_claim_timer.hpp"
#include "ringbus/taken_on_move.hpp"
#include "ringbus/topic.hpp"
#include "ringbus/wait.hpp"

namespace ringbus {

namespace detail {
class LogReader;
}

// One message, read in place. Valid only inside the poll handler call that received it.
struct Message {
  std::uint64_t offset = 0;    // byte position of its frame in the topic's stream
  std::uint64_t sequence = 0;  // index of the message in the topic (0, 1, 2, ...)
  std::int64_t timestamp_ns = 0;
  ConstBytes key;
  ConstBytes value;
  // Queue groups: how often this message has been handed out (1 = first delivery). A message
  // is delivered again when the member holding it died or missed the processing deadline.
  std::uint32_t delivery_count = 1;
  bool redelivered() const noexcept { return delivery_count > 1; }
};

// Where a new subscriber starts.
struct StartFrom {
  enum class Kind : std::uint8_t { earliest, latest, offset };
  Kind kind = Kind::latest;
  std::uint64_t offset = 0;

  // The oldest message available: in the topic's disk log if a ringbus-bridge records it
  // (replayed from the log, then the ring, without gap or duplicate), else in the ring.
  static StartFrom earliest() { return {Kind::earliest, 0}; }
  static StartFrom latest() { return {Kind::latest, 0}; }  // the next message published
  // A frame boundary in the ring, or in the disk log (replayed from there).
  static StartFrom at(std::uint64_t o) { return {Kind::offset, o}; }
};

enum class Durability : std::uint8_t {
  topic_default,  // durable on a block topic, lossy on an overwrite topic
  durable,        // holds producers back under the block policy; never loses a message there
  lossy,          // never holds producers back; may be lapped, and then told what it lost
};

struct SubscriberOptions {
  StartFrom start = StartFrom::latest();
  Durability durability = Durability::topic_default;
  // Empty: an ephemeral reader, freed when its process dies. Otherwise a persistent reader
  // that keeps its position in the topic across processes; attaching again with the same name
  // resumes there and ignores `start`.
  std::string name;
  // Persistent readers only: free the slot this long after its process died (0: never).
  std::chrono::milliseconds expiry{0};
  // The published position (which holds producers back on a block topic, and where a
  // persistent reader resumes) moves only when commit_position() is called, not as messages
  // are polled, as with Kafka's enable.auto.commit=false. For readers that store messages
  // elsewhere first: ringbus-bridge commits what it has written to disk.
  bool manual_commit = false;
};

// One frame as it lies in the topic's stream, for connectors that move frames verbatim (the
// bridge's disk log, forwarding to another host): same bytes, same offset on the other side.
struct RawFrame {
  Message message;  // the frame's message, as poll() would hand it out
  // The frame's bytes from its header to the end of its value (frame_header_size + key + value;
  // the slack up to the next frame boundary is not part of it).
  ConstBytes bytes;
  // True: the bytes lie in the ring and stay there, unchanged, until this reader commits past
  // them (a durable manual_commit reader reading in place), so a sink may keep pointing at
  // them. False: a checked copy or the disk log's mapping, valid only inside the handler call.
  bool held = false;
};

struct PollResult {
  std::size_t messages = 0;  // messages handed to the handler
  // Stream bytes and messages skipped because the reader was lapped, or (on a mirror) because
  // its source lost them before they were forwarded (a gap, see ringbus/mirror.hpp).
  std::uint64_t lost_bytes = 0;
  std::uint64_t lost_messages = 0;
};

// A reader with its own cursor. Not thread safe: poll from one thread at a time.
//
// Disk log: when its position is older than the ring (it started at an old offset, or was
// lapped on an overwrite topic, or resumed late), and the topic is recorded by ringbus-bridge,
// a subscriber reads the log's segments (mapped read-only, each chunk's CRC32C checked), then
// continues in the ring at the same offset. While it reads the log, producers do not wait for
// it. Positions the log no longer has (retention) or never had are reported as lost.
class RINGBUS_API Subscriber {
 public:
  // Takes a reader slot. Errors: no_reader_slot, busy (persistent name held by a live
  // process), offset_out_of_range, invalid_argument (offset not on a frame boundary, bad name).
  static Result<Subscriber> attach(const Topic& topic, const SubscriberOptions& options = {});

  Subscriber(Subscriber&&) noexcept;
  Subscriber& operator=(Subscriber&&) noexcept;
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  ~Subscriber();  // detaches: frees an ephemeral slot, keeps a persistent one's position

  // Hands up to max_messages available messages to handler(const Message&), in order, and
  // returns how many, plus what was lost if the reader was lapped. Never blocks. Errors:
  // corrupt (a frame or a log chunk fails validation). Hot path: no alloc, no system call
  // (reading the disk log does both: it maps segments and checks them).
  template <class F>
  Result<PollResult> poll(F&& handler, std::size_t max_messages = 64) noexcept {
    return poll_some(FunctionRef<void(const Message&)>(handler), max_messages);
  }

  // Like poll(), but hands each message's whole frame to handler(const RawFrame&). Padding
  // frames are not handed out: the space between the end of one frame (rounded up to the
  // topic's frame alignment) and the next frame's offset is padding, unless lost_bytes() grew.
  template <class F>
  Result<PollResult> poll_frames(F&& handler, std::size_t max_messages = 64) noexcept {
    auto raw = [&](const Message& m) { handler(raw_frame(m)); };
    return poll_some(FunctionRef<void(const Message&)>(raw), max_messages);
  }

  // Waits until a message is available (or the timeout passes: timed_out).
  Result<void> wait(const Wait& wait);

  // wait() then poll().
  template <class F>
  Result<PollResult> poll_wait(F&& handler, std::size_t max_messages, const Wait& w) {
    auto ready = wait(w);
    if (!ready) return ready.error();
    return poll(handler, max_messages);
  }

  std::uint64_t position() const noexcept { return cursor_; }
  // Sequence number of the next message it reads (once known: after attach at a boundary
  // followed by a message, or after the first message).
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }
  std::uint64_t lost_bytes() const noexcept { return lost_bytes_; }
  std::uint64_t lost_messages() const noexcept { return lost_messages_; }
  bool durable() const noexcept { return durable_; }
  // True while it reads the topic's disk log rather than the ring.
  bool replaying() const noexcept { return in_log_; }
  std::uint32_t slot() const noexcept { return slot_; }
  const Topic& topic() const noexcept { return topic_; }

  // Publishes the position now (it is otherwise published in batches and at the end of each
  // poll that read something). Does nothing with manual_commit.
  void publish_position() noexcept;
  // manual_commit: publishes `offset`, a frame boundary at or before position(), whose next
  // message has sequence number `next_sequence`. Everything before it is done with: producers
  // may overwrite it, and a persistent reader resumes there.
  void commit_position(std::uint64_t offset, std::uint64_t next_sequence) noexcept;

 private:
  Subscriber() = default;
  Result<PollResult> poll_some(FunctionRef<void(const Message&)> handler,
                               std::size_t max_messages) noexcept;
  enum class Frame : std::uint8_t;
  Frame read_frame(Message& out) noexcept;
  bool resync_after_lap() noexcept;
  Frame stuck_claim_expired(std::uint64_t commit_word) noexcept;
  Frame suspect(const char* why, std::uint64_t word, std::uint32_t key_length) noexcept;
  bool data_available() const noexcept;
  void detach() noexcept;
  bool resume() noexcept;
  RawFrame raw_frame(const Message& m) const noexcept;
  void store_position(std::uint64_t offset, std::uint64_t next_sequence) noexcept;
  // Disk log (subscriber_log.cpp).
  Result<void> poll_log(FunctionRef<void(const Message&)> handler, std::size_t max_messages,
                        PollResult& result) noexcept;
  bool enter_log() noexcept;
  bool ring_lost_cursor() const noexcept;
  bool leave_log() noexcept;
  bool open_log() noexcept;
  void deliver(const Message& message, FunctionRef<void(const Message&)> handler,
               PollResult& result) noexcept;
  void set_replaying(bool on) noexcept;

  Topic topic_;
  detail::RingView ring_;
  void* header_ = nullptr;
  detail::TakenOnMove<void*> slot_ptr_;  // the attached slot; null: detached (or moved from)
  std::uint32_t slot_ = 0;
  bool durable_ = false;
  bool persistent_ = false;
  bool manual_commit_ = false;
  std::uint64_t cursor_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t next_sequence_ = 0;
  bool sequence_known_ = false;
  // Below this position frames may be overwritten under us, so they are copied and checked.
  std::uint64_t safe_from_ = 0;
  std::uint64_t lost_bytes_ = 0;
  std::uint64_t lost_messages_ = 0;
  std::uint64_t pending_lost_bytes_ = 0;
  bool lost_pending_ = false;
  detail::StuckClaimTimer stuck_;  // something pending at the cursor: a claim, a suspect word
  // A position whose word looked like this lap's frame but did not check out (suspect()).
  std::uint64_t suspect_position_ = ~std::uint64_t{0};
  std::uint64_t suspect_word_ = 0;
  // What the last Frame::corrupt saw, for its error message.
  const char* corrupt_why_ = "";
  std::uint64_t corrupt_word_ = 0;
  std::uint32_t corrupt_key_length_ = 0;
  std::uint32_t idle_polls_ = 0;     // empty polls in a row; the stuck-claim check runs on a few
  std::vector<std::uint64_t> copy_;  // frame copy for the checked path, sized at attach
  std::unique_ptr<detail::LogReader> log_;  // opened when the ring no longer has the position
  bool in_log_ = false;
};

}  // namespace ringbus
