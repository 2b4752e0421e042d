// Receiver: the accept loop and one link's session (hello, challenge, auth, welcome, then data
// and acknowledgements until the link breaks or the bridge stops).
#include "receiver.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fnmatch.h>

#include "event_log.hpp"
#include "layout/frame_layout.hpp"
#include "link_auth.hpp"
#include "link_protocol.hpp"
#include "ringbus/mirror.hpp"

namespace ringbus::bridge {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kMaxLinks = 256;
constexpr milliseconds kAckEvery{20};  // at most this late when frames were applied

void link_event(const std::string& topic, const std::string& peer, const std::string& line) {
  log_event(topic, "link from " + peer + ": " + line);
}

// Reads one whole message within `timeout`. Errors: timed_out, io_error, corrupt.
Result<LinkMessage> read_one(LinkSocket& socket, LinkDecoder& decoder, milliseconds timeout,
                             const std::atomic<bool>& stop) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto next = decoder.next();
    if (!next) return next.error();
    if (*next) return **next;
    const auto now = Clock::now();
    if (now >= deadline || stop.load(std::memory_order_relaxed)) {
      return Error(Errc::timed_out, "sent nothing for " + std::to_string(timeout.count()) + " ms");
    }
    auto read = socket.read_into(
        decoder,
        std::min(std::chrono::duration_cast<milliseconds>(deadline - now), milliseconds(100)));
    if (!read) return read.error();
  }
}

