// The run modes of ringbus-monitor. One thread samples; the Prometheus endpoint renders the
// latest sample on its own thread.
#include "monitor_app.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <memory>
#include <mutex>
#include <ostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "metrics_server.hpp"
#include "monitor.hpp"
#include "terminal_view.hpp"

#ifndef RINGBUS_VERSION_STRING
#define RINGBUS_VERSION_STRING "unknown"
#endif

namespace ringbus::monitor {
namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int /*signal*/) { g_stop = 1; }

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  // A closed pipe on stdout ends the plain-text loop through the stream's error instead.
  ::signal(SIGPIPE, SIG_IGN);
}

// Sleeps until `until`, waking early for a stop signal.
void sleep_until(Clock::time_point until) {
  while (g_stop == 0) {
    const auto now = Clock::now();
    if (now >= until) return;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(until - now, std::chrono::milliseconds(50)));
  }
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

}  // namespace

void configure(CLI::App& app, Options& o) {
  app.description(
      "ringbus-monitor: a live, read-only view of every topic of a bus, its readers and its "
      "disk log (keys: q quit, s sort, / filter)");
  app.set_version_flag("--version", "ringbus-monitor " RINGBUS_VERSION_STRING);
  app.add_option("--dir", o.dir,
                 "Bus directory (default: $RINGBUS_DIR, else /dev/shm/ringbus-$UID)");
  app.add_option("--interval", o.interval_s,
                 "Seconds between refreshes; --once and --json sample twice this far apart to "
                 "measure rates (0: one sample, no rates)")
      ->capture_default_str();
  auto* once = app.add_flag("--once", o.once, "Print one text snapshot and exit");
  auto* json = app.add_flag("--json", o.json, "Print one JSON snapshot and exit")->excludes(once);
  app.add_option("--prometheus", o.prometheus,
                 "Serve the figures at http://ADDR/metrics (ADDR: HOST:PORT, :PORT or PORT; "
                 "the host defaults to 127.0.0.1)")
      ->excludes(once)
      ->excludes(json);
}

int run(const Options& options, std::ostream& out, std::ostream& err) {
  const bool one_shot = options.once || options.json;
  if (!std::isfinite(options.interval_s) || options.interval_s < 0 || options.interval_s > 86400 ||
      (!one_shot && options.interval_s < 0.01)) {
    err << "ringbus-monitor: --interval " << options.interval_s << " is invalid: expected "
        << (one_shot ? "0 to 86400" : "0.01 to 86400") << " seconds\n";
    return 1;
  }
  Sampler sampler(options.dir.empty() ? Bus::default_directory() : options.dir);
  const auto interval = to_ms(options.interval_s);
  install_signal_handlers();

  if (one_shot) {
    BusView view = sampler.sample();
    if (interval.count() > 0) {
      sleep_until(Clock::now() + interval);
      view = sampler.sample();  // rates over the interval
    }
    if (options.json) {
      out << render_json(view) << '\n';
    } else {
      out << render_text(view);
    }
    out.flush();
    if (!out) {
      err << "ringbus-monitor: cannot write to standard output\n";
      return 1;
    }
    return 0;
  }

  std::mutex latest_mutex;
  std::shared_ptr<const BusView> latest = std::make_shared<const BusView>(sampler.sample());
  auto publish = [&](const BusView& view) {
    auto copy = std::make_shared<const BusView>(view);
    const std::lock_guard lock(latest_mutex);
    latest = std::move(copy);
  };
  std::unique_ptr<MetricsServer> server;
  if (!options.prometheus.empty()) {
    auto address = parse_listen_address(options.prometheus);
    if (!address) {
      err << "ringbus-monitor: " << address.error().message() << '\n';
      return 1;
    }
    auto started = MetricsServer::start(*address, [&] {
      std::shared_ptr<const BusView> view;
      {
        const std::lock_guard lock(latest_mutex);
        view = latest;
      }
      return render_prometheus(*view);
    });
    if (!started) {
      err << "ringbus-monitor: " << started.error().message() << '\n';
      return 1;
    }
    server = std::move(*started);
    err << "ringbus-monitor: serving metrics at http://" << server->bound() << "/metrics"
        << std::endl;
  }

  if (&out == &std::cout && ::isatty(STDOUT_FILENO) == 1) {
    return run_terminal_view(sampler, interval, {}, publish, g_stop) ? 0 : 1;
  }
  // No terminal: a plain-text snapshot per interval (none when only serving metrics).
  bool first = true;
  auto next = Clock::now();
  while (g_stop == 0) {
    if (!first) publish(sampler.sample());
    first = false;
    if (!server) {
      std::shared_ptr<const BusView> view;
      {
        const std::lock_guard lock(latest_mutex);
        view = latest;
      }
      out << render_text(*view) << '\n';
      out.flush();
      if (!out) {
        err << "ringbus-monitor: cannot write to standard output\n";
        return 1;
      }
    }
    next = std::max(next + interval, Clock::now());  // no catching up after a slow sample
    sleep_until(next);
  }
  return 0;
}

}  // namespace ringbus::monitor
