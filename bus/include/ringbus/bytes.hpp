// Byte-span helpers: keys and values are raw bytes; these view strings as bytes and back.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace ringbus {

using ConstBytes = std::span<const std::byte>;
using MutableBytes = std::span<std::byte>;

inline ConstBytes as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_string(ConstBytes b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace ringbus
