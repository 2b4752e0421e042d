#include "fuzz_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "ringbus/group.hpp"
#include "ringbus/inspector.hpp"
#include "ringbus/subscriber.hpp"

namespace ringbus::fuzz {

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::perror(what.c_str());
  std::abort();
}

// Bounds on the work done per input: enough to walk a small ring several times over.
constexpr int kMaxPolls = 64;
constexpr int kMaxFrames = 4096;

std::uint64_t touch(const Message& m) {
  std::uint64_t sum = m.offset + m.sequence + m.key.size() + m.value.size();
  for (std::byte b : m.key) sum += static_cast<std::uint64_t>(b);
  for (std::byte b : m.value) sum += static_cast<std::uint64_t>(b);
  return sum;
}

std::uint64_t inspect(const Topic& topic) {
  RingInspector inspector(topic, 64);
  auto at = inspector.resolve(StartFrom::earliest());
  if (!at) return 0;
  std::uint64_t offset = *at;
  std::uint64_t frames = 0;
  for (int i = 0; i < kMaxFrames && offset < inspector.tail(); ++i) {
    auto frame = inspector.read(offset);
    if (!frame || frame->state == FrameState::pending || frame->state == FrameState::overwritten ||
        frame->stride == 0) {
      break;
    }
    offset += frame->stride;
    ++frames;
  }
  return frames;
}

std::uint64_t subscribe(const Topic& topic) {
  SubscriberOptions options;
  options.start = StartFrom::earliest();
  auto sub = Subscriber::attach(topic, options);
  if (!sub) return 0;
  std::uint64_t sum = 0;
  for (int i = 0; i < kMaxPolls; ++i) {
    auto r = sub->poll([&](const Message& m) { sum += touch(m); }, 256);
    if (!r || r->messages == 0) break;
  }
  return sum;
}

std::uint64_t consume_as_group(const Topic& topic) {
  GroupOptions options;
  options.start = StartFrom::earliest();
  auto member = GroupMember::join(topic, "fuzz", options);
  if (!member) return 0;
  std::uint64_t sum = 0;
  for (int i = 0; i < kMaxPolls; ++i) {
    std::uint64_t last = 0;
    bool any = false;
    auto r = member->poll([&](const Message& m) {
      sum += touch(m);
      last = m.offset;
      any = true;
    });
    if (!r || !any) break;
    if (!member->ack_up_to(last)) break;
  }
  return sum;
}

}  // namespace

ScratchDirectory::ScratchDirectory(const char* what) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                        "/ringbus-fuzz-" + what + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) fail("mkdtemp " + pattern);
  path_ = pattern;
}

ScratchDirectory::~ScratchDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("open " + path);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) fail("write " + path);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

void clear_directory(const std::string& dir) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ignored)) {
    std::filesystem::remove_all(entry.path(), ignored);
  }
}

std::uint64_t read_topic_every_way(const Topic& topic) {
  (void)topic.snapshot();
  return inspect(topic) + subscribe(topic) + consume_as_group(topic);
}

}  // namespace ringbus::fuzz
