// CRC32C with the crc32 instruction. Long buffers run three independent streams at once (the
// instruction's latency is three times its issue interval) and join them with a "shift by n
// bytes" that is linear in the CRC register: its matrix is derived once, from the instruction
// itself, by shifting each of the 32 unit vectors.
#include "log/crc32c.hpp"

#include <array>
#include <cstring>

#include <nmmintrin.h>

namespace ringbus::detail {

namespace {

constexpr std::size_t kStride = 8192;  // bytes per stream and round: 3 x 8 KiB per round

using ShiftTable = std::array<std::array<std::uint32_t, 256>, 4>;

__attribute__((target("sse4.2"))) std::uint32_t raw_crc(std::uint32_t c, const unsigned char* p,
                                                        std::size_t size) noexcept {
  std::uint64_t c64 = c;
  while (size >= 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, 8);
    c64 = _mm_crc32_u64(c64, word);
    p += 8;
    size -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c64);
  while (size > 0) {
    c32 = _mm_crc32_u8(c32, *p++);
    --size;
  }
  return c32;
}

// The register after feeding `bytes` zero bytes to register `c`, the slow way.
__attribute__((target("sse4.2"))) std::uint32_t shift_slowly(std::uint32_t c,
                                                             std::size_t bytes) noexcept {
  std::uint64_t c64 = c;
  for (std::size_t i = 0; i < bytes / 8; ++i) c64 = _mm_crc32_u64(c64, 0);
  return static_cast<std::uint32_t>(c64);
}

// Feeding kStride zero bytes is a linear map of the register; tabulate it per register byte.
ShiftTable make_shift_table() noexcept {
  std::array<std::uint32_t, 32> basis{};
  for (int bit = 0; bit < 32; ++bit) basis[bit] = shift_slowly(std::uint32_t{1} << bit, kStride);
  ShiftTable t{};
  for (int byte = 0; byte < 4; ++byte) {
    for (std::uint32_t v = 0; v < 256; ++v) {
      std::uint32_t out = 0;
      for (int bit = 0; bit < 8; ++bit) {
        if ((v >> bit) & 1U) out ^= basis[byte * 8 + bit];
      }
      t[byte][v] = out;
    }
  }
  return t;
}

std::uint32_t shift_stride(const ShiftTable& t, std::uint32_t c) noexcept {
  return t[0][c & 0xFF] ^ t[1][(c >> 8) & 0xFF] ^ t[2][(c >> 16) & 0xFF] ^ t[3][c >> 24];
}

// The definition, bit by bit: only for a CPU without SSE4.2 (none since 2008), so that such a
// machine is slow rather than killed by an illegal instruction.
std::uint32_t crc_bitwise(const unsigned char* p, std::size_t size, std::uint32_t crc) noexcept {
  std::uint32_t c = ~crc;
  for (std::size_t i = 0; i < size; ++i) {
    c ^= p[i];
    for (int bit = 0; bit < 8; ++bit) c = (c >> 1) ^ (0x82F63B78U & (0U - (c & 1U)));
  }
  return ~c;
}

}  // namespace

__attribute__((target("sse4.2"))) std::uint32_t crc32c(const void* data, std::size_t size,
                                                       std::uint32_t crc) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  static const bool kHasSse42 = __builtin_cpu_supports("sse4.2");
  if (!kHasSse42) return crc_bitwise(p, size, crc);
  std::uint32_t c = ~crc;
  if (size >= 3 * kStride) {
    static const ShiftTable kShiftTable = make_shift_table();
    while (size >= 3 * kStride) {
      std::uint64_t c0 = c;
      std::uint64_t c1 = 0;
      std::uint64_t c2 = 0;
      for (std::size_t i = 0; i < kStride; i += 8) {
        std::uint64_t w0 = 0;
        std::uint64_t w1 = 0;
        std::uint64_t w2 = 0;
        std::memcpy(&w0, p + i, 8);
        std::memcpy(&w1, p + kStride + i, 8);
        std::memcpy(&w2, p + 2 * kStride + i, 8);
        c0 = _mm_crc32_u64(c0, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
      }
      // CRC(A B) = shift(CRC(A), |B|) ^ CRC(B) for raw registers (no pre/post inversion).
      c = shift_stride(kShiftTable, shift_stride(kShiftTable, static_cast<std::uint32_t>(c0)) ^
                                        static_cast<std::uint32_t>(c1)) ^
          static_cast<std::uint32_t>(c2);
      p += 3 * kStride;
      size -= 3 * kStride;
    }
  }
  return ~raw_crc(c, p, size);
}

}  // namespace ringbus::detail
