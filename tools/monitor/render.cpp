// Renderings of a sample: the top-like table (terminal and plain text), JSON for scripts, and
// the Prometheus text format. All three show the same figures under the same names.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "monitor.hpp"
#include "snapshot_json.hpp"

namespace ringbus::monitor {
namespace {

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string rate_text(const std::optional<double>& rate) { return rate ? human_rate(*rate) : "-"; }

std::string mb_text(const std::optional<double>& bytes_per_second) {
  return bytes_per_second ? fixed(*bytes_per_second / 1e6, 2) : "-";
}

std::string local_time(std::int64_t unix_ms) {
  const auto seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  ::localtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// The name a reader row shows: persistent readers and groups by name, others by slot.
std::string reader_label(const ReaderInfo& r) {
  if (r.kind == "member") {
    return (r.group.empty() ? std::string("?") : r.group) + "/slot " + std::to_string(r.slot);
  }
  return r.name.empty() ? "slot " + std::to_string(r.slot) : r.name;
}

double sort_value(const TopicRow& t, SortKey key) {
  switch (key) {
    case SortKey::publish_rate: return t.bytes_per_second.value_or(0.0);
    case SortKey::fill: return t.fill;
    case SortKey::lag: return static_cast<double>(t.max_lag_bytes);
    case SortKey::errors: return t.error ? 1.0 : 0.0;
    case SortKey::name: break;
  }
  return 0.0;
}

double reader_sort_value(const ReaderRow& r, SortKey key) {
  switch (key) {
    case SortKey::publish_rate: return r.bytes_per_second.value_or(0.0);
    case SortKey::fill:
    case SortKey::lag: return static_cast<double>(r.info.lag_bytes);
    case SortKey::errors:
    case SortKey::name: break;
  }
  return -static_cast<double>(r.info.slot);  // descending sort: lowest slot first
}

const std::vector<std::string> kColumns{"NAME",  "TYPE",      "CAPACITY",  "FILL",     "PID",
                                        "STATE", "POSITION",  "LAG_BYTES", "LAG_MSGS", "MSG/S",
                                        "MB/S",  "LOST_MSGS", "ABORTED",   "DETAIL"};

std::vector<std::string> topic_cells(const TopicRow& t) {
  const TopicSnapshot& s = t.snapshot;
  return {t.name,
          std::string(to_string(s.config.policy)),
          human_bytes(s.config.capacity),
          fixed(t.fill * 100.0, 1) + "%",
          "-",
          t.state,
          std::to_string(s.tail),
          std::to_string(t.max_lag_bytes),
          "-",
          rate_text(t.messages_per_second),
          mb_text(t.bytes_per_second),
          "-",
          std::to_string(s.aborted_claims),
          std::to_string(t.readers.size()) + " readers" +
              (t.held_by ? "; held back by " + t.held_by->text : "")};
}

// The reader or group holding producers back, or null.
nlohmann::ordered_json held_by_json(const TopicRow& t) {
  if (!t.held_by) return nullptr;
  const BackPressure& bp = *t.held_by;
  return {
      {"slot", bp.reader.slot},
      {"kind", bp.reader.kind},
      {"name", bp.reader.name},
      {"alive", bp.reader.kind == "group" ? bp.live_members > 0 : bp.reader.alive},
      {"live_members", bp.live_members},
      {"stuck", bp.stuck},
      {"full", bp.full},
      {"lag_bytes", bp.reader.lag_bytes},
      {"lag_messages", bp.reader.lag_messages},
      {"text", bp.text},
  };
}

std::vector<std::string> forward_cells(const ForwardInfo& f) {
  std::string detail =
      "sent " + std::to_string(f.sent_position) + " (" + std::to_string(f.in_flight_bytes) +
      " in flight), lag " + std::to_string(f.lag_messages) + " messages, " +
      std::to_string(f.reconnects) + " reconnects, " + std::to_string(f.errors) + " errors";
  if (!f.last_error.empty()) detail += " (last: " + f.last_error + ")";
  return {"  [forward " + f.destination + "]",
          "forward",
          "-",
          "-",
          f.pid == 0 ? "-" : std::to_string(f.pid),
          f.state + (f.pid != 0 && !f.alive ? " (dead)" : ""),
          std::to_string(f.acked_position),
          std::to_string(f.lag_bytes),
          "-",
          "-",
          "-",
          "-",
          "-",
          detail};
}

std::vector<std::string> mirror_cells(const MirrorInfo& m) {
  return {"  [mirror]",
          "mirror",
          "-",
          "-",
          m.pid == 0 ? "-" : std::to_string(m.pid),
          m.pid == 0 ? "not receiving" : (m.alive ? "receiving" : "receiving (dead)"),
          std::to_string(m.applied_position),
          "-",
          "-",
          "-",
          "-",
          "-",
          "-",
          "mirror of " + m.source};
}

std::vector<std::string> recorder_cells(const TopicRow& t, const RecorderInfo& r) {
  const std::uint64_t lag_messages =
      t.snapshot.messages > r.recorded_messages ? t.snapshot.messages - r.recorded_messages : 0;
  std::string detail = "durable " + std::to_string(r.durable_position) + ", " +
                       std::to_string(r.segments) + " segments, " + human_bytes(r.log_bytes) +
                       " log, " + std::to_string(r.errors) + " errors";
  if (!r.last_error.empty()) detail += " (last: " + r.last_error + ")";
  return {"  [recorder]",
          "recorder",
          "-",
          "-",
          r.pid == 0 ? "-" : std::to_string(r.pid),
          r.state + (r.pid != 0 && !r.alive ? " (dead)" : ""),
          std::to_string(r.recorded_position),
          std::to_string(r.lag_bytes),
          std::to_string(lag_messages),
          "-",
          "-",
          "-",
          "-",
          detail};
}

std::vector<std::string> reader_cells(const ReaderRow& row) {
  const ReaderInfo& r = row.info;
  std::string type = r.kind;
  if (r.kind == "subscriber") type += r.durable ? "" : " (lossy)";
  std::string detail;
  if (r.kind == "group") {
    detail = "dispatch " + std::to_string(r.dispatch) + ", " + std::to_string(r.in_flight) +
             " in flight";
  } else if (r.kind == "member" && r.in_flight > 0) {
    detail = std::to_string(r.in_flight) + " in flight, delivery " + std::to_string(r.delivery);
  }
  return {"  " + reader_label(r),
          type,
          "-",
          "-",
          r.pid == 0 ? "-" : std::to_string(r.pid),
          std::string(reader_state(r)),
          std::to_string(r.position),
          std::to_string(r.lag_bytes),
          std::to_string(r.lag_messages),
          rate_text(row.messages_per_second),
          mb_text(row.bytes_per_second),
          std::to_string(r.lost_messages),
          "-",
          detail};
}

// Pads every cell but the last to its column's width.
std::string join(const std::vector<std::string>& cells, const std::vector<std::size_t>& width) {
  std::string text;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    text += cells[i];
    if (i + 1 < cells.size()) text.append(width[i] - std::min(width[i], cells[i].size()) + 2, ' ');
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// Prometheus text format: families in a fixed order, each with its HELP and TYPE once.
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  void add(const std::string& name, const char* type, const char* help, const Labels& labels,
           double value) {
    auto it = std::find_if(families_.begin(), families_.end(),
                           [&](const Family& f) { return f.name == name; });
    if (it == families_.end()) {
      families_.push_back({name, type, help, {}});
      it = std::prev(families_.end());
    }
    std::string line = name;
    if (!labels.empty()) {
      line += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) line += ',';
        line += labels[i].first + "=\"" + escape(labels[i].second) + '"';
      }
      line += '}';
    }
    line += ' ' + number(value);
    it->samples.push_back(std::move(line));
  }

