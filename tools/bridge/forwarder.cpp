// Forwarder: one link's session loop. The pump reads the topic and hands runs of frames to the
// LinkSink, which batches them into DATA messages; acknowledgements from the receiver commit the
// pump's reader. Every wait is bounded: the topic's futex while all is acknowledged, poll(2) on
// the socket while acknowledgements are due.
#include "forwarder.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "event_log.hpp"
#include "frame_pump.hpp"
#include "host_port.hpp"
#include "link_auth.hpp"
#include "link_protocol.hpp"
#include "link_socket.hpp"
#include "ringbus/connector_counters.hpp"
#include "session_loop.hpp"

namespace ringbus::bridge {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint64_t kBatchBytes = 1U << 20;  // a DATA message carries at most this much

// Frames on their way to the receiver: one DATA batch at a time. Runs the pump reads in place
// stay in the ring until the reader commits past them, which it does only for what the receiver
// acknowledged, so the batch points at them and sendmsg(2) gathers them from there; other runs
// (rebuilt from checked copies, padding) are copied. A lost connection loses nothing.
class LinkSink final : public connect::FrameSink {
 public:
  static constexpr std::size_t kMaxPieces = 32;  // per batch; each ring run adds one or two

  void reset(bool known, std::uint64_t end) {
    known_ = known;
    end_ = end;
    batch_sent();
  }
  bool empty() const override { return !known_; }
  std::uint64_t end() const override { return end_; }
  std::uint64_t room() const override {
    return bytes_ >= kBatchBytes || pieces_.size() + 2 > kMaxPieces ? 0 : kBatchBytes - bytes_;
  }
  Result<void> append(const connect::FrameRun& run) override {
    if (known_ && run.start < end_) {
      return Error(Errc::invalid_argument, "a run at offset " + std::to_string(run.start) +
                                               " goes back before the link's end " +
                                               std::to_string(end_));
    }
    if (known_ && run.start > end_) {
      // Offsets this host lost (overwritten, in no disk log): the receiver gets a GAP before
      // the batch that starts here, after the batch before it went out.
      if (bytes_ > 0) return Errc::would_block;
      gap_ = Gap{end_, run.start};
    }
    if (bytes_ > 0 &&
        (bytes_ + run.size > kBatchBytes || pieces_.size() + run.pieces.size() > kMaxPieces)) {
      return Errc::would_block;
    }
    if (bytes_ == 0) batch_start_ = run.start;
    for (ConstBytes piece : run.pieces) {
      if (piece.empty()) continue;
      if (run.in_ring) {
        pieces_.push_back({piece.data(), 0, piece.size()});
      } else {
        pieces_.push_back({nullptr, copies_.size(), piece.size()});
        copies_.insert(copies_.end(), piece.begin(), piece.end());
      }
    }
    bytes_ += run.size;
    end_ = run.start + run.size;
    known_ = true;
    return {};
  }
  bool has_batch() const { return bytes_ > 0; }
  // Lost offsets the batch follows, if any.
  const std::optional<Gap>& gap() const { return gap_; }
  std::uint64_t batch_start() const { return batch_start_; }
  std::uint64_t batch_bytes() const { return bytes_; }
  // The batch's pieces, after `header`, for one gathering write.
  std::span<const ConstBytes> gather(ConstBytes header) {
    gathered_.clear();
    gathered_.push_back(header);
    for (const Piece& p : pieces_) {
      gathered_.emplace_back(p.ring != nullptr ? p.ring : copies_.data() + p.offset, p.size);
    }
    return gathered_;
  }
  void batch_sent() {
    gap_.reset();
    pieces_.clear();
    copies_.clear();
    bytes_ = 0;
  }

 private:
  struct Piece {
    const std::byte* ring;  // in the ring, or nullptr: at `offset` in copies_
    std::size_t offset;
    std::size_t size;
  };
  bool known_ = false;
  std::uint64_t end_ = 0;
  std::optional<Gap> gap_;
  std::uint64_t batch_start_ = 0;
  std::uint64_t bytes_ = 0;
  std::vector<Piece> pieces_;
  std::vector<std::byte> copies_;
  std::vector<ConstBytes> gathered_;
};

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

}  // namespace

std::string forward_reader_name(const std::string& base, const std::string& destination) {
  std::string name = base + "-to-";
  for (char c : destination) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    name.push_back(ok ? c : '-');
  }
  return name.substr(0, 200);
}

