// Batch publish: many messages with one claim of the tail, committed all at once.
//
// The batch's frames are laid out from the tail as single claims would be (a padding frame
// where a frame would cross the ring's end; a batch is at most a quarter ring, so there is at
// most one, and it splits the batch into two runs of frames), and claimed with one 16-byte CAS
// that moves the tail past them all and the message count by the number of records. Then:
//   1. the first frame of each run gets a claim mark whose length spans the whole run, so a
//      producer killed from here on leaves one stuck claim per run, which readers pad over the
//      whole run after the stuck-claim timeout (as they do a single stuck claim);
//   2. every frame is written; the frames after a run's first are finished with a plain
//      (release) store of their data word: nobody reads them before the run's first frame is
//      committed, and once it is padded nobody reads them at all;
//   3. the runs' first frames are committed, the second run's before the first's, each with a
//      CAS (a reader that waited out the timeout may have padded the run: exactly one wins).
// Readers read in stream order, so they see a batch at once, never a later frame before an
// earlier one, and a batch is delivered whole or not at all (unless it wraps and stalls past
// the timeout between its two commits). Two locked instructions per batch, not two per message.
#include <array>
#include <cstring>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ring/frame_lookup.hpp"
#include "ring/futex.hpp"
#include "ring/timestamps.hpp"
#include "ringbus/producer.hpp"
#include "testing/fault_point.hpp"

