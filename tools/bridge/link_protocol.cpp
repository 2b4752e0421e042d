// Encoding and decoding of link messages: little-endian integers, u16-length-prefixed strings,
// every read bounded by the body it comes from.
#include "link_protocol.hpp"

#include <algorithm>
#include <cstring>

namespace ringbus::bridge {
namespace {

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out, LinkType type) : out_(out), start_(out.size()) {
    u32(0);  // the body length, filled in by finish()
    u8(static_cast<std::uint8_t>(type));
  }
  void u8(std::uint8_t v) { raw(&v, 1); }
  void u16(std::uint16_t v) { raw(&v, 2); }
  void u32(std::uint32_t v) { raw(&v, 4); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void text(const std::string& s) {
    u16(static_cast<std::uint16_t>(std::min<std::size_t>(s.size(), 0xFFFF)));
    raw(s.data(), std::min<std::size_t>(s.size(), 0xFFFF));
  }
  void bytes(const std::uint8_t* p, std::size_t n) { raw(p, n); }
  // Sets the length: the body after the 4-byte length and the type byte, plus `extra` bytes the
  // caller appends after this message's header (a DATA batch's frames).
  void finish(std::uint64_t extra = 0) {
    const auto length = static_cast<std::uint32_t>(out_.size() - start_ - 5 + extra);
    std::memcpy(out_.data() + start_, &length, 4);
  }

 private:
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<std::byte>& out_;
  std::size_t start_;
};

class Reader {
 public:
  explicit Reader(ConstBytes body) : body_(body) {}
  bool u8(std::uint8_t& v) { return raw(&v, 1); }
  bool u16(std::uint16_t& v) { return raw(&v, 2); }
  bool u32(std::uint32_t& v) { return raw(&v, 4); }
  bool u64(std::uint64_t& v) { return raw(&v, 8); }
  bool text(std::string& s, std::size_t most) {
    std::uint16_t n = 0;
    if (!u16(n) || n > most || n > left()) return false;
    s.assign(reinterpret_cast<const char*>(body_.data() + at_), n);
    at_ += n;
    return true;
  }
  bool bytes(std::uint8_t* p, std::size_t n) { return raw(p, n); }
  std::size_t left() const { return body_.size() - at_; }
  ConstBytes rest() const { return ConstBytes(body_.data() + at_, left()); }

 private:
  bool raw(void* p, std::size_t n) {
    if (n > left()) return false;
    if (n == 0) return true;  // an empty proof's data() may be null: memcpy(nullptr, ...) is UB
    std::memcpy(p, body_.data() + at_, n);
    at_ += n;
    return true;
  }
  ConstBytes body_;
  std::size_t at_ = 0;
};

Error malformed(const char* what) {
  return Error(Errc::corrupt, std::string("malformed ") + what + " message");
}

}  // namespace

void encode_hello(const Hello& m, std::vector<std::byte>& out) {
  Writer w(out, LinkType::hello);
  w.u32(kLinkMagic);
  w.u16(m.version);
  w.u16(0);
  w.bytes(m.nonce.data(), m.nonce.size());
  w.u64(m.capacity);
  w.u64(m.max_message);
  w.u32(m.frame_alignment);
  w.u32(m.policy);
  w.u64(m.stuck_claim_timeout_ns);
  w.text(m.topic);
  w.text(m.source);
  w.finish();
}

Result<Hello> parse_hello(ConstBytes body) {
  Reader r(body);
  Hello m;
  std::uint32_t magic = 0;
  std::uint16_t flags = 0;
  if (!r.u32(magic) || magic != kLinkMagic) {
    return Error(Errc::corrupt, "not a ringbus-bridge link (bad magic)");
  }
  if (!r.u16(m.version)) return malformed("hello");
  if (m.version != kLinkVersion) {
    return Error(Errc::incompatible, "link protocol version " + std::to_string(m.version) +
                                         ", this bridge speaks version " +
                                         std::to_string(kLinkVersion));
  }
  if (!r.u16(flags) || !r.bytes(m.nonce.data(), m.nonce.size()) || !r.u64(m.capacity) ||
      !r.u64(m.max_message) || !r.u32(m.frame_alignment) || !r.u32(m.policy) ||
      !r.u64(m.stuck_claim_timeout_ns) || !r.text(m.topic, 255) || !r.text(m.source, 255) ||
      r.left() != 0) {
    return malformed("hello");
  }
  return m;
}

void encode_challenge(const Challenge& m, std::vector<std::byte>& out) {
  Writer w(out, LinkType::challenge);
  w.u16(m.version);
  w.bytes(m.nonce.data(), m.nonce.size());
  w.u16(static_cast<std::uint16_t>(m.proof.size()));
  w.bytes(m.proof.data(), m.proof.size());
  w.finish();
}

Result<Challenge> parse_challenge(ConstBytes body) {
  Reader r(body);
  Challenge m;
  std::uint16_t n = 0;
  if (!r.u16(m.version)) return malformed("challenge");
  if (m.version != kLinkVersion) {
    return Error(Errc::incompatible, "the receiver speaks link protocol version " +
                                         std::to_string(m.version) + ", this bridge " +
                                         std::to_string(kLinkVersion));
  }
  if (!r.bytes(m.nonce.data(), m.nonce.size()) || !r.u16(n) || n > kMaxProofSize || n != r.left()) {
    return malformed("challenge");
  }
  m.proof.resize(n);
  r.bytes(m.proof.data(), n);
  return m;
}

void encode_auth(const std::vector<std::uint8_t>& proof, std::vector<std::byte>& out) {
  Writer w(out, LinkType::auth);
  w.u16(static_cast<std::uint16_t>(proof.size()));
  w.bytes(proof.data(), proof.size());
  w.finish();
}

