// "HOST:PORT" addresses of bridge links (--listen, --forward): syntax checks only, no lookup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::bridge {

// Checks "HOST:PORT": HOST an IPv4 literal or a host name (letters, digits, '-' and '.'; labels
// of 1 to 63 characters), PORT 1 to 65535. With `listen`, ":PORT" and "PORT" mean
// "127.0.0.1:PORT". Returns the address in HOST:PORT form. `what` names the option in errors.
// Errors: invalid_argument.
Result<std::string> parse_host_port(std::string_view text, std::string_view what, bool listen);

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// parse_host_port (not listening), split for a resolver. Errors: invalid_argument.
Result<HostPort> split_host_port(std::string_view text);

// True for an address parse_host_port accepted whose host is 127.x.x.x or "localhost".
bool is_loopback(std::string_view host_port);

}  // namespace ringbus::bridge