  std::string text() const {
    std::string out;
    for (const Family& f : families_) {
      out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
      for (const auto& s : f.samples) out += s + "\n";
    }
    return out;
  }

 private:
  struct Family {
    std::string name;
    std::string type;
    std::string help;
    std::vector<std::string> samples;
  };

  static std::string escape(const std::string& value) {
    std::string out;
    for (char c : value) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '"') {
        out += "\\\"";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    return out;
  }

  // Integers exactly (positions are 64-bit), everything else in the shortest exact form.
  static std::string number(double value) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
  }

  std::vector<Family> families_;
};

nlohmann::ordered_json optional_number(const std::optional<double>& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string_view to_string(SortKey key) {
  switch (key) {
    case SortKey::name: return "name";
    case SortKey::publish_rate: return "publish rate";
    case SortKey::fill: return "fill";
    case SortKey::lag: return "lag";
    case SortKey::errors: return "errors first";
  }
  return "name";
}

SortKey next(SortKey key) {
  switch (key) {
    case SortKey::name: return SortKey::publish_rate;
    case SortKey::publish_rate: return SortKey::fill;
    case SortKey::fill: return SortKey::lag;
    case SortKey::lag: return SortKey::errors;
    case SortKey::errors: return SortKey::name;
  }
  return SortKey::name;
}

std::string human_bytes(std::uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes);
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(kUnits)) {
    value /= 1024.0;
    ++unit;
  }
  std::string text = fixed(value, 1);
  if (text.size() > 2 && text.compare(text.size() - 2, 2, ".0") == 0) text.resize(text.size() - 2);
  return text + kUnits[unit];
}

