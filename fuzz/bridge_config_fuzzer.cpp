// libFuzzer target: a ringbus-bridge TOML configuration of arbitrary bytes. Loading it either
// fails with an error naming the file (and the line or option at fault) or gives a
// configuration that validate_config checks the same way, without crashing.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bridge_config.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ringbus::fuzz::ScratchDirectory dir("bridge-config");
  const std::string path = dir.path() + "/bridge.toml";
  ringbus::fuzz::write_file(path, data, size);
  auto config = ringbus::bridge::load_config_file(path);
  if (!config) {
    if (config.error().message().find(path) == std::string::npos) __builtin_trap();
    return 0;
  }
  (void)ringbus::bridge::validate_config(*config);
  return 0;
}
