// ringbus-fuzz-seeds OUT_DIR [EXAMPLE_TOML]: writes each fuzz target's seed corpus into
// OUT_DIR/<target>/, made from the real thing: topic files of small topics (written, wrapped,
// with readers and a group), their rings as ring_frames inputs, disk logs recorded from them,
// state.json files, bridge configurations and a whole link session. scripts/fuzz.sh --seeds
// runs it to refresh fuzz/corpus/.
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "link_protocol.hpp"
#include "log_state.hpp"
#include "ringbus/group.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "topic/topic_mapping.hpp"
#include "topic_log.hpp"

namespace fs = std::filesystem;
using namespace ringbus;

namespace {

std::string out_dir;

std::vector<std::uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void seed(const std::string& target, const std::string& name, const std::vector<std::uint8_t>& b) {
  const std::string dir = out_dir + "/" + target;
  fs::create_directories(dir);
  fuzz::write_file(dir + "/" + name, b.data(), b.size());
}

void seed_text(const std::string& target, const std::string& name, const std::string& text) {
  seed(target, name, std::vector<std::uint8_t>(text.begin(), text.end()));
}

ConstBytes bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ringbus-fuzz-seeds: %s failed\n", what);
    std::exit(1);
  }
}

void publish(const Topic& topic, int count, std::size_t size, bool keyed) {
  Producer producer(topic);
  for (int i = 0; i < count; ++i) {
    const std::string key = keyed ? "key-" + std::to_string(i % 7) : "";
    const std::string value(size + static_cast<std::size_t>(i % 5) * 8,
                            static_cast<char>('a' + i % 26));
    check(static_cast<bool>(producer.try_publish(bytes_of(key), bytes_of(value))), "publish");
  }
}

// The ring_frames input for a topic: flags, tail, messages, the ring's bytes.
std::vector<std::uint8_t> ring_input(const Topic& topic, std::uint8_t flags) {
  auto& map = detail::mapping_of(topic);
  const auto& ring = map.ring_view();
  std::vector<std::uint8_t> out(17 + ring.capacity);
  out[0] = flags;
  std::memcpy(&out[1], &map.header().tail_position, 8);
  std::memcpy(&out[9], &map.header().tail_messages, 8);
  std::memcpy(&out[17], ring.base, ring.capacity);
  return out;
}

// A log recorded from the ring's first `end` bytes (whole frames), as log_recovery input.
void log_seeds(const Topic& topic, std::uint64_t end, const std::string& name) {
  auto& map = detail::mapping_of(topic);
  const auto& ring = map.ring_view();
  fuzz::ScratchDirectory scratch("seeds-log");
  const std::string dir = scratch.path() + "/t";
  std::uint64_t last_sequence = map.header().tail_messages - 1;
  {
    detail::TopicLogOptions options;
    options.max_message = 1024;
    options.frame_alignment = ring.alignment;
    options.sync_on_roll = false;
    auto log = detail::TopicLog::open(dir, options);
    check(static_cast<bool>(log), "log open");
    check(static_cast<bool>(
              log->append(0, ring.base, end / 2 / ring.alignment * ring.alignment, nullptr)),
          "log append");
    const std::uint64_t half = log->end();
    check(static_cast<bool>(log->append(half, ring.base + half, end - half, &last_sequence)),
          "log append");
  }
  const auto segment = read_all(dir + "/00000000000000000000.log");
  const auto index = read_all(dir + "/00000000000000000000.idx");
  const std::uint8_t alignment_flag = ring.alignment == 8 ? 4 : 0;
  auto input = [&](std::uint8_t flags, bool with_index, std::uint64_t hint) {
    std::vector<std::uint8_t> out(13);
    out[0] = static_cast<std::uint8_t>(flags | alignment_flag | (hint != 0 ? 8 : 0));
    const std::uint32_t index_size = with_index ? static_cast<std::uint32_t>(index.size()) : 0;
    std::memcpy(&out[1], &index_size, 4);
    std::memcpy(&out[5], &hint, 8);
    if (with_index) out.insert(out.end(), index.begin(), index.end());
    out.insert(out.end(), segment.begin(), segment.end());
    return out;
  };
  seed("log_recovery_fuzzer", name + "-indexed", input(1, true, 0));
  seed("log_recovery_fuzzer", name + "-indexed-durable", input(1, true, segment.size()));
  seed("log_recovery_fuzzer", name + "-no-index", input(0, false, 0));
  seed("log_recovery_fuzzer", name + "-two-segments", input(2, false, 0));
}

