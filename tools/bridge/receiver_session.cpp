// ReceiverSession: one receiving link's handshake, then data and acknowledgements.
#include "receiver_session.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fnmatch.h>

#include "event_log.hpp"
#include "layout/frame_layout.hpp"
#include "link_auth.hpp"

namespace ringbus::bridge {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kAckEvery{20};  // at most this late when frames were applied

bool matches_any(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& glob) {
    return ::fnmatch(glob.c_str(), name.c_str(), 0) == 0;
  });
}

// Reads one whole message within `timeout`. Errors: timed_out, io_error, corrupt.
Result<LinkMessage> read_one(LinkSocket& socket, LinkDecoder& decoder, milliseconds timeout,
                             const std::atomic<bool>& stop) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto next = decoder.next();
    if (!next) return next.error();
    if (*next) return **next;
    const auto now = std::chrono::steady_clock::now();
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
  while (at + sizeof(layout::FrameHeader) <= frames.size()) {
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

ReceiverSession::ReceiverSession(const BridgeConfig& config, const Bus& bus,
                                 const std::atomic<bool>& stop, LinkSocket socket)
    : config_(config),
      bus_(bus),
      stop_(stop),
      socket_(std::move(socket)),
      peer_(socket_.peer()),
      heartbeat_every_(std::max(config.link_timeout / 3, milliseconds(10))) {}

void ReceiverSession::event(const std::string& line) const {
  log_event(topic_name_, "link from " + peer_ + ": " + line);
}

Result<void> ReceiverSession::send(milliseconds timeout) {
  return socket_.write_all(out_, timeout);
}

void ReceiverSession::refuse(const std::string& why) {
  event("refused: " + why);
  out_.clear();
  encode_reject(why, out_);
  (void)send(milliseconds(1000));
}

void ReceiverSession::run(const LinkTls* tls) {
  if (tls != nullptr) {
    // In this link's thread, so a slow or silent client holds up no other link.
    if (auto ok = socket_.start_tls(*tls, true, "", config_.link_timeout); !ok) {
      event("refused: " + ok.error().message());
      return;
    }
  }
  if (!read_hello() || !authenticate() || !open_existing_mirror() || !send_welcome()) return;
  stream();
}

bool ReceiverSession::read_hello() {
  auto m = read_one(socket_, decoder_, config_.link_timeout, stop_);
  if (!m) {
    event("dropped before its hello: " + m.error().message());
    return false;
  }
  if (m->type != LinkType::hello) {
    event("dropped: the first message is not a hello (type " +
          std::to_string(static_cast<int>(m->type)) + ")");
    return false;
  }
  auto hello = parse_hello(m->body);
  if (!hello) {
    refuse(hello.error().message());
    return false;
  }
  if (auto ok = validate_name(hello->topic); !ok) {
    refuse(ok.error().message());
    return false;
  }
  hello_ = std::move(*hello);
  topic_name_ = hello_.topic;
  if (!matches_any(config_.listen.accept, topic_name_)) {
    refuse("this bridge does not accept topic '" + topic_name_ + "' (see [listen] accept)");
    return false;
  }
  return true;
}

// Our challenge proves we hold the key; the sender's answer proves it does.
bool ReceiverSession::authenticate() {
  auto nonce = make_nonce();
  if (!nonce) {
    refuse(nonce.error().message());
    return false;
  }
  nonce_ = *nonce;
  Challenge challenge;
  challenge.nonce = nonce_;
  challenge.proof = link_proof(config_.key, LinkRole::receiver, nonce_, hello_.nonce, topic_name_);
  out_.clear();
  encode_challenge(challenge, out_);
  if (auto ok = send(config_.link_timeout); !ok) {
    event("dropped: " + ok.error().message());
    return false;
  }
  auto m = read_one(socket_, decoder_, config_.link_timeout, stop_);
  if (m && m->type == LinkType::reject) {
    auto why = parse_reject(m->body);
    event("dropped during authentication: " + (why ? *why : why.error().message()));
    return false;
  }
  if (!m || m->type != LinkType::auth) {
    event("dropped during authentication: " + (m ? "unexpected message" : m.error().message()));
    return false;
  }
  auto proof = parse_auth(m->body);
  if (!proof) {
    refuse(proof.error().message());
    return false;
  }
  if (!config_.key.empty() &&
      !proofs_equal(*proof,
                    link_proof(config_.key, LinkRole::sender, hello_.nonce, nonce_, topic_name_))) {
    refuse(proof->empty() ? "this bridge requires a key (start the sender with --key-file)"
                          : "wrong key");
    return false;
  }
  return true;
}

// The mirror: checked if it exists, created at the first batch otherwise.
bool ReceiverSession::open_existing_mirror() {
  auto existing = bus_.open_topic(topic_name_);
  if (!existing) {
    if (existing.error().code() == Errc::not_found) return true;
    refuse("cannot open the mirror: " + existing.error().message());
    return false;
  }
  const TopicConfig& c = existing->config();
  if (c.mirror_of.empty()) {
    refuse("a local topic '" + topic_name_ + "' exists and is not a mirror");
    return false;
  }
  if (c.capacity != hello_.capacity || c.max_message != hello_.max_message ||
      c.frame_alignment != hello_.frame_alignment ||
      static_cast<std::uint32_t>(c.policy) != hello_.policy) {
    refuse("the mirror '" + topic_name_ + "' here has capacity " + std::to_string(c.capacity) +
           ", max message " + std::to_string(c.max_message) + ", frame alignment " +
           std::to_string(c.frame_alignment) + " and policy " + std::string(to_string(c.policy)) +
           ", the source " + std::to_string(hello_.capacity) + ", " +
           std::to_string(hello_.max_message) + ", " + std::to_string(hello_.frame_alignment) +
           " and " + std::to_string(hello_.policy) + "; remove the mirror to re-create it");
    return false;
  }
  auto w = MirrorWriter::open(*existing);
  if (!w) {
    refuse(w.error().message());
    return false;
  }
  topic_ = *existing;
  writer_.emplace(std::move(*w));
  return true;
}

bool ReceiverSession::send_welcome() {
  // This bridge records the mirror (by its configuration, not by whether its recorder has
  // attached yet): then acknowledgements carry only what the recorder made durable, so the
  // sender never commits what a crash of this host could lose.
  records_ = !config_.log_dir.empty() && matches_any(config_.record, topic_name_);
  Welcome welcome;
  welcome.has_mirror = writer_.has_value();
  welcome.records = records_;
  if (writer_) {
    welcome.resume_position = writer_->applied();
    welcome.resume_messages = writer_->applied_messages();
  }
  out_.clear();
  encode_welcome(welcome, out_);
  if (auto ok = send(config_.link_timeout); !ok) {
    event("dropped: " + ok.error().message());
    return false;
  }
  event(writer_ ? "mirroring from offset " + std::to_string(welcome.resume_position)
                : std::string("mirroring into a new mirror"));
  return true;
}

void ReceiverSession::stream() {
  heard_ = Clock::now();
  last_ack_ = Clock::now();
  while (!stop_.load(std::memory_order_relaxed)) {
    auto got = socket_.read_into(decoder_, config_.link_busy_spin ? milliseconds(0)
                                           : ack_due_             ? milliseconds(1)
                                                                  : milliseconds(20));
    if (!got) {
      event("link closed: " + got.error().message());
      return;
    }
    for (;;) {
      auto next = decoder_.next();
      if (!next) {
        refuse(next.error().message());
        return;
      }
      if (!*next) break;
      heard_ = Clock::now();
      if (!handle(**next)) return;
    }
    if (!keep_alive()) return;
  }
}

bool ReceiverSession::handle(const LinkMessage& message) {
  switch (message.type) {
    case LinkType::heartbeat: return true;
    case LinkType::gap: return apply_gap(message.body);
    case LinkType::data: return apply_data(message.body);
    default:
      refuse("unexpected message type " + std::to_string(static_cast<int>(message.type)));
      return false;
  }
}

bool ReceiverSession::apply_gap(ConstBytes body) {
  auto gap = parse_gap(body);
  if (!gap) {
    refuse(gap.error().message());
    return false;
  }
  if (!writer_) {
    refuse("a gap before the mirror's first frames");
    return false;
  }
  if (gap->from != writer_->applied()) {
    refuse("a gap at offset " + std::to_string(gap->from) +
           " does not continue the mirror, which ends at " + std::to_string(writer_->applied()));
    return false;
  }
  event("offsets [" + std::to_string(gap->from) + ", " + std::to_string(gap->to) +
        ") were lost on the source host: the mirror skips them as a gap, which its readers "
        "count as lost");
  while (writer_->applied() < gap->to) {
    if (!applied_retrying([&] { return writer_->try_append_gap(writer_->applied(), gap->to); })) {
      return false;
    }
  }
  ack_due_ = true;
  return true;
}

bool ReceiverSession::apply_data(ConstBytes body) {
  auto data = parse_data(body);
  if (!data) {
    refuse(data.error().message());
    return false;
  }
  if (!writer_ && !create_mirror(*data)) return false;
  // A batch may be larger than the mirror's ring (the sender batches up to kMaxBatchBytes
  // whatever the ring's size): apply it in pieces of whole frames of at most a quarter ring,
  // each going in as soon as the mirror's durable readers leave room for it.
  const TopicConfig& tc = topic_->config();
  const std::uint64_t most = std::max<std::uint64_t>(tc.capacity / 4, tc.frame_alignment);
  const std::uint64_t total = data->frames.size();
  for (std::uint64_t from = 0; from < total;) {
    const std::uint64_t to = total - from <= most ? total : piece_end(*data, from, most);
    const ConstBytes piece(data->frames.data() + from, to - from);
    if (!applied_retrying([&] { return writer_->try_append(data->offset + from, piece); })) {
      return false;
    }
    from = to;
  }
  writer_->touch();
  ack_due_ = true;
  return true;
}

std::uint64_t ReceiverSession::piece_end(const DataHeader& data, std::uint64_t from,
                                         std::uint64_t most) const {
  const TopicConfig& tc = topic_->config();
  const std::uint64_t total = data.frames.size();
  std::uint64_t to = from;
  while (to < total) {
    std::uint64_t word = 0;
    if (to + sizeof word > total) return total;  // not whole frames: try_append says so
    std::memcpy(&word, data.frames.data() + to, sizeof word);
    const std::uint64_t stride =
        layout::committed_stride(word, (data.offset + to) & (tc.capacity - 1), tc.capacity,
                                 tc.max_message, tc.frame_alignment);
    if (stride == 0) return total;  // a bad frame: try_append refuses the piece and says why
    if (to > from && to + stride - from > most) break;
    to = std::min(to + stride, total);
  }
  return to;
}

bool ReceiverSession::create_mirror(const DataHeader& data) {
  TopicOptions o;
  o.capacity = hello_.capacity;
  o.max_message = hello_.max_message;
  o.frame_alignment = hello_.frame_alignment;
  o.policy = hello_.policy == 1 ? Policy::overwrite : Policy::block;
  o.stuck_claim_timeout = std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds(
      std::min<std::uint64_t>(hello_.stuck_claim_timeout_ns, std::uint64_t{1} << 62)));
  if (o.stuck_claim_timeout.count() == 0) o.stuck_claim_timeout = milliseconds(2000);
  o.start_position = data.offset;
  o.start_sequence = first_sequence(data.frames, 0);
  o.mirror_of = hello_.source.substr(0, 60) + " (" + peer_.substr(0, peer_.rfind(':')) + ")";
  auto created = bus_.create_topic(topic_name_, o);
  if (!created) {
    refuse("cannot create the mirror: " + created.error().message());
    return false;
  }
  auto w = MirrorWriter::open(*created);
  if (!w) {
    refuse(w.error().message());
    return false;
  }
  topic_ = *created;
  writer_.emplace(std::move(*w));
  event("created the mirror at offset " + std::to_string(data.offset));
  return true;
}

