// The bridges' link protocol: every message survives a round trip, truncated bodies are refused,
// and the decoder fed random bytes or mutated messages in random chunks never crashes, loops or
// hands out a message larger than its limit.
#include "link_protocol.hpp"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/test_support.hpp"

namespace ringbus::bridge {
namespace {

Nonce nonce_of(std::uint8_t seed) {
  Nonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(seed + i * 7);
  return n;
}

// Feeds `bytes` whole and returns the one message in it (its type and body copied).
struct Decoded {
  LinkType type{};
  std::vector<std::byte> body;
};
Decoded decode_one(const std::vector<std::byte>& bytes) {
  LinkDecoder d;
  d.feed(ConstBytes(bytes.data(), bytes.size()));
  auto m = d.next();
  EXPECT_TRUE(m) << m.error().message();
  EXPECT_TRUE(m && *m) << "no whole message";
  Decoded out;
  if (m && *m) {
    out.type = (*m)->type;
    out.body.assign((*m)->body.begin(), (*m)->body.end());
  }
  auto rest = d.next();
  EXPECT_TRUE(rest && !*rest) << "bytes left over after the message";
  return out;
}
ConstBytes view(const Decoded& d) { return ConstBytes(d.body.data(), d.body.size()); }

TEST(LinkProtocol, HelloRoundTrip) {
  Hello h;
  h.nonce = nonce_of(3);
  h.topic = "orders.eu-1";
  h.source = "host-a";
  h.capacity = 1 << 20;
  h.max_message = 1 << 18;
  h.frame_alignment = 64;
  h.policy = 1;
  h.stuck_claim_timeout_ns = 2'000'000'000;
  std::vector<std::byte> out;
  encode_hello(h, out);
  auto d = decode_one(out);
  ASSERT_EQ(d.type, LinkType::hello);
  auto p = parse_hello(view(d));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->version, kLinkVersion);
  EXPECT_EQ(p->nonce, h.nonce);
  EXPECT_EQ(p->topic, h.topic);
  EXPECT_EQ(p->source, h.source);
  EXPECT_EQ(p->capacity, h.capacity);
  EXPECT_EQ(p->max_message, h.max_message);
  EXPECT_EQ(p->frame_alignment, h.frame_alignment);
  EXPECT_EQ(p->policy, h.policy);
  EXPECT_EQ(p->stuck_claim_timeout_ns, h.stuck_claim_timeout_ns);
}

TEST(LinkProtocol, HelloWithAnotherVersionIsIncompatible) {
  Hello h;
  h.version = 9;
  h.topic = "t";
  std::vector<std::byte> out;
  encode_hello(h, out);
  auto p = parse_hello(view(decode_one(out)));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.code(), Errc::incompatible);
  EXPECT_NE(p.error().message().find("version 9"), std::string::npos) << p.error().message();
}

