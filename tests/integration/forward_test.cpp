// ringbus-bridge forwarding as real processes over real sockets: a mirror on a second bus
// directory (standing in for a second host) equals the source stream message by message, through
// many producers, kill -9 of either bridge, a proxy that cuts the connection, a receiver that is
// down while the sender reads its disk log, a chain of three, producer acks, authentication,
// garbage from the network, read-only mirrors, and (as root) two network namespaces.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "ringbus/topic.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kDefaultMessages = 100'000;
#else
constexpr std::uint64_t kDefaultMessages = 1'000'000;
#endif

// The size of the big stream (test a); the fault tests use a fifth of it.
std::uint64_t stream_messages() {
  return std::max<std::uint64_t>(testing::env_or("RINGBUS_FORWARD_MESSAGES", kDefaultMessages), 30);
}

bool wait_until(const std::function<bool()>& done, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return done();
}

// Payloads are a function of (producer, index), so the test can check each producer's order.
std::string value_of(std::uint64_t producer, std::uint64_t i) {
  std::uint64_t h = testing::fnv1a(&i, sizeof i, 0xcbf29ce484222325ULL + producer);
  return std::to_string(producer) + "/" + std::to_string(i) + ":" +
         std::string(h % 24, static_cast<char>('a' + h % 26));
}
std::string key_of(std::uint64_t producer) { return "p" + std::to_string(producer); }

std::uint64_t hash_bytes(ConstBytes b) { return testing::fnv1a(b.data(), b.size()); }
std::uint64_t hash_text(const std::string& s) { return testing::fnv1a(s.data(), s.size()); }

// One message as seen by a reader: everything a mirror must repeat.
struct Digest {
  std::uint64_t offset = 0;
  std::uint64_t sequence = 0;
  std::int64_t timestamp_ns = 0;
  std::uint64_t key = 0;
  std::uint64_t value = 0;
  bool operator==(const Digest&) const = default;
};

Digest digest_of(const Message& m) {
  return Digest{m.offset, m.sequence, m.timestamp_ns, hash_bytes(m.key), hash_bytes(m.value)};
}

std::string show(const Digest& d) {
  std::ostringstream o;
  o << "{offset " << d.offset << ", seq " << d.sequence << ", ts " << d.timestamp_ns << ", key#"
    << std::hex << d.key << ", value#" << d.value << "}";
  return o.str();
}

// "" if `mirror` equals `source` (or, with prefix, is a prefix of it), else what differs.
std::string compare_streams(const std::vector<Digest>& source, const std::vector<Digest>& mirror,
                            bool prefix) {
  const std::size_t n = std::min(source.size(), mirror.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (!(source[i] == mirror[i])) {
      return "message #" + std::to_string(i) + " differs: source " + show(source[i]) + ", mirror " +
             show(mirror[i]);
    }
  }
  if (!prefix && source.size() != mirror.size()) {
    return "the source has " + std::to_string(source.size()) + " messages, the mirror " +
           std::to_string(mirror.size());
  }
  return "";
}

// Every producer's messages appear once each, in its order, with consecutive sequence numbers.
std::string check_producers(const std::vector<Digest>& stream, std::uint64_t producers,
                            std::uint64_t per_producer) {
  std::vector<std::uint64_t> next(producers, 0);
  std::vector<std::uint64_t> keys;
  for (std::uint64_t p = 0; p < producers; ++p) keys.push_back(hash_text(key_of(p)));
  for (std::size_t i = 0; i < stream.size(); ++i) {
    const Digest& d = stream[i];
    if (i > 0 && d.sequence != stream[i - 1].sequence + 1) {
      return "sequence jumps from " + std::to_string(stream[i - 1].sequence) + " to " +
             std::to_string(d.sequence) + " at message #" + std::to_string(i);
    }
    std::uint64_t p = 0;
    while (p < producers && keys[p] != d.key) ++p;
    if (p == producers) return "message #" + std::to_string(i) + " has an unknown key";
    if (next[p] >= per_producer || d.value != hash_text(value_of(p, next[p]))) {
      return "message #" + std::to_string(i) + " of producer " + std::to_string(p) +
             " is not its message " + std::to_string(next[p]) + " (lost, duplicated or reordered)";
    }
    ++next[p];
  }
  return "";
}

// A durable subscriber on its own thread that reads a topic from its first offset and keeps a
// digest of every message (and any loss or error).
class Collector {
 public:
  Collector(const Topic& topic, std::string what) : what_(std::move(what)) {
    SubscriberOptions o;
    o.start = StartFrom::earliest();
    o.durability = Durability::durable;
    auto s = Subscriber::attach(topic, o);
    if (!s) {
      ADD_FAILURE() << what_ << ": cannot attach the collector: " << s.error().message();
      return;
    }
    sub_.emplace(std::move(*s));
    thread_ = std::thread([this] { loop(); });
  }
  ~Collector() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return digests_.size();
  }
  std::vector<Digest> digests() const {
    std::lock_guard lock(mutex_);
    return digests_;
  }
  // Loss or a read error, empty when none.
  std::string problem() const {
    std::lock_guard lock(mutex_);
    return problem_;
  }

 private:
  void loop() {
    std::vector<Digest> batch;
    while (!stop_.load()) {
      batch.clear();
      auto r = sub_->poll([&](const Message& m) { batch.push_back(digest_of(m)); }, 1024);
      {
        std::lock_guard lock(mutex_);
        digests_.insert(digests_.end(), batch.begin(), batch.end());
        if (!r) {
          problem_ = what_ + ": poll failed: " + r.error().message();
          return;
        }
        if (r->lost_messages > 0 || r->lost_bytes > 0) {
          problem_ += what_ + ": lost " + std::to_string(r->lost_messages) + " messages; ";
        }
      }
      if (r->messages == 0) std::this_thread::sleep_for(milliseconds(1));
    }
  }

  std::string what_;
  std::optional<Subscriber> sub_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Digest> digests_;
  std::string problem_;
};

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(s);
    return 0;
  }
  ::close(s);
  return ntohs(a.sin_port);
}

// A connected TCP socket to 127.0.0.1:port, or -1.
int connect_to(std::uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(s);
    return -1;
  }
  return s;
}

// Reads until the peer closes or `timeout` passes. Returns what arrived, and whether it closed.
std::pair<std::string, bool> read_until_closed(int fd, milliseconds timeout) {
  std::string got;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return {got, true};
    got.append(buf, static_cast<std::size_t>(n));
  }
  return {got, false};
}

