// ringbus-chaos: the chaos soak (docs/chaos.md). Producer processes (one message per call and
// batches), persistent durable readers, a lossy reader, two queue groups and a ringbus-bridge
// recording to disk all work one small block topic while a supervisor kill -9s any of them at
// random moments (and SIGSTOPs some past the stuck-claim timeout), restarting each. At the end,
// from the messages themselves (each carries its producer and a per-producer counter):
//   - every message a producer was told was published is in the disk log, and was seen, in
//     per-producer order, by every durable reader (a reader never skips a counter);
//   - every group handled every message at least once, and a first delivery twice only where a
//     producer restarted and may have published that counter again;
//   - the lossy reader's loss counts match the sequence numbers it missed, exactly;
//   - nothing is stuck: producers finish, readers and groups catch up, the bridge syncs;
//   - log recovery after each bridge kill set nothing aside as damaged.
// Prints the figures and exits 1 with every failure found.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "log/log_reader.hpp"
#include "ringbus/group.hpp"
#include "ringbus/inspector.hpp"
#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"

namespace {

using namespace ringbus;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kProducers = 3;  // 0 and 1 publish one message per call, 2 in batches of 8
constexpr int kBatch = 8;
constexpr int kDurableReaders = 2;
constexpr int kGroups = 2;
constexpr int kMembers[kGroups] = {3, 2};
constexpr const char* kTopic = "chaos";
constexpr std::uint64_t kRingBytes = 64 * 1024;
constexpr auto kStuckTimeout = 200ms;
constexpr auto kProcessingDeadline = 500ms;
// Producers publish at most this many messages per millisecond each, so a run of N seconds
// needs counters below kRatePerMs * 1000 * N.
constexpr std::uint64_t kRatePerMs = 40;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void raise_max(std::atomic<std::int64_t>& target, std::int64_t value) {
  std::int64_t seen = target.load(std::memory_order_relaxed);
  while (value > seen && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// Everything the processes share, in one anonymous shared mapping made before the first fork.
// Counters are per producer; the per-message tables are indexed [producer][counter].
struct Shared {
  std::atomic<bool> stop_producers{false};
  std::atomic<bool> stop_all{false};
  std::atomic<std::uint64_t> published[kProducers];  // counters below it were acknowledged
  std::atomic<std::int64_t> producer_stall_ns{0};
  std::atomic<std::int64_t> reader_stall_ns{0};
  // Durable readers: the next counter each expects from each producer.
  std::atomic<std::uint64_t> expected[kDurableReaders][kProducers];
  std::atomic<std::uint64_t> duplicates[kDurableReaders];
  std::atomic<std::uint64_t> group_redeliveries[kGroups];
  std::atomic<std::uint64_t> lossy_seen{0};
  std::atomic<std::uint64_t> lossy_lost{0};
  std::atomic<std::uint64_t> reported{0};     // errors components reported (--corrupt)
  std::atomic<std::uint64_t> corruptions{0};  // writes of the corrupter (--corrupt)
  std::atomic<int> failures{0};
  char failure[8][256];
};

struct Tables {
  std::uint64_t per_producer = 0;                  // counters per producer that fit
  std::atomic<std::uint8_t>* handled = nullptr;    // [group][producer][counter], saturating
  std::atomic<std::uint8_t>* first = nullptr;      // first deliveries, the same shape
  std::atomic<std::uint8_t>* restarted = nullptr;  // [producer][counter]: may be published twice
  std::size_t group_index(int g, int p, std::uint64_t c) const {
    return (static_cast<std::size_t>(g) * kProducers + static_cast<std::size_t>(p)) * per_producer +
           c;
  }
};

Shared* shared = nullptr;
Tables tables;

void fail(const std::string& what) {
  const int n = shared->failures.fetch_add(1);
  if (n < 8) std::snprintf(shared->failure[n], sizeof shared->failure[n], "%s", what.c_str());
}

// What a component reports about the bus. With --corrupt (a writer scribbles over the topic),
// errors are expected: they are counted, and only crashes, hangs and the supervisor's checks
// are failures.
bool corrupting = false;

void report(const std::string& what) {
  if (corrupting) {
    shared->reported.fetch_add(1);
    return;
  }
  fail(what);
}

void bump(std::atomic<std::uint8_t>& cell) {
  std::uint8_t v = cell.load(std::memory_order_relaxed);
  while (v < 250 && !cell.compare_exchange_weak(v, static_cast<std::uint8_t>(v + 1))) {
  }
}

struct Payload {
  std::uint64_t producer;
  std::uint64_t counter;
};

bool decode(const Message& m, Payload& out) {
  if (m.value.size() < sizeof(Payload)) return false;
  std::memcpy(&out, m.value.data(), sizeof out);
  return out.producer < kProducers && out.counter < tables.per_producer;
}

std::string bus_dir;
std::string log_dir;
std::string bridge_path;

// The topic, once it opens (a corrupted header makes opening fail until it is repaired or
// the run ends); nullopt when told to stop first.
std::optional<Topic> open_topic() {
  while (!shared->stop_all.load()) {
    auto t = Bus(bus_dir).open_topic(kTopic);
    if (t) return *t;
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

// ---- the roles, each run in a child process --------------------------------------------------

int run_producer(int id) {
  auto topic = open_topic();
  if (!topic) return 0;
  Producer producer(*topic);
  std::uint64_t counter = shared->published[id].load();
  // A restart may publish again what the killed process published but was not told about.
  for (int i = 0; i < kBatch && counter + i < tables.per_producer; ++i) {
    tables.restarted[static_cast<std::size_t>(id) * tables.per_producer + counter + i].store(1);
  }
  std::vector<std::byte> value(sizeof(Payload) + 120);
  std::mt19937 rng(static_cast<unsigned>(getpid()));
  const std::string key = "p" + std::to_string(id);
  std::int64_t window = now_ns();
  std::uint64_t in_window = 0;
  while (!shared->stop_producers.load() && counter + kBatch <= tables.per_producer) {
    if (in_window >= kRatePerMs) {  // pace: kRatePerMs per millisecond at most
      const std::int64_t wait = window + 1'000'000 - now_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
      window = now_ns();
      in_window = 0;
    }
    const std::int64_t t0 = now_ns();
    if (id == kProducers - 1) {
      std::vector<std::vector<std::byte>> values(kBatch);
      std::vector<Record> records(kBatch);
      for (int i = 0; i < kBatch; ++i) {
        const Payload p{static_cast<std::uint64_t>(id), counter + static_cast<std::uint64_t>(i)};
        values[i].assign(sizeof p + rng() % 100, std::byte{0x5a});
        std::memcpy(values[i].data(), &p, sizeof p);
        records[i] = Record{as_bytes(key), {values[i].data(), values[i].size()}};
      }
      auto r = producer.publish_batch(records, Wait::futex(1s));
      if (!r) {
        // aborted: stopped past the stuck-claim timeout, the batch became padding: again.
        if (r.error().code() == Errc::timed_out || r.error().code() == Errc::aborted) continue;
        report("producer " + std::to_string(id) + ": " + r.error().message());
        return 1;
      }
      counter += kBatch;
    } else {
      const Payload p{static_cast<std::uint64_t>(id), counter};
      std::memcpy(value.data(), &p, sizeof p);
      auto r =
          producer.publish(as_bytes(key), {value.data(), sizeof p + rng() % 120}, Wait::futex(1s));
      if (!r) {
        if (r.error().code() == Errc::timed_out || r.error().code() == Errc::aborted) continue;
        report("producer " + std::to_string(id) + ": " + r.error().message());
        return 1;
      }
      ++counter;
    }
    shared->published[id].store(counter);
    raise_max(shared->producer_stall_ns, now_ns() - t0);
    in_window += id == kProducers - 1 ? kBatch : 1;
  }
  return 0;
}

int run_durable_reader(int r, int incarnation) {
  SubscriberOptions options;
  options.start = StartFrom::earliest();
  options.name = "durable-" + std::to_string(r);
  options.durability = Durability::durable;
  auto topic = open_topic();
  if (!topic) return 0;
  auto sub = Subscriber::attach(*topic, options);
  for (int tries = 0; !sub && sub.error().code() == Errc::busy && tries < 500; ++tries) {
    std::this_thread::sleep_for(10ms);  // our killed predecessor is not reaped yet
    sub = Subscriber::attach(*topic, options);
  }
  if (!sub) {
    report("durable reader " + std::to_string(r) + ": " + sub.error().message());
    return 1;
  }
  std::int64_t last = now_ns();
  while (!shared->stop_all.load()) {
    bool bad = false;
    auto got = sub->poll_wait(
        [&](const Message& m) {
          if (bad) return;
          Payload p{};
          if (!decode(m, p)) {
            report("durable reader " + std::to_string(r) + ": a message not of this soak at " +
                   std::to_string(m.offset));
            bad = true;
            return;
          }
          auto& expected = shared->expected[r][p.producer];
          const std::uint64_t want = expected.load();
          if (p.counter == want) {
            expected.store(want + 1);
          } else if (p.counter > want) {
            const auto snap = sub->topic().snapshot();
            report("durable reader " + std::to_string(r) + " skipped producer " +
                   std::to_string(p.producer) + "'s counters [" + std::to_string(want) + ", " +
                   std::to_string(p.counter) + ") at offset " + std::to_string(m.offset) +
                   " (replaying " + std::to_string(sub->replaying()) + ", lost " +
                   std::to_string(sub->lost_bytes()) + " bytes; tail " + std::to_string(snap.tail) +
                   ", earliest " + std::to_string(snap.earliest) + ", recorded " +
                   std::to_string(snap.recorder ? snap.recorder->recorded_position : 0) +
                   ", durable " +
                   std::to_string(snap.recorder ? snap.recorder->durable_position : 0) +
                   ", incarnation " + std::to_string(incarnation) + ")");
            bad = true;
          } else {
            shared->duplicates[r].fetch_add(1);  // read again after a restart of either side
          }
        },
        256, Wait::futex(100ms));
    if (bad) return 1;
    if (!got) {
      if (got.error().code() == Errc::timed_out) continue;
      report("durable reader " + std::to_string(r) + ": " + got.error().message());
      return 1;
    }
    if (got->messages > 0) {
      const std::int64_t now = now_ns();
      if (!shared->stop_producers.load()) raise_max(shared->reader_stall_ns, now - last);
      last = now;
    }
  }
  return 0;
}

// Sequence numbers say what a lossy reader missed: between its first and last message, each
// number was read or reported lost, except those of claims aborted by killed producers (their
// frames became padding without a message: at most a batch's worth of numbers per claim).
int run_lossy_reader() {
  auto opened = open_topic();
  if (!opened) return 0;
  const Topic& topic = *opened;
  SubscriberOptions options;
  options.durability = Durability::lossy;
  auto sub = Subscriber::attach(topic, options);
  if (!sub) {
    report("lossy reader: " + sub.error().message());
    return 1;
  }
  bool started = false;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::uint64_t seen = 0;
  std::uint64_t lost_before = 0;  // reported before the first message read
  while (!shared->stop_all.load()) {
    auto got = sub->poll_wait(
        [&](const Message& m) {
          if (!started) {
            started = true;
            first = m.sequence;
            lost_before = sub->lost_messages();
          }
          last = m.sequence;
          ++seen;
        },
        256, Wait::futex(100ms));
    if (!got) {
      if (got.error().code() == Errc::timed_out) continue;
      report("lossy reader: " + got.error().message());
      return 1;
    }
    if (got->messages == 0 || !started) continue;
    const std::uint64_t lost = sub->lost_messages() - lost_before;
    const std::uint64_t span = last - first + 1;
    if (seen + lost > span ||
        (seen + lost < span && span - seen - lost > topic.snapshot().aborted_claims *
                                                        static_cast<std::uint64_t>(kBatch))) {
      report("lossy reader: read " + std::to_string(seen) + " and was told of " +
             std::to_string(lost) + " lost, but sequence numbers " + std::to_string(first) + ".." +
             std::to_string(last) + " are " + std::to_string(span));
      return 1;
    }
    shared->lossy_seen.store(seen);
    shared->lossy_lost.store(lost);
  }
  return 0;
}

int run_member(int g) {
  GroupOptions options;
  options.start = StartFrom::earliest();
  options.processing_deadline =
      std::chrono::duration_cast<std::chrono::milliseconds>(kProcessingDeadline);
  auto topic = open_topic();
  if (!topic) return 0;
  auto member = GroupMember::join(*topic, "group-" + std::to_string(g), options);
  if (!member) {
    report("group " + std::to_string(g) + " member: " + member.error().message());
    return 1;
  }
  while (!shared->stop_all.load()) {
    std::uint64_t last = 0;
    bool any = false;
    bool bad = false;
    auto got = member->poll_wait(
        [&](const Message& m) {
          Payload p{};
          if (!decode(m, p)) {
            bad = true;
            return;
          }
          bump(tables.handled[tables.group_index(g, static_cast<int>(p.producer), p.counter)]);
          if (m.delivery_count == 1) {
            bump(tables.first[tables.group_index(g, static_cast<int>(p.producer), p.counter)]);
          } else {
            shared->group_redeliveries[g].fetch_add(1);
          }
          last = m.offset;
          any = true;
        },
        16, Wait::futex(100ms));
    if (bad) {
      report("group " + std::to_string(g) + ": a message not of this soak");
      return 1;
    }
    if (!got) {
      const Errc code = got.error().code();
      if (code == Errc::timed_out || code == Errc::invalid_argument) continue;
      report("group " + std::to_string(g) + " member: " + got.error().message());
      return 1;
    }
    if (any) {
      // Work on the batch a little: a kill or stop in this window leaves it unacknowledged, to
      // be taken over and delivered again.
      std::this_thread::sleep_for(200us);
      auto acked = member->ack_up_to(last);
      // aborted: the batch went to another member after the deadline (we were stopped).
      if (!acked && acked.error().code() != Errc::aborted) {
        report("group " + std::to_string(g) + " ack: " + acked.error().message());
        return 1;
      }
    }
  }
  return 0;
}

// --corrupt: scribbles random bytes over the topic file (header, reader slots and ring, a third
// each) every 1-3 ms while everyone works.
int run_corrupter(int incarnation) {
  const std::string path = bus_dir + "/" + kTopic;
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) return 1;
  const auto size = static_cast<std::size_t>(st.st_size);
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return 1;
  auto* bytes = static_cast<std::uint8_t*>(map);
  const std::size_t ring_offset = size - kRingBytes;
  std::mt19937_64 rng(static_cast<std::uint64_t>(now_ns()) +
                      static_cast<std::uint64_t>(incarnation));
  while (!shared->stop_all.load()) {
    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 2000));
    std::size_t at = 0;
    switch (rng() % 3) {
      // The first 128 bytes say what the file is (magic, version, geometry): damaged, nothing
      // opens it any more, so they are hit only once in ten header writes.
      case 0: at = rng() % 10 == 0 ? rng() % 128 : 128 + rng() % (4096 - 128); break;
      case 1: at = 4096 + rng() % (ring_offset - 4096); break;
      default: at = ring_offset + rng() % kRingBytes; break;
    }
    const std::uint64_t value = rng() % 4 == 0 ? rng() % 65536 : rng();  // small numbers too
    std::memcpy(bytes + (at & ~std::size_t{7}), &value, (rng() % 2 == 0) ? 8 : 1 + rng() % 7);
    shared->corruptions.fetch_add(1);
  }
  munmap(map, size);
  return 0;
}

int run_bridge(int incarnation) {
  const std::string err = log_dir + "/../bridge-" + std::to_string(incarnation) + ".log";
  std::freopen(err.c_str(), "w", stderr);
  std::freopen("/dev/null", "w", stdout);
  execl(bridge_path.c_str(), bridge_path.c_str(), "--bus-dir", bus_dir.c_str(), "--log-dir",
        log_dir.c_str(), "--record", kTopic, "--scan-interval", "100ms", "--retry-interval",
        "100ms", "--fsync", "interval", "--fsync-interval", "20ms", "--segment-bytes", "256KiB",
        static_cast<char*>(nullptr));
  std::perror("exec ringbus-bridge");
  return 1;
}

// ---- the supervisor ---------------------------------------------------------------------------

struct Component {
  std::string name;
  std::function<int(int)> role;  // gets its incarnation number
  bool producer = false;
  bool bridge = false;
  pid_t pid = -1;
  int incarnation = 0;
  int kills = 0;
  int stops = 0;
  int crashes = 0;
};

void spawn(Component& c) {
  const int incarnation = c.incarnation++;
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) std::_Exit(c.role(incarnation));
  c.pid = pid;
}

// Waits at most `timeout` for `pid`; kills it after that. Returns its wait status, or -1.
int reap(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -1;
    if (Clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(5ms);
  }
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// Polls `done` every 50 ms for at most `timeout`.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

bool groups_handled_everything(int g) {
  for (int p = 0; p < kProducers; ++p) {
    const std::uint64_t n = shared->published[p].load();
    for (std::uint64_t c = 0; c < n; ++c) {
      if (tables.handled[tables.group_index(g, p, c)].load() == 0) return false;
    }
  }
  return true;
}

void check_groups() {
  for (int g = 0; g < kGroups; ++g) {
    for (int p = 0; p < kProducers; ++p) {
      const std::uint64_t n = shared->published[p].load();
      for (std::uint64_t c = 0; c < n; ++c) {
        const auto i = tables.group_index(g, p, c);
        if (tables.handled[i].load() == 0) {
          fail("group " + std::to_string(g) + " never handled producer " + std::to_string(p) +
               "'s counter " + std::to_string(c));
          break;
        }
        const bool may_repeat =
            tables.restarted[static_cast<std::size_t>(p) * tables.per_producer + c].load() != 0;
        if (tables.first[i].load() > 1 && !may_repeat) {
          fail("group " + std::to_string(g) + " delivered producer " + std::to_string(p) +
               "'s counter " + std::to_string(c) + " twice as a first delivery");
          break;
        }
      }
    }
  }
}

// Every published counter is in the disk log (read with the log reader, not the ring).
std::uint64_t check_log() {
  std::vector<std::vector<bool>> present(kProducers);
  for (int p = 0; p < kProducers; ++p) present[p].assign(shared->published[p].load(), false);
  detail::LogReader reader(log_dir + "/" + kTopic, 512, 64);
  std::uint64_t position = 0;
  if (!reader.earliest(position)) {
    fail("the disk log has no segment");
    return 0;
  }
  std::uint64_t frames = 0;
  for (;;) {
    const auto read = reader.read(position);
    using Status = detail::LogReader::Status;
    if (read.status == Status::end) break;
    if (read.status != Status::frame) {
      fail("the disk log at offset " + std::to_string(position) + ": " +
           (read.status == Status::corrupt ? "corrupt: " + reader.error() : "a gap"));
      break;
    }
    const auto* f = read.frame;
    if (layout::commit_kind(f->commit) == layout::FrameKind::kData) {
      const std::uint64_t length = layout::commit_length(f->commit);
      Payload p{};
      if (length >= f->key_length + sizeof p) {
        std::memcpy(&p, reinterpret_cast<const std::byte*>(f + 1) + f->key_length, sizeof p);
        if (p.producer < kProducers && p.counter < present[p.producer].size()) {
          present[p.producer][p.counter] = true;
        }
      }
      ++frames;
    }
    position += read.stride;
  }
  for (int p = 0; p < kProducers; ++p) {
    const auto missing = std::find(present[p].begin(), present[p].end(), false);
    if (missing != present[p].end()) {
      fail("the disk log lacks producer " + std::to_string(p) + "'s counter " +
           std::to_string(missing - present[p].begin()));
    }
  }
  return frames;
}

void check_bridge_logs(const std::string& root, int incarnations, int& recoveries) {
  for (int i = 0; i < incarnations; ++i) {
    std::ifstream in(root + "/bridge-" + std::to_string(i) + ".log");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("log recovery") != std::string::npos) ++recoveries;
      if (line.find("damaged") != std::string::npos ||
          line.find("set aside") != std::string::npos) {
        fail("bridge " + std::to_string(i) + ": " + line);
      }
    }
  }
}