TEST(LinkProtocol, ChallengeAuthWelcomeRejectAckHeartbeatRoundTrip) {
  {
    Challenge c;
    c.nonce = nonce_of(9);
    c.proof.assign(32, 0xAB);
    std::vector<std::byte> out;
    encode_challenge(c, out);
    auto d = decode_one(out);
    ASSERT_EQ(d.type, LinkType::challenge);
    auto p = parse_challenge(view(d));
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_EQ(p->nonce, c.nonce);
    EXPECT_EQ(p->proof, c.proof);
    Challenge empty;  // a receiver without a key
    out.clear();
    encode_challenge(empty, out);
    auto e = parse_challenge(view(decode_one(out)));
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->proof.empty());
  }
  {
    std::vector<std::uint8_t> proof(32);
    for (std::size_t i = 0; i < proof.size(); ++i) proof[i] = static_cast<std::uint8_t>(i);
    std::vector<std::byte> out;
    encode_auth(proof, out);
    auto d = decode_one(out);
    ASSERT_EQ(d.type, LinkType::auth);
    auto p = parse_auth(view(d));
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, proof);
  }
  for (bool has : {false, true}) {
    Welcome w;
    w.has_mirror = has;
    w.records = !has;
    w.resume_position = 123456789012ULL;
    w.resume_messages = 987654321ULL;
    std::vector<std::byte> out;
    encode_welcome(w, out);
    auto d = decode_one(out);
    ASSERT_EQ(d.type, LinkType::welcome);
    auto p = parse_welcome(view(d));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->has_mirror, w.has_mirror);
    EXPECT_EQ(p->records, w.records);
    EXPECT_EQ(p->resume_position, w.resume_position);
    EXPECT_EQ(p->resume_messages, w.resume_messages);
  }
  {
    std::vector<std::byte> out;
    encode_reject("wrong key\n\x01", out);
    auto d = decode_one(out);
    ASSERT_EQ(d.type, LinkType::reject);
    auto p = parse_reject(view(d));
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, "wrong key??") << "control characters are replaced";
    out.clear();
    encode_reject(std::string(5000, 'x'), out);
    auto long_reject = parse_reject(view(decode_one(out)));
    ASSERT_TRUE(long_reject);
    EXPECT_EQ(long_reject->size(), 1024U);
  }
  {
    Ack a{1ULL << 40, 77, 1ULL << 39, 70, true};
    std::vector<std::byte> out;
    encode_ack(a, out);
    auto d = decode_one(out);
    ASSERT_EQ(d.type, LinkType::ack);
    auto p = parse_ack(view(d));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->applied_position, a.applied_position);
    EXPECT_EQ(p->applied_messages, a.applied_messages);
    EXPECT_EQ(p->durable_position, a.durable_position);
    EXPECT_EQ(p->durable_messages, a.durable_messages);
    EXPECT_TRUE(p->records);
  }
  {
    std::vector<std::byte> out;
    encode_heartbeat(out);
    auto d = decode_one(out);
    EXPECT_EQ(d.type, LinkType::heartbeat);
    EXPECT_TRUE(d.body.empty());
  }
}

TEST(LinkProtocol, GapRoundTripAndAnEmptyOrBackwardGapIsRefused) {
  std::vector<std::byte> out;
  encode_gap(Gap{640, 1ULL << 40}, out);
  auto d = decode_one(out);
  ASSERT_EQ(d.type, LinkType::gap);
  auto p = parse_gap(view(d));
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->from, 640U);
  EXPECT_EQ(p->to, 1ULL << 40);
  for (Gap bad : {Gap{640, 640}, Gap{640, 64}}) {
    out.clear();
    encode_gap(bad, out);
    auto e = parse_gap(view(decode_one(out)));
    ASSERT_FALSE(e);
    EXPECT_EQ(e.code(), Errc::corrupt);
  }
}

TEST(LinkProtocol, DataRoundTrip) {
  std::vector<std::byte> frames(4096);
  for (std::size_t i = 0; i < frames.size(); ++i) frames[i] = static_cast<std::byte>(i * 31);
  std::vector<std::byte> out;
  encode_data_header(1ULL << 33, frames.size(), out);
  out.insert(out.end(), frames.begin(), frames.end());
  auto d = decode_one(out);
  ASSERT_EQ(d.type, LinkType::data);
  auto p = parse_data(view(d));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->offset, 1ULL << 33);
  ASSERT_EQ(p->frames.size(), frames.size());
  EXPECT_EQ(std::memcmp(p->frames.data(), frames.data(), frames.size()), 0);
}

// Every valid message of each type, for the truncation and mutation tests.
std::vector<std::vector<std::byte>> samples() {
  std::vector<std::vector<std::byte>> all(9);
  Hello h;
  h.nonce = nonce_of(1);
  h.topic = "orders";
  h.source = "a";
  h.capacity = 4096;
  encode_hello(h, all[0]);
  Challenge c;
  c.proof.assign(32, 1);
  encode_challenge(c, all[1]);
  encode_auth(std::vector<std::uint8_t>(32, 2), all[2]);
  encode_welcome(Welcome{true, true, 64, 1}, all[3]);
  encode_reject("no", all[4]);
  encode_ack(Ack{64, 1, 64, 1, true}, all[5]);
  encode_heartbeat(all[6]);
  encode_data_header(128, 64, all[7]);
  all[7].resize(all[7].size() + 64, std::byte{0x5A});
  encode_gap(Gap{128, 4096}, all[8]);
  return all;
}

