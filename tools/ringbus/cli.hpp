// The `ringbus` command line (a kcat for ringbus): its grammar and its commands, as a library so
// tests can run them in-process; main.cpp only parses, dispatches and prints the error.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "ringbus/result.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"

namespace CLI {
class App;
}

namespace ringbus::cli {

// Sizes, modes and positions stay text until the command runs, so their errors are ours
// (parse_size) and reach the user as one `ringbus: ...` line like every other error.
struct TopicCreateArgs {
  std::string name;
  std::string capacity;
  std::string policy = "block";
  std::string max_message;  // empty: the library default (capacity / 4)
  std::uint32_t max_readers = TopicOptions{}.max_readers;
  std::int64_t stuck_timeout_ms = TopicOptions{}.stuck_claim_timeout.count();
  std::string mode = "0600";
};

struct ProduceArgs {
  std::string topic;
  std::string key;
  std::optional<int> cpu;
  std::optional<std::int64_t> timeout_ms;  // per message; none: wait for space forever
  // none | disk (fsynced by the topic's ringbus-bridge) | mirror (held by a receiving bridge)
  std::string acks = "none";
  std::int64_t acks_timeout_ms = 30'000;
};

enum class Format : std::uint8_t { text, json };

struct ConsumeArgs {
  std::string topic;
  std::string from = "latest";             // earliest | latest | a byte offset on a frame boundary
  std::optional<std::int64_t> count;       // stop after this many; none: never
  std::optional<std::int64_t> timeout_ms;  // idle time before stopping; none: never
  Format format = Format::text;
  std::optional<int> cpu;
  std::string name;  // persistent reader name; empty: ephemeral
  bool lossy = false;
  // Queue group to join instead of subscribing (excludes name and lossy): each message goes to
  // one member of the group, and is acknowledged once printed and flushed. `from` places a new
  // group; an existing one resumes at its committed position.
  std::string group;
};

struct DumpArgs {
  std::string topic;
  std::string from = "earliest";      // earliest | latest | a byte offset on a frame boundary
  std::optional<std::int64_t> count;  // data frames to show; none: up to the tail
};

enum class Command : std::uint8_t {
  none,
  topic_create,
  topic_list,
  topic_describe,
  topic_delete,
  topic_remove_reader,
  topic_dump,
  produce,
  consume,
  topo,
};

// Everything the command line said. Filled by parsing an app set up by configure().
struct Options {
  std::string dir;  // empty: Bus::default_directory() ($RINGBUS_DIR or /dev/shm/ringbus-$UID)
  Command command = Command::none;
  TopicCreateArgs create;
  std::string topic;   // describe, delete, remove-reader
  std::string reader;  // remove-reader
  bool json = false;   // describe
  ProduceArgs produce;
  ConsumeArgs consume;
  DumpArgs dump;
};

// Adds every subcommand and option to `app`; parsing it fills `options`, which must outlive
// `app`. Errors are CLI11's exceptions, thrown by app.parse().
void configure(CLI::App& app, Options& options);

// Where a command reads its input and writes its output and warnings (not its error: that is
// returned).
struct Io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Runs the parsed command. Errors: whatever the library reports, with a message naming the
// topic and the problem, plus invalid_argument for a bad size, mode or --from value.
Result<void> run(const Options& options, const Io& io);

// The commands, one by one. None of them throws except std::bad_alloc.

// Creates a topic; prints nothing.
Result<void> topic_create(const Bus& bus, const TopicCreateArgs& args);
// Prints one topic name per line, sorted.
Result<void> topic_list(const Bus& bus, const Io& io);
// Prints the topic's configuration, counters and readers, as text or one JSON object.
Result<void> topic_describe(const Bus& bus, std::string_view name, bool json, const Io& io);
Result<void> topic_delete(const Bus& bus, std::string_view name);
// Removes a persistent reader whose process is gone (busy if it is alive).
Result<void> topic_remove_reader(const Bus& bus, std::string_view topic, std::string_view reader);
// Publishes one message per line of io.in (without its newline) until end of input.
Result<void> produce(const Bus& bus, const ProduceArgs& args, const Io& io);
// Prints messages until --count of them, --timeout-ms without one, or SIGINT/SIGTERM (it
// installs handlers for those two while it runs). Reports laps on io.err. With a group, each
// message is acknowledged only after it was printed and io.out flushed, so a consumer killed
// at any point loses no message (one printed but not yet acknowledged is delivered again).
Result<void> consume(const Bus& bus, const ConsumeArgs& args, const Io& io);

// dump.cpp: prints the frames from args.from (earliest by default) up to the tail as it was when
// the dump began, or args.count data frames: offset, length (key + value bytes; the bytes
// skipped for padding), type, sequence, timestamp (UTC), and previews of key and value (quoted
// text when printable, else hex). Read-only and without a reader slot: producers may overwrite
// frames meanwhile; the dump notices (lap tags, then the tail after each copy), says so on
// io.err and goes on at the new earliest offset. It waits up to 200 ms at a claim in flight,
// then stops there with a note on io.err. Errors: those of opening the topic and of --from
// (offset_out_of_range, invalid_argument), corrupt for a frame that fails validation.
Result<void> topic_dump(const Bus& bus, const DumpArgs& args, const Io& io);

// topo.cpp: the hwloc topology (packages, caches, cores, PUs), the usable processors, and the
// recommended producer/consumer pairs of processors (closest shared cache), best first, each
// processor in at most one pair. Errors: none; a topology hwloc cannot load is reported in the
// text.
Result<void> topo(const Io& io);

// earliest | latest | a decimal byte offset. Errors: invalid_argument naming --from.
Result<StartFrom> parse_from(std::string_view text);

// describe.cpp: the two renderings of a snapshot.

// reader_state(): snapshot_json.hpp (shared with the monitor).
std::string describe_text(const Topic& topic, const TopicSnapshot& snapshot);
// One JSON object; fields are named like TopicSnapshot, TopicConfig and ReaderInfo. "readers"
// holds every slot (subscribers, groups and members, told apart by "kind"); "groups" adds one
// summary per group: its ReaderInfo fields plus "members", the number of its members;
// "recorder" holds the RecorderInfo fields once a bridge records the topic, else null. The
// text form shows the recorder the same way, under "recorder:".
std::string describe_json(const Topic& topic, const TopicSnapshot& snapshot);

}  // namespace ringbus::cli
