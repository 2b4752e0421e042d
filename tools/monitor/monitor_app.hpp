// ringbus-monitor's command line and run modes (terminal view, plain text, --once, --json,
// --prometheus), as a library so the executable is only a main().
#pragma once

#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace ringbus::monitor {

struct Options {
  std::string dir;          // empty: $RINGBUS_DIR, else /dev/shm/ringbus-$UID
  double interval_s = 1.0;  // refresh period; also the rate window of --once and --json
  bool once = false;        // one text snapshot, then exit
  bool json = false;        // one JSON snapshot, then exit
  std::string prometheus;   // listen address for /metrics; empty: none
};

// Adds the options to `app`; parsing fills `options`, which must outlive `app`.
void configure(CLI::App& app, Options& options);

// Runs the monitor until it is done (--once, --json), `q` in the terminal view, or SIGINT or
// SIGTERM. Returns the exit status: 0, or 1 after printing one `ringbus-monitor: ...` line to
// `err` (bad --interval, cannot listen, unusable terminal).
int run(const Options& options, std::ostream& out, std::ostream& err);

}  // namespace ringbus::monitor
