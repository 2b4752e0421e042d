// Topics: one shared-memory file each in a bus directory. Create, open, remove, list, describe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/export.hpp"
#include "ringbus/result.hpp"

namespace ringbus {

namespace detail {
class TopicMapping;
struct TopicAccess;  // the library's own way to a topic's mapping (bus/src/topic)
}  // namespace detail

// What producers do when the slowest durable reader is a full ring behind.
enum class Policy : std::uint32_t {
  block = 0,      // producers wait (or get would_block); nothing unread is overwritten
  overwrite = 1,  // producers never wait; lapped readers are told how much they lost
};

RINGBUS_API std::string_view to_string(Policy policy) noexcept;

struct TopicOptions {
  // Ring size in bytes: a power of two from 4 KiB to 16 GiB.
  std::uint64_t capacity = std::uint64_t{1} << 20;
  // Largest key + value in bytes; 0 means capacity / 4. At most capacity / 4 and 1 GiB - 64.
  std::uint64_t max_message = 0;
  Policy policy = Policy::block;
  // Reader slots (subscribers, and later group members and bridge recorders): 1 to 4096.
  std::uint32_t max_readers = 64;
  // A claim not committed within this time (its producer died or hung) is turned into padding
  // by a waiting reader and counted in the header.
  std::chrono::milliseconds stuck_claim_timeout{2000};
  // Frames start at multiples of this: 64 puts every frame on its own cache line(s), so a
  // reader never shares a line with the frame being written next (lower latency, more space
  // for small messages); 8 packs frames tightly. See docs/benchmarks.md for the measurements.
  std::uint32_t frame_alignment = 64;
  // File mode: 0600 (default), 0640 (group may read, e.g. a monitor) or 0660 (group may attach).
  std::uint32_t mode = 0600;
  // Lock the mapping in memory (mlock); fails with a clear error over RLIMIT_MEMLOCK.
  bool lock_memory = false;
  // Where the stream starts: its first offset (a multiple of frame_alignment) and the sequence
  // number of its first message. 0 for a new topic; a topic re-created from its disk log
  // continues the log's offsets, so offsets are never reused (ringbus-bridge does this).
  std::uint64_t start_position = 0;
  std::uint64_t start_sequence = 0;
  // Non-empty: the topic is a mirror of a topic on another host ("HOST:PORT" of its source,
  // at most 127 characters). Only a MirrorWriter (ringbus-bridge's receiver) writes into it;
  // producers get read_only.
  std::string mirror_of = {};
};

struct OpenOptions {
  bool lock_memory = false;  // mlock the mapping
  bool read_only = false;    // map read-only (monitors); producers and readers need read-write
};

// The fixed configuration of a topic, as read (and validated) from its header.
struct TopicConfig {
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  Policy policy = Policy::block;
  std::uint32_t max_readers = 0;
  std::chrono::milliseconds stuck_claim_timeout{0};
  std::uint32_t layout_version = 0;
  std::uint64_t file_size = 0;
  std::uint64_t ring_offset = 0;
  std::uint32_t frame_alignment = 0;
  std::uint64_t start_position = 0;  // the stream's first offset (see TopicOptions)
  std::uint64_t start_sequence = 0;
  std::string mirror_of;   // a mirror: "HOST:PORT" of its source; empty for an ordinary topic
  std::uint32_t mode = 0;  // the topic file's permission bits when this process opened it
};

// One attached (or persistent but detached) reader, as seen by describe. A queue group and each
// of its members take a slot too (see ringbus/group.hpp): `kind` tells them apart.
struct ReaderInfo {
  std::uint32_t slot = 0;
  std::string name;  // empty for an ephemeral reader; "group:<name>" for a queue group
  std::string kind;  // "subscriber", "group" or "member"
  // Group and member: the group's name (without the "group:" prefix). Empty for a subscriber,
  // and for a member still joining.
  std::string group;
  bool persistent = false;
  bool durable = false;   // holds producers back under the block policy
  std::uint32_t pid = 0;  // 0: no process attached (persistent reader waiting to be resumed)
  bool alive = false;
  // Published position (readers publish in batches); for a group, its committed position:
  // every message before it is acknowledged.
  std::uint64_t position = 0;
  // Sequence number of the next message it will read. A group: of the first message at its
  // committed position, read from the ring (0, and lag_messages 0, once that frame is no longer
  // in the ring: lag_bytes still says how far behind it is).
  std::uint64_t messages = 0;
  std::uint64_t lag_bytes = 0;
  std::uint64_t lag_messages = 0;
  std::uint64_t lost_bytes = 0;
  std::uint64_t lost_messages = 0;
  // Member: messages of its batch not acknowledged yet (0 without a batch). Group: the sum over
  // its members, dead ones included (their batches wait to be taken over).
  std::uint32_t in_flight = 0;
  std::uint32_t delivery = 0;  // member with a batch: its delivery count (1 = first); else 0
  std::uint64_t dispatch = 0;  // group: the next position to hand out; `position` is committed
  // A persistent reader with no live process: it still holds producers back under block.
  bool stalled() const { return persistent && !alive; }
};

// The disk log of a topic, as published by the ringbus-bridge that records it (see
// docs/operations.md). Present in a snapshot once a bridge has recorded the topic.
struct RecorderInfo {
  std::string state;      // "recording", "failing" (retrying after an error) or "stopped"
  std::uint32_t pid = 0;  // the bridge process; 0 when none is attached
  bool alive = false;
  std::string log_dir;                  // <log_dir>/<topic>
  std::uint64_t recorded_position = 0;  // stream bytes written to segment files
  std::uint64_t recorded_messages = 0;  // messages written to segment files
  std::uint64_t durable_position = 0;   // bytes fsynced (survive a power cut)
  std::uint64_t durable_messages = 0;   // messages before durable_position
  std::uint64_t log_start = 0;          // oldest offset still in the log (retention)
  std::uint64_t segments = 0;
  std::uint64_t log_bytes = 0;  // bytes in segment files
  std::uint64_t errors = 0;     // failures so far (the bridge retries)
  std::string last_error;       // message of the last failure, empty if none
  std::uint64_t lag_bytes = 0;  // tail - recorded_position
};

// A mirror's receiving side (a topic created by ringbus-bridge --listen).
struct MirrorInfo {
  std::string source;     // "HOST:PORT" of the sending bridge
  std::uint32_t pid = 0;  // the receiving bridge; 0 when none is attached
  bool alive = false;
  std::uint64_t applied_position = 0;  // frames below this are written into the ring
  std::uint64_t applied_messages = 0;
  std::int64_t last_contact_unix_ns = 0;  // last bytes from the source (0: never)
};

// One link of a topic forwarded to another host by ringbus-bridge --forward.
struct ForwardInfo {
  std::string destination;  // "HOST:PORT"
  std::string state;        // "connecting", "streaming", "backing off", "failing", "stopped"
  std::uint32_t pid = 0;    // the forwarding bridge; 0 when none is attached
  bool alive = false;
  std::uint64_t sent_position = 0;
  std::uint64_t acked_position = 0;  // held by the receiver (durable there if it records)
  std::uint64_t acked_messages = 0;
  std::uint64_t lag_bytes = 0;        // tail - acked_position
  std::uint64_t lag_messages = 0;     // messages published - acked_messages
  std::uint64_t in_flight_bytes = 0;  // sent_position - acked_position: sent, not yet acked
  std::uint64_t reconnects = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t errors = 0;
  std::string last_error;
};

// A consistent-enough view of a topic's counters for tools and tests (fields are read one by
// one while producers run).
struct TopicSnapshot {
  TopicConfig config;
  std::uint64_t earliest = 0;        // oldest frame boundary still in the ring
  std::uint64_t tail = 0;            // next byte position to be claimed
  std::uint64_t messages = 0;        // messages claimed since creation (including aborted)
  std::uint64_t aborted_claims = 0;  // claims turned into padding (dead or hung producers)
  std::uint64_t reaped_readers = 0;  // dead readers whose slots were freed
  std::vector<ReaderInfo> readers;
  std::optional<RecorderInfo> recorder;  // the topic's disk log, if a bridge records it
  std::optional<MirrorInfo> mirror;      // set when the topic is a mirror of another host's
  std::vector<ForwardInfo> forwards;     // links forwarding it to other hosts
};

// What holds producers of a block topic back: the durable reader or queue group furthest
// behind the tail (only these make producers wait).
struct BackPressure {
  ReaderInfo reader;             // the slowest durable reader or group
  std::size_t live_members = 0;  // a group: members whose process is alive
  // Nothing will move it by itself: a persistent reader with no live process, a dead reader
  // not reaped yet, a group with no live member. It needs a reader, or removing.
  bool stuck = false;
  // About a ring behind (90% or more of the capacity): producers wait for it now.
  bool full = false;
  // One line for operators: which reader or group, how far behind, whether it is alive, and
  // what to do (start a member, resume the reader, or `ringbus topic remove-reader`).
  std::string text;
};

// The slowest durable reader or group of a block topic, from a snapshot; nullopt on an
// overwrite topic or with no durable reader. `topic_name` is used in the commands it suggests.
RINGBUS_API std::optional<BackPressure> back_pressure(std::string_view topic_name,
                                                      const TopicSnapshot& snapshot);

// A mapped topic. Cheap to copy (shares the mapping); producers and subscribers keep it alive.
// Thread safety: all const methods may be called from any thread.
class RINGBUS_API Topic {
 public:
  Topic() = default;

