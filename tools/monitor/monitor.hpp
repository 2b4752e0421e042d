// ringbus-monitor's core: samples every topic of a bus directory read-only and derives rates,
// then renders a sample as text, JSON or Prometheus metrics. main.cpp only wires options to it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ringbus/result.hpp"
#include "ringbus/topic.hpp"
#include "snapshot_json.hpp"

namespace ringbus::monitor {

// One reader slot of a topic, with its read rate over the last sampling interval.
struct ReaderRow {
  ReaderInfo info;
  // Bytes and messages per second the reader advanced since the previous sample; empty on the
  // first sample of this reader (or when the slot now holds another reader).
  std::optional<double> bytes_per_second;
  std::optional<double> messages_per_second;
};

// One file of the bus directory: a topic, or an error row for a file that is not a usable
// topic (corrupt, half-created, another layout version, unreadable).
struct TopicRow {
  std::string name;
  std::string path;
  std::optional<Error> error;  // set: only name, path and error are meaningful
  TopicSnapshot snapshot;
  // The slowest reader's unread bytes: under `block` only durable readers and groups count
  // (they are what holds producers back); under `overwrite` every reader (how close the
  // slowest one is to being lapped).
  std::uint64_t max_lag_bytes = 0;
  double fill = 0.0;  // max_lag_bytes / capacity, capped at 1
  // Block topics: "ok"; "stalled" when the slowest durable reader or group cannot move by
  // itself (no live process, no live member); "full" when it is about a ring behind, so
  // producers wait; "blocked" when both. Overwrite topics are always "ok".
  std::string state = "ok";
  // Who holds producers back, when state is not "ok" (see ringbus::back_pressure).
  std::optional<BackPressure> held_by;
  // Publish rate since the previous sample (tail and message count); empty on the first one.
  std::optional<double> messages_per_second;
  std::optional<double> bytes_per_second;
  std::vector<ReaderRow> readers;
};

// Everything one sample saw.
struct BusView {
  std::string directory;
  std::string directory_error;   // set when the directory cannot be read (then no topics)
  std::int64_t unix_ms = 0;      // wall-clock time of the sample
  double rate_window_s = 0.0;    // seconds since the previous sample; 0 on the first
  std::vector<TopicRow> topics;  // sorted by name
};

// Samples a bus directory. Strictly read-only: lists the directory without removing anything,
// maps topics read-only and only loads from shared memory. Topics stay mapped between samples
// (mapping prefaults the whole file) and are mapped again when their file is replaced.
// Not thread-safe: one thread samples.
class Sampler {
 public:
  explicit Sampler(std::string directory);

  // Takes a sample now. Never throws except std::bad_alloc; a bad file becomes an error row.
  BusView sample();

 private:
  struct Previous {
    std::chrono::steady_clock::time_point at;
    TopicSnapshot snapshot;
  };
  struct Mapped {
    Topic topic;
    dev_t device = 0;
    ino_t inode = 0;
    std::optional<Previous> previous;
  };

  // The mapping of the topic `row` names, whose file `st` describes: opened (again, when the
  // file was replaced) if need be. Null when it cannot be read now (row.error says why) or was
  // deleted since it was listed (no error).
  Mapped* mapping_for(TopicRow& row, const struct stat& st);

  std::string directory_;
  Bus bus_;
  std::map<std::string, Mapped> mapped_;
  std::optional<std::chrono::steady_clock::time_point> last_sample_;
};

// Derived figures of a snapshot (no rates): max_lag_bytes, fill, state and held_by. Exposed for
// tests.
void compute_fill(TopicRow& row);

// "alive", "stalled", "dead" or "shared", exactly as `ringbus topic describe` prints it.
using tools::reader_state;

// Sort orders of the table (the `s` key cycles through them).
enum class SortKey : std::uint8_t { name, publish_rate, fill, lag, errors };
std::string_view to_string(SortKey key);
SortKey next(SortKey key);

// What a table shows: topics whose name contains `filter` (all when empty), in `sort` order.
struct TableOptions {
  SortKey sort = SortKey::name;
  std::string filter;
};

// One line of the table, with what it shows so a terminal can colour it.
struct Line {
  enum class Kind : std::uint8_t { title, header, topic, reader, recorder, error, blank };
  Kind kind = Kind::blank;
  std::string text;
};

// The table as lines: a title line, a column header, then per topic its row, a recorder row
// when a bridge records it, and one row per reader.
std::vector<Line> table_lines(const BusView& view, const TableOptions& options);

// The table as plain text (what --once and a monitor without a terminal print).
std::string render_text(const BusView& view, const TableOptions& options = {});

// One JSON object (schema in docs/monitor.md), without a trailing newline.
std::string render_json(const BusView& view);

// The Prometheus text exposition format (version 0.0.4), metric names in docs/monitor.md.
std::string render_prometheus(const BusView& view);

// Human-readable sizes and rates for the table: 1536 -> "1.5KiB", 2500000.0 -> "2.5M".
std::string human_bytes(std::uint64_t bytes);
std::string human_rate(double per_second);

}  // namespace ringbus::monitor