// What describe and the monitor show (the topic's snapshot) agrees with what the checkers
// counted: everyone caught up shows no lag, and the message counts bracket the log's.
void check_counters(const TopicSnapshot& snap, std::uint64_t published, std::uint64_t log_frames) {
  for (const auto& r : snap.readers) {
    const bool ours = r.name.rfind("durable-", 0) == 0 || r.name.rfind("group:", 0) == 0 ||
                      r.name == "ringbus-bridge";
    if (ours && r.persistent && (r.lag_bytes != 0 || r.lag_messages != 0 || r.in_flight != 0)) {
      fail("describe shows '" + r.name + "' " + std::to_string(r.lag_bytes) + " bytes (" +
           std::to_string(r.lag_messages) + " messages) behind with " +
           std::to_string(r.in_flight) + " in flight after everyone caught up");
    }
  }
  if (!snap.recorder || snap.recorder->lag_bytes != 0 ||
      snap.recorder->recorded_position != snap.tail) {
    fail("describe shows the recorder behind the tail after it caught up");
  }
  if (log_frames < published || log_frames > snap.messages) {
    fail("the log holds " + std::to_string(log_frames) + " messages: fewer than the " +
         std::to_string(published) + " confirmed, or more than the " +
         std::to_string(snap.messages) + " the topic counts as claimed");
  }
}

