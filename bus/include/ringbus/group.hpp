// Queue groups: each message of a topic goes to exactly one member of a group, and its space is
// reclaimed only after that member acknowledges it. Different groups each see every message.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/export.hpp"
#include "ringbus/function_ref.hpp"
#include "ringbus/result.hpp"
#include "ringbus/stuck_claim_timer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/taken_on_move.hpp"
#include "ringbus/topic.hpp"
#include "ringbus/wait.hpp"

namespace ringbus {

struct GroupOptions {
  // Where a new group starts. Ignored when the group exists: members then resume at its
  // committed position (everything before it acknowledged). `earliest`, or an offset older
  // than the ring, reads the topic's disk log first when a ringbus-bridge records the topic;
  // until the group catches up with the ring, producers on the topic wait for it (its
  // committed position holds them back like any durable reader's).
  StartFrom start = StartFrom::latest();
  // A new group's processing deadline: a batch not fully acknowledged this long after it was
  // handed out is delivered again to another member, even if its member is alive. 0: off.
  std::chrono::milliseconds processing_deadline{0};
};

// One member of a queue group. A member holds at most one batch (up to 64 messages) at a time:
// poll() hands out a new batch only once the previous one is fully acknowledged. Messages of a
// member that dies (or misses the deadline) are redelivered to a live member, with
// delivery_count > 1. Not thread safe: one thread per member.
//
// Group state lives in the topic (a persistent slot named "group:<name>"): it survives all
// members leaving. Under the block policy producers wait for the group's oldest
// unacknowledged message. Groups need a block topic.
class RINGBUS_API GroupMember {
 public:
  // Joins (or creates) group `group` on `topic`. Errors: invalid_argument (bad name, overwrite
  // topic), no_reader_slot (the group and each member take a reader slot), corrupt.
  static Result<GroupMember> join(const Topic& topic, std::string_view group,
                                  const GroupOptions& options = {});

  GroupMember(GroupMember&&) noexcept;
  GroupMember& operator=(GroupMember&&) noexcept;
  GroupMember(const GroupMember&) = delete;
  GroupMember& operator=(const GroupMember&) = delete;
  ~GroupMember();  // leaves; unacknowledged messages go to the other members

  // Hands the messages of the current batch that were not handed out yet, or, once the batch is
  // fully acknowledged, a new batch of up to max_messages (at most 64), to handler. Takes over
  // the batch of a dead member (or one past the deadline) when there is one. Never blocks.
  // The views are valid only inside the handler. Errors: corrupt.
  template <class F>
  Result<PollResult> poll(F&& handler, std::size_t max_messages = 64) {
    return poll_some(FunctionRef<void(const Message&)>(handler), max_messages);
  }
  template <class F>
  Result<PollResult> poll_wait(F&& handler, std::size_t max_messages, const Wait& w) {
    auto ready = wait(w);
    if (!ready) return ready.error();
    return poll(handler, max_messages);
  }
  // Waits until poll() may hand out something, or the timeout passes (timed_out). Errors:
  // invalid_argument if every message of the current batch was handed out and some are not
  // acknowledged (nothing more can come until they are). Also returns
  // about every 20 ms so that poll() can look for batches of dead or late members to take
  // over: a poll after wait() may still find nothing. The futex kind naps (100 us) instead of
  // sleeping on the topic's futex.
  Result<void> wait(const Wait& wait);

  // Acknowledges one message of the current batch. Errors: invalid_argument (not in the
  // current batch), aborted (the batch was taken over after the processing deadline).
  Result<void> ack(std::uint64_t offset);
  // Acknowledges every message of the current batch at or before `offset`.
  Result<void> ack_up_to(std::uint64_t offset);

  std::size_t unacked() const noexcept;  // messages of the current batch not acknowledged
  const std::string& group() const noexcept { return group_; }
  const Topic& topic() const noexcept { return topic_; }

 private:
  GroupMember() = default;
  Result<PollResult> poll_some(FunctionRef<void(const Message&)> handler, std::size_t max);
  enum class Take : std::uint8_t { taken, empty, corrupt };
  Take take_new_batch(std::size_t max);
  bool skip_stuck_claim(std::uint64_t position, std::uint64_t word);
  bool from_log_or_stuck(std::uint64_t position, bool from_log);
  void publish_own_batch(std::uint64_t start, std::uint64_t end);
  bool batch_orphaned(std::uint32_t slot, std::uint64_t epoch, std::int64_t now,
                      std::uint64_t deadline);
  std::optional<Take> skip_lost(std::uint64_t dispatch);
  bool withdraw_batch(std::uint64_t dispatch);
  bool take_over_batch();
  bool adopt_batch(std::uint32_t index, std::uint64_t acked, std::uint64_t epoch, std::int64_t now);
  std::uint32_t rebuild_offsets(std::uint64_t start, std::uint64_t end, std::uint32_t count);
  Result<void> set_acked(std::uint64_t bits);
  void batch_done();
  void abandon_batch();
  void update_committed();
  void leave() noexcept;

  Topic topic_;
  std::string group_;
  std::uint32_t group_slot_ = 0;
  std::uint32_t member_slot_ = 0;
  detail::TakenOnMove<bool> joined_;  // false: left (or moved from), nothing to leave
  // The current batch, as this member knows it (the slot holds the shared truth).
  std::array<std::uint64_t, 64> offsets_{};
  std::array<std::uint64_t, 64> sequences_{};
  std::uint32_t count_ = 0;      // messages in the batch
  std::uint32_t delivered_ = 0;  // messages handed to the handler so far
  std::uint64_t acked_ = 0;      // bits acknowledged (our copy)
  std::uint64_t epoch_ = 0;      // the batch slot's epoch when we took (or adopted) the batch
  std::uint32_t delivery_ = 1;
  // The slot the batch sits in: ours, or that of a dead or late member whose batch we adopted.
  std::uint32_t batch_slot_ = 0;
  std::uint64_t batch_start_ = 0;
  std::uint64_t batch_owner_state_ = 0;  // that slot's state word when we adopted its batch
  bool adopted_ = false;                 // our slot's `serving` names the batch's slot
  std::int64_t next_takeover_check_ns_ = 0;
  detail::StuckClaimTimer stuck_;  // something pending at the dispatch position
  // Frames below this position are copied and checked before delivery (see group slot
  // safe_from); the buffer is sized at join, when that can happen.
  std::uint64_t safe_from_ = 0;
  std::vector<std::uint64_t> copy_;
  std::unique_ptr<detail::LogReader> log_;  // frames older than the ring (disk log replay)
  std::uint64_t ring_from_ = 0;  // reclaimed position as of the current batch (frame_at())
  std::string take_error_;       // why take_new_batch() said corrupt, when it knows
};

}  // namespace ringbus
