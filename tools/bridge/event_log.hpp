// The bridge's own log: one line per significant event on stderr, with a UTC timestamp.
#pragma once

#include <string_view>

namespace ringbus::bridge {

// "2026-11-25T10:00:00.123Z ringbus-bridge: <topic>: <message>" (topic empty: no topic part).
void log_event(std::string_view topic, std::string_view message);

}  // namespace ringbus::bridge