// Runs `attempt` (a MirrorWriter append) until it is done. While a durable reader of the mirror
// is a ring behind (would_block) it waits for it, telling the sender we are alive. False: the
// link ends (refused with the reason, or stopping).
bool ReceiverSession::applied_retrying(FunctionRef<Result<void>()> attempt) {
  for (int naps = 0;; ++naps) {
    auto ok = attempt();
    if (ok) return true;
    if (ok.error().code() != Errc::would_block) {
      refuse(ok.error().message());
      return false;
    }
    if (stop_.load(std::memory_order_relaxed)) return false;
    if (Clock::now() - last_ack_ >= heartbeat_every_) {
      if (auto sent = send_ack(); !sent) return false;
    }
    ::usleep(static_cast<useconds_t>(std::min(100 << std::min(naps, 5), 2000)));
    if (naps % 500 == 499) topic_->reap_dead_readers();
  }
}

// After each read: drops a silent sender, acknowledges applied frames (soon when the sender
// paused, at most kAckEvery late otherwise) and heartbeats. False: the link ends.
bool ReceiverSession::keep_alive() {
  const auto now = Clock::now();
  if (now - heard_ > config_.link_timeout) {
    event("dropped: no word from the sender for " + std::to_string(config_.link_timeout.count()) +
          " ms");
    return false;
  }
  const bool quiet = decoder_.buffered() == 0;
  if (writer_ && ((ack_due_ && (quiet || now - last_ack_ >= kAckEvery)) ||
                  now - last_ack_ >= std::min(heartbeat_every_, milliseconds(100)))) {
    if (auto ok = send_ack(); !ok) {
      event("link closed: " + ok.error().message());
      return false;
    }
  } else if (!writer_ && now - last_ack_ >= heartbeat_every_) {
    out_.clear();
    encode_heartbeat(out_);
    last_ack_ = now;
    if (auto ok = send(config_.link_timeout); !ok) return false;
  }
  return true;
}

Result<void> ReceiverSession::send_ack() {
  Ack ack;
  ack.applied_position = writer_->applied();
  ack.applied_messages = writer_->applied_messages();
  ack.records = records_;
  if (ack.records) {
    // Until the recorder attached (and while another process records it), nothing is
    // durable as far as this link can tell.
    auto snap = topic_->snapshot();
    if (snap.recorder && snap.recorder->alive) {
      ack.durable_position = std::min(snap.recorder->durable_position, ack.applied_position);
      ack.durable_messages = ack.durable_position == ack.applied_position
                                 ? ack.applied_messages
                                 : snap.recorder->durable_messages;
    }
  }
  last_ack_ = Clock::now();
  ack_due_ = false;
  out_.clear();
  if (ack.applied_position == last_sent_.applied_position &&
      ack.durable_position == last_sent_.durable_position && ack.records == last_sent_.records) {
    encode_heartbeat(out_);  // nothing new, but the sender must hear from us
  } else {
    encode_ack(ack, out_);
    last_sent_ = ack;
  }
  return send(config_.link_timeout);
}

}  // namespace ringbus::bridge