Result<std::vector<std::uint8_t>> parse_auth(ConstBytes body) {
  Reader r(body);
  std::uint16_t n = 0;
  if (!r.u16(n) || n > kMaxProofSize || n != r.left()) return malformed("auth");
  std::vector<std::uint8_t> proof(n);
  r.bytes(proof.data(), n);
  return proof;
}

void encode_welcome(const Welcome& m, std::vector<std::byte>& out) {
  Writer w(out, LinkType::welcome);
  w.u8(m.has_mirror ? 1 : 0);
  w.u8(m.records ? 1 : 0);
  w.u64(m.resume_position);
  w.u64(m.resume_messages);
  w.finish();
}

Result<Welcome> parse_welcome(ConstBytes body) {
  Reader r(body);
  Welcome m;
  std::uint8_t has = 0;
  std::uint8_t records = 0;
  if (!r.u8(has) || !r.u8(records) || has > 1 || records > 1 || !r.u64(m.resume_position) ||
      !r.u64(m.resume_messages) || r.left() != 0) {
    return malformed("welcome");
  }
  m.has_mirror = has == 1;
  m.records = records == 1;
  return m;
}

void encode_reject(const std::string& why, std::vector<std::byte>& out) {
  Writer w(out, LinkType::reject);
  w.text(why.substr(0, 1024));
  w.finish();
}

Result<std::string> parse_reject(ConstBytes body) {
  Reader r(body);
  std::string why;
  if (!r.text(why, 1024) || r.left() != 0) return malformed("reject");
  for (char& c : why) {
    if (c < 0x20 || c > 0x7E) c = '?';  // it goes into our event log
  }
  return why;
}

void encode_ack(const Ack& m, std::vector<std::byte>& out) {
  Writer w(out, LinkType::ack);
  w.u64(m.applied_position);
  w.u64(m.applied_messages);
  w.u64(m.durable_position);
  w.u64(m.durable_messages);
  w.u8(m.records ? 1 : 0);
  w.finish();
}

Result<Ack> parse_ack(ConstBytes body) {
  Reader r(body);
  Ack m;
  std::uint8_t records = 0;
  if (!r.u64(m.applied_position) || !r.u64(m.applied_messages) || !r.u64(m.durable_position) ||
      !r.u64(m.durable_messages) || !r.u8(records) || records > 1 || r.left() != 0) {
    return malformed("ack");
  }
  m.records = records == 1;
  return m;
}

void encode_heartbeat(std::vector<std::byte>& out) {
  Writer w(out, LinkType::heartbeat);
  w.finish();
}

void encode_data_header(std::uint64_t offset, std::uint64_t size, std::vector<std::byte>& out) {
  Writer w(out, LinkType::data);
  w.u64(offset);
  w.finish(size);
}

Result<DataHeader> parse_data(ConstBytes body) {
  Reader r(body);
  DataHeader m;
  if (!r.u64(m.offset) || r.left() == 0) return malformed("data");
  m.frames = r.rest();
  return m;
}

void encode_gap(const Gap& m, std::vector<std::byte>& out) {
  Writer w(out, LinkType::gap);
  w.u64(m.from);
  w.u64(m.to);
  w.finish();
}

Result<Gap> parse_gap(ConstBytes body) {
  Reader r(body);
  Gap m;
  if (!r.u64(m.from) || !r.u64(m.to) || r.left() != 0 || m.to <= m.from) return malformed("gap");
  return m;
}

MutableBytes LinkDecoder::space(std::size_t at_least) {
  if (begin_ == end_) {
    begin_ = end_ = 0;
  } else if (capacity_ - end_ < at_least && begin_ > 0) {
    // Move the start of an unfinished message to the front: at most one message's worth.
    std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (capacity_ - end_ < at_least) {
    // Room for the largest message and a read's worth after it, so a full batch never moves
    // more than once.
    const std::size_t grown = std::max(
        end_ + at_least, std::min<std::size_t>(2 * capacity_, kMaxBodyBytes + 5 + at_least));
    auto bigger = std::make_unique_for_overwrite<std::byte[]>(grown);
    if (end_ > 0) std::memcpy(bigger.get(), buffer_.get(), end_);
    buffer_ = std::move(bigger);
    capacity_ = grown;
  }
  return MutableBytes(buffer_.get() + end_, capacity_ - end_);
}

void LinkDecoder::feed(ConstBytes bytes) {
  if (bytes.empty()) return;
  MutableBytes room = space(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  filled(bytes.size());
}

Result<std::optional<LinkMessage>> LinkDecoder::next() {
  const std::size_t left = end_ - begin_;
  if (left < 5) return std::optional<LinkMessage>{};
  const std::byte* p = buffer_.get() + begin_;
  std::uint32_t length = 0;
  std::memcpy(&length, p, 4);
  const auto type = static_cast<std::uint8_t>(p[4]);
  if (type < static_cast<std::uint8_t>(LinkType::hello) ||
      type > static_cast<std::uint8_t>(LinkType::gap)) {
    return Error(Errc::corrupt, "unknown link message type " + std::to_string(type));
  }
  if (length > kMaxBodyBytes) {
    return Error(Errc::corrupt, "a link message of " + std::to_string(length) + " bytes (at most " +
                                    std::to_string(kMaxBodyBytes) + ")");
  }
  if (left < 5 + std::size_t{length}) return std::optional<LinkMessage>{};
  LinkMessage m{static_cast<LinkType>(type), ConstBytes(p + 5, length)};
  begin_ += 5 + std::size_t{length};
  return std::optional<LinkMessage>(m);
}

}  // namespace ringbus::bridge
