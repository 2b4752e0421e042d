// libFuzzer target: a topic file of arbitrary bytes (seeds: real topic files). Opening it either
// fails with an error or gives a topic that describe, the inspector, a subscriber and a group
// member read to the end without crashing, reading out of bounds or hanging.
#include <cstddef>
#include <cstdint>

#include "fuzz_support.hpp"
#include "ringbus/topic.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ringbus::fuzz::ScratchDirectory bus_dir("topic-file");
  ringbus::fuzz::write_file(bus_dir.path() + "/fuzzed", data, size);
  auto topic = ringbus::Bus(bus_dir.path()).open_topic("fuzzed");
  if (topic) (void)ringbus::fuzz::read_topic_every_way(*topic);
  return 0;
}
