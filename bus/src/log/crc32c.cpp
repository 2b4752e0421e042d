// CRC32C with the crc32 instruction: 8 bytes per instruction, then the tail byte by byte.
#include "log/crc32c.hpp"

#include <cstring>

#include <nmmintrin.h>

namespace ringbus::detail {

__attribute__((target("sse4.2"))) std::uint32_t crc32c(const void* data, std::size_t size,
                                                       std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t c = ~crc & 0xFFFFFFFFU;
  while (size >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);
    c = _mm_crc32_u64(c, word);
    p += 8;
    size -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (size > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --size;
  }
  return ~c32;
}

}  // namespace ringbus::detail
