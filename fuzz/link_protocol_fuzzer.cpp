// libFuzzer target: arbitrary bytes arriving on a bridge link, in pieces of arbitrary sizes, as
// a socket delivers them. The decoder splits them into messages or reports corruption (the
// connection is then dropped); each message's body goes to the parser of its type, which
// accepts it or reports what is wrong. A DATA message's frames go to no parser here: the mirror
// writer checks them (the ring-frames target covers frame checks).
#include <cstddef>
#include <cstdint>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "link_protocol.hpp"

namespace {

using ringbus::bridge::LinkType;

void parse(const ringbus::bridge::LinkMessage& m) {
  namespace b = ringbus::bridge;
  switch (m.type) {
    case LinkType::hello: (void)b::parse_hello(m.body); break;
    case LinkType::challenge: (void)b::parse_challenge(m.body); break;
    case LinkType::auth: (void)b::parse_auth(m.body); break;
    case LinkType::welcome: (void)b::parse_welcome(m.body); break;
    case LinkType::reject: (void)b::parse_reject(m.body); break;
    case LinkType::data: {
      auto header = b::parse_data(m.body);
      // The frames must lie within the body the decoder handed out.
      if (header &&
          (header->frames.data() < m.body.data() ||
           header->frames.data() + header->frames.size() > m.body.data() + m.body.size())) {
        __builtin_trap();
      }
      break;
    }
    case LinkType::ack: (void)b::parse_ack(m.body); break;
    case LinkType::gap: {
      auto gap = b::parse_gap(m.body);
      if (gap && gap->to <= gap->from) __builtin_trap();
      break;
    }
    case LinkType::heartbeat: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  ringbus::bridge::LinkDecoder decoder;
  while (input.remaining_bytes() > 0) {
    const std::size_t piece = input.ConsumeIntegralInRange<std::size_t>(1, 4096);
    const std::vector<std::uint8_t> bytes = input.ConsumeBytes<std::uint8_t>(piece);
    decoder.feed(
        ringbus::ConstBytes(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
    for (;;) {
      auto message = decoder.next();
      if (!message) return 0;  // corrupt: the connection is dropped
      if (!*message) break;    // needs more bytes
      parse(**message);
    }
  }
  return 0;
}
