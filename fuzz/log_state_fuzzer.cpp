// libFuzzer target: a state.json of arbitrary bytes. Reading it either fails with a clear error
// or gives a state that writes back and reads again to the same values.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "log_state.hpp"

namespace {

bool same(const ringbus::detail::LogState& a, const ringbus::detail::LogState& b) {
  if (a.topic != b.topic || a.durable_position != b.durable_position ||
      a.durable_messages != b.durable_messages || a.log_start != b.log_start ||
      a.config.capacity != b.config.capacity || a.config.max_message != b.config.max_message ||
      a.config.policy != b.config.policy || a.config.max_readers != b.config.max_readers ||
      a.config.frame_alignment != b.config.frame_alignment ||
      a.config.stuck_claim_timeout != b.config.stuck_claim_timeout ||
      a.config.mirror_of != b.config.mirror_of || a.groups.size() != b.groups.size() ||
      a.forwards.size() != b.forwards.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.groups.size(); ++i) {
    if (a.groups[i].name != b.groups[i].name || a.groups[i].position != b.groups[i].position ||
        a.groups[i].messages != b.groups[i].messages) {
      return false;
    }
  }
  for (std::size_t i = 0; i < a.forwards.size(); ++i) {
    if (a.forwards[i].destination != b.forwards[i].destination ||
        a.forwards[i].acked_position != b.forwards[i].acked_position ||
        a.forwards[i].acked_messages != b.forwards[i].acked_messages) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ringbus::fuzz::ScratchDirectory dir("log-state");
  ringbus::fuzz::write_file(dir.path() + "/state.json", data, size);
  auto state = ringbus::detail::read_log_state(dir.path());
  if (!state) return 0;
  if (!ringbus::detail::write_log_state(dir.path(), *state, false)) __builtin_trap();
  auto again = ringbus::detail::read_log_state(dir.path());
  if (!again || !same(*state, *again)) __builtin_trap();
  return 0;
}