// Parses a body with the parser for `type`; true when it was accepted.
bool parse_any(LinkType type, ConstBytes body, std::string* error = nullptr) {
  auto note = [&](const Error& e) {
    if (error) *error = e.message();
    EXPECT_TRUE(e.code() == Errc::corrupt || e.code() == Errc::incompatible)
        << to_string(e.code()) << ": " << e.message();
    return false;
  };
  switch (type) {
    case LinkType::hello: {
      auto r = parse_hello(body);
      return r ? true : note(r.error());
    }
    case LinkType::challenge: {
      auto r = parse_challenge(body);
      return r ? true : note(r.error());
    }
    case LinkType::auth: {
      auto r = parse_auth(body);
      return r ? true : note(r.error());
    }
    case LinkType::welcome: {
      auto r = parse_welcome(body);
      return r ? true : note(r.error());
    }
    case LinkType::reject: {
      auto r = parse_reject(body);
      return r ? true : note(r.error());
    }
    case LinkType::ack: {
      auto r = parse_ack(body);
      return r ? true : note(r.error());
    }
    case LinkType::data: {
      auto r = parse_data(body);
      if (r) {
        EXPECT_LE(r->frames.size(), body.size());
      }
      return r ? true : note(r.error());
    }
    case LinkType::gap: {
      auto r = parse_gap(body);
      return r ? true : note(r.error());
    }
    case LinkType::heartbeat: return true;
  }
  return false;
}

TEST(LinkProtocol, TruncatedBodiesAreRefused) {
  for (const auto& m : samples()) {
    const auto type = static_cast<LinkType>(m[4]);
    const ConstBytes body(m.data() + 5, m.size() - 5);
    ASSERT_TRUE(parse_any(type, body)) << "type " << int(m[4]);
    if (type == LinkType::heartbeat) continue;
    for (std::size_t cut = 0; cut < body.size(); ++cut) {
      // A DATA body is an offset and then any number of frame bytes; a shorter body is fewer
      // frames, which MirrorWriter judges. Only the offset itself must be whole.
      if (type == LinkType::data && cut > 8) continue;
      std::string error;
      EXPECT_FALSE(parse_any(type, ConstBytes(body.data(), cut), &error))
          << "type " << int(m[4]) << " cut to " << cut << " of " << body.size() << " bytes";
    }
    // And a byte too many is refused too (except DATA, whose frames run to the end).
    if (type == LinkType::data) continue;
    std::vector<std::byte> longer(body.begin(), body.end());
    longer.push_back(std::byte{0});
    EXPECT_FALSE(parse_any(type, ConstBytes(longer.data(), longer.size())))
        << "type " << int(m[4]) << " with a trailing byte";
  }
}

TEST(LinkProtocol, DecoderRefusesUnknownTypesAndHugeLengths) {
  for (int type : {0, 10, 200}) {
    LinkDecoder d;
    const std::byte m[5] = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                            static_cast<std::byte>(type)};
    d.feed(ConstBytes(m, 5));
    auto r = d.next();
    ASSERT_FALSE(r) << "type " << int(type);
    EXPECT_EQ(r.code(), Errc::corrupt);
  }
  LinkDecoder d;
  std::byte m[5] = {};
  const std::uint32_t huge = kMaxBodyBytes + 1;
  std::memcpy(m, &huge, 4);
  m[4] = std::byte{6};
  d.feed(ConstBytes(m, 5));
  auto r = d.next();
  ASSERT_FALSE(r) << "a length past kMaxBodyBytes must be refused before it is buffered";
  EXPECT_EQ(r.code(), Errc::corrupt);
  // The largest allowed length only waits for more bytes.
  LinkDecoder ok;
  const std::uint32_t most = kMaxBodyBytes;
  std::memcpy(m, &most, 4);
  ok.feed(ConstBytes(m, 5));
  auto w = ok.next();
  ASSERT_TRUE(w);
  EXPECT_FALSE(*w);
}

