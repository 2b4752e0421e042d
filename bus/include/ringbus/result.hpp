// Error codes and Result<T>: how every ringbus call reports failure (the library never throws).
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "ringbus/export.hpp"

namespace ringbus {

// Transient codes (would_block, timed_out, not_ready) mean "try again later"; the others are
// terminal for the call that returned them.
enum class Errc : std::uint8_t {
  would_block = 1,      // ring full (block policy) or nothing to read; retry later
  timed_out,            // a blocking call's timeout passed
  not_ready,            // a segment is still being created
  invalid_argument,     // bad option, size, offset or name
  not_found,            // no such topic or reader
  already_exists,       // topic or reader name taken
  too_large,            // message larger than the topic's max message size
  corrupt,              // shared-memory or file contents fail validation
  incompatible,         // created by another layout version
  no_space,             // the bus directory's file system is full
  no_reader_slot,       // every reader slot of the topic is taken
  busy,                 // a persistent reader is attached by a live process
  aborted,              // a claim was turned into padding before it was committed
  offset_out_of_range,  // the requested offset is not (or no longer) available
  io_error,             // a system call failed
  read_only,            // the topic is a mirror of another host's topic: only its bridge writes
};

// A short stable name for a code, e.g. "would_block".
RINGBUS_API std::string_view to_string(Errc code) noexcept;

// True for the codes that mean "retry later".
constexpr bool is_transient(Errc code) noexcept {
  return code == Errc::would_block || code == Errc::timed_out || code == Errc::not_ready;
}

// An error code plus a human-readable message naming the problem. Hot-path errors carry an
// empty message, which never allocates.
class Error {
 public:
  Error(Errc code) noexcept : code_(code) {}  // NOLINT(google-explicit-constructor)
  Error(Errc code, std::string message) : code_(code), message_(std::move(message)) {}

  Errc code() const noexcept { return code_; }
  // The message, or the code's name when no message was given.
  std::string message() const {
    return message_.empty() ? std::string(to_string(code_)) : message_;
  }

 private:
  Errc code_;
  std::string message_;
};

// Holds either a T or an Error, like std::expected<T, Error>.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT
      : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) noexcept : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT
  Result(Errc code) noexcept : v_(std::in_place_index<1>, Error(code)) {}         // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & noexcept {
    assert(has_value());
    return *std::get_if<0>(&v_);
  }
  const T& value() const& noexcept {
    assert(has_value());
    return *std::get_if<0>(&v_);
  }
  T&& value() && noexcept {
    assert(has_value());
    return std::move(*std::get_if<0>(&v_));
  }
  T& operator*() & noexcept { return value(); }
  T&& operator*() && noexcept { return std::move(*this).value(); }
  T* operator->() noexcept { return &value(); }
  const T* operator->() const noexcept { return &value(); }

  const Error& error() const noexcept {
    assert(!has_value());
    return *std::get_if<1>(&v_);
  }
  Errc code() const noexcept { return error().code(); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() noexcept = default;
  Result(Error error) noexcept : error_(std::move(error)), ok_(false) {}  // NOLINT
  Result(Errc code) noexcept : error_(code), ok_(false) {}                // NOLINT

  bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const noexcept {
    assert(!ok_);
    return error_;
  }
  Errc code() const noexcept { return error().code(); }

 private:
  Error error_{Errc::io_error};
  bool ok_ = true;
};

}  // namespace ringbus
