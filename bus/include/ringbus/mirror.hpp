// Mirror topics: a topic on this host that repeats a topic of another host byte for byte, at the
// same offsets. ringbus-bridge --listen creates mirrors and writes them with a MirrorWriter; local
// producers get read_only. Subscribers, groups and the disk log work on a mirror as on any topic.
#pragma once

#include <cstdint>

#include "ringbus/bytes.hpp"
#include "ringbus/export.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"

namespace ringbus {

// The one writer of a mirror topic. Not thread safe; one per mirror (the header names the
// process, so a second writer while the first is alive gets busy).
class RINGBUS_API MirrorWriter {
 public:
  // Errors: invalid_argument (the topic is not a mirror), busy (a live process writes it).
  static Result<MirrorWriter> open(const Topic& topic);
  MirrorWriter(MirrorWriter&& other) noexcept;
  MirrorWriter& operator=(MirrorWriter&&) = delete;
  MirrorWriter(const MirrorWriter&) = delete;
  MirrorWriter& operator=(const MirrorWriter&) = delete;
  ~MirrorWriter();  // the header no longer names this process

  // The end of what is written completely, and the sequence number of the next message there:
  // where the next frames go. After a writer died half-way through a batch, frames between
  // applied() and the tail are written again (the same bytes) by the next append.
  std::uint64_t applied() const noexcept;
  std::uint64_t applied_messages() const noexcept;

  // Writes whole frames [offset, offset + frames.size()) of the source's stream, verbatim.
  // `offset` must be applied(). Every frame is checked first (its commit word's lap and kind for
  // this offset, its length against max_message and the ring's end, key length, sequence
  // numbers growing): nothing is written from a batch that fails. Errors: would_block (block
  // policy: a durable reader of the mirror is a ring behind; try again), corrupt (the bytes are
  // not valid frames at these offsets; the message says which and why), invalid_argument
  // (offset is not applied()). Hot path for the receiver: no alloc, no system call unless a
  // reader sleeps on the futex.
  Result<void> try_append(std::uint64_t offset, ConstBytes frames);

  // Offsets [offset, to) of the source's stream are lost (its source was lapped and had no disk
  // log for them): the mirror skips them with gap frames, which its readers skip and count as
  // lost (PollResult::lost_bytes and lost_messages), so nothing is skipped in silence. `offset`
  // must be applied(), `to` a frame boundary past it. A block mirror's durable readers must pass
  // each piece, so it takes a quarter of the ring per call: call again until applied() is `to`.
  // An overwrite mirror covers a gap of more than a ring at once (its readers are lapped and
  // continue at the last ring's worth of gap). Errors: as try_append.
  Result<void> try_append_gap(std::uint64_t offset, std::uint64_t to);

  // Records that the source was heard from now (shown by describe and the monitor).
  void touch() noexcept;
  const Topic& topic() const noexcept { return producer_.topic(); }

 private:
  explicit MirrorWriter(Topic topic) : producer_(std::move(topic)) {}
  Result<void> check_continues(std::uint64_t offset) const;
  Result<void> claim_through(std::uint64_t offset, std::uint64_t end, std::uint64_t messages);
  void publish(std::uint64_t end, std::uint64_t messages);
  Producer producer_;  // its room-making and reclaim logic; it never claims
  bool owner_ = false;
};

}  // namespace ringbus
