// Names of error codes and policies.
#include "ringbus/result.hpp"

#include "ringbus/topic.hpp"

namespace ringbus {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::would_block: return "would_block";
    case Errc::timed_out: return "timed_out";
    case Errc::not_ready: return "not_ready";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::already_exists: return "already_exists";
    case Errc::too_large: return "too_large";
    case Errc::corrupt: return "corrupt";
    case Errc::incompatible: return "incompatible";
    case Errc::no_space: return "no_space";
    case Errc::no_reader_slot: return "no_reader_slot";
    case Errc::busy: return "busy";
    case Errc::aborted: return "aborted";
    case Errc::offset_out_of_range: return "offset_out_of_range";
    case Errc::io_error: return "io_error";
    case Errc::read_only: return "read_only";
  }
  return "unknown";
}

std::string_view to_string(Policy policy) noexcept {
  return policy == Policy::overwrite ? "overwrite" : "block";
}

}  // namespace ringbus
