// Subscribers reading the disk log: replay from an offset older than the ring, or after being
// lapped, then back to the ring at the same offset without a gap or a duplicate.
#include <atomic>
#include <limits>
#include <memory>

#include "layout/reader_slot_layout.hpp"
#include "layout/topic_layout.hpp"
#include "log/log_reader.hpp"
#include "ring/atomics.hpp"
#include "ring/message_view.hpp"
#include "ringbus/subscriber.hpp"
#include "topic/recorder_fields.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {

namespace {

using detail::atomic;
using detail::LogReader;

layout::TopicHeader& header_of(void* p) { return *static_cast<layout::TopicHeader*>(p); }
layout::ReaderSlot& slot_of(void* p) { return *static_cast<layout::ReaderSlot*>(p); }

}  // namespace

bool Subscriber::open_log() noexcept {
  if (log_) return true;
  std::string dir = detail::log_dir_of(header_of(header_));
  if (dir.empty()) return false;
  log_ = std::make_unique<LogReader>(std::move(dir), ring_.max_message, ring_.alignment);
  return true;
}

void Subscriber::set_replaying(bool on) noexcept {
  auto flags = atomic(slot_of(slot_ptr_).flags);
  // seq_cst: clearing it registers the reader with producers, like an attach (pairs with the
  // seq_cst flags load in Producer::rescan_limit()).
  if (on) {
    flags.fetch_or(layout::kSlotReplaying, std::memory_order_seq_cst);
  } else {
    flags.fetch_and(~layout::kSlotReplaying, std::memory_order_seq_cst);
  }
}

// Whether a producer may have overwritten the frame at the cursor: the tail is more than a ring
// past it. (`reclaimed` is no test: producers walk it ahead of their claims by some slack, and
// still only reuse space below the slowest durable reader.)
bool Subscriber::ring_lost_cursor() const noexcept {
  // acquire: pairs with the producers' tail CAS; they claim before they write.
  return atomic(header_of(header_).tail_position).load(std::memory_order_acquire) >
         cursor_ + ring_.capacity;
}

bool Subscriber::enter_log() noexcept {
  // Only when the ring really lost the cursor: a "lapped" frame at the tail may just be last
  // lap's payload bytes that look like a newer commit word.
  if (!ring_lost_cursor()) return false;
  if (!open_log()) return false;
  // `end`: the log has nothing here either (the recorder was lapped too, or is behind).
  if (log_->read(cursor_).status == LogReader::Status::end) return false;
  in_log_ = true;
  if (durable_) set_replaying(true);
  return true;
}

bool Subscriber::leave_log() noexcept {
  auto& h = header_of(header_);
  // The ring still holds the cursor's frame (for now: the reads below check it).
  if (ring_lost_cursor()) return false;
  if (durable_) {
    // Register like an attach: our position, then the flag, then the epoch that makes
    // producers rescan. Frames below the tail read after that may still be overwritten by a
    // producer that scanned before, so they are copied and checked (safe_from_); if one is,
    // we come back to the log, which has it.
    publish_position();
    set_replaying(false);
    atomic(h.readers_epoch).fetch_add(1, std::memory_order_seq_cst);
    safe_from_ = atomic(h.tail_position).load(std::memory_order_seq_cst);
  }
  in_log_ = false;
  return true;
}

Result<void> Subscriber::poll_log(FunctionRef<void(const Message&)> handler,
                                  std::size_t max_messages, PollResult& result) noexcept {
  auto skip_to = [&](std::uint64_t next) {
    lost_bytes_ += next - cursor_;
    pending_lost_bytes_ += next - cursor_;
    lost_pending_ = true;
    cursor_ = next;
  };
  while (result.messages < max_messages) {
    const LogReader::Read r = log_->read(cursor_);
    // Every step must move forward and stay frame aligned, whatever the files say: a damaged
    // log must not loop here or move the cursor back.
    if (r.status != LogReader::Status::end && r.status != LogReader::Status::corrupt &&
        (r.next <= cursor_ || r.next % ring_.alignment != 0)) {
      if (cursor_ != published_) publish_position();
      return Error(Errc::corrupt, "topic '" + topic_.name() + "': the disk log at offset " +
                                      std::to_string(cursor_) + " leads to offset " +
                                      std::to_string(r.next));
    }
    switch (r.status) {
      case LogReader::Status::frame:
        if (layout::commit_kind(r.frame->commit) == layout::FrameKind::kData) {
          Message m =
              detail::message_view(*r.frame, cursor_, layout::commit_length(r.frame->commit));
          cursor_ = r.next;
          deliver(m, handler, result);
        } else {
          cursor_ = r.next;
        }
        continue;
      case LogReader::Status::gap:           // the recorder lost these bytes
      case LogReader::Status::out_of_range:  // retention deleted them
        skip_to(r.next);
        continue;
      case LogReader::Status::corrupt:
        if (cursor_ != published_) publish_position();
        return Error(Errc::corrupt, "topic '" + topic_.name() + "': " + log_->error());
      case LogReader::Status::end:
        if (leave_log()) return {};
        // The ring moved past us: look at the log again, which may have grown since we read
        // its end (the recorder commits, and producers claim past its position, only after
        // writing it).
        if (log_->read(cursor_).status != LogReader::Status::end) continue;
        // Neither the log nor the ring has the cursor any more (an overwrite topic whose
        // recorder was lapped too): continue at the ring's oldest frame, counted as lost.
        if (resync_after_lap() && leave_log()) return {};
        return {};
    }
  }
  return {};
}

}  // namespace ringbus