// A link message by hand (docs/formats/forward.md): u32 body length, u8 type, body.
std::string link_message(std::uint8_t type, const std::string& body) {
  std::string m(5, '\0');
  const auto length = static_cast<std::uint32_t>(body.size());
  std::memcpy(m.data(), &length, 4);
  m[4] = static_cast<char>(type);
  return m + body;
}
template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
// The link protocol version these hand-made messages speak (docs/formats/forward.md).
constexpr std::uint16_t kLinkVersion = 2;

std::string hello_body(std::uint16_t version, const std::string& topic) {
  std::string b;
  put<std::uint32_t>(b, 0x4B4E4C52);
  put<std::uint16_t>(b, version);
  put<std::uint16_t>(b, 0);
  b.append(32, 'n');
  put<std::uint64_t>(b, 1 << 20);
  put<std::uint64_t>(b, 1 << 18);
  put<std::uint32_t>(b, 64);
  put<std::uint32_t>(b, 0);
  put<std::uint64_t>(b, 2'000'000'000);
  put<std::uint16_t>(b, static_cast<std::uint16_t>(topic.size()));
  b += topic;
  put<std::uint16_t>(b, 4);
  b += "evil";
  return b;
}

// Readers and forward links of a topic, for failure messages.
std::string describe(const Topic& t) {
  std::ostringstream o;
  const TopicSnapshot snap = t.snapshot();
  o << "\n--- topic " << t.name() << ": earliest " << snap.earliest << ", tail " << snap.tail;
  for (const ReaderInfo& r : snap.readers) {
    o << "\n  reader '" << r.name << "' " << r.kind << (r.durable ? " durable" : " lossy")
      << (r.alive ? " alive" : " dead") << " at " << r.position << ", lost " << r.lost_messages;
  }
  for (const ForwardInfo& f : snap.forwards) {
    o << "\n  forward to " << f.destination << " " << f.state << ": sent " << f.sent_position
      << ", acked " << f.acked_position << ", reconnects " << f.reconnects << ", last error '"
      << f.last_error << "'";
  }
  if (snap.recorder) {
    o << "\n  recorder " << snap.recorder->state << ": recorded "
      << snap.recorder->recorded_position << ", durable " << snap.recorder->durable_position
      << ", log start " << snap.recorder->log_start;
  }
  if (snap.mirror) o << "\n  mirror applied " << snap.mirror->applied_position;
  return o.str() + "\n";
}

// A TCP proxy in a child process: accepts on `listen_port`, connects each client to `target`,
// copies both ways. Killing it cuts every connection through it.
pid_t spawn_proxy(std::uint16_t listen_port, std::uint16_t target) {
  return testing::fork_child([=]() -> int {
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(listen_port);
    for (int tries = 0; ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0; ++tries) {
      if (tries > 500) return 3;
      ::usleep(10'000);
    }
    ::listen(l, 16);
    std::vector<std::pair<int, int>> pairs;  // client, server
    for (;;) {
      std::vector<pollfd> fds{{l, POLLIN, 0}};
      for (auto [c, s] : pairs) {
        fds.push_back({c, POLLIN, 0});
        fds.push_back({s, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int c = ::accept(l, nullptr, nullptr);
        int s = c >= 0 ? connect_to(target) : -1;
        if (s < 0) {
          if (c >= 0) ::close(c);
        } else {
          pairs.emplace_back(c, s);
        }
        continue;
      }
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        for (int side = 0; side < 2; ++side) {
          const pollfd& p = fds[1 + 2 * i + side];
          if (p.revents == 0) continue;
          const int from = side == 0 ? pairs[i].first : pairs[i].second;
          const int to = side == 0 ? pairs[i].second : pairs[i].first;
          char buf[65536];
          const ssize_t n = ::recv(from, buf, sizeof buf, 0);
          bool broken = n <= 0;
          for (ssize_t done = 0; !broken && done < n;) {
            const ssize_t w =
                ::send(to, buf + done, static_cast<std::size_t>(n - done), MSG_NOSIGNAL);
            if (w <= 0) broken = true;
            done += w;
          }
          if (broken) {
            ::close(pairs[i].first);
            ::close(pairs[i].second);
            pairs[i] = {-1, -1};
            break;
          }
        }
      }
      std::erase_if(pairs, [](auto p) { return p.first < 0; });
    }
  });
}

class Forward : public ::testing::Test {
 protected:
  // Starts ringbus-bridge (with `prefix` before it, e.g. ip netns exec NS), its stderr in
  // <logs>/<name>.err (appended across restarts).
  pid_t bridge(const std::string& name, const std::vector<std::string>& args,
               const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> all = prefix;
    all.push_back(RINGBUS_BRIDGE_PATH);
    all.insert(all.end(), {"--scan-interval", "50ms"});
    all.insert(all.end(), args.begin(), args.end());
    const std::string err = logs_.path() + "/" + name + ".err";
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      FILE* e = std::freopen(err.c_str(), "a", stderr);
      FILE* o = std::freopen("/dev/null", "w", stdout);
      (void)e;
      (void)o;
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    started_.push_back(pid);
    return pid;
  }
  pid_t receiver(const std::string& name, const testing::TempBus& bus, std::uint16_t port,
                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--bus-dir", bus.dir(), "--listen",
                                     "127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    return bridge(name, args);
  }
  pid_t sender(const std::string& name, const testing::TempBus& bus, std::uint16_t port,
               std::vector<std::string> extra = {}, const std::string& glob = "*") {
    std::vector<std::string> args = {"--bus-dir", bus.dir(), "--forward",
                                     glob + "=127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    return bridge(name, args);
  }
  pid_t child(pid_t pid) {
    children_.push_back(pid);
    return pid;
  }

  void TearDown() override {
    for (pid_t pid : children_) {
      if (::kill(pid, 0) == 0) {
        ::kill(pid, SIGKILL);
        testing::wait_child(pid, seconds(10));
      }
    }
    for (pid_t pid : started_) {
      if (::kill(pid, 0) == 0) {
        ::kill(pid, SIGCONT);
        ::kill(pid, SIGKILL);
        testing::wait_child(pid, seconds(10));
      }
    }
  }

  void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(testing::wait_child(pid, seconds(30)), 128 + SIGKILL);
  }
  // SIGTERM: a clean stop.
  void stop(pid_t pid, const std::string& name) {
    ::kill(pid, SIGTERM);
    EXPECT_EQ(testing::wait_child(pid, seconds(30)), 0) << log(name);
  }
  bool alive(pid_t pid) const {
    int status = 0;
    return ::waitpid(pid, &status, WNOHANG) == 0;
  }

  std::string log(const std::string& name) const {
    std::ifstream in(logs_.path() + "/" + name + ".err");
    std::string text;
    int noise = 0;
    for (std::string line; std::getline(in, line);) {
      // A thousand dropped connections would hide everything else.
      if (line.find("dropped before its hello") != std::string::npos && ++noise > 3) continue;
      text += line + "\n";
    }
    if (text.size() > 6000) text = "...\n" + text.substr(text.size() - 6000);
    return "\n--- " + name + " log ---\n" + text;
  }
  std::string full_log(const std::string& name) const {
    std::ifstream in(logs_.path() + "/" + name + ".err");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string logs(const std::vector<std::string>& names) const {
    std::string all;
    for (const auto& n : names) all += log(n);
    return all;
  }

  // A mirror made ahead of the receiver (so a collector reads it from its first offset); the
  // receiver finds it and resumes at its end.
  static TopicOptions options(std::uint64_t capacity, Policy policy = Policy::block) {
    TopicOptions o;
    o.capacity = capacity;
    o.policy = policy;
    return o;
  }
  static TopicOptions mirror_options(TopicOptions o) {
    o.mirror_of = "source (test)";
    return o;
  }

  // Waits until a forwarding bridge has its persistent reader in `topic` (so nothing published
  // from now on can be overwritten before it is forwarded).
  static bool forwarder_attached(const Topic& topic) {
    return wait_until(
        [&] {
          for (const ReaderInfo& r : topic.snapshot().readers) {
            if (r.name.find("-to-") != std::string::npos && r.alive) return true;
          }
          return false;
        },
        seconds(60));
  }

  // Producer processes publishing `per_producer` messages each into `topic` of `dir`; each
  // waits at most `each_wait` per message and exits 3 if it had to give up.
  std::vector<pid_t> producers(const std::string& dir, const std::string& topic,
                               std::uint64_t count, std::uint64_t per_producer,
                               seconds each_wait = seconds(120),
                               std::chrono::microseconds pause = std::chrono::microseconds(0)) {
    std::vector<pid_t> pids;
    for (std::uint64_t p = 0; p < count; ++p) {
      pids.push_back(child(testing::fork_child([=]() -> int {
        Bus bus(dir);
        auto t = bus.open_topic(topic);
        if (!t) return 2;
        Producer producer(*t);
        const std::string key = key_of(p);
        for (std::uint64_t i = 0; i < per_producer; ++i) {
          const std::string value = value_of(p, i);
          auto r = producer.publish(as_bytes(key), as_bytes(value), Wait::spin_yield(each_wait));
          if (!r) {
            std::fprintf(stderr, "producer %llu: %s\n", static_cast<unsigned long long>(p),
                         r.error().message().c_str());
            return 3;
          }
          if (pause.count() > 0 && i % 64 == 0) std::this_thread::sleep_for(pause);
        }
        return 0;
      })));
    }
    return pids;
  }
  static ConstBytes as_bytes(const std::string& s) {
    return ConstBytes(reinterpret_cast<const std::byte*>(s.data()), s.size());
  }

  // Waits until both collectors hold `total` messages, then checks the source's producers and
  // that the mirror equals it.
  void expect_converged(const Collector& source, const Collector& mirror, std::uint64_t producers,
                        std::uint64_t per_producer, seconds timeout,
                        const std::vector<std::string>& names) {
    const std::uint64_t total = producers * per_producer;
    const bool done = wait_until(
        [&] {
          return (source.size() >= total && mirror.size() >= total) || !source.problem().empty() ||
                 !mirror.problem().empty();
        },
        timeout);
    EXPECT_EQ(source.problem(), "");
    EXPECT_EQ(mirror.problem(), "") << logs(names);
    EXPECT_TRUE(done) << "the mirror did not converge within " << timeout.count()
                      << " s: the source has " << source.size() << " of " << total
                      << " messages, the mirror " << mirror.size() << logs(names);
    std::this_thread::sleep_for(milliseconds(200));  // any duplicate would arrive by now
    const auto a = source.digests();
    const auto b = mirror.digests();
    EXPECT_EQ(a.size(), total);
    EXPECT_EQ(check_producers(a, producers, per_producer), "") << "(source stream)";
    EXPECT_EQ(compare_streams(a, b, false), "") << logs(names);
  }

  void wait_producers(const std::vector<pid_t>& pids, seconds timeout,
                      const std::vector<std::string>& names) {
    for (pid_t p : pids) {
      EXPECT_EQ(testing::wait_child(p, timeout), 0)
          << "a producer failed or did not finish in " << timeout.count() << " s" << logs(names);
    }
  }

  testing::TempDir logs_;
  std::vector<pid_t> started_;
  std::vector<pid_t> children_;
};

// (a) Three producer processes on A, A forwards to B: B's stream is A's, message by message.
TEST_F(Forward, ManyProducersMirrorEqualsSource) {
  testing::TempBus a, b;
  const std::uint64_t per = stream_messages() / 3;
  const auto t0 = Clock::now();
  Topic ta = a.create("orders", options(1 << 20));
  Topic tb = b.create("orders", mirror_options(options(1 << 20)));
  Collector ca(ta, "source A"), cb(tb, "mirror B");
  const std::uint16_t port = free_port();
  receiver("B", b, port);
  sender("A", a, port);
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  auto pids = producers(a.dir(), "orders", 3, per);
  wait_producers(pids, seconds(300), {"A", "B"});
  expect_converged(ca, cb, 3, per, seconds(300), {"A", "B"});
  std::printf("forwarded %llu messages in %.1f s\n", static_cast<unsigned long long>(3 * per),
              std::chrono::duration<double>(Clock::now() - t0).count());
}

// (b, c) kill -9 of one bridge at random moments while producers run; after each kill what B
// holds is a prefix of A's stream, and at the end B equals A.
class ForwardKill : public Forward {
 protected:
  void run(bool kill_sender) {
    testing::TempBus a, b;
    const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 10, 1000);
    Topic ta = a.create("orders", options(1 << 20));
    Topic tb = b.create("orders", mirror_options(options(1 << 20)));
    Collector ca(ta, "source A"), cb(tb, "mirror B");
    const std::uint16_t port = free_port();
    pid_t r = receiver("B", b, port);
    pid_t s = sender("A", a, port);
    ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
    // Slowed down a little, so the kills land while it publishes.
    auto pids = producers(a.dir(), "orders", 2, per, seconds(300), std::chrono::microseconds(200));
    std::mt19937_64 random(::getpid());
    const int kills = 12;
    for (int k = 0; k < kills; ++k) {
      std::this_thread::sleep_for(milliseconds(100 + random() % 500));
      if (kill_sender) {
        kill9(s);
        // The dead forwarder's reader holds what B has not acknowledged.
        const TopicSnapshot snap = ta.snapshot();
        const std::uint64_t applied = tb.snapshot().mirror->applied_position;
        bool found = false;
        for (const ReaderInfo& ri : snap.readers) {
          if (ri.name.find("-to-") == std::string::npos) continue;
          found = true;
          ASSERT_LE(ri.position, applied)
              << "kill " << k + 1 << ": the forwarder committed past what B applied" << describe(ta)
              << describe(tb) << logs({"A", "B"});
        }
        ASSERT_TRUE(found) << "kill " << k + 1 << ": the forwarder's reader is gone" << describe(ta)
                           << logs({"A", "B"});
        s = sender("A", a, port);
      } else {
        kill9(r);
        r = receiver("B", b, port);
      }
      const std::string problem = compare_streams(ca.digests(), cb.digests(), true);
      ASSERT_EQ(problem, "") << "after kill " << k + 1 << describe(ta) << describe(tb)
                             << logs({"A", "B"});
    }
    wait_producers(pids, seconds(300), {"A", "B"});
    expect_converged(ca, cb, 2, per, seconds(300), {"A", "B"});
    EXPECT_TRUE(alive(r) && alive(s)) << logs({"A", "B"});
  }
};

TEST_F(ForwardKill, SenderKilledAtRandomMoments) { run(true); }
TEST_F(ForwardKill, ReceiverKilledAtRandomMoments) { run(false); }

// (d) A proxy between the bridges, killed and restarted at random moments: every connection
// through it is cut; B converges without loss or duplicates.
TEST_F(Forward, ConnectionCutByProxy) {
  testing::TempBus a, b;
  const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 10, 1000);
  Topic ta = a.create("orders", options(1 << 20));
  Topic tb = b.create("orders", mirror_options(options(1 << 20)));
  Collector ca(ta, "source A"), cb(tb, "mirror B");
  const std::uint16_t port = free_port();
  const std::uint16_t proxy_port = free_port();
  receiver("B", b, port);
  pid_t proxy = child(spawn_proxy(proxy_port, port));
  sender("A", a, proxy_port);
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  auto pids = producers(a.dir(), "orders", 2, per, seconds(300), std::chrono::microseconds(200));
  std::mt19937_64 random(::getpid());
  for (int cut = 0; cut < 12; ++cut) {
    std::this_thread::sleep_for(milliseconds(100 + random() % 500));
    kill9(proxy);
    proxy = child(spawn_proxy(proxy_port, port));
    ASSERT_EQ(compare_streams(ca.digests(), cb.digests(), true), "")
        << "after cut " << cut + 1 << logs({"A", "B"});
  }
  wait_producers(pids, seconds(300), {"A", "B"});
  expect_converged(ca, cb, 2, per, seconds(300), {"A", "B"});
  const std::string a_log = full_log("A");
  EXPECT_NE(a_log.find("connected"), std::string::npos) << log("A");
}

// (e) The receiver is down; A records the topic, so the forwarder is lossy and producers of a
// small block ring are held back only by the disk. B, started late, gets the whole stream (the
// sender reads A's disk log).
TEST_F(Forward, ReceiverDownSenderReadsDiskLog) {
  testing::TempBus a, b;
  const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 50, 2000);
  Topic ta = a.create("orders", options(16 << 10));
  Collector ca(ta, "source A");
  const std::uint16_t port = free_port();
  const std::string disk = logs_.path() + "/disk";
  sender("A", a, port, {"--log-dir", disk, "--record", "*"});
  ASSERT_TRUE(wait_until(
      [&] {
        auto snap = ta.snapshot();
        return snap.recorder && snap.recorder->alive && snap.recorder->state == "recording";
      },
      seconds(60)))
      << log("A");
  auto pids = producers(a.dir(), "orders", 2, per, seconds(60));
  // Not blocked by the network: they finish while no receiver runs.
  wait_producers(pids, seconds(120), {"A"});
  // The collector's thread may still be reading the last messages.
  ASSERT_TRUE(wait_until([&] { return ca.size() == 2 * per; }, seconds(60))) << ca.size();
  EXPECT_GT(ta.snapshot().tail, std::uint64_t{10} * (16 << 10)) << "the stream spans many rings";
  Topic tb = b.create("orders", mirror_options(options(16 << 10)));
  Collector cb(tb, "mirror B");
  receiver("B", b, port);
  expect_converged(ca, cb, 2, per, seconds(40), {"A", "B"});
  if (HasFailure()) ADD_FAILURE() << describe(ta) << describe(tb);
  // The recorder keeps the link's acknowledged position in state.json too (once a second).
  const std::string acked = "\"acked_position\": " + std::to_string(ta.snapshot().tail);
  std::string state;
  EXPECT_TRUE(wait_until(
      [&] {
        std::ifstream in(disk + "/orders/state.json");
        state.assign(std::istreambuf_iterator<char>(in), {});
        return testing::contains(state, "\"destination\": \"127.0.0.1:" + std::to_string(port)) &&
               testing::contains(state, acked);
      },
      seconds(30)))
      << state;
}

// (e2) An overwrite topic that no bridge records laps its forwarder while the receiver is down:
// the offsets A lost reach B as a gap, named in both event logs and in the link's counters. A
// reader on B gets every message before and after the gap, identical to A's, and counts the gap
// as lost (its bytes, and its messages from the sequence numbers around it); nothing is skipped
// in silence and the link goes on streaming.
TEST_F(Forward, OverwriteTopicLappedWithoutALogGivesTheMirrorAGapItsReadersCount) {
  testing::TempBus a, b;
  Topic ta = a.create("metrics", options(16 << 10, Policy::overwrite));
  const std::uint16_t port = free_port();
  pid_t r = receiver("B", b, port);
  sender("A", a, port, {}, "metrics");
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  Producer p(ta);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.publish(as_bytes("k"), as_bytes("before")));
  const std::uint64_t before = ta.snapshot().tail;
  auto applied = [&]() -> std::optional<std::uint64_t> {
    auto m = b.bus().open_topic("metrics");
    if (!m) return std::nullopt;
    auto snap = m->snapshot();
    if (!snap.mirror) return std::nullopt;
    return snap.mirror->applied_position;
  };
  ASSERT_TRUE(wait_until([&] { return applied() == before; }, seconds(60))) << logs({"A", "B"});

  // Readers: one on B that keeps up, and A's stream read directly.
  auto mirror = b.bus().open_topic("metrics");
  ASSERT_TRUE(mirror);
  SubscriberOptions so;
  so.start = StartFrom::earliest();
  so.durability = Durability::lossy;
  auto on_b = Subscriber::attach(*mirror, so);
  ASSERT_TRUE(on_b) << on_b.error().message();
  std::vector<Digest> seen_b, seen_a;
  std::uint64_t lost_bytes = 0, lost_messages = 0;
  auto poll_b = [&] {
    for (;;) {
      auto polled = on_b->poll([&](const Message& m) { seen_b.push_back(digest_of(m)); }, 4096);
      ASSERT_TRUE(polled) << polled.error().message();
      lost_bytes += polled->lost_bytes;
      lost_messages += polled->lost_messages;
      if (polled->messages == 0 && polled->lost_bytes == 0) break;
    }
  };
  poll_b();
  ASSERT_EQ(seen_b.size(), 10U);
  auto read_a = [&](std::uint64_t from) {
    SubscriberOptions o;
    o.start = StartFrom::at(from);
    o.durability = Durability::lossy;
    auto sub = Subscriber::attach(ta, o);
    ASSERT_TRUE(sub) << sub.error().message();
    for (;;) {
      auto polled = sub->poll([&](const Message& m) { seen_a.push_back(digest_of(m)); }, 4096);
      ASSERT_TRUE(polled) << polled.error().message();
      ASSERT_EQ(polled->lost_bytes, 0U) << "nothing is published meanwhile";
      if (polled->messages == 0) break;
    }
  };
  read_a(0);  // the ten before the gap
  ASSERT_EQ(seen_a.size(), 10U);
  const std::vector<Digest> a_before = seen_a;

  kill9(r);
  const std::string filler(100, 'x');
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(p.publish(as_bytes("k"), as_bytes(filler)));
  const std::uint64_t floor = ta.snapshot().earliest;
  ASSERT_GT(floor, before) << "A's ring has lapped the mirror's end";
  read_a(floor);
  ASSERT_GT(seen_a.size(), 10U);
  const std::uint64_t first_after_gap = seen_a[10].sequence;

  r = receiver("B", b, port);
  const std::string gap = "offsets [" + std::to_string(before) + ", " + std::to_string(floor) + ")";
  ASSERT_TRUE(wait_until([&] { return testing::contains(full_log("A"), gap); }, seconds(60)))
      << logs({"A", "B"});
  EXPECT_TRUE(testing::contains(full_log("A"), gap + " are lost on this host")) << log("A");
  ASSERT_TRUE(p.publish(as_bytes("k"), as_bytes("after")));
  const std::uint64_t tail = ta.snapshot().tail;
  ASSERT_TRUE(wait_until([&] { return applied() == tail; }, seconds(60)))
      << logs({"A", "B"}) << describe(ta);
  EXPECT_TRUE(testing::contains(full_log("B"), gap + " were lost on the source host")) << log("B");
  const auto forwards = ta.snapshot().forwards;
  ASSERT_EQ(forwards.size(), 1U);
  EXPECT_GE(forwards[0].errors, 1U);
  EXPECT_TRUE(testing::contains(forwards[0].last_error, gap)) << describe(ta);
  EXPECT_EQ(forwards[0].state, "streaming") << describe(ta);

  poll_b();
  std::vector<Digest> expected = a_before;
  const std::uint64_t ring_from = ta.snapshot().earliest;
  ASSERT_LE(ring_from, floor) << "nothing more was overwritten";
  seen_a.clear();
  read_a(ring_from);
  for (const Digest& d : seen_a) {
    if (d.offset >= floor) expected.push_back(d);
  }
  EXPECT_EQ(compare_streams(expected, seen_b, false), "");
  EXPECT_EQ(lost_bytes, floor - before);
  EXPECT_EQ(lost_messages, first_after_gap - 10);
  EXPECT_EQ(on_b->lost_messages(), first_after_gap - 10);
}