struct Forwarder::Impl {
  Impl(const Topic& t, ForwarderOptions o)
      : topic(t),
        options(std::move(o)),
        pump(t, connect::PumpOptions{options.reader_name,
                                     options.log_covers ? Durability::lossy : Durability::durable,
                                     kBatchBytes, 256,
                                     [this](const std::string& line) { event(line); }}) {}

  void event(const std::string& line) {
    log_event(topic.name(), "forward to " + options.destination + ": " + line);
  }
  // One line per distinct failure, not one per retry.
  void failure(const std::string& message, bool backing_off) {
    if (counters) {
      counters->failed(message);
      counters->state(backing_off ? LinkState::backing_off : LinkState::failing);
    }
    if (message != last_failure) event(message + (backing_off ? " (retrying)" : ""));
    last_failure = message;
  }
  // Loud on this side: the event log, the link's error count and last error (the receiver
  // logs it too, and its readers count the offsets as lost).
  void report_gap(const Gap& gap) {
    const std::string message =
        "offsets [" + std::to_string(gap.from) + ", " + std::to_string(gap.to) +
        ") are lost on this host (overwritten, and in no disk log): the mirror skips them as a "
        "gap, which its readers count as lost";
    event(message);
    counters->failed(message);
    counters->state(LinkState::streaming);
  }
  void run();
  Result<void> session();
  Result<void> handshake(LinkSocket& socket, LinkDecoder& decoder, Welcome& welcome);
  Result<LinkMessage> read_message(LinkSocket& socket, LinkDecoder& decoder, milliseconds timeout);
  Result<void> resume(const Welcome& welcome);
  Result<void> stream(LinkSocket& socket, LinkDecoder& decoder, const Welcome& welcome);
  Result<void> on_message(const LinkMessage& m, const Welcome& welcome);

  Topic topic;
  ForwarderOptions options;
  connect::FramePump pump;
  LinkSink sink;
  std::optional<ForwardCounters> counters;
  std::atomic<bool> stop{false};
  std::string last_failure;
  std::uint64_t acked = 0;
  bool streamed = false;  // the last session got as far as streaming
  Clock::time_point heard{};
};

Result<LinkMessage> Forwarder::Impl::read_message(LinkSocket& socket, LinkDecoder& decoder,
                                                  milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto next = decoder.next();
    if (!next) return next.error();
    if (*next) {
      if ((*next)->type == LinkType::reject) {
        auto why = parse_reject((*next)->body);
        return Error(Errc::invalid_argument,
                     "the receiver refused the link: " + (why ? *why : why.error().message()));
      }
      return **next;
    }
    const auto now = Clock::now();
    if (now >= deadline || stop.load(std::memory_order_relaxed)) {
      return Error(Errc::timed_out,
                   "no answer from the receiver within " + std::to_string(timeout.count()) + " ms");
    }
    auto read = socket.read_into(
        decoder,
        std::min(std::chrono::duration_cast<milliseconds>(deadline - now), milliseconds(100)));
    if (!read) return read.error();
  }
}

Result<void> Forwarder::Impl::handshake(LinkSocket& socket, LinkDecoder& decoder,
                                        Welcome& welcome) {
  auto nonce = make_nonce();
  if (!nonce) return nonce.error();
  const TopicConfig& c = topic.config();
  Hello hello;
  hello.nonce = *nonce;
  hello.topic = topic.name();
  hello.source = host_name();
  hello.capacity = c.capacity;
  hello.max_message = c.max_message;
  hello.frame_alignment = c.frame_alignment;
  hello.policy = static_cast<std::uint32_t>(c.policy);
  hello.stuck_claim_timeout_ns =
      static_cast<std::uint64_t>(std::chrono::nanoseconds(c.stuck_claim_timeout).count());
  std::vector<std::byte> out;
  encode_hello(hello, out);
  if (auto ok = socket.write_all(out, options.link_timeout); !ok) return ok.error();
  auto m = read_message(socket, decoder, options.link_timeout);
  if (!m) return m.error();
  if (m->type != LinkType::challenge) {
    return Error(Errc::corrupt, "the receiver answered the hello with message type " +
                                    std::to_string(static_cast<int>(m->type)));
  }
  auto challenge = parse_challenge(m->body);
  if (!challenge) return challenge.error();
  if (!options.key.empty()) {
    // The receiver proves it knows the key too: no data goes to an impostor.
    auto expected =
        link_proof(options.key, LinkRole::receiver, challenge->nonce, hello.nonce, topic.name());
    if (!proofs_equal(expected, challenge->proof)) {
      Error refused(Errc::invalid_argument,
                    challenge->proof.empty()
                        ? "the receiver has no key (start it with the same --key-file)"
                        : "the receiver does not know our key (wrong --key-file on one side)");
      // Say why before closing, so the receiver's log names the problem too.
      out.clear();
      encode_reject("the sender refused: " + refused.message(), out);
      (void)socket.write_all(out, milliseconds(1000));
      return refused;
    }
  }
  out.clear();
  encode_auth(
      link_proof(options.key, LinkRole::sender, hello.nonce, challenge->nonce, topic.name()), out);
  if (auto ok = socket.write_all(out, options.link_timeout); !ok) return ok.error();
  m = read_message(socket, decoder, options.link_timeout);
  if (!m) return m.error();
  if (m->type != LinkType::welcome) {
    return Error(Errc::corrupt, "the receiver answered the authentication with message type " +
                                    std::to_string(static_cast<int>(m->type)));
  }
  auto w = parse_welcome(m->body);
  if (!w) return w.error();
  welcome = *w;
  return {};
}

