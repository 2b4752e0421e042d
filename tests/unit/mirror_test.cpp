// MirrorWriter: frames copied from a source topic's ring are written verbatim at their offsets
// (a mirror reader sees the source's messages across many wraps); every kind of bad frame is
// refused and writes nothing; a writer that died half-way is repaired by the next append; one
// writer per mirror; producers get read_only; producer acks time out with a reason.
#include "ringbus/mirror.hpp"

#include <bit>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "layout/frame_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

using layout::FrameHeader;
using layout::FrameKind;
using std::chrono::milliseconds;

ConstBytes text(const std::string& s) {
  return ConstBytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
}

TopicOptions small(std::uint32_t alignment = 64, bool mirror = false) {
  TopicOptions o;
  o.capacity = 4096;
  o.frame_alignment = alignment;
  if (mirror) o.mirror_of = "source-host (test)";
  return o;
}

// The stream bytes [from, to) of a topic, copied out of its ring (at most one ring's worth).
std::vector<std::byte> stream_bytes(const Topic& t, std::uint64_t from, std::uint64_t to) {
  const std::uint64_t cap = t.config().capacity;
  std::vector<std::byte> out;
  for (std::uint64_t at = from; at < to;) {
    const std::uint64_t index = at & (cap - 1);
    const std::uint64_t n = std::min(to - at, cap - index);
    out.insert(out.end(), detail::mapping_of(t).ring() + index,
               detail::mapping_of(t).ring() + index + n);
    at += n;
  }
  return out;
}

// Frame boundaries of `bytes` (stream bytes starting at `from`), found from the commit words.
std::vector<std::uint64_t> boundaries(const Topic& t, const std::vector<std::byte>& bytes,
                                      std::uint64_t from) {
  const TopicConfig& c = t.config();
  std::vector<std::uint64_t> at{from};
  while (at.back() < from + bytes.size()) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes.data() + (at.back() - from), 8);
    const std::uint64_t stride = layout::committed_stride(
        word, at.back() & (c.capacity - 1), c.capacity, c.max_message, c.frame_alignment);
    EXPECT_NE(stride, 0U);
    if (stride == 0) break;
    at.push_back(at.back() + stride);
  }
  return at;
}

struct Seen {
  std::uint64_t offset, sequence;
  std::int64_t ts;
  std::string key, value;
  bool operator==(const Seen&) const = default;
};
std::vector<Seen> drain(Subscriber& s) {
  std::vector<Seen> out;
  for (;;) {
    auto r = s.poll(
        [&](const Message& m) {
          out.push_back(
              Seen{m.offset, m.sequence, m.timestamp_ns,
                   std::string(reinterpret_cast<const char*>(m.key.data()), m.key.size()),
                   std::string(reinterpret_cast<const char*>(m.value.data()), m.value.size())});
        },
        256);
    EXPECT_TRUE(r) << r.error().message();
    if (!r || r->messages == 0) break;
    EXPECT_EQ(r->lost_messages, 0U);
  }
  return out;
}

Subscriber durable_reader(const Topic& t) {
  SubscriberOptions o;
  o.start = StartFrom::earliest();
  o.durability = Durability::durable;
  auto s = Subscriber::attach(t, o);
  EXPECT_TRUE(s) << s.error().message();
  return std::move(*s);
}