  const std::string& name() const noexcept;
  const std::string& path() const noexcept;
  const TopicConfig& config() const noexcept;
  bool valid() const noexcept { return map_ != nullptr; }

  // Reads the header and every reader slot. Liveness of each reader is checked (/proc).
  TopicSnapshot snapshot() const;

  // Frees the slots of ephemeral readers whose process died; marks dead persistent readers and
  // frees those whose expiry passed. Returns how many slots were freed. Not a hot-path call.
  std::size_t reap_dead_readers() const;

  // Removes the persistent reader NAME, so it no longer holds producers back. Errors: not_found,
  // busy (its process is alive).
  Result<void> remove_reader(std::string_view reader_name) const;

 private:
  friend class Bus;
  friend struct detail::TopicAccess;
  explicit Topic(std::shared_ptr<detail::TopicMapping> map) : map_(std::move(map)) {}
  void free_dead_members(std::uint32_t group_slot) const;
  std::shared_ptr<detail::TopicMapping> map_;
};

// A bus directory: where topic files live. Default: $RINGBUS_DIR, else /dev/shm/ringbus-$UID.
// A hugetlbfs or ordinary disk directory works too.
class RINGBUS_API Bus {
 public:
  static std::string default_directory();

  explicit Bus(std::string directory = default_directory());
  const std::string& directory() const noexcept { return directory_; }

  // Creates the topic atomically (built under a temporary name, then renamed), reserving all
  // its memory up front. Errors: invalid_argument (options), already_exists, no_space, io_error.
  Result<Topic> create_topic(std::string_view name, const TopicOptions& options = {}) const;

  // Maps and validates an existing topic. Errors: not_found, corrupt, incompatible, io_error.
  Result<Topic> open_topic(std::string_view name, const OpenOptions& options = {}) const;

  // Removes the topic's file; processes that mapped it keep their mapping until they drop it.
  Result<void> remove_topic(std::string_view name) const;

  // Names of the topic files in the directory, sorted. Removes leftovers of creations that
  // crashed half-way (temporary files whose creator is dead).
  Result<std::vector<std::string>> list_topics() const;

 private:
  std::string directory_;
};

// Checks a topic, group or reader name: 1-200 characters of [A-Za-z0-9._-], not starting with
// '.' (which also rules out "." and "..", and keeps names apart from temporary files).
// `what` names the kind of name in the error message.
RINGBUS_API Result<void> validate_name(std::string_view name, std::string_view what = "topic name");

}  // namespace ringbus
