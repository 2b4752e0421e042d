// Reading the text fields of the topic header's recorder counters (log_dir, last_error).
#pragma once

#include <atomic>
#include <cstddef>
#include <string>

#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"

namespace ringbus::detail {

// Text stored NUL-padded in a fixed field that another process may rewrite: read byte by byte
// (relaxed), up to the first NUL or the field's end.
inline std::string read_fixed_text(const char* field, std::size_t size) {
  std::string text;
  for (std::size_t i = 0; i < size; ++i) {
    char c = atomic(const_cast<char&>(field[i])).load(std::memory_order_relaxed);
    if (c == '\0') break;
    text.push_back(c);
  }
  return text;
}

// Writes `text` NUL-padded into a fixed field (truncated to size - 1 characters).
inline void write_fixed_text(char* field, std::size_t size, const std::string& text) {
  for (std::size_t i = 0; i < size; ++i) {
    char c = i + 1 < size && i < text.size() ? text[i] : '\0';
    atomic(field[i]).store(c, std::memory_order_relaxed);
  }
}

// The topic's log directory (<log_dir>/<topic>) published by ringbus-bridge; empty if none.
inline std::string log_dir_of(const layout::TopicHeader& h) {
  return read_fixed_text(h.log_dir, layout::kLogDirSize);
}

}  // namespace ringbus::detail