std::string human_rate(double per_second) {
  if (per_second < 1000.0) return fixed(per_second, per_second < 10.0 && per_second > 0 ? 1 : 0);
  static const char* const kUnits[] = {"k", "M", "G", "T"};
  double value = per_second / 1000.0;
  std::size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < std::size(kUnits)) {
    value /= 1000.0;
    ++unit;
  }
  return fixed(value, 1) + kUnits[unit];
}

std::vector<Line> table_lines(const BusView& view, const TableOptions& options) {
  std::vector<const TopicRow*> topics;
  std::size_t errors = 0;
  for (const TopicRow& t : view.topics) {
    if (t.error) ++errors;
    if (options.filter.empty() || t.name.find(options.filter) != std::string::npos) {
      topics.push_back(&t);
    }
  }
  if (options.sort != SortKey::name) {
    std::stable_sort(topics.begin(), topics.end(), [&](const TopicRow* a, const TopicRow* b) {
      return sort_value(*a, options.sort) > sort_value(*b, options.sort);
    });
  }

  std::string title = "ringbus-monitor  " + view.directory + "  " + local_time(view.unix_ms) +
                      "  " + std::to_string(view.topics.size()) + " topics";
  if (errors > 0) title += " (" + std::to_string(errors) + " bad)";
  title += "  sort: " + std::string(to_string(options.sort));
  if (!options.filter.empty()) {
    title += "  filter: " + options.filter + " (" + std::to_string(topics.size()) + " shown)";
  }

  // Rows first, so the columns can be sized to their widest cell.
  struct Row {
    Line::Kind kind;
    std::vector<std::string> cells;  // empty for an error row (text instead)
    std::string text;
  };
  std::vector<Row> rows;
  for (const TopicRow* t : topics) {
    if (t->error) {
      rows.push_back({Line::Kind::error, {}, t->name + "  ERROR: " + t->error->message()});
      continue;
    }
    rows.push_back({Line::Kind::topic, topic_cells(*t), {}});
    if (t->snapshot.mirror) {
      rows.push_back({Line::Kind::recorder, mirror_cells(*t->snapshot.mirror), {}});
    }
    if (t->snapshot.recorder) {
      rows.push_back({Line::Kind::recorder, recorder_cells(*t, *t->snapshot.recorder), {}});
    }
    for (const ForwardInfo& f : t->snapshot.forwards) {
      rows.push_back({Line::Kind::recorder, forward_cells(f), {}});
    }
    std::vector<const ReaderRow*> readers;
    for (const ReaderRow& r : t->readers) readers.push_back(&r);
    std::stable_sort(readers.begin(), readers.end(), [&](const ReaderRow* a, const ReaderRow* b) {
      return reader_sort_value(*a, options.sort) > reader_sort_value(*b, options.sort);
    });
    for (const ReaderRow* r : readers) rows.push_back({Line::Kind::reader, reader_cells(*r), {}});
  }
  std::vector<std::size_t> width(kColumns.size());
  for (std::size_t i = 0; i < kColumns.size(); ++i) width[i] = kColumns[i].size();
  for (const Row& row : rows) {
    for (std::size_t i = 0; i < row.cells.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], row.cells[i].size());
    }
  }

  std::vector<Line> lines;
  lines.push_back({Line::Kind::title, std::move(title)});
  if (!view.directory_error.empty()) {
    lines.push_back({Line::Kind::error, "ERROR: " + view.directory_error});
  }
  lines.push_back({Line::Kind::header, join(kColumns, width)});
  for (Row& row : rows) {
    lines.push_back({row.kind, row.cells.empty() ? std::move(row.text) : join(row.cells, width)});
  }
  if (topics.empty() && view.directory_error.empty()) {
    lines.push_back(
        {Line::Kind::blank, view.topics.empty() ? "(no topics)" : "(no topic matches)"});
  }
  return lines;
}

