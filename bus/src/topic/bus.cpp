// The bus directory: atomic topic creation (temporary file, reserve, fill, rename), open, list.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "layout/frame_layout.hpp"
#include "layout/reader_slot_layout.hpp"
#include "layout/topic_layout.hpp"
#include "ring/atomics.hpp"
#include "ringbus/topic.hpp"
#include "sys/trusted_directory.hpp"
#include "sys/unique_fd.hpp"
#include "topic/liveness.hpp"
#include "topic/topic_mapping.hpp"

namespace ringbus {
namespace {

constexpr std::string_view kTempPrefix = ".tmp.";

std::string errno_text(int err) { return std::generic_category().message(err); }

Result<void> validate_options(const TopicOptions& o) {
  auto fail = [](const std::string& m) { return Error(Errc::invalid_argument, m); };
  if (o.capacity < layout::kMinCapacity || o.capacity > layout::kMaxCapacity ||
      (o.capacity & (o.capacity - 1)) != 0) {
    return fail("capacity " + std::to_string(o.capacity) +
                " must be a power of two from 4096 (4KiB) to 17179869184 (16GiB)");
  }
  std::uint64_t limit = std::min(o.capacity / 4, layout::kMaxMessageLimit);
  if (o.max_message > limit) {
    return fail("max message " + std::to_string(o.max_message) + " exceeds " +
                std::to_string(limit) + " (a quarter of the capacity)");
  }
  if (o.max_readers == 0 || o.max_readers > layout::kMaxReaders) {
    return fail("max readers " + std::to_string(o.max_readers) + " must be 1 to 4096");
  }
  if (o.policy != Policy::block && o.policy != Policy::overwrite) {
    return fail("policy must be block or overwrite");
  }
  if (o.stuck_claim_timeout.count() <= 0) return fail("stuck-claim timeout must be positive");
  if (!layout::valid_frame_alignment(o.frame_alignment)) {
    return fail("frame alignment must be 8 (compact) or 64 (one cache line per frame start)");
  }
  if (o.mode != 0600 && o.mode != 0640 && o.mode != 0660) {
    return fail("mode must be 0600, 0640 or 0660");
  }
  if (o.mirror_of.size() >= layout::kMirrorSourceSize) {
    return fail("mirror source '" + o.mirror_of + "' is longer than " +
                std::to_string(layout::kMirrorSourceSize - 1) + " characters");
  }
  if (o.start_position % o.frame_alignment != 0 || o.start_position > (std::uint64_t{1} << 62)) {
    return fail("start position " + std::to_string(o.start_position) +
                " must be a multiple of the frame alignment below 2^62");
  }
  return {};
}

Result<void> ensure_directory(const std::string& dir, std::uint32_t file_mode) {
  // Directory mode follows the file mode: group members need x to reach shared topics.
  mode_t mode = 0700 | ((file_mode & 0060) ? 0050 : 0) | ((file_mode & 0020) ? 0020 : 0);
  if (::mkdir(dir.c_str(), mode) == 0 || errno == EEXIST) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return {};
    return Error(Errc::io_error, "bus directory " + dir + " is not a directory");
  }
  return Error(Errc::io_error, "cannot create bus directory " + dir + ": " + errno_text(errno));
}

// ".tmp.<pid>.<start_time>.<name>": the creator's identity, so leftovers of a crashed
// creation can be told from a creation in progress.
std::string temp_name(std::string_view topic) {
  auto self = detail::self_identity();
  return std::string(kTempPrefix) + std::to_string(self.pid) + "." +
         std::to_string(self.start_time) + "." + std::string(topic);
}

bool is_abandoned_temp(const std::string& file) {
  if (file.rfind(kTempPrefix, 0) != 0) return false;
  unsigned long pid = 0;
  unsigned long long start = 0;
  if (std::sscanf(file.c_str() + kTempPrefix.size(), "%lu.%llu.", &pid, &start) != 2) return true;
  return !detail::is_alive(static_cast<std::uint32_t>(pid), start);
}

void remove_abandoned_temps(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    const std::string file = e->d_name;
    if (!is_abandoned_temp(file)) continue;
    std::string path = dir;
    path += '/';
    path += file;
    ::unlink(path.c_str());
  }
  ::closedir(d);
}

