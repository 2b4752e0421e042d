// HOST:PORT checks: inet_pton for IPv4 literals, the RFC 1123 rules for names.
#include "host_port.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdint>
#include <string>

namespace ringbus::bridge {

namespace {

Error invalid(std::string_view what, std::string_view text, const std::string& why) {
  return Error(Errc::invalid_argument,
               std::string(what) + " '" + std::string(text) + "' is not HOST:PORT: " + why);
}

bool valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '.') {
      if (label == 0 || host[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (label == 0 && c == '-') || ++label > 63) return false;
  }
  return host.back() != '-' && host.back() != '.';
}

bool all_digits_and_dots(std::string_view host) {
  return host.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace

Result<std::string> parse_host_port(std::string_view text, std::string_view what, bool listen) {
  std::string_view host;
  std::string_view port;
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    if (!listen) return invalid(what, text, "the port is missing");
    host = "127.0.0.1";
    port = text;
  } else {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty()) {
      if (!listen) return invalid(what, text, "the host is missing");
      host = "127.0.0.1";
    }
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535) {
    return invalid(what, text, "the port must be a number from 1 to 65535");
  }
  if (all_digits_and_dots(host)) {
    in_addr addr{};
    if (::inet_pton(AF_INET, std::string(host).c_str(), &addr) != 1) {
      return invalid(what, text, "'" + std::string(host) + "' is not an IPv4 address");
    }
  } else if (!valid_host_name(host)) {
    return invalid(what, text,
                   "'" + std::string(host) + "' is neither an IPv4 address nor a host name");
  }
  return std::string(host) + ":" + std::to_string(value);
}

Result<HostPort> split_host_port(std::string_view text) {
  auto normal = parse_host_port(text, "address", false);
  if (!normal) return normal.error();
  const std::size_t colon = normal->rfind(':');
  HostPort hp;
  hp.host = normal->substr(0, colon);
  hp.port = static_cast<std::uint16_t>(std::stoul(normal->substr(colon + 1)));
  return hp;
}

bool is_loopback(std::string_view host_port) {
  const std::string_view host = host_port.substr(0, host_port.rfind(':'));
  return host == "localhost" || (host.starts_with("127.") && all_digits_and_dots(host));
}

}  // namespace ringbus::bridge