std::string render_text(const BusView& view, const TableOptions& options) {
  std::string text;
  for (const Line& line : table_lines(view, options)) text += line.text + "\n";
  return text;
}

std::string render_json(const BusView& view) {
  using Json = nlohmann::ordered_json;
  Json topics = Json::array();
  for (const TopicRow& t : view.topics) {
    if (t.error) {
      topics.push_back({
          {"name", t.name},
          {"path", t.path},
          {"ok", false},
          {"error", {{"code", to_string(t.error->code())}, {"message", t.error->message()}}},
      });
      continue;
    }
    const TopicSnapshot& s = t.snapshot;
    const TopicConfig& c = s.config;
    Json readers = Json::array();
    for (const ReaderRow& row : t.readers) {
      const ReaderInfo& r = row.info;
      Json reader = tools::reader_json(r);
      reader["read_messages_per_second"] = optional_number(row.messages_per_second);
      reader["read_bytes_per_second"] = optional_number(row.bytes_per_second);
      readers.push_back(std::move(reader));
    }
    Json mirror = nullptr;
    if (s.mirror) mirror = tools::mirror_json(*s.mirror);
    Json forwards = Json::array();
    for (const ForwardInfo& f : s.forwards) forwards.push_back(tools::forward_json(f));
    Json recorder = nullptr;
    if (s.recorder) recorder = tools::recorder_json(*s.recorder);
    topics.push_back({
        {"name", t.name},
        {"path", t.path},
        {"ok", true},
        {"error", nullptr},
        {"config", tools::config_json(c)},
        {"earliest", s.earliest},
        {"tail", s.tail},
        {"messages", s.messages},
        {"aborted_claims", s.aborted_claims},
        {"reaped_readers", s.reaped_readers},
        {"max_lag_bytes", t.max_lag_bytes},
        {"fill", t.fill},
        {"state", t.state},
        {"held_by", held_by_json(t)},
        {"publish_messages_per_second", optional_number(t.messages_per_second)},
        {"publish_bytes_per_second", optional_number(t.bytes_per_second)},
        {"readers", std::move(readers)},
        {"recorder", std::move(recorder)},
        {"mirror", std::move(mirror)},
        {"forwards", std::move(forwards)},
    });
  }
  Json j = {
      {"schema", 1},
      {"directory", view.directory},
      {"directory_error",
       view.directory_error.empty() ? Json(nullptr) : Json(view.directory_error)},
      {"time_unix_ms", view.unix_ms},
      {"rate_window_s", view.rate_window_s},
      {"topics", std::move(topics)},
  };
  // Names are validated ASCII, but an error message may quote anything: never abort on it.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace {

constexpr const char* kGauge = "gauge";
constexpr const char* kCounter = "counter";

double as_double(std::uint64_t v) { return static_cast<double>(v); }

// A valid topic's own figures (size, positions, counters, back pressure, rates).
void add_topic(Exposition& e, const TopicRow& t) {
  const Exposition::Labels topic{{"topic", t.name}};
  const TopicSnapshot& s = t.snapshot;
  e.add("ringbus_topic_info", kGauge, "Always 1; the topic's policy as a label",
        {{"topic", t.name}, {"policy", std::string(to_string(s.config.policy))}}, 1);
  e.add("ringbus_topic_capacity_bytes", kGauge, "Ring size", topic, as_double(s.config.capacity));
  e.add("ringbus_topic_max_message_bytes", kGauge, "Largest key + value", topic,
        as_double(s.config.max_message));
  e.add("ringbus_topic_tail_position", kGauge, "Next byte position to be claimed", topic,
        as_double(s.tail));
  e.add("ringbus_topic_earliest_position", kGauge, "Oldest frame boundary still in the ring", topic,
        as_double(s.earliest));
  e.add("ringbus_topic_messages_total", kCounter, "Messages claimed since creation", topic,
        as_double(s.messages));
  e.add("ringbus_topic_aborted_claims_total", kCounter,
        "Stuck claims turned into padding (dead or hung producers)", topic,
        as_double(s.aborted_claims));
  e.add("ringbus_topic_reaped_readers_total", kCounter, "Dead readers whose slots were freed",
        topic, as_double(s.reaped_readers));
  e.add("ringbus_topic_readers", kGauge, "Reader slots in use (subscribers, groups, members)",
        topic, as_double(s.readers.size()));
  e.add("ringbus_topic_max_lag_bytes", kGauge,
        "Unread bytes of the slowest reader that counts (durable ones under block)", topic,
        as_double(t.max_lag_bytes));
  e.add("ringbus_topic_fill_ratio", kGauge, "max_lag_bytes / capacity", topic, t.fill);
  e.add("ringbus_topic_held_back", kGauge,
        "1 when the slowest durable reader or group is stuck or a ring behind; its state "
        "(stalled, full, blocked) and slot as labels",
        {{"topic", t.name},
         {"state", t.state},
         {"reader", t.held_by ? t.held_by->reader.name : std::string()},
         {"slot", t.held_by ? std::to_string(t.held_by->reader.slot) : std::string()}},
        t.held_by ? 1.0 : 0.0);
  if (t.messages_per_second) {
    e.add("ringbus_topic_publish_messages_per_second", kGauge,
          "Messages published per second over the last sampling interval", topic,
          *t.messages_per_second);
    e.add("ringbus_topic_publish_bytes_per_second", kGauge,
          "Stream bytes published per second over the last sampling interval", topic,
          *t.bytes_per_second);
  }
}

// The disk log's figures, when a bridge records the topic.
void add_recorder(Exposition& e, const TopicRow& t) {
  const TopicSnapshot& s = t.snapshot;
  const Exposition::Labels topic{{"topic", t.name}};
  if (s.recorder) {
    const RecorderInfo& r = *s.recorder;
    e.add("ringbus_recorder_info", kGauge, "Always 1; the recorder's state as a label",
          {{"topic", t.name}, {"state", r.state}}, 1);
    e.add("ringbus_recorder_alive", kGauge, "1 if the recording bridge process is alive", topic,
          r.alive ? 1 : 0);
    e.add("ringbus_recorder_recorded_position", kGauge, "Stream bytes written to the disk log",
          topic, as_double(r.recorded_position));
    e.add("ringbus_recorder_recorded_messages_total", kCounter, "Messages written to the disk log",
          topic, as_double(r.recorded_messages));
    e.add("ringbus_recorder_durable_position", kGauge, "Stream bytes fsynced", topic,
          as_double(r.durable_position));
    e.add("ringbus_recorder_log_start_position", kGauge, "Oldest offset still in the log", topic,
          as_double(r.log_start));
    e.add("ringbus_recorder_lag_bytes", kGauge, "tail - recorded position", topic,
          as_double(r.lag_bytes));
    e.add("ringbus_recorder_segments", kGauge, "Segment files of the log", topic,
          as_double(r.segments));
    e.add("ringbus_recorder_log_bytes", kGauge, "Bytes in segment files", topic,
          as_double(r.log_bytes));
    e.add("ringbus_recorder_errors_total", kCounter, "Recorder failures so far", topic,
          as_double(r.errors));
  }
}

// A mirror's figures (the topic is written by a receiving bridge).
void add_mirror(Exposition& e, const TopicRow& t) {
  const TopicSnapshot& s = t.snapshot;
  const Exposition::Labels topic{{"topic", t.name}};
  if (s.mirror) {
    const MirrorInfo& m = *s.mirror;
    e.add("ringbus_mirror_info", kGauge, "Always 1 on a mirror; its source as a label",
          {{"topic", t.name}, {"source", m.source}}, 1);
    e.add("ringbus_mirror_receiver_alive", kGauge, "1 if the receiving bridge process is alive",
          topic, m.alive ? 1 : 0);
    e.add("ringbus_mirror_applied_position", kGauge, "Stream bytes written into the mirror", topic,
          as_double(m.applied_position));
    e.add("ringbus_mirror_last_contact_seconds", kGauge,
          "Unix time of the last bytes from the source (0: never)", topic,
          static_cast<double>(m.last_contact_unix_ns) / 1e9);
  }
}

// One series set per forward link of the topic.
void add_forwards(Exposition& e, const TopicRow& t) {
  const TopicSnapshot& s = t.snapshot;
  for (const ForwardInfo& f : s.forwards) {
    const Exposition::Labels link{{"topic", t.name}, {"destination", f.destination}};
    e.add("ringbus_forward_info", kGauge, "Always 1 per forward link; its state as a label",
          {{"topic", t.name}, {"destination", f.destination}, {"state", f.state}}, 1);
    e.add("ringbus_forward_sent_position", kGauge, "Stream bytes sent on the link", link,
          as_double(f.sent_position));
    e.add("ringbus_forward_acked_position", kGauge,
          "Stream bytes the receiver acknowledged (durable there if it records)", link,
          as_double(f.acked_position));
    e.add("ringbus_forward_lag_bytes", kGauge, "tail - acknowledged position", link,
          as_double(f.lag_bytes));
    e.add("ringbus_forward_lag_messages", kGauge, "Messages published and not yet acknowledged",
          link, as_double(f.lag_messages));
    e.add("ringbus_forward_in_flight_bytes", kGauge, "Sent and not yet acknowledged", link,
          as_double(f.in_flight_bytes));
    e.add("ringbus_forward_reconnects_total", kCounter, "Reconnections of the link", link,
          as_double(f.reconnects));
    e.add("ringbus_forward_sent_bytes_total", kCounter, "Bytes of frames sent", link,
          as_double(f.bytes_sent));
    e.add("ringbus_forward_errors_total", kCounter, "Failures of the link so far", link,
          as_double(f.errors));
  }
}

// One series set per reader slot in use.
void add_readers(Exposition& e, const TopicRow& t) {
  for (const ReaderRow& row : t.readers) {
    const ReaderInfo& r = row.info;
    const Exposition::Labels labels{{"topic", t.name},
                                    {"slot", std::to_string(r.slot)},
                                    {"reader", r.name},
                                    {"kind", r.kind},
                                    {"group", r.group}};
    e.add("ringbus_reader_info", kGauge, "Always 1; the reader's state and durability as labels",
          {{"topic", t.name},
           {"slot", std::to_string(r.slot)},
           {"state", std::string(reader_state(r))},
           {"durable", r.durable ? "true" : "false"},
           {"persistent", r.persistent ? "true" : "false"}},
          1);
    e.add("ringbus_reader_alive", kGauge, "1 if the reader's process is alive", labels,
          r.alive ? 1 : 0);
    e.add("ringbus_reader_pid", kGauge, "The reader's process id, 0 for none", labels,
          as_double(r.pid));
    e.add("ringbus_reader_position", kGauge, "Published position (a group's committed position)",
          labels, as_double(r.position));
    e.add("ringbus_reader_lag_bytes", kGauge, "tail - position", labels, as_double(r.lag_bytes));
    e.add("ringbus_reader_lag_messages", kGauge, "Messages published and not yet read", labels,
          as_double(r.lag_messages));
    e.add("ringbus_reader_lost_bytes_total", kCounter, "Stream bytes skipped after being lapped",
          labels, as_double(r.lost_bytes));
    e.add("ringbus_reader_lost_messages_total", kCounter, "Messages skipped after being lapped",
          labels, as_double(r.lost_messages));
    e.add("ringbus_reader_in_flight", kGauge, "Unacknowledged messages (groups and members)",
          labels, r.in_flight);
    if (row.bytes_per_second) {
      e.add("ringbus_reader_read_messages_per_second", kGauge,
            "Messages read per second over the last sampling interval", labels,
            *row.messages_per_second);
      e.add("ringbus_reader_read_bytes_per_second", kGauge,
            "Stream bytes read per second over the last sampling interval", labels,
            *row.bytes_per_second);
    }
  }
}

}  // namespace

std::string render_prometheus(const BusView& view) {
  Exposition e;
  e.add("ringbus_directory_up", kGauge, "1 if the bus directory could be read", {},
        view.directory_error.empty() ? 1 : 0);
  e.add("ringbus_topics", kGauge, "Topic files in the bus directory, bad ones included", {},
        as_double(view.topics.size()));
  for (const TopicRow& t : view.topics) {
    e.add("ringbus_topic_up", kGauge, "1 if the topic file is a valid topic, 0 if it is bad",
          {{"topic", t.name}}, t.error ? 0 : 1);
    if (t.error) {
      e.add("ringbus_topic_error", kGauge, "1 for a bad topic file, with the error code",
            {{"topic", t.name}, {"code", std::string(to_string(t.error->code()))}}, 1);
      continue;
    }
    add_topic(e, t);
    add_recorder(e, t);
    add_mirror(e, t);
    add_forwards(e, t);
    add_readers(e, t);
  }
  return e.text();
}

}  // namespace ringbus::monitor