// (f) A -> B -> C: B forwards its mirror on to C; C equals A.
TEST_F(Forward, ChainOfThree) {
  testing::TempBus a, b, c;
  const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 20, 1000);
  Topic ta = a.create("orders", options(1 << 20));
  Topic tb = b.create("orders", mirror_options(options(1 << 20)));
  Topic tc = c.create("orders", mirror_options(options(1 << 20)));
  Collector ca(ta, "source A"), cc(tc, "mirror C");
  const std::uint16_t pb = free_port();
  const std::uint16_t pc = free_port();
  receiver("C", c, pc);
  bridge("B", {"--bus-dir", b.dir(), "--listen", "127.0.0.1:" + std::to_string(pb), "--forward",
               "*=127.0.0.1:" + std::to_string(pc)});
  sender("A", a, pb);
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B", "C"});
  ASSERT_TRUE(forwarder_attached(tb)) << logs({"A", "B", "C"});
  auto pids = producers(a.dir(), "orders", 2, per);
  wait_producers(pids, seconds(300), {"A", "B", "C"});
  expect_converged(ca, cc, 2, per, seconds(300), {"A", "B", "C"});
}

// (g) Producer acks: wait_mirrored while B acknowledges, and its timeout (naming the link) while
// B is stopped; wait_durable with and without a recording bridge.
TEST_F(Forward, WaitMirroredAndWaitDurable) {
  testing::TempBus a, b;
  Topic fwd = a.create("fwd", options(1 << 20));
  Topic rec = a.create("rec", options(1 << 20));
  const std::uint16_t port = free_port();
  const std::string destination = "127.0.0.1:" + std::to_string(port);
  pid_t r = receiver("B", b, port);
  sender("A", a, port, {"--log-dir", logs_.path() + "/disk", "--record", "rec"}, "fwd");
  ASSERT_TRUE(forwarder_attached(fwd)) << logs({"A", "B"});
  Producer p(fwd);
  auto first = p.publish(as_bytes("k"), as_bytes("one"));
  ASSERT_TRUE(first) << first.error().message();
  auto ok = p.wait_mirrored(*first, 1, Wait::spin_yield(seconds(60)));
  EXPECT_TRUE(ok) << ok.error().message() << logs({"A", "B"});
  auto zero = p.wait_mirrored(*first, 0, Wait::spin_yield(milliseconds(10)));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.code(), Errc::invalid_argument);
  auto two = p.wait_mirrored(*first, 2, Wait::spin_yield(milliseconds(200)));
  ASSERT_FALSE(two) << "one link cannot satisfy two receivers";

  ASSERT_TRUE(testing::stop_child(r, seconds(10)));
  auto second = p.publish(as_bytes("k"), as_bytes("two"));
  ASSERT_TRUE(second);
  const auto t0 = Clock::now();
  auto late = p.wait_mirrored(*second, 1, Wait::spin_yield(seconds(1)));
  ASSERT_FALSE(late) << "B is stopped, yet offset " << *second << " is acknowledged";
  EXPECT_EQ(late.code(), Errc::timed_out);
  EXPECT_GE(Clock::now() - t0, milliseconds(990));
  EXPECT_NE(late.error().message().find(destination), std::string::npos) << late.error().message();
  ::kill(r, SIGCONT);
  auto after = p.wait_mirrored(*second, 1, Wait::futex(seconds(60)));
  EXPECT_TRUE(after) << after.error().message() << logs({"A", "B"});

  // Not recorded: wait_durable times out and says so; recorded: it returns.
  auto not_durable = p.wait_durable(*first, Wait::spin_yield(milliseconds(300)));
  ASSERT_FALSE(not_durable);
  EXPECT_EQ(not_durable.code(), Errc::timed_out);
  EXPECT_NE(not_durable.error().message().find("no ringbus-bridge records"), std::string::npos)
      << not_durable.error().message();
  Producer pr(rec);
  auto at = pr.publish(as_bytes("k"), as_bytes("durable"));
  ASSERT_TRUE(at);
  auto durable = pr.wait_durable(*at, Wait::spin_yield(seconds(60)));
  EXPECT_TRUE(durable) << durable.error().message() << log("A");
}

