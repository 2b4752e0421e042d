// Forwards one topic to one receiving ringbus-bridge over TCP: the frame pump into a link sink,
// on its own thread. Connects (with back-off and jitter), authenticates, resumes where the
// receiver's mirror ends, streams batches of frames verbatim, and commits its persistent reader
// only up to what the receiver acknowledged (durable there if the receiver records the mirror).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "link_tls.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

struct ForwarderOptions {
  std::string destination;  // "HOST:PORT"
  std::string key;          // pre-shared key; empty: unauthenticated link
  std::chrono::milliseconds link_timeout{10000};
  std::string reader_name;  // its persistent reader in the topic
  // This bridge records the topic too: the forwarder's reader is lossy and, once lapped, reads
  // the disk log, so producers never wait on the network (only on the disk).
  bool log_covers = false;
  bool busy_spin = false;              // never sleep while idle (see BridgeConfig::link_busy_spin)
  std::shared_ptr<const LinkTls> tls;  // TLS on the link when set
};

class Forwarder {
 public:
  Forwarder(const Topic& topic, ForwarderOptions options);
  ~Forwarder();  // stops and joins
  void request_stop() noexcept;
  const std::string& destination() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

// The name of the forwarder's persistent reader for a destination: "<base>-to-<host>-<port>".
std::string forward_reader_name(const std::string& base, const std::string& destination);

}  // namespace ringbus::bridge
