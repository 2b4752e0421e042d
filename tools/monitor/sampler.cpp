// Sampling a bus directory read-only: list its topic files, keep them mapped, snapshot each one
// and derive publish and read rates from the previous sample.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <system_error>
#include <utility>

#include "monitor.hpp"

namespace ringbus::monitor {
namespace {

using Clock = std::chrono::steady_clock;

struct DirEntry {
  std::string name;
  struct stat st {};
};

// The directory's topic-like names, without removing anything (Bus::list_topics also deletes
// leftovers of crashed creations; a monitor must not change the bus). Hidden files, which
// include creations in progress, and names no topic can have are skipped.
Result<std::vector<DirEntry>> list_directory(const std::string& directory) {
  DIR* d = ::opendir(directory.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return std::vector<DirEntry>{};  // no topic created yet
    return Error(Errc::io_error, "cannot read bus directory " + directory + ": " +
                                     std::generic_category().message(errno));
  }
  std::vector<DirEntry> entries;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.empty() || name[0] == '.' || !validate_name(name)) continue;
    DirEntry entry;
    entry.name = std::move(name);
    // Vanished since readdir (deleted): not a topic any more.
    if (::fstatat(::dirfd(d), entry.name.c_str(), &entry.st, 0) != 0) continue;
    entries.push_back(std::move(entry));
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  return entries;
}

double per_second(std::uint64_t now, std::uint64_t before, double seconds) {
  return now >= before ? static_cast<double>(now - before) / seconds : 0.0;
}

// The same reader as in the previous sample: same slot, name, kind and process.
const ReaderInfo* find_previous(const TopicSnapshot& previous, const ReaderInfo& r) {
  for (const ReaderInfo& p : previous.readers) {
    if (p.slot == r.slot && p.name == r.name && p.kind == r.kind && p.pid == r.pid) return &p;
  }
  return nullptr;
}

// The topic's and its readers' rates since `before`, the previous sample of the same topic taken
// `seconds` ago (none on the first sample).
void add_rates(TopicRow& row, const TopicSnapshot* before, double seconds) {
  const bool rates = before != nullptr && seconds > 0;
  if (rates) {
    row.messages_per_second = per_second(row.snapshot.messages, before->messages, seconds);
    row.bytes_per_second = per_second(row.snapshot.tail, before->tail, seconds);
  }
  for (const ReaderInfo& r : row.snapshot.readers) {
    ReaderRow reader;
    reader.info = r;
    const ReaderInfo* p = rates ? find_previous(*before, r) : nullptr;
    if (p != nullptr) {
      reader.bytes_per_second = per_second(r.position, p->position, seconds);
      reader.messages_per_second = per_second(r.messages, p->messages, seconds);
    }
    row.readers.push_back(std::move(reader));
  }
}

}  // namespace

void compute_fill(TopicRow& row) {
  const TopicSnapshot& s = row.snapshot;
  row.max_lag_bytes = 0;
  for (const ReaderInfo& r : s.readers) {
    // Members do not hold producers back: their group's slot does.
    const bool holds_back = r.kind == "group" || (r.kind == "subscriber" && r.durable);
    if (s.config.policy == Policy::block && !holds_back) continue;
    if (s.config.policy == Policy::overwrite && r.kind == "member") continue;
    row.max_lag_bytes = std::max(row.max_lag_bytes, r.lag_bytes);
  }
  row.fill = s.config.capacity == 0 ? 0.0
                                    : std::min(1.0, static_cast<double>(row.max_lag_bytes) /
                                                        static_cast<double>(s.config.capacity));
  row.state = "ok";
  row.held_by.reset();
  if (auto bp = back_pressure(row.name, s); bp && (bp->stuck || bp->full)) {
    row.state = bp->full ? (bp->stuck ? "blocked" : "full") : "stalled";
    row.held_by = std::move(bp);
  }
}

Sampler::Sampler(std::string directory) : directory_(std::move(directory)), bus_(directory_) {}

BusView Sampler::sample() {
  const auto now = Clock::now();
  BusView view;
  view.directory = bus_.directory();
  view.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
  if (last_sample_) view.rate_window_s = std::chrono::duration<double>(now - *last_sample_).count();
  last_sample_ = now;

  auto entries = list_directory(bus_.directory());
  if (!entries) {
    view.directory_error = entries.error().message();
    mapped_.clear();
    return view;
  }
  std::set<std::string> present;
  for (const DirEntry& entry : *entries) {
    present.insert(entry.name);
    TopicRow row;
    row.name = entry.name;
    row.path = bus_.directory() + "/" + entry.name;
    Mapped* m = mapping_for(row, entry.st);
    if (m == nullptr) {
      if (row.error) view.topics.push_back(std::move(row));
      continue;
    }
    row.snapshot = m->topic.snapshot();
    compute_fill(row);
    const double seconds =
        m->previous ? std::chrono::duration<double>(now - m->previous->at).count() : 0;
    add_rates(row, m->previous ? &m->previous->snapshot : nullptr, seconds);
    m->previous = Previous{now, row.snapshot};
    view.topics.push_back(std::move(row));
  }
  // Topics whose file is gone: drop the mapping (their memory is freed with the last one).
  for (auto it = mapped_.begin(); it != mapped_.end();) {
    it = present.count(it->first) != 0 ? std::next(it) : mapped_.erase(it);
  }
  return view;
}

Sampler::Mapped* Sampler::mapping_for(TopicRow& row, const struct stat& st) {
  auto it = mapped_.find(row.name);
  if (it != mapped_.end() && (it->second.device != st.st_dev || it->second.inode != st.st_ino)) {
    mapped_.erase(it);  // deleted and created again: a new topic under the old name
    it = mapped_.end();
  }
  if (it == mapped_.end()) {
    auto opened = bus_.open_topic(row.name, OpenOptions{.lock_memory = false, .read_only = true});
    if (!opened) {
      // Not found: deleted since it was listed. Otherwise tried again next sample: a file may
      // still become valid.
      if (opened.code() != Errc::not_found) row.error = opened.error();
      return nullptr;
    }
    Mapped m;
    m.topic = std::move(*opened);
    m.device = st.st_dev;
    m.inode = st.st_ino;
    it = mapped_.emplace(row.name, std::move(m)).first;
  }
  // Reading a mapped page past the end of a file that was cut short raises SIGBUS: look at
  // the size first. (Topics never change size; only something else writing here does that.)
  if (static_cast<std::uint64_t>(st.st_size) < it->second.topic.config().file_size) {
    row.error = Error(Errc::corrupt, "topic file " + row.path + " was truncated to " +
                                         std::to_string(st.st_size) + " bytes, its header says " +
                                         std::to_string(it->second.topic.config().file_size));
    mapped_.erase(it);
    return nullptr;
  }
  return &it->second;
}

}  // namespace ringbus::monitor
