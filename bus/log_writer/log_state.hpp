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

// A forward link of the topic as the bridge last saw it: for operators after the topic's shared
// memory (where the live counters are) is gone. Not read back by the bridge.
struct ForwardPosition {
  std::string destination;           // "HOST:PORT" of the receiving bridge
  std::uint64_t acked_position = 0;  // the receiver holds everything before it
  std::uint64_t acked_messages = 0;  // sequence number of the message at acked_position
  std::uint64_t reconnects = 0;
  std::string last_error;
};

struct LogState {
  std::string topic;
  std::uint64_t durable_position = 0;
  std::uint64_t durable_messages = 0;
  std::uint64_t log_start = 0;
  TopicConfig config;  // capacity, max_message, policy, max_readers, alignment, timeout
  std::vector<GroupPosition> groups;
  std::vector<ForwardPosition> forwards;
};

// Writes <dir>/state.json (mode `file_mode`, see TopicLogOptions) through a temporary file and
// a rename; with `sync`, the file and the directory are fsynced, so the state survives a power
// cut. Errors: io_error, no_space.
Result<void> write_log_state(const std::string& dir, const LogState& state, bool sync,
                             std::uint32_t file_mode = 0600);

// Reads <dir>/state.json. Errors: not_found, corrupt (with what is wrong), io_error.
Result<LogState> read_log_state(const std::string& dir);

}  // namespace ringbus::detail

// The bridge and its tests name these ringbus::bridge::..., from when the writer lived in
// tools/bridge/.
namespace ringbus::bridge {
using detail::ForwardPosition;
using detail::GroupPosition;
using detail::LogState;
using detail::read_log_state;
using detail::write_log_state;
}  // namespace ringbus::bridge