// (h) Keys and garbage: a wrong key gets no mirror and both logs say why, while a keyed link to
// the same receiver keeps mirroring through silent clients, garbage, bad hellos and a thousand
// connections opened and dropped.
class ForwardSecurity : public Forward {
 protected:
  std::string key_file(const std::string& name, const std::string& key, mode_t mode = 0600) {
    const std::string path = logs_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << key;
    ::chmod(path.c_str(), mode);
    return path;
  }
};

TEST_F(ForwardSecurity, WrongKeyGarbageAndSilenceDoNotDisturbAGoodLink) {
  testing::TempBus good_bus, bad_bus, nokey_bus, b;
  const std::string k1 = key_file("k1", "0123456789abcdef-the-right-key");
  const std::string k2 = key_file("k2", "0123456789abcdef-a-wrong-key!!");
  const std::uint64_t total = 6000;
  Topic good = good_bus.create("good", options(1 << 20));
  bad_bus.create("bad", options(1 << 20));
  nokey_bus.create("nokey", options(1 << 20));
  Collector source(good, "good source");
  const std::uint16_t port = free_port();
  pid_t r = receiver("B", b, port, {"--key-file", k1, "--link-timeout", "1s"});
  sender("good", good_bus, port, {"--key-file", k1, "--link-timeout", "1s"});
  sender("bad", bad_bus, port, {"--key-file", k2});
  sender("nokey", nokey_bus, port);
  ASSERT_TRUE(forwarder_attached(good)) << logs({"good", "B"});
  auto pids =
      producers(good_bus.dir(), "good", 1, total, seconds(120), std::chrono::microseconds(2000));

  // A client that sends nothing is dropped after the link timeout.
  int silent = connect_to(port);
  ASSERT_GE(silent, 0);
  const auto t0 = Clock::now();
  auto [silent_got, silent_closed] = read_until_closed(silent, seconds(30));
  ::close(silent);
  EXPECT_TRUE(silent_closed) << "a silent client was not dropped within 30 s" << log("B");
  EXPECT_GE(Clock::now() - t0, milliseconds(900));

  // Garbage, a truncated hello (short body; then a cut), a wrong protocol version.
  std::mt19937_64 random(42);
  for (int i = 0; i < 20; ++i) {
    int s = connect_to(port);
    ASSERT_GE(s, 0);
    std::string junk(1 + random() % 4096, '\0');
    for (char& ch : junk) ch = static_cast<char>(random());
    (void)::send(s, junk.data(), junk.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(read_until_closed(s, seconds(30)).second) << "garbage did not close the link";
    ::close(s);
  }
  {
    int s = connect_to(port);
    const std::string body = hello_body(kLinkVersion, "good");
    const std::string m = link_message(1, body.substr(0, 20));
    (void)::send(s, m.data(), m.size(), MSG_NOSIGNAL);
    auto [got, closed] = read_until_closed(s, seconds(30));
    EXPECT_TRUE(closed);
    EXPECT_NE(got.find("malformed hello"), std::string::npos) << got;
    ::close(s);
  }
  {
    int s = connect_to(port);
    const std::string m = link_message(1, hello_body(kLinkVersion, "good"));
    (void)::send(s, m.data(), m.size() / 2, MSG_NOSIGNAL);
    ::close(s);  // cut half-way
  }
  {
    int s = connect_to(port);
    const std::string m = link_message(1, hello_body(7, "good"));
    (void)::send(s, m.data(), m.size(), MSG_NOSIGNAL);
    auto [got, closed] = read_until_closed(s, seconds(30));
    EXPECT_TRUE(closed);
    EXPECT_NE(got.find("version 7"), std::string::npos) << got;
    ::close(s);
  }
  {
    // A hello with a huge length prefix: refused at once, never buffered.
    int s = connect_to(port);
    std::string m = link_message(1, "");
    const std::uint32_t huge = 0xFFFFFFF0U;
    std::memcpy(m.data(), &huge, 4);
    (void)::send(s, m.data(), m.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(read_until_closed(s, seconds(30)).second);
    ::close(s);
  }
  for (int i = 0; i < 1000; ++i) {
    int s = connect_to(port);
    if (s >= 0) ::close(s);
  }
  EXPECT_TRUE(alive(r)) << log("B");

  wait_producers(pids, seconds(180), {"good", "B"});
  ASSERT_TRUE(wait_until([&] { return b.bus().open_topic("good").has_value(); }, seconds(60)))
      << logs({"good", "B"});
  Topic mirror = *b.bus().open_topic("good");
  // The whole stream fits the ring: a late reader from the earliest offset sees all of it.
  Collector copy(mirror, "good mirror");
  ASSERT_TRUE(wait_until([&] { return copy.size() >= total; }, seconds(120)))
      << copy.size() << " of " << total << logs({"good", "B"});
  EXPECT_EQ(compare_streams(source.digests(), copy.digests(), false), "");
  EXPECT_TRUE(alive(r)) << log("B");

  // The wrong key and the missing key: no mirror, and each side's log names the problem.
  EXPECT_FALSE(b.bus().open_topic("bad").has_value());
  EXPECT_FALSE(b.bus().open_topic("nokey").has_value());
  const std::string rlog = full_log("B");
  EXPECT_NE(full_log("bad").find("does not know our key"), std::string::npos) << log("bad");
  EXPECT_NE(rlog.find("bad: link from"), std::string::npos) << log("B");
  EXPECT_TRUE(rlog.find("wrong key") != std::string::npos ||
              rlog.find("does not know our key") != std::string::npos)
      << "the receiver's log does not name the wrong key" << log("B");
  EXPECT_NE(rlog.find("requires a key"), std::string::npos) << log("B");
  EXPECT_NE(full_log("nokey").find("requires a key"), std::string::npos) << log("nokey");
  EXPECT_NE(rlog.find("dropped before its hello"), std::string::npos) << log("B");
}

// (h2) TLS on the link: a mirror over TLS equals its source, while a plain-text sender, a sender
// whose certificate another CA signed (B refuses it), and a sender that trusts another CA (it
// refuses B) are each turned away with a line that says why, on both sides.
TEST_F(ForwardSecurity, TlsLinksMirrorAndRefusePlainTextAndStrangers) {
  const std::string d = logs_.path() + "/";
  ASSERT_TRUE(testing::make_certificates(logs_.path(), {"a", "b"})) << "openssl failed";
  ASSERT_TRUE(testing::make_certificates(logs_.path(), {"rogue"}, "other-ca")) << "openssl failed";
  auto tls = [&](const std::string& name, const std::string& ca = "ca") {
    return std::vector<std::string>{
        "--tls-cert", d + name + ".pem", "--tls-key",      d + name + ".key",
        "--tls-ca",   d + ca + ".pem",   "--link-timeout", "2s"};
  };
  testing::TempBus good_bus, plain_bus, rogue_bus, doubting_bus, b;
  const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 50, 2000);
  Topic good = good_bus.create("good", options(1 << 20));
  plain_bus.create("plain", options(1 << 20));
  rogue_bus.create("rogue", options(1 << 20));
  doubting_bus.create("doubting", options(1 << 20));
  Topic tb = b.create("good", mirror_options(options(1 << 20)));
  Collector ca(good, "source"), cb(tb, "mirror over TLS");
  const std::uint16_t port = free_port();
  pid_t r = receiver("B", b, port, tls("b"));
  sender("good", good_bus, port, tls("a"));
  sender("plain", plain_bus, port);
  sender("rogue", rogue_bus, port, tls("rogue"));
  sender("doubting", doubting_bus, port, tls("a", "other-ca"));
  ASSERT_TRUE(forwarder_attached(good)) << logs({"good", "B"});
  auto pids = producers(good_bus.dir(), "good", 2, per, seconds(120));
  wait_producers(pids, seconds(180), {"good", "B"});
  expect_converged(ca, cb, 2, per, seconds(180), {"good", "B"});
  ASSERT_TRUE(wait_until(
      [&] {
        const std::string rlog = full_log("B");
        return testing::contains(full_log("doubting"), "certificate verify failed") &&
               testing::contains(full_log("rogue"), "alert") &&
               testing::contains(rlog, "certificate verify failed") &&
               testing::contains(rlog, "wrong version number") &&
               testing::contains(rlog, "alert unknown ca");
      },
      seconds(60)))
      << logs({"plain", "rogue", "doubting", "B"});
  // A client that opens a connection and never starts TLS is dropped after the link timeout.
  const int silent = connect_to(port);
  ASSERT_GE(silent, 0);
  EXPECT_TRUE(read_until_closed(silent, seconds(30)).second) << log("B");
  ::close(silent);
  EXPECT_TRUE(alive(r)) << log("B");
  const std::string rlog = full_log("B");
  EXPECT_TRUE(testing::contains(rlog, "took more than 2000 ms")) << log("B");
  // B cannot verify the rogue's certificate; a plain-text hello is no TLS record; the doubting
  // sender turns B's certificate away (B hears its alert).
  EXPECT_TRUE(testing::contains(rlog, "refused: TLS handshake with")) << log("B");
  EXPECT_TRUE(testing::contains(
      rlog, "listening for mirrored topics on 127.0.0.1:" + std::to_string(port) + " over TLS"))
      << log("B");
  EXPECT_TRUE(testing::contains(full_log("doubting"), "(certificate: ")) << log("doubting");
  for (const char* topic : {"plain", "rogue", "doubting"}) {
    EXPECT_FALSE(b.bus().open_topic(topic).has_value()) << topic;
  }
}

TEST_F(ForwardSecurity, KeyFileReadableByOthersIsRefused) {
  testing::TempBus b;
  const std::string key = key_file("open-key", "0123456789abcdef-open-key", 0644);
  pid_t r = receiver("B", b, free_port(), {"--key-file", key});
  EXPECT_EQ(testing::wait_child(r, seconds(30)), 2) << log("B");
  EXPECT_NE(full_log("B").find("0644"), std::string::npos) << log("B");
}

// (i) A mirror is read-only for local producers: the library says read_only, the CLI fails.
TEST_F(Forward, ProducerOnMirrorIsReadOnly) {
  testing::TempBus a, b;
  Topic ta = a.create("orders", options(1 << 20));
  const std::uint16_t port = free_port();
  receiver("B", b, port);
  sender("A", a, port);
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  Producer p(ta);
  ASSERT_TRUE(p.publish(as_bytes("k"), as_bytes("v")));
  ASSERT_TRUE(wait_until([&] { return b.bus().open_topic("orders").has_value(); }, seconds(60)))
      << logs({"A", "B"});
  Topic mirror = *b.bus().open_topic("orders");
  EXPECT_FALSE(mirror.config().mirror_of.empty());
  Producer local(mirror);
  auto tried = local.try_publish(as_bytes("k"), as_bytes("v"));
  ASSERT_FALSE(tried);
  EXPECT_EQ(tried.code(), Errc::read_only);
  auto r = local.publish(as_bytes("k"), as_bytes("v"), Wait::spin_yield(seconds(1)));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.code(), Errc::read_only);
  EXPECT_NE(r.error().message().find("is a mirror of"), std::string::npos) << r.error().message();
  auto claimed = local.try_claim(8);
  ASSERT_FALSE(claimed);
  EXPECT_EQ(claimed.code(), Errc::read_only);
  auto cli = testing::run_command(
      testing::tool_path("ringbus") + " --dir '" + b.dir() + "' produce orders --key k 2>&1",
      "hello\n");
  EXPECT_NE(cli.status, 0) << cli.out;
  EXPECT_NE(cli.out.find("is a mirror of"), std::string::npos) << cli.out;
}