template <typename T>
T* shared_array(std::size_t n) {
  void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("mmap");
    std::exit(2);
  }
  return static_cast<T*>(p);  // zero-filled: atomics of zero
}

// --corrupt: what the supervisor reads of the scribbled topic, as describe and topic dump do.
void inspect_everything(const Topic& topic) {
  (void)topic.snapshot();
  RingInspector inspector(topic, 64);
  auto at = inspector.resolve(StartFrom::earliest());
  if (!at) return;
  std::uint64_t offset = *at;
  for (int i = 0; i < 2000 && offset < inspector.tail(); ++i) {
    auto frame = inspector.read(offset);
    if (!frame || frame->stride == 0 || frame->state == FrameState::pending ||
        frame->state == FrameState::overwritten) {
      break;
    }
    offset += frame->stride;
  }
}

// --corrupt: everyone must stop when told, by themselves, whatever the topic holds.
void finish_corrupted(std::vector<Component>& components) {
  shared->stop_producers.store(true);
  shared->stop_all.store(true);
  for (auto& c : components) {
    if (c.bridge) continue;
    const int status = reap(c.pid, 30s);
    if (status < 0) {
      fail(c.name + " did not stop within 30 s");
    } else if (!WIFEXITED(status)) {
      fail(c.name + " " + describe_status(status));
    }
  }
  kill(components[0].pid, SIGTERM);
  const int status = reap(components[0].pid, 30s);
  if (status < 0) {
    fail("the bridge did not stop on SIGTERM within 30 s");
  } else if (!WIFEXITED(status)) {
    fail("the bridge " + describe_status(status));
  }
}

