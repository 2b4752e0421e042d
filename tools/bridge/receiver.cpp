// Receiver: the accept loop; each accepted link is served by a ReceiverSession on its own thread.
#include "receiver.hpp"

#include <pthread.h>
#include <unistd.h>

#include "event_log.hpp"
#include "receiver_session.hpp"

namespace ringbus::bridge {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxLinks = 256;

}  // namespace

Result<std::unique_ptr<Receiver>> Receiver::start(const BridgeConfig& config, const Bus& bus) {
  auto listener = LinkListener::listen(config.listen.address);
  if (!listener) return listener.error();
  std::unique_ptr<Receiver> r(new Receiver(config, bus, std::move(*listener)));
  if (config.tls.enabled()) {
    auto tls = LinkTls::load(config.tls);
    if (!tls) return tls.error();
    r->tls_ = std::move(*tls);
  }
  r->acceptor_ = std::thread([p = r.get()] {
    ::pthread_setname_np(::pthread_self(), "rb-accept");  // for top -H and perf
    p->accept_loop();
  });
  return r;
}

Receiver::Receiver(BridgeConfig config, Bus bus, LinkListener listener)
    : config_(std::move(config)), bus_(std::move(bus)), listener_(std::move(listener)) {
  port_ = listener_.port();
}

Receiver::~Receiver() {
  stop_.store(true, std::memory_order_relaxed);
  if (acceptor_.joinable()) acceptor_.join();
  reap_links(true);
}

std::size_t Receiver::links() const {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const Link& l : links_) n += l.done.load(std::memory_order_acquire) ? 0 : 1;
  return n;
}

void Receiver::reap_links(bool all) {
  std::lock_guard lock(mutex_);
  for (auto it = links_.begin(); it != links_.end();) {
    // acquire: pairs with the release store at the end of the link's thread.
    if (all || it->done.load(std::memory_order_acquire)) {
      if (it->thread.joinable()) it->thread.join();
      it = links_.erase(it);
    } else {
      ++it;
    }
  }
}

void Receiver::accept_loop() {
  std::string how = tls_ ? " over TLS (peers need a certificate from " + config_.tls.ca + ")" : "";
  if (!config_.key.empty()) {
    how += tls_ ? ", with the pre-shared key" : " with the pre-shared key";
  } else if (!tls_) {
    how = " (no key, no TLS: links are not authenticated)";
  }
  log_event("", "listening for mirrored topics on " + config_.listen.address + how);
  std::string last_error;
  while (!stop_.load(std::memory_order_relaxed)) {
    reap_links(false);
    auto accepted = listener_.accept(milliseconds(100));
    if (!accepted) {
      if (accepted.error().message() != last_error) {
        log_event("", "accepting links: " + accepted.error().message());
      }
      last_error = accepted.error().message();
      ::usleep(50'000);  // e.g. out of file descriptors: do not spin
      continue;
    }
    if (!*accepted) continue;
    if (links() >= kMaxLinks) {
      log_event("", "refused a link from " + (*accepted)->peer() + ": " +
                        std::to_string(kMaxLinks) + " links are open");
      continue;  // the socket closes here
    }
    std::lock_guard lock(mutex_);
    links_.emplace_back();
    Link& link = links_.back();
    link.thread = std::thread([this, &link, s = std::move(**accepted)]() mutable {
      ::pthread_setname_np(::pthread_self(), "rb-receive");
      serve(std::move(s));
      // release: the thread is done with everything; reap_links() may join it.
      link.done.store(true, std::memory_order_release);
    });
  }
}

void Receiver::serve(LinkSocket socket) {
  ReceiverSession(config_, bus_, stop_, std::move(socket)).run(tls_.get());
}

}  // namespace ringbus::bridge
