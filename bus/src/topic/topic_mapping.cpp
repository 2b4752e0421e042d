// Mapping a topic file and validating its header: a bad file gives an error, never a crash.
#include "topic/topic_mapping.hpp"

#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>

#include <boost/interprocess/exceptions.hpp>

#include "ring/atomics.hpp"
#include "topic/recorder_fields.hpp"

namespace ringbus::detail {
namespace {

namespace bip = boost::interprocess;
using layout::TopicHeader;

Error bad(const std::string& path, const std::string& what) {
  return {Errc::corrupt, "topic file " + path + " is corrupt: " + what};
}

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool is_power_of_two(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Faults every page in now, writable if we will write, so no first-touch fault lands on the
// hot path. Each process has its own page tables, so every mapping does this.
void prefault(void* addr, std::size_t size, bool writable) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(addr, size, writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0) return;
#endif
  // Older kernels: touch each page. A relaxed fetch_add(0) dirties the page table entry without
  // changing a byte that another process may be writing.
  auto* bytes = static_cast<std::byte*>(addr);
  for (std::size_t off = 0; off < size; off += layout::kPageSize) {
    auto* word = reinterpret_cast<std::uint64_t*>(bytes + off);
    if (writable) {
      atomic(*word).fetch_add(0, std::memory_order_relaxed);
    } else {
      (void)atomic(*word).load(std::memory_order_relaxed);
    }
  }
}

// Whether the file is a finished ringbus topic of the layout version this library reads.
Result<void> check_identity(const TopicHeader& h, const std::string& path) {
  if (h.magic != layout::kMagic) {
    return Error(Errc::corrupt, "file " + path + " is not a ringbus topic (magic " + hex(h.magic) +
                                    ", expected " + hex(layout::kMagic) + ")");
  }
  if (h.layout_version != layout::kLayoutVersion) {
    return Error(Errc::incompatible,
                 "topic file " + path + " has layout version " + std::to_string(h.layout_version) +
                     "; this library reads version " + std::to_string(layout::kLayoutVersion));
  }
  if (h.ready != layout::kReady) {
    return Error(Errc::not_ready,
                 "topic file " + path + " is not ready (its creation did not complete)");
  }
  return {};
}

// The sizes and offsets of the header, the reader slots and the ring, against the file's size.
Result<void> check_geometry(const TopicHeader& h, std::uint64_t file_size,
                            const std::string& path) {
  if (h.header_size != layout::kHeaderSize) {
    return bad(path, "header size " + std::to_string(h.header_size) + ", expected 4096");
  }
  if (h.slot_size != layout::kSlotSize) {
    return bad(path, "reader slot size " + std::to_string(h.slot_size) + ", expected 256");
  }
  if (h.frame_header_size != layout::kFrameHeaderSize ||
      !layout::valid_frame_alignment(h.frame_alignment)) {
    return bad(path, "frame header size/alignment " + std::to_string(h.frame_header_size) + "/" +
                         std::to_string(h.frame_alignment) + ", expected 32 and 8 or 64");
  }
  if (!is_power_of_two(h.capacity) || h.capacity < layout::kMinCapacity ||
      h.capacity > layout::kMaxCapacity) {
    return bad(path, "capacity " + std::to_string(h.capacity) +
                         " is not a power of two between 4 KiB and 16 GiB");
  }
  if (h.max_readers == 0 || h.max_readers > layout::kMaxReaders) {
    return bad(path, "max readers " + std::to_string(h.max_readers) + " is not in 1..4096");
  }
  if (h.slots_offset != layout::kHeaderSize) {
    return bad(path, "slots offset " + std::to_string(h.slots_offset) + ", expected 4096");
  }
  std::uint64_t ring_offset = layout::ring_offset_for(h.max_readers, h.slot_size);
  if (h.ring_offset != ring_offset) {
    return bad(path, "ring offset " + std::to_string(h.ring_offset) + ", expected " +
                         std::to_string(ring_offset));
  }
  // The file may be rounded up to the file system's block size (hugetlbfs: a huge page).
  if (h.file_size < ring_offset + h.capacity ||
      h.file_size - (ring_offset + h.capacity) >= (std::uint64_t{1} << 30)) {
    return bad(path, "recorded file size " + std::to_string(h.file_size) +
                         " does not match ring offset + capacity");
  }
  if (file_size != h.file_size) {
    return bad(path, "file is " + std::to_string(file_size) + " bytes, its header says " +
                         std::to_string(h.file_size) + " (truncated or extended)");
  }
  return {};
}

// The topic's settings: message size, slow-reader policy, stuck-claim timeout, base position.
Result<void> check_settings(const TopicHeader& h, const std::string& path) {
  std::uint64_t max_message_limit = std::min(h.capacity / 4, layout::kMaxMessageLimit);
  if (h.max_message > max_message_limit) {
    return bad(path, "max message " + std::to_string(h.max_message) + " exceeds " +
                         std::to_string(max_message_limit));
  }
  if (h.policy != layout::kPolicyBlock && h.policy != layout::kPolicyOverwrite) {
    return bad(path, "unknown slow-reader policy " + std::to_string(h.policy));
  }
  if (h.stuck_claim_timeout_ns == 0) return bad(path, "stuck-claim timeout is zero");
  if (h.base_position % h.frame_alignment != 0) {
    return bad(path, "base position " + std::to_string(h.base_position) + " is not frame aligned");
  }
  return {};
}

}  // namespace

Result<TopicConfig> TopicMapping::validate(const TopicHeader& h, std::uint64_t file_size,
                                           const std::string& path) {
  if (auto ok = check_identity(h, path); !ok) return ok.error();
  if (auto ok = check_geometry(h, file_size, path); !ok) return ok.error();
  if (auto ok = check_settings(h, path); !ok) return ok.error();
  TopicConfig c;
  c.capacity = h.capacity;
  c.max_message = h.max_message;
  c.policy = static_cast<Policy>(h.policy);
  c.max_readers = h.max_readers;
  c.stuck_claim_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(
          static_cast<std::int64_t>(std::min<std::uint64_t>(h.stuck_claim_timeout_ns, INT64_MAX))));
  c.layout_version = h.layout_version;
  c.file_size = h.file_size;
  c.ring_offset = h.ring_offset;
  c.frame_alignment = h.frame_alignment;
  c.start_position = h.base_position;
  c.start_sequence = h.base_messages;
  if (h.mirror != 0) {
    if (h.mirror != layout::kMirror)
      return bad(path, "unknown mirror mark " + std::to_string(h.mirror));
    std::string source = detail::read_fixed_text(h.mirror_source, layout::kMirrorSourceSize);
    c.mirror_of = source.empty() ? std::string(1, '?') : std::move(source);
  }
  return c;
}

