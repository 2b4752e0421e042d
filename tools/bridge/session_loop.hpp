// The reconnect loop that the bridge's links share (the forwarder, the Kafka sink): run a session
// until it fails, report the failure, back off, run the next one.
#pragma once

#include <atomic>
#include <functional>

#include "ringbus/result.hpp"

namespace ringbus::bridge {

struct SessionHooks {
  std::function<Result<void>()> session;     // one connection's life; returns when it ends
  std::function<bool()> made_progress;       // the last session got as far as streaming
  std::function<void(const Error&)> failed;  // reports a failed session (once per distinct one)
  std::function<void()> reconnecting;        // before every session but the first
};

// Runs sessions until `stop` is set. After a failed one it waits with exponential back-off
// (100 ms doubling to 5 s, reset by a session that made progress) and jitter (half to all of
// the delay, so many links to one restarted peer do not reconnect in step), checking `stop`
// every 10 ms.
void run_sessions(const std::atomic<bool>& stop, const SessionHooks& hooks);

}  // namespace ringbus::bridge
