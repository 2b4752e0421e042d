// The live terminal view (ncurses), like top: the table redrawn every interval; keys q (quit),
// s (next sort column), / (filter topics by name), arrows and page keys (scroll).
#pragma once

#include <chrono>
#include <csignal>
#include <functional>

#include "monitor.hpp"

namespace ringbus::monitor {

// Runs until `q`, or until `stop` becomes true (set by a signal handler). Calls `on_sample`
// with every sample it takes (the Prometheus endpoint shares them). Returns false with a
// message on stderr if the terminal cannot be used. Takes over the terminal meanwhile.
bool run_terminal_view(Sampler& sampler, std::chrono::milliseconds interval, TableOptions options,
                       const std::function<void(const BusView&)>& on_sample,
                       const volatile std::sig_atomic_t& stop);

}  // namespace ringbus::monitor