class Mirror : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(Mirror, CopiedFramesReadIdenticallyAcrossManyWraps) {
  testing::TempBus bus;
  Topic src = bus.create("src", small(GetParam()));
  Topic dst = bus.create("dst", small(GetParam(), true));
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w) << w.error().message();
  Subscriber a = durable_reader(src);
  Subscriber b = durable_reader(dst);
  Producer p(src);
  std::mt19937_64 random(1234);
  std::uint64_t total = 0;
  while (src.snapshot().tail < 60 * 4096) {
    for (int n = 1 + static_cast<int>(random() % 6); n > 0; --n) {
      const std::string key(random() % 12, static_cast<char>('k' + total % 7));
      std::string value(random() % 400, '\0');
      for (char& ch : value) ch = static_cast<char>(random());
      auto r = p.try_publish(text(key), text(value));
      if (!r) {
        ASSERT_EQ(r.code(), Errc::would_block);
        break;
      }
      ++total;
    }
    // Copy what is new in the source, hand it over in random whole-frame pieces.
    const std::uint64_t from = w->applied();
    const std::uint64_t to = src.snapshot().tail;
    const auto bytes = stream_bytes(src, from, to);
    const auto cuts = boundaries(src, bytes, from);
    for (std::size_t i = 0; i + 1 < cuts.size();) {
      const std::size_t j = std::min(cuts.size() - 1, i + 1 + random() % 3);
      auto ok =
          w->try_append(cuts[i], ConstBytes(bytes.data() + (cuts[i] - from), cuts[j] - cuts[i]));
      ASSERT_TRUE(ok) << ok.error().message();
      i = j;
    }
    ASSERT_EQ(w->applied(), to);
    const auto seen_a = drain(a);
    const auto seen_b = drain(b);
    ASSERT_EQ(seen_a.size(), seen_b.size());
    for (std::size_t i = 0; i < seen_a.size(); ++i) {
      ASSERT_TRUE(seen_a[i] == seen_b[i]) << "message at offset " << seen_a[i].offset;
    }
  }
  EXPECT_EQ(w->applied_messages(), total);
  EXPECT_EQ(dst.snapshot().mirror->applied_position, w->applied());
}

INSTANTIATE_TEST_SUITE_P(Alignments, Mirror, ::testing::Values(8U, 64U));

// A frame by hand at `offset` of a 4 KiB, 64-aligned topic.
std::vector<std::byte> frame(std::uint64_t offset, std::uint64_t sequence, const std::string& key,
                             const std::string& value, std::uint32_t alignment = 64) {
  const std::uint64_t length = key.size() + value.size();
  std::vector<std::byte> f(layout::frame_stride(length, alignment));
  FrameHeader h{layout::make_commit(layout::lap_of(offset, 12), FrameKind::kData, length), sequence,
                1'700'000'000'000'000'000LL + static_cast<std::int64_t>(sequence),
                static_cast<std::uint32_t>(key.size()), 0};
  std::memcpy(f.data(), &h, sizeof h);
  std::memcpy(f.data() + 32, key.data(), key.size());
  std::memcpy(f.data() + 32 + key.size(), value.data(), value.size());
  return f;
}
void set_commit(std::vector<std::byte>& f, std::size_t at, std::uint64_t word) {
  std::memcpy(f.data() + at, &word, 8);
}
std::uint64_t commit_at(const std::vector<std::byte>& f, std::size_t at) {
  std::uint64_t word = 0;
  std::memcpy(&word, f.data() + at, 8);
  return word;
}

