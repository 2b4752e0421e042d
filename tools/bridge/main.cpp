// ringbus-bridge: records topics to disk logs. Parses the configuration file and flags, installs
// the signal handlers, and runs the Bridge.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <CLI/CLI.hpp>

#include "bridge.hpp"
#include "bridge_config.hpp"
#include "sizes.hpp"

namespace {

std::atomic<bool> g_stop{false};

extern "C" void request_stop(int) {
  // relaxed: the main loop only needs to see the flag eventually.
  g_stop.store(true, std::memory_order_relaxed);
}

int fail(const std::string& message) {
  std::fprintf(stderr, "ringbus-bridge: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ringbus;
  // First: a stop request during start-up must still end in a clean shutdown.
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A file-size limit (RLIMIT_FSIZE) must give EFBIG, handled like a full disk, not kill us.
  ::signal(SIGXFSZ, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"ringbus-bridge: records ringbus topics to disk logs (see docs/bridge.md)"};
  std::string config_path;
  std::string bus_dir;
  std::string log_dir;
  std::vector<std::string> record;
  std::string segment_bytes;
  std::string fsync;
  std::string fsync_interval;
  std::string fsync_bytes;
  std::string retention_bytes;
  std::string retention_age;
  std::string reader_name;
  std::string scan_interval;
  std::int64_t cpu = -1;
  std::string retry_interval;
  bool no_restore = false;
  std::string listen;
  std::vector<std::string> accept;
  std::vector<std::string> forward;
  std::string key_file;
  std::string link_timeout;
  app.add_option("--config", config_path, "TOML configuration file");
  app.add_option("--bus-dir", bus_dir,
                 "Bus directory (default: $RINGBUS_DIR or /dev/shm/ringbus-$UID)");
  app.add_option("--log-dir", log_dir, "Directory for the logs: <log-dir>/<topic>/");
  app.add_option("--record", record, "Topic name or glob to record (repeatable)");
  app.add_option("--segment-bytes", segment_bytes, "Roll segments after this size (default 64MiB)");
  app.add_option("--fsync", fsync, "never | interval | bytes (default interval)");
  app.add_option("--fsync-interval", fsync_interval, "With --fsync interval (default 10ms)");
  app.add_option("--fsync-bytes", fsync_bytes, "With --fsync bytes (default 4MiB)");
  app.add_option("--retention-bytes", retention_bytes, "Keep at most this much per topic");
  app.add_option("--retention-age", retention_age, "Delete segments older than this (e.g. 7d)");
  app.add_option("--reader-name", reader_name, "The bridge's reader name in each topic");
  app.add_option("--scan-interval", scan_interval, "How often to look for new topics (1s)");
  app.add_option("--cpu", cpu, "Pin the recording thread to this core");
  app.add_option("--retry-interval", retry_interval, "Wait after a failed write or open (1s)");
  app.add_flag("--no-restore", no_restore,
               "Do not re-create recorded topics missing from the bus directory");
  app.add_option("--listen", listen, "Receive mirrors on HOST:PORT (a bare PORT: 127.0.0.1)");
  app.add_option("--accept", accept, "Topic name or glob a sender may mirror here (repeatable)");
  app.add_option("--forward", forward, "GLOB=HOST:PORT: forward matching topics (repeatable)");
  app.add_option("--key-file", key_file, "Pre-shared key file for links (mode 0600)");
  app.add_option("--link-timeout", link_timeout, "Drop a silent link after this long (10s)");
  CLI11_PARSE(app, argc, argv);

  bridge::BridgeConfig config;
  if (!config_path.empty()) {
    auto loaded = bridge::load_config_file(config_path);
    if (!loaded) return fail(loaded.error().message());
    config = std::move(*loaded);
  }
  // Flags override the file.
  if (!bus_dir.empty()) config.bus_dir = bus_dir;
  if (!log_dir.empty()) config.log_dir = log_dir;
  if (!record.empty()) config.record = record;
  if (!reader_name.empty()) config.reader_name = reader_name;
  if (cpu != -1) config.cpu = cpu;  // -1: not pinned; other values are checked
  if (no_restore) config.restore_topics = false;
  if (!listen.empty()) {
    config.listen.address = listen.find(':') == std::string::npos ? "127.0.0.1:" + listen
                            : listen.front() == ':'                ? "127.0.0.1" + listen
                                                                   : listen;
  }
  if (!accept.empty()) config.listen.accept = accept;
  for (const std::string& f : forward) {
    const auto eq = f.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == f.size()) {
      return fail("--forward " + f + ": expected GLOB=HOST:PORT");
    }
    config.forward.push_back(bridge::ForwardRule{{f.substr(0, eq)}, f.substr(eq + 1)});
  }
  if (!key_file.empty()) config.key_file = key_file;
  if (!config.key_file.empty()) {
    std::ifstream in(config.key_file, std::ios::binary);
    if (!in) return fail("cannot read key file " + config.key_file);
    config.key.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (config.key.size() < 16) return fail("key file " + config.key_file + " holds fewer than 16 bytes");
  }
  auto size_flag = [](const std::string& text, const char* what, std::uint64_t& out) {
    if (text.empty()) return Result<void>{};
    if (text == "0") {  // "no limit" where a limit is optional (retention)
      out = 0;
      return Result<void>{};
    }
    auto v = cli::parse_size(text, what);
    if (!v) return Result<void>(v.error());
    out = *v;
    return Result<void>{};
  };
  auto duration_flag = [](const std::string& text, const char* what,
                          std::chrono::milliseconds& out) {
    if (text.empty()) return Result<void>{};
    auto v = bridge::parse_duration(text, what);
    if (!v) return Result<void>(v.error());
    out = *v;
    return Result<void>{};
  };
  for (auto ok : {size_flag(segment_bytes, "--segment-bytes", config.segment_bytes),
                  size_flag(fsync_bytes, "--fsync-bytes", config.fsync_bytes),
                  size_flag(retention_bytes, "--retention-bytes", config.retention_bytes),
                  duration_flag(fsync_interval, "--fsync-interval", config.fsync_interval),
                  duration_flag(retention_age, "--retention-age", config.retention_age),
                  duration_flag(scan_interval, "--scan-interval", config.scan_interval),
                  duration_flag(retry_interval, "--retry-interval", config.retry_interval),
                  duration_flag(link_timeout, "--link-timeout", config.link_timeout)}) {
    if (!ok) return fail(ok.error().message());
  }
  if (!fsync.empty()) {
    auto policy = bridge::parse_fsync_policy(fsync);
    if (!policy) return fail(policy.error().message());
    config.fsync = *policy;
  }
  if (auto ok = bridge::validate_config(config); !ok) return fail(ok.error().message());
  // Readers find the log through the path the bridge publishes, from any working directory.
  if (!config.log_dir.empty()) {
    config.log_dir = std::filesystem::absolute(config.log_dir).lexically_normal().string();
  }
  while (config.log_dir.size() > 1 && config.log_dir.back() == '/') config.log_dir.pop_back();

  bridge::Bridge bridge(std::move(config));
  return bridge.run(g_stop);
}
