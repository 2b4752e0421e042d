// Producers: claim space in a topic's ring with a lock-free CAS, fill it in place, commit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

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

class Producer;

// Where a producer's timestamps come from when the caller gives none (0).
enum class TimestampSource : std::uint8_t {
  realtime,  // CLOCK_REALTIME in ns, read at each commit (the default; tens of ns on a VM)
  coarse,    // CLOCK_REALTIME_COARSE: the last timer tick (a resolution of 1 to 4 ms), a few ns
  none,      // no clock on the path: a message's timestamp is 0 unless the caller gives one
};

struct ProducerOptions {
  TimestampSource timestamps = TimestampSource::realtime;
};

// Writable space in the ring for one message (a loan). Fill bytes(), then commit(). A claim
// destroyed without commit is aborted: its frame becomes padding, so the stream never stalls.
// Move-only. Not thread safe; commit it from the thread that claimed it or hand it over.
class [[nodiscard]] RINGBUS_API Claim {
 public:
  Claim() = default;
  Claim(Claim&& other) noexcept;
  Claim& operator=(Claim&& other) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();

  // The value bytes, in the ring. Valid until commit() or abort().
  MutableBytes bytes() const noexcept { return value_; }
  // The message's offset: its byte position in the topic's stream.
  std::uint64_t offset() const noexcept { return position_; }
  bool active() const noexcept { return commit_word_ != nullptr; }

  // Publishes the message with the given timestamp (0: the producer's TimestampSource). Errors:
  // aborted (a reader turned the claim into padding because it took longer than the topic's
  // stuck-claim timeout; the message was not delivered). Hot path: no alloc, no system call
  // (unless a reader sleeps on the futex, which then needs one wake-up call).
  Result<std::uint64_t> commit(std::int64_t timestamp_ns = 0) noexcept;
  // Gives the space back as padding.
  void abort() noexcept;

 private:
  friend class Producer;
  void* header_ = nullptr;                           // the topic header (for the futex wake-up)
  detail::TakenOnMove<std::uint64_t*> commit_word_;  // null: nothing to commit or abort
  std::uint64_t claimed_word_ = 0;                   // the in-progress commit word this claim wrote
  std::uint64_t position_ = 0;
  std::uint64_t alignment_ = 8;  // the topic's frame alignment, for the padding stride
  TimestampSource timestamps_ = TimestampSource::realtime;
  MutableBytes value_;
};

// One message of a batch (Producer::publish_batch): its key and value are copied into the ring.
struct Record {
  ConstBytes key;
  ConstBytes value;
  // 0: the producer's TimestampSource, read once per batch.
  std::int64_t timestamp_ns = 0;
};

// Where a published batch went: its messages have consecutive sequence numbers, in order, from
// the offset `first` to the offset `last` (pass `last` to wait_durable / wait_mirrored).
struct BatchOffsets {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

// Publishes into one topic. Any number of producers, in any number of processes, may publish
// into the same topic; messages from one producer are read in the order it published them.
// A Producer object is not thread safe: use one per thread.
class RINGBUS_API Producer {
 public:
  explicit Producer(Topic topic, const ProducerOptions& options = {});

  // Claims space for a value of value_size bytes with the given key (copied now). Errors:
  // would_block (block policy: the slowest durable reader is a ring behind), too_large,
  // corrupt (the header's tail or reclaimed position is not a frame boundary of one ring).
  // Hot path: no alloc, no system call.
  Result<Claim> try_claim(std::size_t value_size, ConstBytes key = {}) noexcept;
  // Like try_claim, but waits for space with the given strategy; reaps dead readers while it
  // waits. Only busy_spin keeps spinning: spin_yield yields for a millisecond, then it and
  // futex sleep in growing naps (at most 2 ms), so a producer blocked for long uses next to no
  // CPU. Errors: timed_out (its message names the reader or group holding producers back, how
  // far behind it is, whether it is alive, and how to remove it), too_large, corrupt.
  Result<Claim> claim(std::size_t value_size, ConstBytes key, const Wait& wait);