Result<void> Forwarder::Impl::resume(const Welcome& welcome) {
  sink.reset(welcome.has_mirror, welcome.resume_position);
  const std::uint64_t floor = connect::earliest_available(topic);
  const std::uint64_t wanted = welcome.has_mirror ? welcome.resume_position : floor;
  // A persistent reader resumes at its committed position whatever the start says; a new one
  // starts at `wanted`, or at the oldest offset this host still has, the link then sending the
  // offsets in between as a gap.
  if (auto ok = pump.attach(sink, std::max(wanted, floor)); !ok) return ok.error();
  if (pump.position() > wanted) {
    // The receiver holds less than this reader committed (its mirror was lost or re-created):
    // go back to what it needs. Everything below the committed position may already be
    // overwritten in the ring; the disk log has it if the topic is recorded, and what neither
    // has goes to the receiver as a gap.
    pump.detach();
    if (auto ok = topic.remove_reader(options.reader_name); !ok) return ok.error();
    if (auto ok = pump.attach(sink, std::max(wanted, connect::earliest_available(topic))); !ok) {
      return Error(ok.error().code(),
                   "the receiver's mirror ends at offset " + std::to_string(wanted) +
                       " but this host no longer has it: " + ok.error().message());
    }
  }
  acked = welcome.has_mirror ? welcome.resume_position : pump.position();
  event(std::string(welcome.has_mirror ? "connected; the mirror ends at offset "
                                       : "connected; a new mirror starts at offset ") +
        std::to_string(welcome.has_mirror ? welcome.resume_position : pump.position()));
  return {};
}

Result<void> Forwarder::Impl::on_message(const LinkMessage& m, const Welcome& welcome) {
  (void)welcome;
  heard = Clock::now();
  switch (m.type) {
    case LinkType::ack: {
      auto ack = parse_ack(m.body);
      if (!ack) return ack.error();
      const std::uint64_t position = ack->records ? ack->durable_position : ack->applied_position;
      const std::uint64_t messages = ack->records ? ack->durable_messages : ack->applied_messages;
      if (position > acked) {
        acked = position;
        pump.acknowledge(position, messages);
        counters->acked(position, messages);
      }
      return {};
    }
    case LinkType::heartbeat: return {};
    default:
      return Error(Errc::corrupt, "unexpected message type " +
                                      std::to_string(static_cast<int>(m.type)) +
                                      " from the receiver");
  }
}

