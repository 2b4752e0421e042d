// `ringbus topic describe`: a topic snapshot as aligned text for people or one JSON object for
// scripts (and the tests), with the field names of TopicSnapshot and ReaderInfo.
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "ringbus/topic.hpp"
#include "sizes.hpp"

namespace ringbus::cli {
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

}  // namespace

std::string_view reader_state(const ReaderInfo& reader) {
  if (reader.alive) return "alive";
  return reader.persistent ? "stalled" : "dead";
}

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
  text += "readers: " + std::to_string(snapshot.readers.size()) + "\n";
  if (snapshot.readers.empty()) return text;
  std::vector<std::vector<std::string>> rows{{"SLOT", "NAME", "PID", "STATE", "DURABILITY", "KIND",
                                              "POSITION", "LAG_BYTES", "LAG_MSGS", "LOST_BYTES",
                                              "LOST_MSGS"}};
  for (const ReaderInfo& r : snapshot.readers) {
    rows.push_back({
        std::to_string(r.slot),
        r.name.empty() ? "-" : r.name,
        r.pid == 0 ? "-" : std::to_string(r.pid),
        std::string(reader_state(r)),
        r.durable ? "durable" : "lossy",
        r.persistent ? "persistent" : "ephemeral",
        std::to_string(r.position),
        std::to_string(r.lag_bytes),
        std::to_string(r.lag_messages),
        std::to_string(r.lost_bytes),
        std::to_string(r.lost_messages),
    });
  }
  return text + table(rows);
}

std::string describe_json(const Topic& topic, const TopicSnapshot& snapshot) {
  using Json = nlohmann::ordered_json;
  const TopicConfig& c = snapshot.config;
  Json readers = Json::array();
  for (const ReaderInfo& r : snapshot.readers) {
    readers.push_back({
        {"slot", r.slot},
        {"name", r.name},
        {"persistent", r.persistent},
        {"durable", r.durable},
        {"pid", r.pid},
        {"alive", r.alive},
        {"state", reader_state(r)},
        {"position", r.position},
        {"messages", r.messages},
        {"lag_bytes", r.lag_bytes},
        {"lag_messages", r.lag_messages},
        {"lost_bytes", r.lost_bytes},
        {"lost_messages", r.lost_messages},
    });
  }
  Json j = {
      {"name", topic.name()},
      {"path", topic.path()},
      {"config",
       {
           {"capacity", c.capacity},
           {"max_message", c.max_message},
           {"policy", to_string(c.policy)},
           {"max_readers", c.max_readers},
           {"stuck_claim_timeout_ms", c.stuck_claim_timeout.count()},
           {"layout_version", c.layout_version},
           {"file_size", c.file_size},
           {"ring_offset", c.ring_offset},
       }},
      {"earliest", snapshot.earliest},
      {"tail", snapshot.tail},
      {"messages", snapshot.messages},
      {"aborted_claims", snapshot.aborted_claims},
      {"reaped_readers", snapshot.reaped_readers},
      {"readers", std::move(readers)},
  };
  // Reader and topic names are validated ASCII, but never let a bad byte abort the dump.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace ringbus::cli