// (j) Two network namespaces joined by a veth pair (netem delay and loss where the kernel has
// it); the bridges run inside them and the mirror still equals the source.
class NetNs : public Forward {
 protected:
  void TearDown() override {
    Forward::TearDown();
    for (const auto& ns : namespaces_)
      (void)std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
  }
  static int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }
  std::vector<std::string> namespaces_;
};

TEST_F(NetNs, MirrorAcrossNamespacesWithDelayAndLoss) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  if (sh("command -v ip") != 0) GTEST_SKIP() << "the ip command (iproute2) is missing";
  const std::string id = std::to_string(::getpid() % 100000);
  const std::string na = "rbfa" + id, nb = "rbfb" + id;
  const std::string va = "rva" + id, vb = "rvb" + id;
  const int octet = static_cast<int>(::getpid() % 200) + 20;
  const std::string ipa = "10.213." + std::to_string(octet) + ".1";
  const std::string ipb = "10.213." + std::to_string(octet) + ".2";
  if (sh("ip netns add " + na) != 0) GTEST_SKIP() << "cannot create network namespaces here";
  namespaces_.push_back(na);
  ASSERT_EQ(sh("ip netns add " + nb), 0);
  namespaces_.push_back(nb);
  ASSERT_EQ(
      sh("ip link add " + va + " netns " + na + " type veth peer name " + vb + " netns " + nb), 0);
  for (auto [ns, dev, ip] : {std::tuple{na, va, ipa}, std::tuple{nb, vb, ipb}}) {
    ASSERT_EQ(sh("ip -n " + ns + " addr add " + ip + "/24 dev " + dev), 0);
    ASSERT_EQ(sh("ip -n " + ns + " link set " + dev + " up"), 0);
    ASSERT_EQ(sh("ip -n " + ns + " link set lo up"), 0);
  }
  bool netem = true;
  for (auto [ns, dev] : {std::pair{na, va}, std::pair{nb, vb}}) {
    if (sh("ip netns exec " + ns + " tc qdisc add dev " + dev + " root netem delay 5ms loss 5%") !=
        0) {
      netem = false;
    }
  }
  if (!netem) {
    std::printf(
        "NOTE: tc netem is not available in this kernel: the link runs without delay "
        "and loss\n");
    RecordProperty("netem", "unavailable");
  }
  testing::TempBus a, b;
  const std::string key = logs_.path() + "/key";
  std::ofstream(key) << "0123456789abcdef-netns-key";
  ::chmod(key.c_str(), 0600);
  const std::uint64_t per = std::max<std::uint64_t>(stream_messages() / 50, 1000);
  Topic ta = a.create("orders", options(1 << 20));
  Topic tb = b.create("orders", mirror_options(options(1 << 20)));
  Collector ca(ta, "source A"), cb(tb, "mirror B");
  const std::string port = std::to_string(free_port());
  bridge("B", {"--bus-dir", b.dir(), "--listen", ipb + ":" + port, "--key-file", key},
         {"ip", "netns", "exec", nb});
  bridge("A", {"--bus-dir", a.dir(), "--forward", "*=" + ipb + ":" + port, "--key-file", key},
         {"ip", "netns", "exec", na});
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  auto pids = producers(a.dir(), "orders", 2, per);
  wait_producers(pids, seconds(300), {"A", "B"});
  expect_converged(ca, cb, 2, per, seconds(300), {"A", "B"});
}