// Fills the header of a new topic file.
void write_header(layout::TopicHeader& h, const TopicOptions& o, std::uint64_t file_size) {
  h.magic = layout::kMagic;
  h.layout_version = layout::kLayoutVersion;
  h.file_size = file_size;
  h.capacity = o.capacity;
  h.max_message =
      o.max_message != 0 ? o.max_message : std::min(o.capacity / 4, layout::kMaxMessageLimit);
  h.max_readers = o.max_readers;
  h.policy = o.policy == Policy::overwrite ? layout::kPolicyOverwrite : layout::kPolicyBlock;
  h.header_size = layout::kHeaderSize;
  h.slot_size = layout::kSlotSize;
  h.slots_offset = layout::kHeaderSize;
  h.ring_offset = layout::ring_offset_for(o.max_readers, layout::kSlotSize);
  h.frame_header_size = layout::kFrameHeaderSize;
  h.frame_alignment = o.frame_alignment;
  h.stuck_claim_timeout_ns =
      static_cast<std::uint64_t>(std::chrono::nanoseconds(o.stuck_claim_timeout).count());
  h.created_unix_ns = static_cast<std::uint64_t>(detail::realtime_ns());
  h.creator_pid = detail::self_identity().pid;
  h.base_position = o.start_position;
  h.base_messages = o.start_sequence;
  h.tail_position = o.start_position;
  h.tail_messages = o.start_sequence;
  h.reclaimed = o.start_position;
  h.applied_position = o.start_position;
  h.applied_messages = o.start_sequence;
  if (!o.mirror_of.empty()) {
    h.mirror = layout::kMirror;
    std::memcpy(h.mirror_source, o.mirror_of.data(),
                std::min(o.mirror_of.size(), layout::kMirrorSourceSize - 1));
  }
  // No ordering needed: this is a local copy, and the file becomes visible under its topic
  // name only at the rename, after the whole header has been written.
  h.ready = layout::kReady;
}

// Writes the header at offset 0: with pwrite, or through a shared mapping on file systems that
// refuse write(2), such as hugetlbfs.
Result<void> write_at_start(int fd, const layout::TopicHeader& header) {
  if (::pwrite(fd, &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header)) return {};
  int err = errno;
  if (err != EINVAL) return Error(err == ENOSPC ? Errc::no_space : Errc::io_error, errno_text(err));
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Error(Errc::io_error, errno_text(errno));
  auto length = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return Error(Errc::io_error, errno_text(errno));
  std::memcpy(map, &header, sizeof header);
  ::munmap(map, length);
  return {};
}

// Creates the complete topic file under `temp`. The file is removed again on any error.
Result<void> build_file(const std::string& temp, const TopicOptions& o) {
  detail::UniqueFd file(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, o.mode));
  if (!file) return Error(Errc::io_error, "cannot create " + temp + ": " + errno_text(errno));
  const int fd = file.get();
  auto fail = [&](Error e) {
    file.reset();
    ::unlink(temp.c_str());
    return e;
  };
  if (::fchmod(fd, o.mode) != 0) {
    return fail(Error(Errc::io_error, "cannot chmod " + temp + ": " + errno_text(errno)));
  }
  std::uint64_t size = layout::ring_offset_for(o.max_readers, layout::kSlotSize) + o.capacity;
  struct statfs fs {};
  if (::fstatfs(fd, &fs) == 0 && fs.f_bsize > 0) {
    auto block = static_cast<std::uint64_t>(fs.f_bsize);
    size = (size + block - 1) / block * block;
  }
  // Reserve every byte now: a sparse file in a full tmpfs would SIGBUS on first write.
  int err = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err == ENOSPC || err == EDQUOT) {
    return fail(Error(Errc::no_space, "no space for topic (" + std::to_string(size) +
                                          " bytes) in " + temp.substr(0, temp.rfind('/')) + ": " +
                                          errno_text(err)));
  }
  if (err == EOPNOTSUPP || err == EINVAL || err == ENODEV) {
    // A file system without fallocate: size the file; its pages are reserved when mapped.
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      return fail(Error(Errc::io_error, "cannot size " + temp + ": " + errno_text(errno)));
    }
  } else if (err != 0) {
    return fail(Error(Errc::io_error, "cannot reserve " + std::to_string(size) + " bytes for " +
                                          temp + ": " + errno_text(err)));
  }
  layout::TopicHeader header{};
  write_header(header, o, size);
  // Nobody can map the file before the rename, so the order of these writes does not matter.
  if (auto written = write_at_start(fd, header); !written) {
    return fail(
        Error(written.code(), "cannot write header of " + temp + ": " + written.error().message()));
  }
  return {};
}

}  // namespace

