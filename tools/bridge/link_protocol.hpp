// The link protocol between two ringbus-bridges (docs/formats/forward.md): length-prefixed
// messages, their encoding, and a decoder that takes bytes as they arrive from a socket and
// refuses anything malformed (the receiver is on the network: every field is checked).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringbus/bytes.hpp"
#include "ringbus/result.hpp"

namespace ringbus::bridge {

inline constexpr std::uint32_t kLinkMagic = 0x4B4E4C52;  // "RLNK" little-endian
inline constexpr std::uint16_t kLinkVersion = 2;         // 2: GAP
inline constexpr std::size_t kNonceSize = 32;
inline constexpr std::size_t kMaxProofSize = 64;
// A message's body: at most a DATA batch of kMaxBatchBytes plus its header.
inline constexpr std::uint32_t kMaxBatchBytes = 4U << 20;
inline constexpr std::uint32_t kMaxBodyBytes = kMaxBatchBytes + 64;

enum class LinkType : std::uint8_t {
  hello = 1,      // sender -> receiver: who, which topic, its parameters, a nonce
  challenge = 2,  // receiver -> sender: a nonce, its proof of the key
  auth = 3,       // sender -> receiver: its proof of the key
  welcome = 4,    // receiver -> sender: where its mirror ends (resume there)
  reject = 5,     // either way: why the link is refused; then the connection closes
  data = 6,       // sender -> receiver: whole frames at an offset
  ack = 7,        // receiver -> sender: applied (and durable) positions
  heartbeat = 8,  // either way, when idle
  gap = 9,        // sender -> receiver: offsets the source lost; the next DATA continues after
};

using Nonce = std::array<std::uint8_t, kNonceSize>;

struct Hello {
  std::uint16_t version = kLinkVersion;
  Nonce nonce{};
  std::string topic;
  std::string source;  // the sender's host name, for the mirror's description
  std::uint64_t capacity = 0;
  std::uint64_t max_message = 0;
  std::uint32_t frame_alignment = 0;
  std::uint32_t policy = 0;
  std::uint64_t stuck_claim_timeout_ns = 0;
};

struct Challenge {
  std::uint16_t version = kLinkVersion;
  Nonce nonce{};
  std::vector<std::uint8_t> proof;  // empty when the receiver has no key
};

struct Welcome {
  bool has_mirror = false;  // false: the mirror is created at the first data batch
  bool records = false;     // its bridge records the mirror: acks carry a durable position
  std::uint64_t resume_position = 0;
  std::uint64_t resume_messages = 0;
};

struct Ack {
  std::uint64_t applied_position = 0;
  std::uint64_t applied_messages = 0;
  std::uint64_t durable_position = 0;  // 0 unless the receiver records the mirror
  std::uint64_t durable_messages = 0;
  bool records = false;
};

struct DataHeader {
  std::uint64_t offset = 0;
  ConstBytes frames;  // a view into the message body
};

// Offsets [from, to) are lost on the sending host (overwritten before they were forwarded, and
// in no disk log): the mirror skips them, its readers count them as lost.
struct Gap {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};

// One whole message as received: its type and body (a view into the decoder's buffer, valid
// until the next call to feed() or next()).
struct LinkMessage {
  LinkType type{};
  ConstBytes body;
};

// Encoding: each appends one whole message to `out`.
void encode_hello(const Hello& m, std::vector<std::byte>& out);
void encode_challenge(const Challenge& m, std::vector<std::byte>& out);
void encode_auth(const std::vector<std::uint8_t>& proof, std::vector<std::byte>& out);
void encode_welcome(const Welcome& m, std::vector<std::byte>& out);
void encode_reject(const std::string& why, std::vector<std::byte>& out);
void encode_ack(const Ack& m, std::vector<std::byte>& out);
void encode_heartbeat(std::vector<std::byte>& out);
void encode_gap(const Gap& m, std::vector<std::byte>& out);
// A DATA message's header for `size` bytes of frames at `offset`; the frames follow it.
void encode_data_header(std::uint64_t offset, std::uint64_t size, std::vector<std::byte>& out);

// Decoding: the body of a message of the given type. Errors: corrupt (with what is wrong).
Result<Hello> parse_hello(ConstBytes body);
Result<Challenge> parse_challenge(ConstBytes body);
Result<std::vector<std::uint8_t>> parse_auth(ConstBytes body);
Result<Welcome> parse_welcome(ConstBytes body);
Result<std::string> parse_reject(ConstBytes body);
Result<Ack> parse_ack(ConstBytes body);
Result<DataHeader> parse_data(ConstBytes body);
Result<Gap> parse_gap(ConstBytes body);  // also refuses to <= from

// Splits a byte stream into messages. A socket reads straight into the decoder's buffer:
// space() gives room for at least `at_least` more bytes, filled() says how many arrived (feed()
// does both for bytes already in hand). next() returns the next whole message, nullopt when
// more bytes are needed, or corrupt (unknown type, a length past kMaxBodyBytes): the connection
// must then be dropped. A message's body stays valid until the next space() or feed().
class LinkDecoder {
 public:
  MutableBytes space(std::size_t at_least);
  void filled(std::size_t bytes) noexcept { end_ += bytes; }
  void feed(ConstBytes bytes);
  Result<std::optional<LinkMessage>> next();
  std::size_t buffered() const noexcept { return end_ - begin_; }

 private:
  std::unique_ptr<std::byte[]> buffer_;  // not a vector: growing it must not zero the bytes
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // the next message starts here
  std::size_t end_ = 0;    // bytes received end here
};

}  // namespace ringbus::bridge