Result<std::shared_ptr<TopicMapping>> TopicMapping::open(const std::string& path, std::string name,
                                                         const OpenOptions& options) {
  struct stat st {};
  // lstat: a symbolic link planted at a topic's name is refused, not followed.
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return Error(Errc::not_found, "topic '" + name + "' not found (" + path + ")");
    return Error(Errc::io_error,
                 "cannot stat " + path + ": " + std::generic_category().message(errno));
  }
  if (S_ISLNK(st.st_mode)) {
    return Error(Errc::invalid_argument, path + " is a symbolic link, not a topic file: refused");
  }
  if (!S_ISREG(st.st_mode)) return bad(path, "not a regular file");
  auto file_size = static_cast<std::uint64_t>(st.st_size);
  if (file_size < layout::kHeaderSize) {
    return bad(path, "truncated: " + std::to_string(file_size) +
                         " bytes, smaller than the 4096-byte header");
  }

  std::shared_ptr<TopicMapping> m(new TopicMapping());
  m->name_ = std::move(name);
  m->path_ = path;
  m->read_only_ = options.read_only;
  auto mode = options.read_only ? bip::read_only : bip::read_write;
  try {
    m->file_ = bip::file_mapping(path.c_str(), mode);
    // Map only the header first: a header that lies about the size must not make us map more.
    bip::mapped_region head(m->file_, bip::read_only, 0, layout::kHeaderSize);
    TopicHeader copy;
    // acquire: pairs with the creator's release store of `ready`.
    auto* live = static_cast<TopicHeader*>(head.get_address());
    std::uint32_t ready = atomic(live->ready).load(std::memory_order_acquire);
    std::memcpy(&copy, live, sizeof copy);
    copy.ready = ready;
    auto config = validate(copy, file_size, path);
    if (!config) return config.error();
    m->config_ = *config;
    m->config_.mode = static_cast<std::uint32_t>(st.st_mode & 07777);
    m->region_ = bip::mapped_region(m->file_, mode, 0, file_size);
  } catch (const bip::interprocess_exception& e) {
    return Error(Errc::io_error, "cannot map " + path + ": " + e.what());
  }
  auto* base = static_cast<std::byte*>(m->region_.get_address());
  m->header_ = reinterpret_cast<TopicHeader*>(base);
  m->slots_ = reinterpret_cast<layout::ReaderSlot*>(base + layout::kHeaderSize);
  m->view_.base = base + m->config_.ring_offset;
  m->view_.capacity = m->config_.capacity;
  m->view_.mask = m->config_.capacity - 1;
  m->view_.lap_shift = static_cast<std::uint32_t>(__builtin_ctzll(m->config_.capacity));
  m->view_.max_message = m->config_.max_message;
  m->view_.alignment = m->config_.frame_alignment;

  prefault(base, file_size, !options.read_only);
  if (options.lock_memory && ::mlock(base, file_size) != 0) {
    int err = errno;
    return Error(
        Errc::io_error,
        "cannot lock " + std::to_string(file_size) + " bytes of " + path +
            " in memory: " + std::generic_category().message(err) +
            (err == ENOMEM || err == EPERM ? " (raise RLIMIT_MEMLOCK, e.g. ulimit -l)" : ""));
  }
  return m;
}

}  // namespace ringbus::detail