std::string Bus::default_directory() {
  if (const char* env = std::getenv("RINGBUS_DIR"); env != nullptr && *env != '\0') return env;
  return "/dev/shm/ringbus-" + std::to_string(::getuid());
}

Bus::Bus(std::string directory) : directory_(std::move(directory)) {
  while (directory_.size() > 1 && directory_.back() == '/') directory_.pop_back();
}

Result<Topic> Bus::create_topic(std::string_view name, const TopicOptions& options) const {
  if (auto ok = validate_name(name); !ok) return ok.error();
  if (auto ok = validate_options(options); !ok) return ok.error();
  if (auto ok = ensure_directory(directory_, options.mode); !ok) return ok.error();
  if (auto ok = detail::check_trusted_directory(directory_, "bus directory",
                                                detail::DirectoryUse::create);
      !ok)
    return ok.error();
  remove_abandoned_temps(directory_);

  std::string final_path = directory_ + "/" + std::string(name);
  std::string temp = directory_ + "/" + temp_name(name);
  if (auto built = build_file(temp, options); !built) return built.error();
  // renameat2(NOREPLACE): atomic, and never replaces an existing topic.
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    if (err == EEXIST) {
      return Error(Errc::already_exists, "topic '" + std::string(name) + "' already exists");
    }
    return Error(Errc::io_error,
                 "cannot rename " + temp + " to " + final_path + ": " + errno_text(err));
  }
  return open_topic(name, OpenOptions{options.lock_memory, false});
}

Result<Topic> Bus::open_topic(std::string_view name, const OpenOptions& options) const {
  if (auto ok = validate_name(name); !ok) return ok.error();
  if (auto ok =
          detail::check_trusted_directory(directory_, "bus directory", detail::DirectoryUse::read);
      !ok)
    return ok.error();
  auto mapping =
      detail::TopicMapping::open(directory_ + "/" + std::string(name), std::string(name), options);
  if (!mapping) return mapping.error();
  return Topic(std::move(*mapping));
}

Result<void> Bus::remove_topic(std::string_view name) const {
  if (auto ok = validate_name(name); !ok) return ok.error();
  std::string path = directory_ + "/" + std::string(name);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT)
      return Error(Errc::not_found, "topic '" + std::string(name) + "' not found");
    return Error(Errc::io_error, "cannot remove " + path + ": " + errno_text(errno));
  }
  return {};
}

Result<std::vector<std::string>> Bus::list_topics() const {
  if (auto ok =
          detail::check_trusted_directory(directory_, "bus directory", detail::DirectoryUse::read);
      !ok)
    return ok.error();
  DIR* d = ::opendir(directory_.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return std::vector<std::string>{};
    return Error(Errc::io_error, "cannot list " + directory_ + ": " + errno_text(errno));
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string file = e->d_name;
    if (file.empty() || file[0] == '.') {
      if (is_abandoned_temp(file)) ::unlinkat(::dirfd(d), file.c_str(), 0);
      continue;
    }
    if (validate_name(file)) names.push_back(std::move(file));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace ringbus
