// TakenOnMove<T>: a value that moving takes away, leaving T{} behind (a pointer becomes null, a
// flag false). A class whose ownership hangs on one such member (an attached reader slot, a
// claimed frame) gets a correct move constructor from `= default`: the moved-from object no
// longer owns anything, and every other member moves as it is.
#pragma once

#include <utility>

namespace ringbus::detail {

template <class T>
class TakenOnMove {
 public:
  TakenOnMove() noexcept = default;
  TakenOnMove(T value) noexcept : value_(value) {}  // NOLINT(google-explicit-constructor)
  TakenOnMove(TakenOnMove&& other) noexcept : value_(std::exchange(other.value_, T{})) {}
  TakenOnMove& operator=(TakenOnMove&& other) noexcept {
    value_ = std::exchange(other.value_, T{});
    return *this;
  }
  TakenOnMove(const TakenOnMove&) = delete;
  TakenOnMove& operator=(const TakenOnMove&) = delete;
  ~TakenOnMove() = default;

  TakenOnMove& operator=(T value) noexcept {
    value_ = value;
    return *this;
  }
  operator T() const noexcept { return value_; }  // NOLINT(google-explicit-constructor)
  T get() const noexcept { return value_; }

 private:
  T value_{};
};

}  // namespace ringbus::detail
