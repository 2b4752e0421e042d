// `ringbus topic describe`: a topic snapshot as aligned text for people or one JSON object for
// scripts (and the tests), with the field names of TopicSnapshot and ReaderInfo.
#include <algorithm>
#include <ctime>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "ringbus/topic.hpp"
#include "sizes.hpp"
#include "snapshot_json.hpp"

namespace ringbus::cli {

using tools::config_json;
using tools::forward_json;
using tools::mirror_json;
using tools::reader_json;
using tools::reader_state;
using tools::recorder_json;

namespace {

std::string size_text(std::uint64_t bytes) {
  std::string exact = format_size(bytes);
  return exact == std::to_string(bytes) ? exact : std::to_string(bytes) + " (" + exact + ")";
}

// Left-aligned columns separated by two spaces; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string text;
  for (const auto& row : rows) {
    text += "  ";
    for (std::size_t i = 0; i < row.size(); ++i) {
      text += row[i];
      if (i + 1 < row.size()) text.append(width[i] - row[i].size() + 2, ' ');
    }
    text += '\n';
  }
  return text;
}

std::string subscriber_table(const std::vector<const ReaderInfo*>& subscribers) {
  std::vector<std::vector<std::string>> rows{{"SLOT", "NAME", "PID", "STATE", "DURABILITY", "KIND",
                                              "POSITION", "LAG_BYTES", "LAG_MSGS", "LOST_BYTES",
                                              "LOST_MSGS"}};
  for (const ReaderInfo* r : subscribers) {
    rows.push_back({
        std::to_string(r->slot),
        r->name.empty() ? "-" : r->name,
        r->pid == 0 ? "-" : std::to_string(r->pid),
        std::string(reader_state(*r)),
        r->durable ? "durable" : "lossy",
        r->persistent ? "persistent" : "ephemeral",
        std::to_string(r->position),
        std::to_string(r->lag_bytes),
        std::to_string(r->lag_messages),
        std::to_string(r->lost_bytes),
        std::to_string(r->lost_messages),
    });
  }
  return table(rows);
}

// Members of group `g`, dead ones (still holding a batch) included.
std::size_t member_count(const TopicSnapshot& snapshot, const ReaderInfo& g) {
  return static_cast<std::size_t>(
      std::count_if(snapshot.readers.begin(), snapshot.readers.end(),
                    [&](const ReaderInfo& r) { return r.kind == "member" && r.group == g.group; }));
}

// The disk log as the recording bridge publishes it in the topic header.
std::string recorder_text(const RecorderInfo& r) {
  std::string text = "recorder: " + r.state;
  if (r.pid == 0) {
    text += " (no bridge attached)\n";
  } else {
    text += " (bridge pid " + std::to_string(r.pid) + (r.alive ? ", alive)\n" : ", dead)\n");
  }
  text += table({
      {"log dir", r.log_dir},
      {"recorded", std::to_string(r.recorded_position) + " (" +
                       std::to_string(r.recorded_messages) + " messages)"},
      {"durable", std::to_string(r.durable_position)},
      {"log start", std::to_string(r.log_start)},
      {"recorder lag", std::to_string(r.lag_bytes) + " bytes"},
      {"segments", std::to_string(r.segments)},
      {"log bytes", size_text(r.log_bytes)},
      {"errors", std::to_string(r.errors)},
      {"last error", r.last_error.empty() ? "-" : r.last_error},
  });
  return text;
}

// A mirror's receiving side, as the receiving bridge publishes it.
std::string mirror_text(const MirrorInfo& m) {
  std::string text = "mirror of " + m.source;
  if (m.pid == 0) {
    text += " (no bridge receiving now)\n";
  } else {
    text += " (bridge pid " + std::to_string(m.pid) + (m.alive ? ", alive)\n" : ", dead)\n");
  }
  std::string contact = "never";
  if (m.last_contact_unix_ns > 0) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const std::int64_t ago_ms =
        ((now.tv_sec * 1'000'000'000LL + now.tv_nsec) - m.last_contact_unix_ns) / 1'000'000;
    contact = std::to_string(std::max<std::int64_t>(ago_ms, 0)) + " ms ago";
  }
  text += table({
      {"applied", std::to_string(m.applied_position) + " (" + std::to_string(m.applied_messages) +
                      " messages)"},
      {"last contact", contact},
  });
  return text;
}

// The links forwarding the topic to other hosts.
std::string forwards_text(const std::vector<ForwardInfo>& links) {
  std::string text = "forwarded to: " + std::to_string(links.size()) + "\n";
  for (const ForwardInfo& f : links) {
    text += "  " + f.destination + ": " + f.state +
            (f.pid == 0 ? std::string(" (no bridge attached)")
                        : " (bridge pid " + std::to_string(f.pid) + (f.alive ? ")" : ", dead)")) +
            "\n";
    text += table({
        {"  acked",
         std::to_string(f.acked_position) + " (" + std::to_string(f.acked_messages) + " messages)"},
        {"  sent", std::to_string(f.sent_position) + " (" + std::to_string(f.in_flight_bytes) +
                       " bytes in flight)"},
        {"  lag",
         std::to_string(f.lag_bytes) + " bytes, " + std::to_string(f.lag_messages) + " messages"},
        {"  reconnects", std::to_string(f.reconnects)},
        {"  bytes sent", size_text(f.bytes_sent)},
        {"  errors", std::to_string(f.errors)},
        {"  last error", f.last_error.empty() ? "-" : f.last_error},
    });
  }
  return text;
}

}  // namespace

std::string describe_text(const Topic& topic, const TopicSnapshot& snapshot) {
  const TopicConfig& c = snapshot.config;
  std::string text = "topic " + topic.name() + "\n";
  text += table({
      {"path", topic.path()},
      {"policy", std::string(to_string(c.policy))},
      {"capacity", size_text(c.capacity)},
      {"max message", size_text(c.max_message)},
      {"max readers", std::to_string(c.max_readers)},
      {"stuck timeout", std::to_string(c.stuck_claim_timeout.count()) + " ms"},
      {"layout version", std::to_string(c.layout_version)},
      {"file size", size_text(c.file_size)},
      {"earliest", std::to_string(snapshot.earliest)},
      {"tail", std::to_string(snapshot.tail)},
      {"messages", std::to_string(snapshot.messages)},
      {"aborted claims", std::to_string(snapshot.aborted_claims)},
      {"reaped readers", std::to_string(snapshot.reaped_readers)},
  });
  // Said before the tables: it is why an operator looks.
  if (auto bp = back_pressure(topic.name(), snapshot); bp && (bp->stuck || bp->full)) {
    text +=
        std::string(bp->full ? "producers wait: " : "will hold producers back: ") + bp->text + "\n";
  }
  if (snapshot.mirror) text += mirror_text(*snapshot.mirror);
  if (snapshot.recorder) text += recorder_text(*snapshot.recorder);
  if (!snapshot.forwards.empty()) text += forwards_text(snapshot.forwards);
  std::vector<const ReaderInfo*> subscribers;
  std::vector<const ReaderInfo*> groups;
  std::vector<const ReaderInfo*> members;
  for (const ReaderInfo& r : snapshot.readers) {
    if (r.kind == "group") {
      groups.push_back(&r);
    } else if (r.kind == "member") {
      members.push_back(&r);
    } else {
      subscribers.push_back(&r);
    }
  }
  text += "readers: " + std::to_string(subscribers.size()) + "\n";
  if (!subscribers.empty()) text += subscriber_table(subscribers);
  if (!groups.empty()) {
    text += "groups: " + std::to_string(groups.size()) + "\n";
    std::vector<std::vector<std::string>> rows{
        {"SLOT", "GROUP", "COMMITTED", "DISPATCH", "LAG_BYTES", "IN_FLIGHT", "MEMBERS"}};
    for (const ReaderInfo* g : groups) {
      rows.push_back({
          std::to_string(g->slot),
          g->group,
          std::to_string(g->position),
          std::to_string(g->dispatch),
          std::to_string(g->lag_bytes),
          std::to_string(g->in_flight),
          std::to_string(member_count(snapshot, *g)),
      });
    }
    text += table(rows);
  }
  if (!members.empty()) {
    text += "members: " + std::to_string(members.size()) + "\n";
    std::vector<std::vector<std::string>> rows{
        {"SLOT", "GROUP", "PID", "STATE", "IN_FLIGHT", "DELIVERY"}};
    for (const ReaderInfo* m : members) {
      rows.push_back({
          std::to_string(m->slot),
          m->group.empty() ? "-" : m->group,
          m->pid == 0 ? "-" : std::to_string(m->pid),
          std::string(reader_state(*m)),
          std::to_string(m->in_flight),
          m->delivery == 0 ? "-" : std::to_string(m->delivery),
      });
    }
    text += table(rows);
  }
  return text;
}

std::string describe_json(const Topic& topic, const TopicSnapshot& snapshot) {
  using Json = nlohmann::ordered_json;
  const TopicConfig& c = snapshot.config;
  Json readers = Json::array();
  Json groups = Json::array();
  for (const ReaderInfo& r : snapshot.readers) {
    readers.push_back(reader_json(r));
    if (r.kind == "group") {
      groups.push_back({
          {"slot", r.slot},
          {"name", r.name},
          {"group", r.group},
          {"position", r.position},
          {"dispatch", r.dispatch},
          {"lag_bytes", r.lag_bytes},
          {"in_flight", r.in_flight},
          {"members", member_count(snapshot, r)},
      });
    }
  }
  Json j = {
      {"name", topic.name()},
      {"path", topic.path()},
      {"config", config_json(c)},
      {"earliest", snapshot.earliest},
      {"tail", snapshot.tail},
      {"messages", snapshot.messages},
      {"aborted_claims", snapshot.aborted_claims},
      {"reaped_readers", snapshot.reaped_readers},
      {"readers", std::move(readers)},
      {"groups", std::move(groups)},
      {"recorder", nullptr},
      {"mirror", nullptr},
      {"forwards", Json::array()},
  };
  if (snapshot.recorder) j["recorder"] = recorder_json(*snapshot.recorder);
  if (snapshot.mirror) j["mirror"] = mirror_json(*snapshot.mirror);
  for (const ForwardInfo& f : snapshot.forwards) j["forwards"].push_back(forward_json(f));
  // Reader and topic names are validated ASCII, but never let a bad byte abort the dump.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace ringbus::cli
