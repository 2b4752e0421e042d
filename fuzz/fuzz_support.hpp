// What the fuzz targets share: a private scratch directory per process, writing the fuzzed
// bytes to a file, and reading a topic every way a client or tool does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ringbus/topic.hpp"

namespace ringbus::fuzz {

// A directory of its own (mkdtemp under $TMPDIR, mode 0700), removed with everything in it when
// the process exits normally.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(const char* what);
  ~ScratchDirectory();
  ScratchDirectory(const ScratchDirectory&) = delete;
  ScratchDirectory& operator=(const ScratchDirectory&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

// Replaces `path` with exactly these bytes (mode 0600). Aborts on failure: a fuzz run that
// cannot write its scratch files tests nothing.
void write_file(const std::string& path, const std::uint8_t* data, std::size_t size);

// Removes every entry of `dir` (not the directory itself).
void clear_directory(const std::string& dir);

// Reads `topic` as every reader does, each a bounded number of steps: its snapshot (describe,
// the monitor), the inspector from the earliest frame (topic dump), a subscriber from the
// earliest offset, and a queue group member that acknowledges what it gets. Whatever the topic's
// bytes, each must end with a message or an error, never a crash, an out-of-bounds read or a
// hang. Returns the messages the subscriber and the member got (so nothing is optimized away).
std::uint64_t read_topic_every_way(const Topic& topic);

}  // namespace ringbus::fuzz