// The first data frame's sequence number in a batch (a new mirror starts its count there).
std::uint64_t first_sequence(ConstBytes frames, std::uint64_t fallback) {
  std::size_t at = 0;
  while (at + 32 <= frames.size()) {
    layout::FrameHeader h{};
    std::memcpy(&h, frames.data() + at, sizeof h);
    if (layout::commit_kind(h.commit) == layout::FrameKind::kData) return h.sequence;
    const std::uint64_t stride = layout::padding_stride(h.commit);
    if (stride == 0) break;
    at += stride;
  }
  return fallback;
}

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
  const std::string peer = socket.peer();
  LinkDecoder decoder;
  std::vector<std::byte> out;
  std::string topic_name;
  auto refuse = [&](const std::string& why) {
    link_event(topic_name, peer, "refused: " + why);
    out.clear();
    encode_reject(why, out);
    (void)socket.write_all(out, milliseconds(1000));
  };
  if (tls_) {
    // In this link's thread, so a slow or silent client holds up no other link.
    if (auto ok = socket.start_tls(*tls_, true, "", config_.link_timeout); !ok) {
      link_event("", peer, "refused: " + ok.error().message());
      return;
    }
  }
  // Hello.
  auto m = read_one(socket, decoder, config_.link_timeout, stop_);
  if (!m) {
    link_event("", peer, "dropped before its hello: " + m.error().message());
    return;
  }
  if (m->type != LinkType::hello) {
    link_event("", peer,
               "dropped: the first message is not a hello (type " +
                   std::to_string(static_cast<int>(m->type)) + ")");
    return;
  }
  auto hello = parse_hello(m->body);
  if (!hello) {
    refuse(hello.error().message());
    return;
  }
  if (auto ok = validate_name(hello->topic); !ok) {
    refuse(ok.error().message());
    return;
  }
  topic_name = hello->topic;
  const bool accepted = std::any_of(
      config_.listen.accept.begin(), config_.listen.accept.end(),
      [&](const std::string& glob) { return ::fnmatch(glob.c_str(), topic_name.c_str(), 0) == 0; });
  if (!accepted) {
    refuse("this bridge does not accept topic '" + topic_name + "' (see [listen] accept)");
    return;
  }
  // Challenge and auth.
  auto nonce = make_nonce();
  if (!nonce) {
    refuse(nonce.error().message());
    return;
  }
  Challenge challenge;
  challenge.nonce = *nonce;
  challenge.proof = link_proof(config_.key, LinkRole::receiver, *nonce, hello->nonce, topic_name);
  out.clear();
  encode_challenge(challenge, out);
  if (auto ok = socket.write_all(out, config_.link_timeout); !ok) {
    link_event(topic_name, peer, "dropped: " + ok.error().message());
    return;
  }
  m = read_one(socket, decoder, config_.link_timeout, stop_);
  if (m && m->type == LinkType::reject) {
    auto why = parse_reject(m->body);
    link_event(topic_name, peer,
               "dropped during authentication: " + (why ? *why : why.error().message()));
    return;
  }
  if (!m || m->type != LinkType::auth) {
    link_event(
        topic_name, peer,
        "dropped during authentication: " + (m ? "unexpected message" : m.error().message()));
    return;
  }
  auto proof = parse_auth(m->body);
  if (!proof) {
    refuse(proof.error().message());
    return;
  }
  if (!config_.key.empty() && !proofs_equal(*proof, link_proof(config_.key, LinkRole::sender,
                                                               hello->nonce, *nonce, topic_name))) {
    refuse(proof->empty() ? "this bridge requires a key (start the sender with --key-file)"
                          : "wrong key");
    return;
  }
  // The mirror: checked if it exists, created at the first batch otherwise.
  std::optional<Topic> topic;
  std::optional<MirrorWriter> writer;
  if (auto existing = bus_.open_topic(topic_name); existing) {
    const TopicConfig& c = existing->config();
    if (c.mirror_of.empty()) {
      refuse("a local topic '" + topic_name + "' exists and is not a mirror");
      return;
    }
    if (c.capacity != hello->capacity || c.max_message != hello->max_message ||
        c.frame_alignment != hello->frame_alignment ||
        static_cast<std::uint32_t>(c.policy) != hello->policy) {
      refuse("the mirror '" + topic_name + "' here has capacity " + std::to_string(c.capacity) +
             ", max message " + std::to_string(c.max_message) + ", frame alignment " +
             std::to_string(c.frame_alignment) + " and policy " + std::string(to_string(c.policy)) +
             ", the source " + std::to_string(hello->capacity) + ", " +
             std::to_string(hello->max_message) + ", " + std::to_string(hello->frame_alignment) +
             " and " + std::to_string(hello->policy) + "; remove the mirror to re-create it");
      return;
    }
    auto w = MirrorWriter::open(*existing);
    if (!w) {
      refuse(w.error().message());
      return;
    }
    topic = *existing;
    writer.emplace(std::move(*w));
  } else if (existing.error().code() != Errc::not_found) {
    refuse("cannot open the mirror: " + existing.error().message());
    return;
  }
  // This bridge records the mirror (by its configuration, not by whether its recorder has
  // attached yet): then acknowledgements carry only what the recorder made durable, so the
  // sender never commits what a crash of this host could lose.
  const bool records_here =
      !config_.log_dir.empty() &&
      std::any_of(config_.record.begin(), config_.record.end(), [&](const std::string& glob) {
        return ::fnmatch(glob.c_str(), topic_name.c_str(), 0) == 0;
      });
  auto records = [&] { return records_here; };
  Welcome welcome;
  welcome.has_mirror = writer.has_value();
  welcome.records = records();
  if (writer) {
    welcome.resume_position = writer->applied();
    welcome.resume_messages = writer->applied_messages();
  }
  out.clear();
  encode_welcome(welcome, out);
  if (auto ok = socket.write_all(out, config_.link_timeout); !ok) {
    link_event(topic_name, peer, "dropped: " + ok.error().message());
    return;
  }
  link_event(topic_name, peer,
             writer ? "mirroring from offset " + std::to_string(welcome.resume_position)
                    : std::string("mirroring into a new mirror"));

  // Data and acknowledgements.
  auto heard = Clock::now();
  auto last_ack = Clock::now();
  Ack last_sent{};
  bool ack_due = false;
  auto send_ack = [&]() -> Result<void> {
    Ack ack;
    ack.applied_position = writer->applied();
    ack.applied_messages = writer->applied_messages();
    ack.records = records();
    if (ack.records) {
      // Until the recorder attached (and while another process records it), nothing is
      // durable as far as this link can tell.
      auto snap = topic->snapshot();
      if (snap.recorder && snap.recorder->alive) {
        ack.durable_position = std::min(snap.recorder->durable_position, ack.applied_position);
        ack.durable_messages = ack.durable_position == ack.applied_position
                                   ? ack.applied_messages
                                   : snap.recorder->durable_messages;
      }
    }
    last_ack = Clock::now();
    ack_due = false;
    if (ack.applied_position == last_sent.applied_position &&
        ack.durable_position == last_sent.durable_position && ack.records == last_sent.records) {
      out.clear();
      encode_heartbeat(out);  // nothing new, but the sender must hear from us
    } else {
      out.clear();
      encode_ack(ack, out);
      last_sent = ack;
    }
    return socket.write_all(out, config_.link_timeout);
  };
  const auto heartbeat_every = std::max(config_.link_timeout / 3, milliseconds(10));
  // Runs `attempt` (a MirrorWriter append) until it is done. While a durable reader of the mirror
  // is a ring behind (would_block) it waits for it, telling the sender we are alive. False: the
  // link ends (refused with the reason, or stopping).
  auto applied_retrying = [&](auto&& attempt) {
    for (int naps = 0;; ++naps) {
      auto ok = attempt();
      if (ok) return true;
      if (ok.error().code() != Errc::would_block) {
        refuse(ok.error().message());
        return false;
      }
      if (stop_.load(std::memory_order_relaxed)) return false;
      if (Clock::now() - last_ack >= heartbeat_every) {
        if (auto sent = send_ack(); !sent) return false;
      }
      ::usleep(static_cast<useconds_t>(std::min(100 << std::min(naps, 5), 2000)));
      if (naps % 500 == 499) topic->reap_dead_readers();
    }
  };
  while (!stop_.load(std::memory_order_relaxed)) {
    auto got = socket.read_into(decoder, config_.link_busy_spin ? milliseconds(0)
                                         : ack_due              ? milliseconds(1)
                                                                : milliseconds(20));
    if (!got) {
      link_event(topic_name, peer, "link closed: " + got.error().message());
      return;
    }
    for (;;) {
      auto next = decoder.next();
      if (!next) {
        refuse(next.error().message());
        return;
      }
      if (!*next) break;
      heard = Clock::now();
      const LinkMessage& msg = **next;
      if (msg.type == LinkType::heartbeat) continue;
      if (msg.type == LinkType::gap) {
        auto gap = parse_gap(msg.body);
        if (!gap) {
          refuse(gap.error().message());
          return;
        }
        if (!writer) {
          refuse("a gap before the mirror's first frames");
          return;
        }
        if (gap->from != writer->applied()) {
          refuse("a gap at offset " + std::to_string(gap->from) +
                 " does not continue the mirror, which ends at " +
                 std::to_string(writer->applied()));
          return;
        }
        link_event(topic_name, peer,
                   "offsets [" + std::to_string(gap->from) + ", " + std::to_string(gap->to) +
                       ") were lost on the source host: the mirror skips them as a gap, which "
                       "its readers count as lost");
        while (writer->applied() < gap->to) {
          if (!applied_retrying(
                  [&] { return writer->try_append_gap(writer->applied(), gap->to); })) {
            return;
          }
        }
        ack_due = true;
        continue;
      }
      if (msg.type != LinkType::data) {
        refuse("unexpected message type " + std::to_string(static_cast<int>(msg.type)));
        return;
      }
      auto data = parse_data(msg.body);
      if (!data) {
        refuse(data.error().message());
        return;
      }
      if (!writer) {
        TopicOptions o;
        o.capacity = hello->capacity;
        o.max_message = hello->max_message;
        o.frame_alignment = hello->frame_alignment;
        o.policy = hello->policy == 1 ? Policy::overwrite : Policy::block;
        o.stuck_claim_timeout = std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds(
            std::min<std::uint64_t>(hello->stuck_claim_timeout_ns, std::uint64_t{1} << 62)));
        if (o.stuck_claim_timeout.count() == 0) o.stuck_claim_timeout = milliseconds(2000);
        o.start_position = data->offset;
        o.start_sequence = first_sequence(data->frames, 0);
        o.mirror_of = hello->source.substr(0, 60) + " (" + peer.substr(0, peer.rfind(':')) + ")";
        auto created = bus_.create_topic(topic_name, o);
        if (!created) {
          refuse("cannot create the mirror: " + created.error().message());
          return;
        }
        auto w = MirrorWriter::open(*created);
        if (!w) {
          refuse(w.error().message());
          return;
        }
        topic = *created;
        writer.emplace(std::move(*w));
        link_event(topic_name, peer,
                   "created the mirror at offset " + std::to_string(data->offset));
      }
      // A batch may be larger than the mirror's ring (the sender batches up to kMaxBatchBytes
      // whatever the ring's size): apply it in pieces of whole frames of at most a quarter ring,
      // each going in as soon as the mirror's durable readers leave room for it.
      const TopicConfig& tc = topic->config();
      const std::uint64_t most = std::max<std::uint64_t>(tc.capacity / 4, tc.frame_alignment);
      const std::uint64_t total = data->frames.size();
      for (std::uint64_t from = 0; from < total;) {
        std::uint64_t to = total - from <= most ? total : from;  // all of it fits: no walk
        while (to < total) {
          std::uint64_t word = 0;
          if (to + sizeof word > total) {
            to = total;  // not whole frames: try_append says so
            break;
          }
          std::memcpy(&word, data->frames.data() + to, sizeof word);
          const std::uint64_t stride =
              layout::committed_stride(word, (data->offset + to) & (tc.capacity - 1), tc.capacity,
                                       tc.max_message, tc.frame_alignment);
          if (stride == 0) {
            to = total;  // a bad frame: try_append refuses the piece and says why
            break;
          }
          if (to > from && to + stride - from > most) break;
          to = std::min(to + stride, total);
        }
        const ConstBytes piece(data->frames.data() + from, to - from);
        if (!applied_retrying([&] { return writer->try_append(data->offset + from, piece); })) {
          return;
        }
        from = to;
      }
      writer->touch();
      ack_due = true;
    }
    const auto now = Clock::now();
    if (now - heard > config_.link_timeout) {
      link_event(topic_name, peer,
                 "dropped: no word from the sender for " +
                     std::to_string(config_.link_timeout.count()) + " ms");
      return;
    }
    const bool quiet = decoder.buffered() == 0;
    if (writer && ((ack_due && (quiet || now - last_ack >= kAckEvery)) ||
                   now - last_ack >= std::min(heartbeat_every, milliseconds(100)))) {
      if (auto ok = send_ack(); !ok) {
        link_event(topic_name, peer, "link closed: " + ok.error().message());
        return;
      }
    } else if (!writer && now - last_ack >= heartbeat_every) {
      out.clear();
      encode_heartbeat(out);
      last_ack = now;
      if (auto ok = socket.write_all(out, config_.link_timeout); !ok) return;
    }
  }
}

}  // namespace ringbus::bridge
