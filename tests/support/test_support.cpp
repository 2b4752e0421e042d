// Test helpers: temporary bus directories, forked children with bounded waits, commands.
#include "support/test_support.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace ringbus::testing {

namespace {
std::string make_temp_dir() {
  std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  if (const char* t = std::getenv("RINGBUS_TEST_TMP"); t != nullptr && *t != '\0') base = t;
  std::string pattern = base + "/ringbus-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  return pattern;
}
}  // namespace

TempBus::TempBus() : dir_(make_temp_dir()), bus_(dir_) {}

TempDir::TempDir() : path_(make_temp_dir()) {}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TempBus::~TempBus() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Topic TempBus::create(const std::string& name, const TopicOptions& options) const {
  auto topic = bus_.create_topic(name, options);
  if (!topic) {
    ADD_FAILURE() << "create_topic(" << name << "): " << topic.error().message();
    return {};
  }
  return *topic;
}

pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int code = 101;
  try {
    code = body();
  } catch (...) {
    code = 102;
  }
  std::fflush(nullptr);
  ::_exit(code);
}

int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

bool stop_child(pid_t pid, std::chrono::milliseconds timeout) {
  if (::kill(pid, SIGSTOP) != 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WUNTRACED | WNOHANG);
    if (r == pid) return WIFSTOPPED(status);
    if (r < 0 || std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool make_certificates(const std::string& dir, const std::vector<std::string>& names,
                       const std::string& ca) {
  const std::string log = dir + "/openssl.log";
  const std::string quiet = " >>'" + log + "' 2>&1";
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string d = "'" + dir + "/";
  auto run = [&](const std::string& cmd) {
    const int status = std::system(cmd.c_str());
    if (status == 0) return true;
    // Say what failed: the command, its status and what openssl printed.
    std::ifstream in(log);
    std::cerr << "make_certificates: `" << cmd << "` exited with status " << status << ":\n"
              << in.rdbuf() << "\n";
    return false;
  };
  if (::access((dir + "/" + ca + ".pem").c_str(), R_OK) != 0 &&
      !run("openssl req -x509" + ec + " -keyout " + d + ca + ".key' -out " + d + ca +
           ".pem' -days 2 -subj /CN=ringbus-test-" + ca + quiet)) {
    return false;
  }
  {
    std::ofstream ext(dir + "/san.ext");
    ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
  }
  for (const std::string& name : names) {
    if (!run("openssl req" + ec + " -keyout " + d + name + ".key' -out " + d + name +
             ".csr' -subj /CN=" + name + quiet) ||
        !run("openssl x509 -req -in " + d + name + ".csr' -CA " + d + ca + ".pem' -CAkey " + d +
             ca + ".key' -CAcreateserial -days 2 -extfile " + d + "san.ext' -out " + d + name +
             ".pem'" + quiet) ||
        !run("chmod 600 " + d + name + ".key'")) {
      return false;
    }
  }
  return true;
}

std::uint64_t env_or(const char* name, std::uint64_t default_value) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return default_value;
  return std::strtoull(v, nullptr, 10);
}

std::uint64_t fnv1a(const void* data, std::size_t size, std::uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = seed;
  for (std::size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

CommandResult run_command(const std::string& command, const std::string& input) {
  char in_path[] = "/tmp/ringbus-cmd-in-XXXXXX";
  int fd = ::mkstemp(in_path);
  if (fd < 0) return {};
  if (!input.empty() && ::write(fd, input.data(), input.size()) < 0) {
    ::close(fd);
    return {};
  }
  ::close(fd);
  std::string full = "timeout 120 " + command + " < " + in_path;
  CommandResult result;
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return result;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) result.out.append(buf, n);
  int status = ::pclose(p);
  ::unlink(in_path);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace ringbus::testing
