// A minimal HTTP server for Prometheus scrapes: GET /metrics answers with whatever the render
// callback returns. One Boost.Asio thread; every connection gets one answer and is closed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ringbus/result.hpp"

namespace ringbus::monitor {

// Where to listen: "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT" (the host defaults to
// 127.0.0.1: exposing the bus's figures beyond this host is a decision to make explicitly).
// Port 0 lets the kernel choose. Errors: invalid_argument naming what is wrong.
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};
Result<ListenAddress> parse_listen_address(std::string_view text);

class MetricsServer {
 public:
  // Called on the server's thread for each scrape; must be thread-safe against the caller's
  // other threads, and may throw (the scrape then gets a 500).
  using Render = std::function<std::string()>;

  // Binds and starts serving on a thread of its own. Errors: io_error (cannot bind, with the
  // system's reason), invalid_argument (host is not an IP address).
  static Result<std::unique_ptr<MetricsServer>> start(const ListenAddress& address, Render render);

  // Stops serving and joins the thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address actually bound, as "HOST:PORT" (with the chosen port when 0 was asked for).
  const std::string& bound() const noexcept { return bound_; }

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl, std::string bound);
  std::unique_ptr<Impl> impl_;
  std::string bound_;
};

}  // namespace ringbus::monitor
