// state.json in a topic's log directory: what survives the topic's shared memory (the durable
// position, the topic's configuration, queue groups' committed positions). Replaced atomically.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::detail {

struct GroupPosition {
  std::string name;            // without the "group:" prefix
  std::uint64_t position = 0;  // committed: every message before it is acknowledged
  std::uint64_t messages = 0;  // sequence number of the message at `position`
};

struct LogState {
  std::string topic;
  std::uint64_t durable_position = 0;
  std::uint64_t durable_messages = 0;
  std::uint64_t log_start = 0;
  TopicConfig config;  // capacity, max_message, policy, max_readers, alignment, timeout
  std::vector<GroupPosition> groups;
};

// Writes <dir>/state.json through a temporary file and a rename; with `sync`, the file and
// the directory are fsynced, so the state survives a power cut. Errors: io_error, no_space.
Result<void> write_log_state(const std::string& dir, const LogState& state, bool sync);

// Reads <dir>/state.json. Errors: not_found, corrupt (with what is wrong), io_error.
Result<LogState> read_log_state(const std::string& dir);

}  // namespace ringbus::detail

// The bridge and its tests name these ringbus::bridge::..., from when the writer lived in
// tools/bridge/.
namespace ringbus::bridge {
using detail::GroupPosition;
using detail::LogState;
using detail::read_log_state;
using detail::write_log_state;
}  // namespace ringbus::bridge
