// ringbus-monitor: a live view of every topic of a bus (see docs/monitor.md).
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "monitor_app.hpp"

namespace {

// The command line and the command; main() adds the last-resort catch.
int run(int argc, char** argv) {
  CLI::App app;
  app.name("ringbus-monitor");
  ringbus::monitor::Options options;
  ringbus::monitor::configure(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "ringbus-monitor: " << e.what() << " (see 'ringbus-monitor --help')\n";
    return 2;
  }
  return ringbus::monitor::run(options, std::cout, std::cerr);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // setting up the command line (out of memory)
    std::cerr << "ringbus-monitor: " << e.what() << '\n';
    return 1;
  }
}
