// CRC32C (Castagnoli), the checksum of the disk log, computed with the SSE4.2 crc32 instruction.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringbus::detail {

// CRC32C of `size` bytes at `data`, continuing from `crc` (0 to start). Uses the x86-64 crc32
// instruction (SSE4.2, present on every x86-64 CPU since 2008); see docs/formats/log.md.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

}  // namespace ringbus::detail
