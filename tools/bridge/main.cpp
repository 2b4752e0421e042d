// ringbus-bridge: records topics to disk logs and links bridges on other hosts. Parses the
// command line (command_line.hpp), installs the signal handlers, and runs the Bridge.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <string>

#include "bridge.hpp"
#include "command_line.hpp"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) {
  // relaxed: the main loop only needs to see the flag eventually.
  g_stop.store(true, std::memory_order_relaxed);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ringbus;
  // First: a stop request during start-up must still end in a clean shutdown.
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A file-size limit (RLIMIT_FSIZE) must give EFBIG, handled like a full disk, not kill us.
  ::signal(SIGXFSZ, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  auto command_line = bridge::parse_command_line(argc, argv);
  if (!command_line) {
    std::fprintf(stderr, "ringbus-bridge: %s\n", command_line.error().message().c_str());
    return 2;
  }
  if (!command_line->help.empty()) {
    std::fputs(command_line->help.c_str(), stdout);
    return 0;
  }
  bridge::Bridge bridge(std::move(command_line->config));
  return bridge.run(g_stop);
}
