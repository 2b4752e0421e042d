// `ringbus`: a kcat for ringbus. Parses the command line, runs the command, and turns any
// failure into one `ringbus: <message>` line on stderr and a non-zero exit status.
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace {
constexpr int kFailure = 1;  // the command failed
constexpr int kUsage = 2;    // the command line is wrong
}  // namespace

namespace {

// The command line and the command; main() adds the last-resort catch.
int run(int argc, char** argv) {
  CLI::App app;
  app.name("ringbus");
  ringbus::cli::Options options;
  ringbus::cli::configure(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "ringbus: " << e.what() << " (see 'ringbus --help')\n";
    return kUsage;
  }
  try {
    auto done = ringbus::cli::run(options, {std::cin, std::cout, std::cerr});
    std::cout.flush();
    if (!done) {
      std::cerr << "ringbus: " << done.error().message() << '\n';
      return kFailure;
    }
    if (!std::cout) {
      std::cerr << "ringbus: cannot write to standard output\n";
      return kFailure;
    }
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "ringbus: " << e.what() << '\n';
    return kFailure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);  // produce and consume move many small lines
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // setting up the command line (out of memory)
    std::cerr << "ringbus: " << e.what() << '\n';
    return kFailure;
  }
}