// A recorded mirror survives the loss of B's bus directory (a reboot): B's bridge restores it
// from its disk log as a mirror (producers on B still get read_only) and the sender continues
// it exactly at the log's end, so B's log and ring together equal A's stream.
TEST_F(Forward, RecordedMirrorRestoredAfterBLosesItsBus) {
  testing::TempBus a, b;
  Topic ta = a.create("orders", options(1 << 20));
  Collector ca(ta, "source A");
  const std::uint16_t port = free_port();
  const std::string disk = logs_.path() + "/disk-b";
  const std::vector<std::string> record = {"--log-dir", disk, "--record", "*"};
  pid_t rb = receiver("B", b, port, record);
  sender("A", a, port);
  ASSERT_TRUE(forwarder_attached(ta)) << logs({"A", "B"});
  wait_producers(producers(a.dir(), "orders", 1, 2000), seconds(120), {"A", "B"});
  // Acknowledged means durable on B: its recorder is attached and synced that far.
  ASSERT_TRUE(wait_until(
      [&] {
        auto snap = ta.snapshot();
        return !snap.forwards.empty() && snap.forwards[0].acked_position == snap.tail;
      },
      seconds(60)))
      << describe(ta) << logs({"A", "B"});
  kill9(rb);
  ASSERT_EQ(::unlink((b.dir() + "/orders").c_str()), 0);
  // A keeps publishing while B is away (its forwarder's reader holds the frames).
  pid_t late = child(testing::fork_child([dir = a.dir()]() -> int {
    Bus bus(dir);
    auto t = bus.open_topic("orders");
    if (!t) return 2;
    Producer producer(*t);
    for (std::uint64_t i = 0; i < 1000; ++i) {
      const std::string v = "late-" + std::to_string(i);
      if (!producer.publish({}, ConstBytes(reinterpret_cast<const std::byte*>(v.data()), v.size()),
                            Wait::spin_yield(seconds(60)))) {
        return 3;
      }
    }
    return 0;
  }));
  ASSERT_EQ(testing::wait_child(late, seconds(120)), 0);
  receiver("B", b, port, record);
  ASSERT_TRUE(wait_until(
      [&] {
        Bus bus(b.dir());
        auto t = bus.open_topic("orders");
        if (!t) return false;
        auto snap = t->snapshot();
        return snap.mirror && snap.mirror->applied_position == ta.snapshot().tail;
      },
      seconds(120)))
      << describe(ta) << logs({"A", "B"});
  Bus bus(b.dir());
  auto tb = bus.open_topic("orders");
  ASSERT_TRUE(tb);
  EXPECT_FALSE(tb->config().mirror_of.empty()) << "restored as an ordinary topic";
  EXPECT_EQ(Producer(*tb).try_publish({}, {}).code(), Errc::read_only);
  // B from its first offset (its log, then its ring) equals A.
  auto read_all = [](const Topic& t, std::vector<Digest>& out) -> std::string {
    SubscriberOptions o;
    o.start = StartFrom::earliest();
    auto sub = Subscriber::attach(t, o);
    if (!sub) return sub.error().message();
    for (int idle = 0; idle < 200;) {
      auto polled = sub->poll(
          [&](const Message& m) {
            out.push_back(Digest{
                m.offset, m.sequence, m.timestamp_ns,
                hash_text(std::string(reinterpret_cast<const char*>(m.key.data()), m.key.size())),
                hash_text(
                    std::string(reinterpret_cast<const char*>(m.value.data()), m.value.size()))});
          },
          256);
      if (!polled) return polled.error().message();
      if (polled->lost_messages != 0) return "lost " + std::to_string(polled->lost_messages);
      idle = polled->messages == 0 ? idle + 1 : 0;
      if (polled->messages == 0) std::this_thread::sleep_for(milliseconds(10));
    }
    return "";
  };
  std::vector<Digest> from_a;
  std::vector<Digest> from_b;
  ASSERT_EQ(read_all(ta, from_a), "");
  ASSERT_EQ(read_all(*tb, from_b), "") << logs({"B"});
  EXPECT_EQ(from_a.size(), 3000u);
  EXPECT_EQ(compare_streams(from_a, from_b, false), "") << logs({"A", "B"});
  EXPECT_NE(full_log("B").find("restored the topic from its log"), std::string::npos) << log("B");
}

}  // namespace
}  // namespace ringbus