int report_corrupted(const std::vector<Component>& components, const std::string& root,
                     bool own_root) {
  std::printf("\ncorrupting writes %llu, errors the components reported %llu\n",
              static_cast<unsigned long long>(shared->corruptions.load()),
              static_cast<unsigned long long>(shared->reported.load()));
  std::printf("%-24s %6s %6s %10s\n", "component", "kills", "stops", "gave up");
  for (const auto& c : components) {
    std::printf("%-24s %6d %6d %10d\n", c.name.c_str(), c.kills, c.stops, c.crashes);
  }
  const int failures = shared->failures.load();
  if (failures > 0) {
    std::printf("\nFAILED: %d failure(s), the first %d:\n", failures, std::min(failures, 8));
    for (int i = 0; i < std::min(failures, 8); ++i) std::printf("  %s\n", shared->failure[i]);
    std::printf("work directory kept: %s\n", root.c_str());
    return 1;
  }
  std::printf("\nchaos soak with a corrupting writer passed: no crash, no hang\n");
  if (own_root) std::filesystem::remove_all(root);
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: ringbus-chaos [--seconds N] [--dir DIR] [--bridge PATH] [--seed N]\n"
               "  --seconds N   how long to inflict chaos (default 180), then check\n"
               "  --dir DIR     work directory (default: a new one under $TMPDIR, removed after)\n"
               "  --bridge PATH the ringbus-bridge executable\n"
               "  --seed N      random seed (default: from the clock; printed)\n"
               "  --victims P,Q kill and stop only components whose names start with P or Q\n"
               "  --corrupt     also scribble over the topic file: then only crashes and hangs\n"
               "                fail (errors are expected and counted)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long seconds = 180;
  std::vector<std::string> victims;  // only components whose name starts with one of these
  std::string root;
  bridge_path = RINGBUS_BRIDGE_PATH;
  unsigned seed = static_cast<unsigned>(now_ns());
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--corrupt") {
      corrupting = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    if (a == "--seconds") {
      seconds = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--dir") {
      root = argv[++i];
    } else if (a == "--bridge") {
      bridge_path = argv[++i];
    } else if (a == "--victims") {
      std::stringstream list(argv[++i]);
      for (std::string prefix; std::getline(list, prefix, ',');) victims.push_back(prefix);
    } else if (a == "--seed") {
      seed = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
    } else {
      return usage();
    }
  }
  if (seconds <= 0) return usage();
  const bool own_root = root.empty();
  if (own_root) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ringbus-chaos-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 2;
    }
    root = pattern;
  }
  bus_dir = root + "/bus";
  log_dir = root + "/log";
  std::filesystem::create_directories(log_dir);
  std::printf("ringbus-chaos: %ld s of chaos in %s, seed %u\n", seconds, root.c_str(), seed);
  std::fflush(stdout);

  shared = new (shared_array<Shared>(1)) Shared;
  tables.per_producer =
      (kRatePerMs * 1000 * static_cast<std::uint64_t>(seconds + 60)) / kBatch * kBatch;
  const std::size_t group_cells = kGroups * kProducers * tables.per_producer;
  tables.handled = shared_array<std::atomic<std::uint8_t>>(group_cells);
  tables.first = shared_array<std::atomic<std::uint8_t>>(group_cells);
  tables.restarted = shared_array<std::atomic<std::uint8_t>>(kProducers * tables.per_producer);

  TopicOptions options;
  options.capacity = kRingBytes;
  options.max_message = 512;
  options.max_readers = 32;
  options.stuck_claim_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(kStuckTimeout);
  auto topic = Bus(bus_dir).create_topic(kTopic, options);
  if (!topic) {
    std::fprintf(stderr, "ringbus-chaos: %s\n", topic.error().message().c_str());
    return 2;
  }
  // The persistent readers and the groups exist from offset 0 on, before anything is published.
  for (int r = 0; r < kDurableReaders; ++r) {
    SubscriberOptions o;
    o.start = StartFrom::earliest();
    o.name = "durable-" + std::to_string(r);
    o.durability = Durability::durable;
    if (!Subscriber::attach(*topic, o)) return 2;
  }
  for (int g = 0; g < kGroups; ++g) {
    GroupOptions o;
    o.start = StartFrom::earliest();
    o.processing_deadline =
        std::chrono::duration_cast<std::chrono::milliseconds>(kProcessingDeadline);
    if (!GroupMember::join(*topic, "group-" + std::to_string(g), o)) return 2;
  }

  std::vector<Component> components;
  components.push_back({"bridge", run_bridge, false, true});
  for (int p = 0; p < kProducers; ++p) {
    components.push_back(
        {"producer-" + std::to_string(p), [p](int) { return run_producer(p); }, true, false});
  }
  for (int r = 0; r < kDurableReaders; ++r) {
    components.push_back(
        {"durable-" + std::to_string(r), [r](int i) { return run_durable_reader(r, i); }});
  }
  components.push_back({"lossy", [](int) { return run_lossy_reader(); }});
  for (int g = 0; g < kGroups; ++g) {
    for (int m = 0; m < kMembers[g]; ++m) {
      components.push_back({"group-" + std::to_string(g) + "-member-" + std::to_string(m),
                            [g](int) { return run_member(g); }});
    }
  }

  if (corrupting) components.push_back({"corrupter", run_corrupter});

  // The bridge first: its durable reader must exist before producers start.
  spawn(components[0]);
  const bool recording = wait_until(
      [&] {
        const auto snap = topic->snapshot();
        return snap.recorder.has_value() && snap.recorder->alive;
      },
      60s);
  if (!recording) {
    std::fprintf(stderr, "ringbus-chaos: the bridge did not start recording in 60 s\n");
    kill(components[0].pid, SIGKILL);
    return 2;
  }
  for (std::size_t i = 1; i < components.size(); ++i) spawn(components[i]);

  std::mt19937 rng(seed);
  const auto chaos_end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < chaos_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
    for (auto& c : components) {  // a process that ended by itself failed: restart it
      int status = 0;
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) {
        ++c.crashes;
        // With a corrupter, giving up with an error is fine; a signal is a crash.
        if (!corrupting || !WIFEXITED(status)) {
          fail(c.name + " " + describe_status(status) + " by itself");
        }
        spawn(c);
      }
    }
    if (corrupting) inspect_everything(*topic);
    auto& victim = components[rng() % components.size()];
    if (!victims.empty() && std::none_of(victims.begin(), victims.end(), [&](const auto& v) {
          return victim.name.rfind(v, 0) == 0;
        })) {
      continue;
    }
    if (!victim.bridge && rng() % 4 == 0) {
      // Stopped past the stuck-claim timeout (and a group's processing deadline): others must
      // go on without it, and it must go on when continued.
      kill(victim.pid, SIGSTOP);
      ++victim.stops;
      std::this_thread::sleep_for(std::chrono::milliseconds(250 + rng() % 400));
      kill(victim.pid, SIGCONT);
    } else {
      kill(victim.pid, SIGKILL);
      ++victim.kills;
      waitpid(victim.pid, nullptr, 0);
      spawn(victim);
    }
  }

  if (corrupting) {
    finish_corrupted(components);
    return report_corrupted(components, root, own_root);
  }

  // Producers stop; everyone else must catch up with what they published.
  shared->stop_producers.store(true);
  for (auto& c : components) {
    if (!c.producer) continue;
    const int status = reap(c.pid, 60s);
    if (status < 0)
      fail(c.name + " did not stop within 60 s");
    else if (status != 0)
      fail(c.name + " " + describe_status(status));
  }
  std::uint64_t published = 0;
  for (int p = 0; p < kProducers; ++p) published += shared->published[p].load();
  for (int r = 0; r < kDurableReaders; ++r) {
    const bool caught_up = wait_until(
        [&] {
          for (int p = 0; p < kProducers; ++p) {
            if (shared->expected[r][p].load() < shared->published[p].load()) return false;
          }
          return true;
        },
        120s);
    if (!caught_up) fail("durable reader " + std::to_string(r) + " did not catch up in 120 s");
  }
  for (int g = 0; g < kGroups; ++g) {
    if (!wait_until([&] { return groups_handled_everything(g); }, 120s)) {
      fail("group " + std::to_string(g) + " did not handle everything in 120 s");
    }
  }
  const bool synced = wait_until(
      [&] {
        const auto snap = topic->snapshot();
        return snap.recorder.has_value() && snap.recorder->durable_position >= snap.tail;
      },
      120s);
  if (!synced) fail("the bridge did not make the whole stream durable in 120 s");
  shared->stop_all.store(true);
  for (auto& c : components) {
    if (c.producer || c.bridge) continue;
    const int status = reap(c.pid, 30s);
    if (status < 0)
      fail(c.name + " did not stop within 30 s");
    else if (status != 0)
      fail(c.name + " " + describe_status(status));
  }
  kill(components[0].pid, SIGTERM);
  if (reap(components[0].pid, 30s) < 0) fail("the bridge did not stop on SIGTERM within 30 s");

  check_groups();
  const std::uint64_t log_frames = check_log();
  int recoveries = 0;
  check_bridge_logs(root, components[0].incarnation, recoveries);
  const auto snap = topic->snapshot();
  check_counters(snap, published, log_frames);

  std::printf("\nmessages published %llu (", static_cast<unsigned long long>(published));
  for (int p = 0; p < kProducers; ++p) {
    std::printf("%s%llu", p == 0 ? "" : " + ",
                static_cast<unsigned long long>(shared->published[p].load()));
  }
  std::printf("), in the disk log %llu, claims aborted %llu\n",
              static_cast<unsigned long long>(log_frames),
              static_cast<unsigned long long>(snap.aborted_claims));
  std::printf("%-24s %6s %6s %8s\n", "component", "kills", "stops", "crashes");
  for (const auto& c : components) {
    std::printf("%-24s %6d %6d %8d\n", c.name.c_str(), c.kills, c.stops, c.crashes);
  }
  for (int r = 0; r < kDurableReaders; ++r) {
    std::printf("durable-%d read again after restarts: %llu\n", r,
                static_cast<unsigned long long>(shared->duplicates[r].load()));
  }
  for (int g = 0; g < kGroups; ++g) {
    std::printf("group-%d redeliveries: %llu\n", g,
                static_cast<unsigned long long>(shared->group_redeliveries[g].load()));
  }
  std::printf("lossy reader (last incarnation): read %llu, told of %llu lost\n",
              static_cast<unsigned long long>(shared->lossy_seen.load()),
              static_cast<unsigned long long>(shared->lossy_lost.load()));
  std::printf("bridge log recoveries: %d\n", recoveries);
  std::printf("longest publish call: %.1f ms, longest gap between reads: %.1f ms\n",
              static_cast<double>(shared->producer_stall_ns.load()) / 1e6,
              static_cast<double>(shared->reader_stall_ns.load()) / 1e6);

  const int failures = shared->failures.load();
  if (failures > 0) {
    std::printf("\nFAILED: %d failure(s)", failures);
    std::printf(", the first %d:\n", std::min(failures, 8));
    for (int i = 0; i < std::min(failures, 8); ++i) std::printf("  %s\n", shared->failure[i]);
    std::printf("work directory kept: %s\n", root.c_str());
    return 1;
  }
  std::printf("\nchaos soak passed\n");
  if (own_root) std::filesystem::remove_all(root);
  return 0;
}
