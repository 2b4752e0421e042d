// The ringbus commands: manage topics, publish stdin lines, print messages. Each turns library
// errors into a Result with a message that names the topic and what to do about it.
#include "cli.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <exception>
#include <istream>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ringbus/bytes.hpp"
#include "ringbus/group.hpp"
#include "ringbus/pin.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/wait.hpp"
#include "sizes.hpp"

#ifndef RINGBUS_VERSION_STRING
#define RINGBUS_VERSION_STRING "unknown"
#endif

namespace ringbus::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// consume sleeps on the futex at most this long at a time, so a stop signal (which does not
// wake the futex: the wait loop retries on EINTR) is noticed promptly.
constexpr nanoseconds kStopCheck = milliseconds(200);
constexpr std::size_t kBatch = 64;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int /*signal*/) { g_stop = 1; }

// While alive, SIGINT and SIGTERM ask consume to stop, so it detaches its reader (freeing an
// ephemeral slot at once, publishing a persistent one's position) and flushes its output.
class StopSignals {
 public:
  StopSignals() {
    g_stop = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

Error invalid(std::string message) { return Error(Errc::invalid_argument, std::move(message)); }

// A non-negative millisecond count as a wait timeout; values past what nanoseconds can hold
// (about 292 years) mean forever.
nanoseconds wait_timeout(std::int64_t ms) {
  constexpr std::int64_t kMaxMs = std::numeric_limits<nanoseconds::rep>::max() / 1'000'000;
  return ms >= kMaxMs ? nanoseconds::max() : nanoseconds(milliseconds(ms));
}

Result<Policy> parse_policy(std::string_view text) {
  if (text == "block") return Policy::block;
  if (text == "overwrite") return Policy::overwrite;
  return invalid("--policy '" + std::string(text) + "' is invalid: expected block or overwrite");
}

// "0600", "600", "0640", ...: octal digits; which modes are allowed is the library's rule.
Result<std::uint32_t> parse_mode(std::string_view text) {
  std::string_view digits = text.size() == 4 && text[0] == '0' ? text.substr(1) : text;
  std::uint32_t mode = 0;
  bool ok = digits.size() == 3;
  for (char c : digits) {
    ok = ok && c >= '0' && c <= '7';
    mode = mode * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (!ok) {
    return invalid("--mode '" + std::string(text) + "' is invalid: expected 0600, 0640 or 0660");
  }
  return mode;
}

Result<void> pin(std::optional<int> cpu) {
  if (!cpu) return {};
  return pin_this_thread(*cpu);  // its message names the processor and the valid ones
}

// CLI11 would wrap "-1" into a huge unsigned value, so counts and times are signed until here.
Result<void> check_not_negative(std::string_view option, std::optional<std::int64_t> value) {
  if (!value || *value >= 0) return {};
  return invalid(std::string(option) + " " + std::to_string(*value) +
                 " is invalid: it must not be negative");
}

Error publish_error(const Error& error, const Topic& topic, std::uint64_t line_number,
                    std::size_t bytes, const ProduceArgs& args) {
  const std::string where = "line " + std::to_string(line_number) + ": ";
  const std::string name = "'" + topic.name() + "'";
  switch (error.code()) {
    case Errc::too_large:
      return Error(Errc::too_large, where + "message of " + std::to_string(bytes) +
                                        " bytes (key and value) exceeds the max message size " +
                                        std::to_string(topic.config().max_message) + " of topic " +
                                        name);
    case Errc::timed_out: {
      std::string why = "a producer stalled in the middle of a claim a ring ago";
      if (auto bp = back_pressure(topic.name(), topic.snapshot())) why = bp->text;
      return Error(Errc::timed_out, where + "no space in topic " + name + " within " +
                                        std::to_string(args.timeout_ms.value_or(0)) +
                                        " ms: " + why);
    }
    default:
      return Error(error.code(),
                   where + "cannot publish to topic " + name + ": " + error.message());
  }
}

// One message as a line of io.out: its value, or a JSON object (with the delivery count for a
// group member). Returns what went wrong, empty on success; never throws but bad_alloc.
std::string print_message(const Message& m, Format format, bool group, std::ostream& out) {
  try {
    if (format == Format::json) {
      nlohmann::ordered_json j = {
          {"offset", m.offset},
          {"sequence", m.sequence},
          {"timestamp_ns", m.timestamp_ns},
          {"key", as_string(m.key)},
          {"value", as_string(m.value)},
      };
      if (group) {
        j["delivery_count"] = m.delivery_count;
        j["redelivered"] = m.redelivered();
      }
      // replace: invalid UTF-8 becomes U+FFFD instead of an exception.
      out << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    } else {
      const std::string_view value = as_string(m.value);
      out.write(value.data(), static_cast<std::streamsize>(value.size()));
      out.put('\n');
    }
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

// --count and --timeout-ms of consume: how many messages to print, and how long to wait idle.
struct ConsumeLimits {
  std::uint64_t count;
  nanoseconds idle_limit;

  explicit ConsumeLimits(const ConsumeArgs& args)
      : count(args.count ? static_cast<std::uint64_t>(*args.count)
                         : std::numeric_limits<std::uint64_t>::max()),
        idle_limit(args.timeout_ms ? wait_timeout(*args.timeout_ms) : nanoseconds::max()) {}

  // How long the next wait may sleep: short enough to notice a stop signal, and no longer than
  // the idle time left.
  nanoseconds slice(Clock::time_point idle_since) const {
    if (idle_limit == nanoseconds::max()) return kStopCheck;
    const nanoseconds left = idle_limit - (Clock::now() - idle_since);
    return std::clamp(left, nanoseconds::zero(), kStopCheck);
  }
  bool idle(Clock::time_point idle_since) const {
    return idle_limit != nanoseconds::max() && Clock::now() - idle_since >= idle_limit;
  }
};

// consume --group: print a poll's messages, flush, and only then acknowledge them. A batch can
// hold more messages than --count still allows (one taken over from a dead member): those are
// neither printed nor acknowledged, and go to another member once this one leaves.
Result<void> consume_group(const Topic& topic, const StartFrom& start, const ConsumeArgs& args,
                           const Io& io) {
  GroupOptions options;
  options.start = start;
  auto member = GroupMember::join(topic, args.group, options);
  if (!member) {
    return Error(member.code(),
                 "cannot join group '" + args.group + "': " + member.error().message());
  }

  const StopSignals stop_signals;
  const ConsumeLimits limits(args);
  std::uint64_t printed = 0;
  std::vector<std::uint64_t> to_ack;
  to_ack.reserve(kBatch);
  std::string failure;
  auto print = [&](const Message& m) {
    if (!failure.empty() || printed + to_ack.size() >= limits.count) return;
    failure = print_message(m, args.format, true, io.out);
    if (failure.empty()) to_ack.push_back(m.offset);
  };

  auto idle_since = Clock::now();
  while (printed < limits.count && g_stop == 0) {
    const auto max =
        static_cast<std::size_t>(std::min<std::uint64_t>(limits.count - printed, kBatch));
    to_ack.clear();
    // The wait also returns (with nothing to poll) when it is time to look for batches of dead
    // members, so idleness is checked after every empty poll, not only on timed_out.
    auto polled = member->poll_wait(print, max, Wait::futex(limits.slice(idle_since)));
    if (!polled && polled.code() != Errc::timed_out) return polled.error();
    if (!failure.empty()) return Error(Errc::io_error, "cannot print a message: " + failure);
    if (to_ack.empty()) {
      if (limits.idle(idle_since)) break;
      continue;
    }
    io.out.flush();
    if (!io.out) return Error(Errc::io_error, "cannot write to standard output");
    printed += to_ack.size();
    idle_since = Clock::now();
    for (const std::uint64_t offset : to_ack) {
      auto acked = member->ack(offset);
      if (acked) continue;
      if (acked.code() != Errc::aborted) return acked.error();
      // Taken over after the processing deadline: the rest goes to another member too.
      io.err << "ringbus: " << acked.error().message() << "; its messages will be delivered again"
             << std::endl;
      break;
    }
  }
  return {};
}

}  // namespace

Result<StartFrom> parse_from(std::string_view text) {
  if (text == "earliest") return StartFrom::earliest();
  if (text == "latest") return StartFrom::latest();
  std::uint64_t offset = 0;
  bool ok = !text.empty() && text.size() <= 20;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '9';
    if (!ok) break;
    const auto d = static_cast<std::uint64_t>(c - '0');
    ok = offset <= (std::numeric_limits<std::uint64_t>::max() - d) / 10;
    offset = offset * 10 + d;
  }
  if (!ok) {
    return invalid("--from '" + std::string(text) +
                   "' is invalid: expected earliest, latest or a byte offset");
  }
  return StartFrom::at(offset);
}

void configure(CLI::App& app, Options& o) {
  app.description("ringbus: create topics of a shared-memory bus, publish to them, read them");
  app.set_version_flag("--version", "ringbus " RINGBUS_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();  // inherited by subcommands: --dir may come after them too
  app.add_option("--dir", o.dir,
                 "Bus directory (default: $RINGBUS_DIR, else /dev/shm/ringbus-$UID)");

  auto* topic = app.add_subcommand("topic", "Create, list, describe and delete topics");
  topic->require_subcommand(1);

  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("TOPIC", o.create.name, "Topic name: 1-200 of A-Z a-z 0-9 . _ -")->required();
  create
      ->add_option("--capacity", o.create.capacity,
                   "Ring size in bytes, a power of two from 4KiB to 16GiB (suffixes K, M, G)")
      ->required();
  create
      ->add_option("--policy", o.create.policy,
                   "When the slowest durable reader is a ring behind: block (producers wait) "
                   "or overwrite (readers are lapped)")
      ->capture_default_str();
  create->add_option("--max-message", o.create.max_message,
                     "Largest key + value in bytes (default: capacity / 4)");
  create->add_option("--max-readers", o.create.max_readers, "Reader slots, 1 to 4096")
      ->capture_default_str();
  create
      ->add_option("--stuck-timeout-ms", o.create.stuck_timeout_ms,
                   "A claim not committed within this time is skipped as padding")
      ->capture_default_str();
  create->add_option("--mode", o.create.mode, "File mode: 0600, 0640 or 0660")
      ->capture_default_str();
  create->callback([&o] { o.command = Command::topic_create; });

  auto* list = topic->add_subcommand("list", "Print the topic names, one per line");
  list->callback([&o] { o.command = Command::topic_list; });

  auto* describe = topic->add_subcommand("describe", "Print a topic's configuration and readers");
  describe->add_option("TOPIC", o.topic, "Topic name")->required();
  describe->add_flag("--json", o.json, "One JSON object instead of text");
  describe->callback([&o] { o.command = Command::topic_describe; });

  auto* remove = topic->add_subcommand("delete", "Remove a topic's file");
  remove->add_option("TOPIC", o.topic, "Topic name")->required();
  remove->callback([&o] { o.command = Command::topic_delete; });

  auto* remove_reader =
      topic->add_subcommand("remove-reader",
                            "Remove a persistent reader whose process is gone, so it stops holding "
                            "producers back");
  remove_reader->add_option("TOPIC", o.topic, "Topic name")->required();
  remove_reader
      ->add_option("READER", o.reader,
                   "Persistent reader name, or group:NAME for a queue group with no "
                   "live member")
      ->required();
  remove_reader->callback([&o] { o.command = Command::topic_remove_reader; });

  auto* dump = topic->add_subcommand("dump", "Print a topic's frames one per line (debugging)");
  dump->add_option("TOPIC", o.dump.topic, "Topic name")->required();
  dump->add_option("--from", o.dump.from, "First frame: earliest, latest or a byte offset")
      ->capture_default_str();
  dump->add_option_function<std::int64_t>(
      "--count", [&o](const std::int64_t& n) { o.dump.count = n; },
      "Stop after this many messages (default: up to the tail)");
  dump->callback([&o] { o.command = Command::topic_dump; });

  auto* produce = app.add_subcommand("produce", "Publish one message per line of standard input");
  produce->add_option("TOPIC", o.produce.topic, "Topic name")->required();
  produce->add_option("--key", o.produce.key, "Key of every message (default: none)");
  produce->add_option_function<int>(
      "--cpu", [&o](const int& cpu) { o.produce.cpu = cpu; }, "Pin to this OS processor");
  produce->add_option_function<std::int64_t>(
      "--timeout-ms", [&o](const std::int64_t& ms) { o.produce.timeout_ms = ms; },
      "Fail when a full ring (block policy) has no space for this long (default: wait forever)");
  produce
      ->add_option("--acks", o.produce.acks,
                   "none | disk (wait until the topic's bridge fsynced it) | mirror (until a "
                   "receiving bridge holds it); waits whenever the input pauses")
      ->check(CLI::IsMember({"none", "disk", "mirror"}));
  produce->add_option("--acks-timeout-ms", o.produce.acks_timeout_ms,
                      "Fail if an ack takes longer (default 30000)");
  produce->callback([&o] { o.command = Command::produce; });

  auto* consume = app.add_subcommand("consume", "Print messages, one per line");
  consume->add_option("TOPIC", o.consume.topic, "Topic name")->required();
  consume
      ->add_option("--from", o.consume.from,
                   "Where to start: earliest, latest or a byte offset (a persistent reader "
                   "resumes where it stopped instead)")
      ->capture_default_str();
  consume->add_option_function<std::int64_t>(
      "--count", [&o](const std::int64_t& n) { o.consume.count = n; },
      "Stop after this many messages");
  consume->add_option_function<std::int64_t>(
      "--timeout-ms", [&o](const std::int64_t& ms) { o.consume.timeout_ms = ms; },
      "Stop after this long without a message (default: never)");
  consume
      ->add_option_function<std::string>(
          "--format",
          [&o](const std::string& f) {
            o.consume.format = f == "json" ? Format::json : Format::text;
          },
          "text: the value; json: {offset, sequence, timestamp_ns, key, value}, plus "
          "{delivery_count, redelivered} with --group")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_str("text");
  consume->add_option_function<int>(
      "--cpu", [&o](const int& cpu) { o.consume.cpu = cpu; }, "Pin to this OS processor");
  auto* name =
      consume->add_option("--name", o.consume.name,
                          "Persistent reader: keeps its position after exit and resumes there "
                          "(and, if durable, holds producers back until resumed or removed)");
  auto* lossy = consume->add_flag("--lossy", o.consume.lossy,
                                  "Never hold producers back; report messages lost when lapped");
  consume
      ->add_option("--group", o.consume.group,
                   "Join this queue group (block topics only): each message goes to one member "
                   "and is acknowledged once printed; --from places a new group")
      ->excludes(name)
      ->excludes(lossy);
  consume->callback([&o] { o.command = Command::consume; });

  auto* topo_command = app.add_subcommand(
      "topo", "Print the CPU topology and the recommended producer/consumer core pairs");
  topo_command->callback([&o] { o.command = Command::topo; });
}

Result<void> run(const Options& options, const Io& io) {
  const Bus bus(options.dir.empty() ? Bus::default_directory() : options.dir);
  switch (options.command) {
    case Command::topic_create: return topic_create(bus, options.create);
    case Command::topic_list: return topic_list(bus, io);
    case Command::topic_describe: return topic_describe(bus, options.topic, options.json, io);
    case Command::topic_delete: return topic_delete(bus, options.topic);
    case Command::topic_remove_reader:
      return topic_remove_reader(bus, options.topic, options.reader);
    case Command::produce: return produce(bus, options.produce, io);
    case Command::topic_dump: return topic_dump(bus, options.dump, io);
    case Command::consume: return consume(bus, options.consume, io);
    case Command::topo: return topo(io);
    case Command::none: break;
  }
  return invalid("no command given (see 'ringbus --help')");
}

Result<void> topic_create(const Bus& bus, const TopicCreateArgs& args) {
  TopicOptions options;
  auto capacity = parse_size(args.capacity, "--capacity");
  if (!capacity) return capacity.error();
  options.capacity = *capacity;
  if (!args.max_message.empty()) {
    auto max_message = parse_size(args.max_message, "--max-message");
    if (!max_message) return max_message.error();
    options.max_message = *max_message;
  }
  auto policy = parse_policy(args.policy);
  if (!policy) return policy.error();
  options.policy = *policy;
  options.max_readers = args.max_readers;
  if (args.stuck_timeout_ms <= 0) {
    return invalid("--stuck-timeout-ms " + std::to_string(args.stuck_timeout_ms) +
                   " is invalid: it must be positive");
  }
  options.stuck_claim_timeout = milliseconds(args.stuck_timeout_ms);
  auto mode = parse_mode(args.mode);
  if (!mode) return mode.error();
  options.mode = *mode;
  auto created = bus.create_topic(args.name, options);
  if (!created) return created.error();
  return {};
}

Result<void> topic_list(const Bus& bus, const Io& io) {
  auto names = bus.list_topics();
  if (!names) return names.error();
  for (const auto& name : *names) io.out << name << '\n';
  return {};
}

Result<void> topic_describe(const Bus& bus, std::string_view name, bool json, const Io& io) {
  // Read-only, like a monitor: works on a 0640 topic of another user of the group.
  auto topic = bus.open_topic(name, OpenOptions{.lock_memory = false, .read_only = true});
  if (!topic) return topic.error();
  const TopicSnapshot snapshot = topic->snapshot();
  if (json) {
    io.out << describe_json(*topic, snapshot) << '\n';
  } else {
    io.out << describe_text(*topic, snapshot);
  }
  return {};
}

Result<void> topic_delete(const Bus& bus, std::string_view name) { return bus.remove_topic(name); }

Result<void> topic_remove_reader(const Bus& bus, std::string_view topic_name,
                                 std::string_view reader) {
  constexpr std::string_view kGroupPrefix = "group:";
  std::string_view bare = reader.substr(0, kGroupPrefix.size()) == kGroupPrefix
                              ? reader.substr(kGroupPrefix.size())
                              : reader;
  if (auto ok = validate_name(bare, "reader name"); !ok) return ok.error();
  auto topic = bus.open_topic(topic_name);
  if (!topic) return topic.error();
  return topic->remove_reader(reader);
}

Result<void> produce(const Bus& bus, const ProduceArgs& args, const Io& io) {
  if (auto ok = check_not_negative("--timeout-ms", args.timeout_ms); !ok) return ok;
  if (auto pinned = pin(args.cpu); !pinned) return pinned;
  auto topic = bus.open_topic(args.topic);
  if (!topic) return topic.error();
  Producer producer(*topic);
  // A full ring may stay full for hours (a durable group with no member): sleep while waiting.
  const Wait wait = args.timeout_ms ? Wait::futex(wait_timeout(*args.timeout_ms)) : Wait::futex();
  const ConstBytes key = as_bytes(args.key);
  if (auto ok = check_not_negative("--acks-timeout-ms", args.acks_timeout_ms); !ok) return ok;
  // Acks: before waiting for more input (and at the end), wait until the last message published
  // is safe, so piped input is acknowledged in batches and typed lines one by one.
  std::optional<std::uint64_t> unacked;
  auto wait_ack = [&]() -> Result<void> {
    if (!unacked || args.acks == "none") return {};
    const Wait w = Wait::futex(std::chrono::milliseconds(args.acks_timeout_ms));
    auto ok = args.acks == "disk" ? producer.wait_durable(*unacked, w)
                                  : producer.wait_mirrored(*unacked, 1, w);
    unacked.reset();
    return ok;
  };
  std::string line;
  for (std::uint64_t line_number = 1; std::getline(io.in, line); ++line_number) {
    auto published = producer.publish(key, as_bytes(line), wait);
    if (!published) {
      return publish_error(published.error(), *topic, line_number, key.size() + line.size(), args);
    }
    unacked = *published;
    if (io.in.rdbuf()->in_avail() <= 0) {
      if (auto ok = wait_ack(); !ok) return ok;
    }
  }
  if (io.in.bad()) return Error(Errc::io_error, "cannot read standard input");
  return wait_ack();
}

Result<void> consume(const Bus& bus, const ConsumeArgs& args, const Io& io) {
  auto start = parse_from(args.from);
  if (!start) return start.error();
  if (auto ok = check_not_negative("--count", args.count); !ok) return ok;
  if (auto ok = check_not_negative("--timeout-ms", args.timeout_ms); !ok) return ok;
  if (auto pinned = pin(args.cpu); !pinned) return pinned;
  auto topic = bus.open_topic(args.topic);
  if (!topic) return topic.error();
  if (!args.group.empty()) return consume_group(*topic, *start, args, io);
  SubscriberOptions options;
  options.start = *start;
  options.durability = args.lossy ? Durability::lossy : Durability::topic_default;
  options.name = args.name;
  auto subscriber = Subscriber::attach(*topic, options);
  if (!subscriber) return subscriber.error();

  const StopSignals stop_signals;
  const ConsumeLimits limits(args);
  std::string failure;  // the handler runs inside noexcept poll(): it must not throw
  auto print = [&](const Message& m) {
    if (failure.empty()) failure = print_message(m, args.format, false, io.out);
  };

  std::uint64_t printed = 0;
  auto idle_since = Clock::now();
  while (printed < limits.count && g_stop == 0) {
    const auto max =
        static_cast<std::size_t>(std::min<std::uint64_t>(limits.count - printed, kBatch));
    auto polled = subscriber->poll_wait(print, max, Wait::futex(limits.slice(idle_since)));
    if (!polled) {
      if (polled.code() != Errc::timed_out) return polled.error();
      if (limits.idle(idle_since)) break;
      continue;
    }
    if (!failure.empty()) return Error(Errc::io_error, "cannot print a message: " + failure);
    if (polled->messages > 0) {
      io.out.flush();
      if (!io.out) return Error(Errc::io_error, "cannot write to standard output");
      printed += polled->messages;
      idle_since = Clock::now();
    }
    if (polled->lost_messages > 0 || polled->lost_bytes > 0) {
      io.err << "ringbus: lapped: lost " << polled->lost_messages << " messages ("
             << polled->lost_bytes << " bytes)" << std::endl;
    }
    // A wait can end without a message to poll (e.g. a claim at the cursor about to be
    // skipped): that is idle time too, or --timeout-ms would never be reached.
    if (polled->messages == 0 && limits.idle(idle_since)) break;
  }
  return {};
}

}  // namespace ringbus::cli
