// The snapshot parts describe and the monitor share: a reader's state and the JSON of a reader,
// a topic configuration and a recorder.
#include "snapshot_json.hpp"

namespace ringbus::tools {

std::string_view reader_state(const ReaderInfo& reader) {
  if (reader.kind == "group") return "shared";
  if (reader.alive) return "alive";
  return reader.persistent ? "stalled" : "dead";
}

nlohmann::ordered_json reader_json(const ReaderInfo& r) {
  return {
      {"slot", r.slot},
      {"name", r.name},
      {"kind", r.kind},
      {"group", r.group},
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
      {"in_flight", r.in_flight},
      {"delivery", r.delivery},
      {"dispatch", r.dispatch},
  };
}

nlohmann::ordered_json config_json(const TopicConfig& c) {
  return {
      {"capacity", c.capacity},
      {"max_message", c.max_message},
      {"policy", to_string(c.policy)},
      {"max_readers", c.max_readers},
      {"stuck_claim_timeout_ms", c.stuck_claim_timeout.count()},
      {"layout_version", c.layout_version},
      {"file_size", c.file_size},
      {"ring_offset", c.ring_offset},
      {"frame_alignment", c.frame_alignment},
      {"mirror_of",
       c.mirror_of.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.mirror_of)},
  };
}

nlohmann::ordered_json mirror_json(const MirrorInfo& m) {
  return {
      {"source", m.source},
      {"pid", m.pid},
      {"alive", m.alive},
      {"applied_position", m.applied_position},
      {"applied_messages", m.applied_messages},
      {"last_contact_unix_ns", m.last_contact_unix_ns},
  };
}

nlohmann::ordered_json forward_json(const ForwardInfo& f) {
  return {
      {"destination", f.destination},
      {"state", f.state},
      {"pid", f.pid},
      {"alive", f.alive},
      {"sent_position", f.sent_position},
      {"acked_position", f.acked_position},
      {"acked_messages", f.acked_messages},
      {"lag_bytes", f.lag_bytes},
      {"lag_messages", f.lag_messages},
      {"in_flight_bytes", f.in_flight_bytes},
      {"reconnects", f.reconnects},
      {"bytes_sent", f.bytes_sent},
      {"errors", f.errors},
      {"last_error", f.last_error},
  };
}

nlohmann::ordered_json recorder_json(const RecorderInfo& r) {
  return {
      {"state", r.state},
      {"pid", r.pid},
      {"alive", r.alive},
      {"log_dir", r.log_dir},
      {"recorded_position", r.recorded_position},
      {"recorded_messages", r.recorded_messages},
      {"durable_position", r.durable_position},
      {"durable_messages", r.durable_messages},
      {"log_start", r.log_start},
      {"segments", r.segments},
      {"log_bytes", r.log_bytes},
      {"errors", r.errors},
      {"last_error", r.last_error},
      {"lag_bytes", r.lag_bytes},
  };
}

}  // namespace ringbus::tools