Result<void> Forwarder::Impl::stream(LinkSocket& socket, LinkDecoder& decoder,
                                     const Welcome& welcome) {
  counters->state(LinkState::streaming);
  last_failure.clear();
  streamed = true;
  heard = Clock::now();
  auto last_sent = Clock::now();
  const auto heartbeat_every = std::max(options.link_timeout / 3, milliseconds(10));
  std::vector<std::byte> header;
  while (!stop.load(std::memory_order_relaxed)) {
    // Frames: read, hand to the sink, send each full batch.
    bool moved = false;
    if (pump.pending()) {
      if (auto ok = pump.flush(sink); !ok && ok.error().code() != Errc::would_block) {
        return ok.error();
      }
    }
    if (!sink.has_batch() || sink.room() > 0) {
      auto read = pump.read(sink);
      if (!read) return read.error();
      moved = *read > 0;
      if (auto ok = pump.flush(sink); !ok && ok.error().code() != Errc::would_block) {
        return ok.error();
      }
    }
    if (sink.has_batch()) {
      header.clear();
      if (sink.gap()) {
        encode_gap(*sink.gap(), header);
        report_gap(*sink.gap());
      }
      encode_data_header(sink.batch_start(), sink.batch_bytes(), header);
      if (auto ok = socket.write_all(sink.gather(ConstBytes(header.data(), header.size())),
                                     options.link_timeout);
          !ok) {
        return ok.error();
      }
      counters->sent(sink.end(), sink.batch_bytes());
      sink.batch_sent();
      last_sent = Clock::now();
      moved = true;
    }
    // Acknowledgements (and heartbeats) from the receiver. While some are due, look at the
    // socket and the ring in turn (100 us on the socket), so neither waits for the other.
    const bool outstanding = sink.end() > acked;
    if (!moved && outstanding && !options.busy_spin &&
        !pump.wait(Wait::busy_spin(std::chrono::nanoseconds(0)))) {
      socket.wait_readable(std::chrono::microseconds(100));
    }
    auto got = socket.read_into(decoder, milliseconds(0));
    if (!got) return got.error();
    for (;;) {
      auto next = decoder.next();
      if (!next) return next.error();
      if (!*next) break;
      if ((*next)->type == LinkType::reject) {
        auto why = parse_reject((*next)->body);
        return Error(Errc::invalid_argument,
                     "the receiver closed the link: " + (why ? *why : why.error().message()));
      }
      if (auto ok = on_message(**next, welcome); !ok) return ok;
    }
    const auto now = Clock::now();
    if (now - heard > options.link_timeout) {
      return Error(Errc::timed_out, "no word from the receiver for " +
                                        std::to_string(options.link_timeout.count()) + " ms");
    }
    if (now - last_sent >= heartbeat_every) {
      header.clear();
      encode_heartbeat(header);
      if (auto ok = socket.write_all(header, options.link_timeout); !ok) return ok.error();
      last_sent = now;
    }
    if (!moved && !outstanding && !pump.pending() && !options.busy_spin) {
      // Idle: sleep on the topic until a producer publishes (or a heartbeat is due).
      auto woke = pump.wait(Wait::futex(std::min<milliseconds>(heartbeat_every, milliseconds(50))));
      if (woke) {
        auto more = pump.read(sink, 1);
        if (!more) return more.error();
        if (*more == 0 && !pump.pending()) ::usleep(1000);  // data the reader cannot take yet
      }
    }
  }
  return {};
}

Result<void> Forwarder::Impl::session() {
  counters->state(LinkState::connecting);
  auto socket = LinkSocket::connect(options.destination, options.link_timeout);
  if (!socket) return socket.error();
  if (options.tls) {
    auto hp = split_host_port(options.destination);
    if (!hp) return hp.error();
    if (auto ok = socket->start_tls(*options.tls, false, hp->host, options.link_timeout); !ok) {
      return ok;
    }
  }
  LinkDecoder decoder;
  Welcome welcome;
  if (auto ok = handshake(*socket, decoder, welcome); !ok) return ok;
  if (auto ok = resume(welcome); !ok) return ok;
  auto ok = stream(*socket, decoder, welcome);
  pump.detach();
  return ok;
}

void Forwarder::Impl::run() {
  auto c = ForwardCounters::attach(topic, options.destination);
  if (!c) {
    event("cannot start: " + c.error().message());
    return;
  }
  counters.emplace(*c);
  run_sessions(stop, SessionHooks{[this] {
                                    streamed = false;
                                    auto ok = session();
                                    pump.detach();
                                    return ok;
                                  },
                                  [this] { return streamed; },
                                  [this](const Error& e) { failure(e.message(), true); },
                                  [this] { counters->reconnected(); }});
  counters->detach();
  event("stopped; acknowledged up to offset " + std::to_string(acked));
}

Forwarder::Forwarder(const Topic& topic, ForwarderOptions options)
    : impl_(std::make_unique<Impl>(topic, std::move(options))) {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "rb-forward");  // for top -H and perf
    impl_->run();
  });
}

Forwarder::~Forwarder() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void Forwarder::request_stop() noexcept { impl_->stop.store(true, std::memory_order_relaxed); }

const std::string& Forwarder::destination() const noexcept { return impl_->options.destination; }

}  // namespace ringbus::bridge