TEST(MirrorWriter, RefusesBadFramesAndWritesNothing) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w);
  // A good first frame, so the mirror has applied something (offset 64, message 1).
  const auto first = frame(0, 0, "k", "v");
  ASSERT_TRUE(w->try_append(0, ConstBytes(first.data(), first.size())));
  ASSERT_EQ(w->applied(), 64U);
  const std::uint64_t lap = layout::lap_of(64, 12);
  auto good = frame(64, 1, "key", "value");
  const std::uint64_t word = commit_at(good, 0);
  const std::uint64_t length = layout::commit_length(word);
  auto& h = detail::mapping_of(dst).header();
  const std::vector<std::byte> ring_before(detail::mapping_of(dst).ring(),
                                           detail::mapping_of(dst).ring() + 4096);

  struct Case {
    const char* name;
    std::vector<std::byte> bytes;
    std::uint64_t offset = 64;
    Errc code = Errc::corrupt;
  };
  std::vector<Case> cases;
  auto with = [&](const char* name, auto change) {
    Case c{name, good};
    change(c);
    cases.push_back(std::move(c));
  };
  with("wrong lap", [&](Case& c) {
    set_commit(c.bytes, 0, layout::make_commit(lap + 1, FrameKind::kData, length));
  });
  with("claimed kind", [&](Case& c) {
    set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kClaimed, length));
  });
  with("never-written kind", [&](Case& c) {
    set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kNone, length));
  });
  with("length past max_message", [&](Case& c) {
    set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kData, 1024 + 1));
  });
  with("padding past the ring's end", [&](Case& c) {
    set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kPadding, 4096));
    c.bytes.resize(4096);
  });
  with("length past the batch",
       [&](Case& c) { set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kData, 200)); });
  with("padding of an unaligned length",
       [&](Case& c) { set_commit(c.bytes, 0, layout::make_commit(lap, FrameKind::kPadding, 40)); });
  with("key longer than the frame", [&](Case& c) {
    const std::uint32_t key_length = static_cast<std::uint32_t>(length + 1);
    std::memcpy(c.bytes.data() + 24, &key_length, 4);
  });
  with("sequence going back (below the mirror's count)", [&](Case& c) {
    const std::uint64_t seq = 0;
    std::memcpy(c.bytes.data() + 8, &seq, 8);
  });
  with("sequence going back inside the batch", [&](Case& c) {
    auto second = frame(128, 5, "k", "v");
    auto third = frame(192, 4, "k", "v");
    c.bytes.insert(c.bytes.end(), second.begin(), second.end());
    c.bytes.insert(c.bytes.end(), third.begin(), third.end());
  });
  with("not whole frames", [&](Case& c) { c.bytes.resize(c.bytes.size() - 8); });
  with("a good frame then a bad one", [&](Case& c) {
    auto bad = frame(128, 2, "k", "v");
    set_commit(bad, 0, layout::make_commit(lap + 3, FrameKind::kData, 2));
    c.bytes.insert(c.bytes.end(), bad.begin(), bad.end());
  });
  with("a batch larger than the ring", [&](Case& c) {
    for (std::uint64_t i = 1; i <= 64; ++i) {
      auto more = frame(64 + i * 64, 1 + i, "k", "v");
      c.bytes.insert(c.bytes.end(), more.begin(), more.end());
    }
    c.code = Errc::invalid_argument;
  });
  with("offset behind applied", [&](Case& c) {
    c.offset = 0;
    c.code = Errc::invalid_argument;
  });
  with("offset past applied", [&](Case& c) {
    c.offset = 128;
    c.code = Errc::invalid_argument;
  });

  for (const Case& c : cases) {
    auto r = w->try_append(c.offset, ConstBytes(c.bytes.data(), c.bytes.size()));
    ASSERT_FALSE(r) << c.name << ": accepted";
    EXPECT_EQ(r.code(), c.code) << c.name << ": " << r.error().message();
    EXPECT_NE(r.error().message().find("dst"), std::string::npos)
        << c.name << ": the message names the mirror: " << r.error().message();
    EXPECT_EQ(w->applied(), 64U) << c.name;
    EXPECT_EQ(w->applied_messages(), 1U) << c.name;
    EXPECT_EQ(h.tail_position, 64U) << c.name;
    EXPECT_EQ(std::memcmp(ring_before.data(), detail::mapping_of(dst).ring(), 4096), 0)
        << c.name << ": the ring was written";
  }
  // The good frame still goes in afterwards.
  auto ok = w->try_append(64, ConstBytes(good.data(), good.size()));
  EXPECT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(w->applied(), 64 + good.size());
}

