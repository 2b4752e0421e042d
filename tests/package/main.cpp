// Links the installed ringbus through its CMake package: the public headers compile on their
// own, and the static library resolves its private dependencies (hwloc) for the consumer.
#include <cstdio>
#include <vector>

#include "ringbus/ringbus.hpp"

int main() {
  if (auto ok = ringbus::validate_name("orders"); !ok) {
    std::fprintf(stderr, "package check: validate_name(\"orders\") failed: %s\n",
                 ok.error().message().c_str());
    return 1;
  }
  if (ringbus::validate_name("no/slashes")) {
    std::fprintf(stderr, "package check: validate_name accepted \"no/slashes\"\n");
    return 1;
  }
  // Pulls in the hwloc-backed code, so a missing link dependency fails here, not in a user's app.
  const std::vector<int> cpus = ringbus::allowed_cpus();
  if (cpus.empty()) {
    std::fprintf(stderr, "package check: allowed_cpus() is empty\n");
    return 1;
  }
  std::printf("package consumer: validate_name ok, %zu allowed cpus\n", cpus.size());
  return 0;
}