void topic_seeds(const std::string& bus_dir) {
  Bus bus(bus_dir);
  TopicOptions small;
  small.capacity = 4096;
  small.max_readers = 4;
  small.max_message = 1024;

  // A block topic with a few keyed messages and a durable reader part way.
  auto fresh = bus.create_topic("fresh", small);
  check(static_cast<bool>(fresh), "create fresh");
  auto reader = Subscriber::attach(*fresh, {.start = StartFrom::earliest(), .name = "reader"});
  check(static_cast<bool>(reader), "attach");
  publish(*fresh, 12, 40, true);
  check(static_cast<bool>(reader->poll([](const Message&) {}, 5)), "poll");
  seed("topic_file_fuzzer", "block-keyed", read_all(bus_dir + "/fresh"));
  seed("ring_frames_fuzzer", "block-keyed", ring_input(*fresh, 0));
  log_seeds(*fresh, detail::mapping_of(*fresh).header().tail_position, "block-keyed");

  // An overwrite topic with 8-byte frames, wrapped many times (padding at each lap's end).
  TopicOptions lossy = small;
  lossy.policy = Policy::overwrite;
  lossy.frame_alignment = 8;
  auto wrapped = bus.create_topic("wrapped", lossy);
  check(static_cast<bool>(wrapped), "create wrapped");
  publish(*wrapped, 700, 52, false);
  seed("topic_file_fuzzer", "overwrite-wrapped", read_all(bus_dir + "/wrapped"));
  seed("ring_frames_fuzzer", "overwrite-wrapped", ring_input(*wrapped, 3));

  // A block topic with a queue group holding a batch not yet acknowledged.
  auto grouped = bus.create_topic("grouped", small);
  check(static_cast<bool>(grouped), "create grouped");
  GroupOptions from_start;
  from_start.start = StartFrom::earliest();
  auto member = GroupMember::join(*grouped, "workers", from_start);
  check(static_cast<bool>(member), "join");
  publish(*grouped, 20, 100, false);
  check(static_cast<bool>(member->poll([](const Message&) {}, 8)), "group poll");
  seed("topic_file_fuzzer", "block-group", read_all(bus_dir + "/grouped"));
  seed("ring_frames_fuzzer", "block-group", ring_input(*grouped, 0));
}

void state_seeds() {
  detail::LogState s;
  s.topic = "orders";
  s.durable_position = 65536;
  s.durable_messages = 512;
  s.log_start = 4096;
  s.config.capacity = 1 << 20;
  s.config.max_message = 4096;
  s.config.policy = Policy::block;
  s.config.max_readers = 64;
  s.config.frame_alignment = 64;
  s.groups.push_back({"workers", 32768, 256});
  s.forwards.push_back({"10.0.0.2:7000", 16384, 128, 2, "connection refused"});
  fuzz::ScratchDirectory scratch("seeds-state");
  check(static_cast<bool>(detail::write_log_state(scratch.path(), s, false)), "state");
  seed("log_state_fuzzer", "full", read_all(scratch.path() + "/state.json"));
  s.config.mirror_of = "hosta:orders";
  s.groups.clear();
  s.forwards.clear();
  check(static_cast<bool>(detail::write_log_state(scratch.path(), s, false)), "state");
  seed("log_state_fuzzer", "mirror", read_all(scratch.path() + "/state.json"));
}

void config_seeds(const std::string& example) {
  if (!example.empty()) seed("bridge_config_fuzzer", "example", read_all(example));
  seed_text("bridge_config_fuzzer", "record",
            "log_dir = \"/var/lib/ringbus/log\"\nrecord = [\"md.*\", \"orders\"]\n"
            "segment_bytes = \"1MiB\"\n[fsync]\npolicy = \"bytes\"\nbytes = \"4MiB\"\n"
            "[retention]\nbytes = \"10GiB\"\nage = \"7d\"\n");
  seed_text("bridge_config_fuzzer", "forward",
            "[listen]\naddress = \"127.0.0.1:7000\"\naccept = [\"md.*\"]\n"
            "[[forward]]\ntopics = [\"md.*\"]\nto = \"10.0.0.2:7000\"\n");
  seed_text("bridge_config_fuzzer", "kafka",
            "[kafka]\nbrokers = \"localhost:9092\"\ngroup = \"ringbus\"\n"
            "properties = [\"linger.ms=5\"]\n[[kafka.sink]]\ntopics = [\"md.*\"]\n"
            "kafka_topic = \"ringbus.{topic}\"\n[[kafka.source]]\nkafka_topic = \"orders\"\n"
            "topic = \"orders\"\n");
}

void link_seeds(const std::string& bus_dir) {
  namespace b = bridge;
  std::vector<std::byte> stream;
  b::Hello hello;
  hello.topic = "fresh";
  hello.source = "hosta";
  hello.capacity = 4096;
  hello.max_message = 1024;
  hello.frame_alignment = 64;
  b::encode_hello(hello, stream);
  b::Challenge challenge;
  challenge.proof.assign(32, 7);
  b::encode_challenge(challenge, stream);
  b::encode_auth(std::vector<std::uint8_t>(32, 9), stream);
  b::encode_welcome({true, true, 0, 0}, stream);
  auto topic = Bus(bus_dir).open_topic("fresh");
  check(static_cast<bool>(topic), "open fresh");
  const auto& ring = detail::mapping_of(*topic).ring_view();
  const std::uint64_t tail = detail::mapping_of(*topic).header().tail_position;
  b::encode_data_header(0, tail, stream);
  const auto* frames = ring.base;
  stream.insert(stream.end(), frames, frames + tail);
  b::encode_ack({tail, 12, tail, 12, true}, stream);
  b::encode_heartbeat(stream);
  b::encode_gap({tail, tail + 4096}, stream);
  b::encode_reject("unknown topic", stream);
  // The target takes piece sizes from the input's end: 0xFF bytes there give pieces of 4096.
  std::vector<std::uint8_t> input(
      reinterpret_cast<const std::uint8_t*>(stream.data()),
      reinterpret_cast<const std::uint8_t*>(stream.data()) + stream.size());
  input.insert(input.end(), 16, 0xFF);
  seed("link_protocol_fuzzer", "session", input);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ringbus-fuzz-seeds OUT_DIR [EXAMPLE_TOML]\n");
    return 2;
  }
  out_dir = argv[1];
  fuzz::ScratchDirectory bus_dir("seeds-bus");
  topic_seeds(bus_dir.path());
  state_seeds();
  config_seeds(argc > 2 ? argv[2] : "");
  link_seeds(bus_dir.path());
  std::printf("ringbus-fuzz-seeds: corpora written to %s\n", out_dir.c_str());
  return 0;
}
