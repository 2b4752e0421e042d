// Receives mirrors from other ringbus-bridges: listens on one TCP address, authenticates each
// link, creates or checks the mirror topic, writes the frames it receives at their offsets
// (MirrorWriter) and acknowledges what it applied (and what is durable, if this bridge records
// the mirror). One thread accepts; each link has its own thread; every wait is bounded, so a
// peer that sends nothing or garbage is dropped without disturbing the others.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bridge_config.hpp"
#include "link_socket.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

class Receiver {
 public:
  // Binds the listening socket (and loads the TLS files when configured). Errors: io_error
  // (address in use...), invalid_argument, not_found (a TLS file).
  static Result<std::unique_ptr<Receiver>> start(const BridgeConfig& config, const Bus& bus);
  ~Receiver();  // stops accepting, closes every link, joins
  std::uint16_t port() const { return port_; }
  std::size_t links() const;  // connections being served now

 private:
  struct Link {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  Receiver(BridgeConfig config, Bus bus, LinkListener listener);
  void accept_loop();
  void serve(LinkSocket socket);
  void reap_links(bool all);

  BridgeConfig config_;
  Bus bus_;
  LinkListener listener_;
  std::shared_ptr<const LinkTls> tls_;  // every link is TLS when set
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::list<Link> links_;
  std::thread acceptor_;
};

}  // namespace ringbus::bridge