namespace ringbus {
namespace {

using detail::atomic;
using layout::FrameHeader;
using layout::FrameKind;
using layout::TopicHeader;

std::uint64_t record_length(const Record& r) { return r.key.size() + r.value.size(); }

// Where a frame of `stride` bytes at `position` starts: at `position`, or at the next lap when
// it would cross the ring's end (the bytes skipped become a padding frame).
std::uint64_t frame_start(const detail::RingView& ring, std::uint64_t position,
                          std::uint64_t stride) {
  const std::uint64_t index = ring.index(position);
  return index + stride > ring.capacity ? position + (ring.capacity - index) : position;
}

}  // namespace

Errc Producer::check_batch(std::span<const Record> records) const noexcept {
  if (read_only_) [[unlikely]] {
    return Errc::read_only;
  }
  if (records.empty()) return Errc::invalid_argument;
  std::uint64_t total = 0;
  for (const Record& r : records) {
    if (r.value.size() > ring_.max_message || r.key.size() > ring_.max_message - r.value.size()) {
      return Errc::too_large;
    }
    total += layout::frame_stride(record_length(r), ring_.alignment);
    // A batch's claim mark spans it (see write_batch()), so it must fit a frame length too.
    if (total > std::min(ring_.capacity / 4, layout::kMaxFrameLength)) return Errc::too_large;
  }
  return Errc{};
}

// Moves the tail past the whole batch (one CAS); `from` is the tail it started at, and
// `first_sequence` the first record's sequence number.
Errc Producer::claim_batch(std::span<const Record> records, std::uint64_t& from,
                           std::uint64_t& first_sequence) noexcept {
  auto* header = static_cast<TopicHeader*>(header_);
  // relaxed: only a guess for the CAS, which returns the real value when it is stale.
  detail::TailPair current{atomic(header->tail_position).load(std::memory_order_relaxed),
                           atomic(header->tail_messages).load(std::memory_order_relaxed)};
  for (;;) {
    // The tail is always a frame boundary (see claim_into()).
    if ((current.position & (ring_.alignment - 1)) != 0) return Errc::corrupt;
    std::uint64_t end = current.position;
    for (const Record& r : records) {
      const std::uint64_t stride = layout::frame_stride(record_length(r), ring_.alignment);
      end = frame_start(ring_, end, stride) + stride;
    }
    if (const Errc failed = make_room(end); failed != Errc{}) return failed;
    const detail::TailPair next{end, current.messages + records.size()};
    const detail::TailPair seen = detail::cas_tail(&header->tail_position, current, next);
    if (seen == current) break;
    current = seen;
  }
  from = current.position;
  first_sequence = current.messages;
  return Errc{};
}

Result<BatchOffsets> Producer::write_batch(std::span<const Record> records, std::uint64_t from,
                                           std::uint64_t first_sequence) noexcept {
  detail::kill_point("producer.batch.claimed");
  // The batch in one or two runs of frames: two when a padding frame sits where it wraps.
  struct Run {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    std::size_t first = 0;  // its first record
    std::uint64_t first_length = 0;
  };
  std::array<Run, 2> runs{};
  std::size_t run_count = 0;
  std::uint64_t wrap = 0;  // where the padding frame starts, if any
  std::uint64_t p = from;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::uint64_t length = record_length(records[i]);
    const std::uint64_t stride = layout::frame_stride(length, ring_.alignment);
    const std::uint64_t start = frame_start(ring_, p, stride);
    if (i == 0 || start != p) {
      if (start != p) wrap = p;
      runs[run_count++] = Run{start, start, i, length};
    }
    runs[run_count - 1].end = start + stride;
    p = start + stride;
  }
  // 1. Each run's first frame gets a claim mark that spans the run: a reader that waits out
  // the stuck-claim timeout pads the whole run with one CAS, and nobody reads past it before.
  for (std::size_t r = 0; r < run_count; ++r) {
    const Run& run = runs[r];
    // relaxed: a reader reads this only to skip a stuck claim, and needs nothing but the word.
    atomic(detail::frame_at(ring_, run.start)->commit)
        .store(layout::make_commit(ring_.lap(run.start), FrameKind::kClaimed,
                                   run.end - run.start - layout::kFrameHeaderSize),
               std::memory_order_relaxed);
  }
  detail::kill_point("producer.batch.marked");
  if (wrap != 0) {
    // release: pairs with the acquire load of the commit word in poll.
    atomic(detail::frame_at(ring_, wrap)->commit)
        .store(layout::make_commit(ring_.lap(wrap), FrameKind::kPadding,
                                   ring_.capacity - ring_.index(wrap)),
               std::memory_order_release);
  }
  // 2. Every frame's header, key and value, with one clock reading for the records that leave
  // the time to us. The frames after a run's first are finished with their data word: nobody
  // reads them before the run's first frame is committed (or padded over them).
  std::int64_t now = 0;
  bool stamped = false;
  BatchOffsets offsets;
  p = from;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    const std::uint64_t length = record_length(r);
    const std::uint64_t stride = layout::frame_stride(length, ring_.alignment);
    const std::uint64_t start = frame_start(ring_, p, stride);
    FrameHeader* frame = detail::frame_at(ring_, start);
    if (r.timestamp_ns == 0 && !stamped) {
      now = detail::timestamp_now(timestamps_);
      stamped = true;
    }
    frame->sequence = first_sequence + i;
    frame->timestamp_ns = r.timestamp_ns != 0 ? r.timestamp_ns : now;
    frame->key_length = static_cast<std::uint32_t>(r.key.size());
    frame->reserved = 0;
    auto* payload = reinterpret_cast<std::byte*>(frame + 1);
    if (!r.key.empty()) std::memcpy(payload, r.key.data(), r.key.size());
    if (!r.value.empty()) std::memcpy(payload + r.key.size(), r.value.data(), r.value.size());
    if (i != runs[0].first && (run_count == 1 || i != runs[1].first)) {
      // release: readers get here only through the run's first frame, whose commit (below)
      // publishes this frame too; release also orders its body before its word on its own.
      atomic(frame->commit)
          .store(layout::make_commit(ring_.lap(start), FrameKind::kData, length),
                 std::memory_order_release);
    }
    if (i == 0) offsets.first = start;
    offsets.last = start;
    p = start + stride;
  }
  detail::kill_point("producer.batch.filled");
  // 3. The runs' first frames: the second run's, then the first's, so readers, who reach the
  // second only through the first, see the batch at once. A CAS each: a reader may have padded
  // a run that stalled past the stuck-claim timeout, and exactly one of us must win.
  std::size_t aborted = 0;
  for (std::size_t r = run_count; r-- > 0;) {
    const Run& run = runs[r];
    std::uint64_t claimed = layout::make_commit(ring_.lap(run.start), FrameKind::kClaimed,
                                                run.end - run.start - layout::kFrameHeaderSize);
    const std::uint64_t data =
        layout::make_commit(ring_.lap(run.start), FrameKind::kData, run.first_length);
    if (r == 0) detail::kill_point("producer.batch.committing");
    // seq_cst: publishes the run (pairs with the acquire load in poll); the last one also
    // orders the batch before the sleepers load below (pairs with the seq_cst increment in
    // Subscriber::wait).
    if (!atomic(detail::frame_at(ring_, run.start)->commit)
             .compare_exchange_strong(claimed, data, std::memory_order_seq_cst)) {
      aborted += (r + 1 < run_count ? runs[r + 1].first : records.size()) - run.first;
    }
  }
  auto* header = static_cast<TopicHeader*>(header_);
  if (atomic(header->sleepers).load(std::memory_order_seq_cst) != 0) {
    atomic(header->futex_word).fetch_add(1, std::memory_order_seq_cst);
    detail::futex_wake_all(&header->futex_word);
  }
  if (aborted != 0) {
    return Error(Errc::aborted, std::to_string(aborted) + " of the " +
                                    std::to_string(records.size()) +
                                    " messages of a batch took longer than the stuck-claim "
                                    "timeout and were turned into padding by readers");
  }
  return offsets;
}

Result<BatchOffsets> Producer::try_publish_batch(std::span<const Record> records) noexcept {
  if (const Errc bad = check_batch(records); bad != Errc{}) return bad;
  std::uint64_t from = 0;
  std::uint64_t first_sequence = 0;
  if (const Errc failed = claim_batch(records, from, first_sequence); failed != Errc{}) {
    return failed;
  }
  return write_batch(records, from, first_sequence);
}

Result<BatchOffsets> Producer::publish_batch(std::span<const Record> records, const Wait& wait) {
  if (const Errc bad = check_batch(records); bad != Errc{}) {
    if (bad == Errc::read_only) return read_only_error();
    return Error(bad, bad == Errc::invalid_argument
                          ? std::string("a batch needs at least one record")
                          : "a record is larger than max_message (" +
                                std::to_string(ring_.max_message) +
                                " bytes) or the batch larger than a quarter of the ring (" +
                                std::to_string(ring_.capacity / 4) + " bytes)");
  }
  std::uint64_t from = 0;
  std::uint64_t first_sequence = 0;
  auto claimed =
      retry_while_blocked([&] { return claim_batch(records, from, first_sequence); }, wait);
  if (!claimed) return claimed.error();
  return write_batch(records, from, first_sequence);
}

}  // namespace ringbus