TEST(MirrorWriter, WouldBlockBehindADurableReaderWritesNothing) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w);
  Subscriber reader = durable_reader(dst);  // reads nothing: the mirror fills up
  std::uint64_t at = 0;
  std::uint64_t seq = 0;
  for (; at < 4096; at += 64, ++seq) {
    auto f = frame(at, seq, "k", "v");
    ASSERT_TRUE(w->try_append(at, ConstBytes(f.data(), f.size())));
  }
  auto f = frame(at, seq, "k", "v");
  auto r = w->try_append(at, ConstBytes(f.data(), f.size()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::would_block);
  EXPECT_EQ(w->applied(), at);
  EXPECT_EQ(drain(reader).size(), seq);
  reader.publish_position();
  auto again = w->try_append(at, ConstBytes(f.data(), f.size()));
  EXPECT_TRUE(again) << again.error().message();
}

// A writer killed after its tail CAS, before (or half-way through) writing: the next writer is
// given the same bytes again and completes them.
TEST(MirrorWriter, RepairsAHalfWrittenBatch) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  Subscriber reader = durable_reader(dst);
  std::vector<std::byte> batch;
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto f = frame(i * 64, i, "key" + std::to_string(i), "value " + std::to_string(i));
    batch.insert(batch.end(), f.begin(), f.end());
  }
  {
    auto w = MirrorWriter::open(dst);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->try_append(0, ConstBytes(batch.data(), 128)));  // two frames applied
  }
  // The dead writer's half: the tail moved to the batch's end, one more frame written, and
  // stale garbage where the rest should be.
  auto& h = detail::mapping_of(dst).header();
  h.tail_position = batch.size();
  h.tail_messages = 5;
  std::memcpy(detail::mapping_of(dst).ring() + 128, batch.data() + 128, 64);
  std::memset(detail::mapping_of(dst).ring() + 192, 0x5A, 128);
  // A reader may take the dead writer's complete frame (its commit word was stored after its
  // body); it stops at the garbage until the repair.
  auto seen = drain(reader);
  EXPECT_EQ(seen.size(), 3U);
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w);
  ASSERT_EQ(w->applied(), 128U);
  auto ok = w->try_append(128, ConstBytes(batch.data() + 128, batch.size() - 128));
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(w->applied(), batch.size());
  EXPECT_EQ(w->applied_messages(), 5U);
  EXPECT_EQ(h.tail_position, batch.size());
  const auto rest = drain(reader);
  seen.insert(seen.end(), rest.begin(), rest.end());
  ASSERT_EQ(seen.size(), 5U) << "each message once";
  for (std::uint64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(seen[i].offset, i * 64);
    EXPECT_EQ(seen[i].sequence, i);
    EXPECT_EQ(seen[i].key, "key" + std::to_string(i));
    EXPECT_EQ(seen[i].value, "value " + std::to_string(i));
  }
  // Going on past the repaired batch claims new space as usual.
  auto next = frame(batch.size(), 5, "k", "next");
  ASSERT_TRUE(w->try_append(batch.size(), ConstBytes(next.data(), next.size())));
  EXPECT_EQ(h.tail_position, batch.size() + 64);
  EXPECT_EQ(drain(reader).size(), 1U);
}

TEST(MirrorWriter, OneWriterPerMirror) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  Topic plain = bus.create("plain", small());
  auto not_mirror = MirrorWriter::open(plain);
  ASSERT_FALSE(not_mirror);
  EXPECT_EQ(not_mirror.code(), Errc::invalid_argument);
  // A second process while the first writer lives: busy.
  auto first = MirrorWriter::open(dst);
  ASSERT_TRUE(first);
  pid_t child = testing::fork_child([&]() -> int {
    Bus b(bus.dir());
    auto t = b.open_topic("dst");
    if (!t) return 2;
    auto second = MirrorWriter::open(*t);
    if (second) return 3;
    if (second.code() != Errc::busy) return 4;
    return second.error().message().find("written by process") != std::string::npos ? 0 : 5;
  });
  EXPECT_EQ(testing::wait_child(child, std::chrono::seconds(30)), 0);
  {
    MirrorWriter moved(std::move(*first));  // a moved-from writer frees nothing
  }
  // Freed once the writer is gone.
  pid_t after = testing::fork_child([&]() -> int {
    Bus b(bus.dir());
    auto t = b.open_topic("dst");
    return t && MirrorWriter::open(*t) ? 0 : 6;
  });
  EXPECT_EQ(testing::wait_child(after, std::chrono::seconds(30)), 0);
}