  // Copies key and value into the ring and commits. Returns the message's offset.
  Result<std::uint64_t> try_publish(ConstBytes key, ConstBytes value) noexcept;
  Result<std::uint64_t> publish(ConstBytes key, ConstBytes value, const Wait& wait = {});

  // Publishes `records` as consecutive messages with one claim of the tail (one locked
  // instruction for the whole batch instead of one per message), and commits them so that a
  // reader sees the batch at once: the first message is committed last. No other producer's
  // message falls between them. The frames of a batch take at most a quarter of the ring.
  // Errors: invalid_argument (no records), too_large (a record over max_message, or the batch
  // over a quarter of the ring), would_block, corrupt, read_only, aborted (readers turned some
  // of its messages into padding because the batch took longer than the stuck-claim timeout;
  // the others were delivered). Hot path: no alloc, no system call (but the futex wake-up).
  Result<BatchOffsets> try_publish_batch(std::span<const Record> records) noexcept;
  // Like try_publish_batch, waiting for space as claim() does.
  Result<BatchOffsets> publish_batch(std::span<const Record> records, const Wait& wait = {});

  // Producer acks (Kafka's `acks`): wait until the message at `offset` (as returned by commit or
  // publish) is safe. wait_durable: fsynced to the topic's disk log by the ringbus-bridge that
  // records it (its durable position passed the message). wait_mirrored: acknowledged by at
  // least `receivers` hosts the topic is forwarded to (durable there if they record it). Both
  // sleep in short naps (busy_spin spins). Errors: timed_out (saying how far the bridge got, or
  // that none records or forwards the topic), invalid_argument (receivers is 0 or more than the
  // topic's forward links).
  Result<void> wait_durable(std::uint64_t offset, const Wait& wait) const;
  Result<void> wait_mirrored(std::uint64_t offset, std::uint32_t receivers, const Wait& wait) const;

  const Topic& topic() const noexcept { return topic_; }

 private:
  friend class MirrorWriter;
  // The claim itself: fills `claim` or sets `error` (would_block, too_large).
  bool claim_into(Claim& claim, std::size_t value_size, ConstBytes key, Errc& error) noexcept;
  // Calls `attempt` until it returns anything but would_block, waiting as `wait` says; turns
  // corrupt, read_only and a timeout into errors with messages.
  Result<void> retry_while_blocked(FunctionRef<Errc()> attempt, const Wait& wait);
  // Batches (producer_batch.cpp): the checks, the tail claim, and writing the claimed frames.
  Errc check_batch(std::span<const Record> records) const noexcept;
  Errc claim_batch(std::span<const Record> records, std::uint64_t& from,
                   std::uint64_t& first_sequence) noexcept;
  Result<BatchOffsets> write_batch(std::span<const Record> records, std::uint64_t from,
                                   std::uint64_t first_sequence) noexcept;
  void rescan_limit() noexcept;
  // Errc{} when [end - capacity, end) may be (re)used now; would_block or corrupt otherwise.
  Errc make_room(std::uint64_t end) noexcept;
  Error read_only_error() const;
  // Errc{} when the space below `target` may be reused; would_block or corrupt otherwise.
  Errc reclaim(std::uint64_t target) noexcept;
  bool skip_stalled_claim(std::uint64_t position, std::uint64_t commit_word) noexcept;
  // Slow-path errors with a message: the damaged positions; who holds producers back.
  Error corrupt_error() const;
  Error blocked_error(std::int64_t waited_ns) const;

  Topic topic_;
  detail::RingView ring_;
  void* header_ = nullptr;
  bool blocking_ = true;
  bool read_only_ = false;  // a mirror: only its MirrorWriter writes
  TimestampSource timestamps_ = TimestampSource::realtime;
  std::uint64_t limit_ = 0;          // cached: slowest durable reader's position when last scanned
  std::uint64_t reclaimed_ = 0;      // cached: the header's reclaimed position
  std::uint64_t readers_epoch_ = 0;  // the header's readers_epoch at our last scan
  detail::StuckClaimTimer stuck_;    // a claim pending where space is reclaimed
  std::uint64_t reclaim_loads_ = 0;  // commit words loaded by reclaim walks (tests read it)
  friend struct ProducerTestPeer;
};

}  // namespace ringbus
