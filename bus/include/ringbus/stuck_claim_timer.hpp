// StuckClaimTimer: how long one ring position has stayed pending (claimed but not committed,
// or holding bytes that look wrong). A producer that died between its claim and its commit
// leaves such a position behind; whoever waits on it (a producer reclaiming space, a
// subscriber, a group's dispatch) skips it only after the topic's stuck-claim timeout, timed
// here. One position at a time: a new position restarts the clock. Not part of the API.
#pragma once

#include <cstdint>
#include <ctime>

namespace ringbus::detail {

class StuckClaimTimer {
 public:
  void set_timeout(std::uint64_t timeout_ns) noexcept { timeout_ns_ = timeout_ns; }

  // Starts the clock for `position` unless it already runs for it.
  void start(std::uint64_t position) noexcept {
    if (position_ == position) return;
    position_ = position;
    since_ns_ = now_ns();
  }
  bool running_for(std::uint64_t position) const noexcept { return position_ == position; }
  // Whether `position` has been pending for the timeout (false when the clock runs for
  // another position, or for none).
  bool expired(std::uint64_t position) const noexcept {
    return position_ == position && static_cast<std::uint64_t>(now_ns() - since_ns_) >= timeout_ns_;
  }
  // `position` is pending now: starts the clock if it is new to it (false), else says whether
  // it expired.
  bool check(std::uint64_t position) noexcept {
    if (position_ != position) {
      start(position);
      return false;
    }
    return expired(position);
  }
  void stop() noexcept { position_ = kNone; }

 private:
  static constexpr std::uint64_t kNone = ~std::uint64_t{0};
  static std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  }

  std::uint64_t position_ = kNone;
  std::int64_t since_ns_ = 0;
  std::uint64_t timeout_ns_ = 0;
};

}  // namespace ringbus::detail