TEST(LinkProtocol, MessagesSplitAcrossManyFeedsComeOutWhole) {
  std::vector<std::byte> stream;
  auto all = samples();
  for (int round = 0; round < 50; ++round) {
    for (const auto& m : all) stream.insert(stream.end(), m.begin(), m.end());
  }
  std::mt19937_64 random(7);
  LinkDecoder d;
  std::size_t at = 0;
  std::size_t count = 0;
  while (at < stream.size()) {
    const std::size_t n = std::min<std::size_t>(1 + random() % 97, stream.size() - at);
    d.feed(ConstBytes(stream.data() + at, n));
    at += n;
    for (;;) {
      auto m = d.next();
      ASSERT_TRUE(m) << m.error().message();
      if (!*m) break;
      const auto& expected = all[count % all.size()];
      ASSERT_EQ(static_cast<std::uint8_t>((*m)->type), static_cast<std::uint8_t>(expected[4]));
      ASSERT_EQ((*m)->body.size(), expected.size() - 5);
      ASSERT_EQ(std::memcmp((*m)->body.data(), expected.data() + 5, expected.size() - 5), 0);
      ++count;
    }
  }
  EXPECT_EQ(count, all.size() * 50);
  EXPECT_EQ(d.buffered(), 0U);
}

// Random bytes and mutated valid messages (bit flips, truncations, huge lengths, random bytes
// spliced in), fed in random chunks: the decoder either hands out messages (each body within the
// limit, each parsed or refused as corrupt) or says corrupt; it never crashes, never loops, and
// never buffers much more than what was fed.
TEST(LinkProtocol, RandomizedDecoderNeverCrashesOrLoops) {
  const std::uint64_t iterations = testing::env_or("RINGBUS_FUZZ_ITERATIONS",
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
                                                   3000
#else
                                                   20000
#endif
  );
  const std::uint64_t seed = testing::env_or("RINGBUS_FUZZ_SEED", 20240611);
  std::mt19937_64 random(seed);
  const auto all = samples();
  std::uint64_t parsed = 0, corrupt = 0;
  for (std::uint64_t it = 0; it < iterations; ++it) {
    std::vector<std::byte> input;
    const int kind = static_cast<int>(random() % 4);
    if (kind == 0) {
      input.resize(random() % 512);
      for (auto& b : input) b = static_cast<std::byte>(random());
    } else {
      for (int n = 1 + static_cast<int>(random() % 4); n > 0; --n) {
        const auto& m = all[random() % all.size()];
        input.insert(input.end(), m.begin(), m.end());
      }
      const int mutations = 1 + static_cast<int>(random() % 4);
      for (int k = 0; k < mutations && !input.empty(); ++k) {
        switch (random() % 5) {
          case 0:  // bit flip
            input[random() % input.size()] ^= static_cast<std::byte>(1U << (random() % 8));
            break;
          case 1:  // truncation
            input.resize(random() % input.size());
            break;
          case 2: {  // a huge or odd length at a message start
            const std::uint32_t lengths[] = {0xFFFFFFFFU, kMaxBodyBytes, kMaxBodyBytes + 1, 0,
                                             static_cast<std::uint32_t>(random())};
            const std::uint32_t v = lengths[random() % 5];
            if (input.size() >= 4) std::memcpy(input.data(), &v, 4);
            break;
          }
          case 3:  // random bytes spliced in
            for (int j = static_cast<int>(random() % 16); j > 0; --j) {
              input.insert(input.begin() + static_cast<std::ptrdiff_t>(random() % input.size()),
                           static_cast<std::byte>(random()));
            }
            break;
          default:  // a random byte
            input[random() % input.size()] = static_cast<std::byte>(random());
        }
      }
    }
    LinkDecoder d;
    std::size_t at = 0;
    std::size_t steps = 0;
    bool failed = false;
    while (at < input.size() && !failed) {
      const std::size_t n = std::min<std::size_t>(1 + random() % 64, input.size() - at);
      d.feed(ConstBytes(input.data() + at, n));
      at += n;
      for (;;) {
        ASSERT_LT(++steps, input.size() + 16) << "the decoder loops (seed " << seed << ")";
        auto m = d.next();
        if (!m) {
          EXPECT_EQ(m.code(), Errc::corrupt);
          failed = true;
          ++corrupt;
          break;
        }
        if (!*m) break;
        ASSERT_LE((*m)->body.size(), kMaxBodyBytes);
        ASSERT_LE((*m)->body.size() + 5, input.size());
        if (parse_any((*m)->type, (*m)->body)) ++parsed;
      }
      ASSERT_LE(d.buffered(), at);
    }
  }
  EXPECT_GT(parsed, 0U);
  EXPECT_GT(corrupt, 0U);
}

}  // namespace
}  // namespace ringbus::bridge
