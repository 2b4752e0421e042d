// ReceiverSession: one link on the receiving side, from the first byte to the last. Its steps,
// in order: TLS (when configured), the sender's hello (checked against [listen] accept), the
// challenge and the sender's proof of the key, the mirror (an existing one checked against the
// source topic's shape), the welcome (where to resume), then data, gaps and heartbeats in and
// acknowledgements out until the link breaks or the bridge stops. A failed step ends the
// session with one event line, and a reject message to the sender when it should know why.
// Runs on the link's own thread; every wait is bounded by the link timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bridge_config.hpp"
#include "link_protocol.hpp"
#include "link_socket.hpp"
#include "ringbus/function_ref.hpp"
#include "ringbus/mirror.hpp"
#include "ringbus/topic.hpp"

namespace ringbus::bridge {

class ReceiverSession {
 public:
  ReceiverSession(const BridgeConfig& config, const Bus& bus, const std::atomic<bool>& stop,
                  LinkSocket socket);
  // Serves the link until it ends; `tls`: every link is TLS when set.
  void run(const LinkTls* tls);

 private:
  using Clock = std::chrono::steady_clock;

  // Handshake. Each returns false when the session ends (the event is logged).
  bool read_hello();
  bool authenticate();
  bool open_existing_mirror();
  bool send_welcome();
  // Streaming.
  void stream();
  bool handle(const LinkMessage& message);
  bool apply_gap(ConstBytes body);
  bool apply_data(ConstBytes body);
  bool create_mirror(const DataHeader& data);
  // Where the piece of `data` that starts at `from` ends: whole frames, at most `most` bytes
  // (or one frame larger than that).
  std::uint64_t piece_end(const DataHeader& data, std::uint64_t from, std::uint64_t most) const;
  bool applied_retrying(FunctionRef<Result<void>()> attempt);
  bool keep_alive();
  Result<void> send_ack();
  Result<void> send(std::chrono::milliseconds timeout);  // writes out_
  void refuse(const std::string& why);
  void event(const std::string& line) const;

  const BridgeConfig& config_;
  const Bus& bus_;
  const std::atomic<bool>& stop_;
  LinkSocket socket_;
  const std::string peer_;
  LinkDecoder decoder_;
  std::vector<std::byte> out_;
  std::string topic_name_;  // known after the hello
  Hello hello_;
  Nonce nonce_{};               // ours, sent in the challenge
  bool records_ = false;        // this bridge records the mirror (acks carry durable positions)
  std::optional<Topic> topic_;  // the mirror, once it exists
  std::optional<MirrorWriter> writer_;
  Clock::time_point heard_;     // the sender's last message
  Clock::time_point last_ack_;  // our last ack or heartbeat
  Ack last_sent_{};
  bool ack_due_ = false;  // frames applied since the last ack
  std::chrono::milliseconds heartbeat_every_;
};

}  // namespace ringbus::bridge