TEST(MirrorWriter, ProducersGetReadOnly) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  Producer p(dst);
  auto tried = p.try_publish(text("k"), text("v"));
  ASSERT_FALSE(tried);
  EXPECT_EQ(tried.code(), Errc::read_only);
  auto claimed = p.try_claim(16);
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.code(), Errc::read_only);
  auto published = p.publish(text("k"), text("v"), Wait::spin_yield(milliseconds(100)));
  ASSERT_FALSE(published);
  EXPECT_EQ(published.code(), Errc::read_only);
  EXPECT_NE(published.error().message().find("is a mirror of source-host (test)"),
            std::string::npos)
      << published.error().message();
  EXPECT_EQ(dst.snapshot().tail, 0U);
}

// Offsets lost at a mirror's source become a gap: every reader skips it and counts it as lost,
// in bytes and (from the sequence numbers on either side) in messages, and goes on with the
// frames after it. Small gaps, gaps of many rings (an overwrite mirror jumps them, lapping its
// readers; a block mirror writes them a piece at a time as its durable reader passes).
struct GapCase {
  Policy policy;
  std::uint64_t gap_frames;
};
class MirrorGap : public ::testing::TestWithParam<GapCase> {};

struct Tally {
  std::vector<std::uint64_t> offsets;
  std::uint64_t lost_bytes = 0, lost_messages = 0;
};
void read_all(Subscriber& s, Tally& t) {
  for (;;) {
    auto r = s.poll([&](const Message& m) { t.offsets.push_back(m.offset); }, 64);
    ASSERT_TRUE(r) << r.error().message();
    t.lost_bytes += r->lost_bytes;
    t.lost_messages += r->lost_messages;
    if (r->messages == 0 && r->lost_bytes == 0) break;
  }
  s.publish_position();
}

