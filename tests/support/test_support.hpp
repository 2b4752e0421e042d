// Helpers shared by the test suites: a throw-away bus directory and real child processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ringbus/topic.hpp"

namespace ringbus::testing {

// A fresh, empty bus directory under /dev/shm (or $TMPDIR when /dev/shm is missing), removed
// with everything in it when the object is destroyed.
class TempBus {
 public:
  TempBus();
  ~TempBus();
  TempBus(const TempBus&) = delete;
  TempBus& operator=(const TempBus&) = delete;

  const Bus& bus() const { return bus_; }
  const std::string& dir() const { return dir_; }
  // Creates a topic or fails the current test.
  Topic create(const std::string& name, const TopicOptions& options = {}) const;

 private:
  std::string dir_;
  Bus bus_;
};

// A fresh empty directory (for disk logs), removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Forks a child that runs `body` and exits with its return value (exceptions and failed
// assertions in the child exit with 100+).
pid_t fork_child(const std::function<int()>& body);

// Waits for the child at most `timeout`; returns its exit code, 128+signal if killed, or -1
// after killing it when the timeout passed.
int wait_child(pid_t pid, std::chrono::milliseconds timeout);

// Stops a child with SIGSTOP and waits (at most `timeout`) until all its threads have stopped:
// kill(2) returns before a thread running on another core stops. False if it did not stop.
bool stop_child(pid_t pid, std::chrono::milliseconds timeout);

// PEM files for TLS tests, made with the openssl tool in `dir`: a CA ("ca.pem"), and for each
// name in `names` a key ("NAME.key", mode 0600) and a certificate signed by the CA
// ("NAME.pem") valid for 127.0.0.1 and localhost. With `ca` other than "ca", a separate CA of
// that name signs them. False if openssl failed.
bool make_certificates(const std::string& dir, const std::vector<std::string>& names,
                       const std::string& ca = "ca");

// An integer from the environment (for stress sizes), or the default.
std::uint64_t env_or(const char* name, std::uint64_t default_value);

// 64-bit FNV-1a, for checksumming payloads across processes.
std::uint64_t fnv1a(const void* data, std::size_t size, std::uint64_t seed = 0xcbf29ce484222325ULL);

// Path of a built tool, from the RINGBUS_TOOL_DIR compile definition of the including suite.
inline std::string tool_path(const std::string& name) {
#ifdef RINGBUS_TOOL_DIR
  return std::string(RINGBUS_TOOL_DIR) + "/" + name;
#else
  return name;
#endif
}

// Text helpers for checking a tool's output.
std::vector<std::string> split_lines(const std::string& text);
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Runs a shell command, returns {exit status, stdout}. stdin comes from `input`.
struct CommandResult {
  int status = -1;
  std::string out;
};
CommandResult run_command(const std::string& command, const std::string& input = {});

}  // namespace ringbus::testing