TEST_P(MirrorGap, ReadersSkipItCountItAsLostAndGoOn) {
  const GapCase c = GetParam();
  testing::TempBus bus;
  TopicOptions o = small(64, true);
  o.policy = c.policy;
  Topic dst = bus.create("dst", o);
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w) << w.error().message();
  SubscriberOptions so;
  so.start = StartFrom::earliest();
  so.durability = c.policy == Policy::block ? Durability::durable : Durability::lossy;
  auto reader = Subscriber::attach(dst, so);
  ASSERT_TRUE(reader) << reader.error().message();
  std::optional<Subscriber> laggard;  // reads nothing until the end (overwrite only)
  if (c.policy == Policy::overwrite) laggard.emplace(*Subscriber::attach(dst, so));

  std::uint64_t seq = 0;
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i, ++seq) {
      auto f = frame(w->applied(), seq, "k", "v" + std::to_string(seq));
      ASSERT_TRUE(w->try_append(w->applied(), ConstBytes(f.data(), f.size())));
    }
  };
  append(10);
  Tally before;
  read_all(*reader, before);
  ASSERT_EQ(before.offsets.size(), 10U);

  const std::uint64_t from = w->applied();
  const std::uint64_t to = from + c.gap_frames * 64;
  Tally gap;
  for (int tries = 0; w->applied() < to; ++tries) {
    ASSERT_LT(tries, 10'000);
    auto r = w->try_append_gap(w->applied(), to);
    if (!r) {
      ASSERT_EQ(r.code(), Errc::would_block) << r.error().message();
      ASSERT_EQ(c.policy, Policy::block);
      read_all(*reader, gap);  // the durable reader passes the gap written so far
    }
  }
  EXPECT_EQ(w->applied(), to);
  EXPECT_EQ(dst.snapshot().tail, to);
  seq += c.gap_frames;  // the source's messages in the gap
  append(5);
  const std::uint64_t end = w->applied();

  Tally after = gap;
  read_all(*reader, after);
  ASSERT_EQ(after.offsets.size(), 5U);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(after.offsets[i], to + 64 * i);
  EXPECT_EQ(after.lost_bytes, to - from);
  EXPECT_EQ(after.lost_messages, c.gap_frames);
  EXPECT_EQ(reader->lost_bytes(), to - from);
  EXPECT_EQ(reader->lost_messages(), c.gap_frames);

  if (laggard) {
    // Whatever it still found of the first ten, it gets the five after the gap and counts
    // everything else as lost.
    Tally t;
    read_all(*laggard, t);
    ASSERT_GE(t.offsets.size(), 5U);
    EXPECT_EQ(t.offsets.back(), end - 64);
    EXPECT_EQ(t.offsets.size() + t.lost_messages, seq);
    EXPECT_EQ(t.offsets.size() * 64 + t.lost_bytes, end);
  }
  // A new reader at the earliest offset starts inside or after the gap, never before it.
  auto late = Subscriber::attach(dst, so);
  ASSERT_TRUE(late);
  Tally t;
  read_all(*late, t);
  ASSERT_GE(t.offsets.size(), 5U);
  EXPECT_EQ(t.offsets.back(), end - 64);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MirrorGap,
                         ::testing::Values(GapCase{Policy::overwrite, 3},
                                           GapCase{Policy::overwrite, 63},
                                           GapCase{Policy::overwrite, 200},
                                           GapCase{Policy::overwrite, 6400},
                                           GapCase{Policy::block, 3}, GapCase{Policy::block, 200}),
                         [](const ::testing::TestParamInfo<GapCase>& param_info) {
                           return std::string(to_string(param_info.param.policy)) + "_" +
                                  std::to_string(param_info.param.gap_frames) + "_frames";
                         });

TEST(MirrorWriter, RefusesAGapThatDoesNotContinueOrEndAtABoundary) {
  testing::TempBus bus;
  Topic dst = bus.create("dst", small(64, true));
  auto w = MirrorWriter::open(dst);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->try_append_gap(64, 640).code(), Errc::invalid_argument);
  EXPECT_EQ(w->try_append_gap(0, 0).code(), Errc::invalid_argument);
  EXPECT_EQ(w->try_append_gap(0, 100).code(), Errc::invalid_argument);
  EXPECT_EQ(w->applied(), 0U);
  EXPECT_EQ(dst.snapshot().tail, 0U);
}

TEST(ProducerAcks, TimeOutWithAReasonWhenNothingRecordsOrForwards) {
  testing::TempBus bus;
  Topic t = bus.create("plain", small());
  Producer p(t);
  auto at = p.publish(text("k"), text("v"));
  ASSERT_TRUE(at);
  auto durable = p.wait_durable(*at, Wait::spin_yield(milliseconds(50)));
  ASSERT_FALSE(durable);
  EXPECT_EQ(durable.code(), Errc::timed_out);
  EXPECT_NE(durable.error().message().find("no ringbus-bridge records topic 'plain'"),
            std::string::npos)
      << durable.error().message();
  auto mirrored = p.wait_mirrored(*at, 1, Wait::futex(milliseconds(50)));
  ASSERT_FALSE(mirrored);
  EXPECT_EQ(mirrored.code(), Errc::timed_out);
  EXPECT_NE(mirrored.error().message().find("no ringbus-bridge forwards topic 'plain'"),
            std::string::npos)
      << mirrored.error().message();
  auto none = p.wait_mirrored(*at, 0, Wait::spin_yield(milliseconds(50)));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace ringbus
