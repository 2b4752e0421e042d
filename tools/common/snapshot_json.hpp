// The parts of a topic snapshot that `ringbus topic describe` and `ringbus-monitor` both show (a
// reader's state, the JSON of a reader, a configuration and a recorder), so the two always name
// and shape them alike.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "ringbus/topic.hpp"

namespace ringbus::tools {

// "alive"; "stalled" for a persistent reader with no live process (it keeps its position and,
// if durable, holds producers back until it resumes or is removed); "dead" for an ephemeral
// reader whose process died and that has not been reaped yet (a group member that died or left
// holding unacknowledged messages stays "dead" until another member takes them over);
// "shared" for a queue group's own slot, which no process owns.
std::string_view reader_state(const ReaderInfo& reader);

// Every ReaderInfo field, plus "state" (reader_state()).
nlohmann::ordered_json reader_json(const ReaderInfo& reader);
// The topic's fixed configuration.
nlohmann::ordered_json config_json(const TopicConfig& config);
// Every RecorderInfo field.
nlohmann::ordered_json recorder_json(const RecorderInfo& recorder);
// Every MirrorInfo field (a mirror's receiving side).
nlohmann::ordered_json mirror_json(const MirrorInfo& mirror);
// Every ForwardInfo field (one link forwarding the topic to another host).
nlohmann::ordered_json forward_json(const ForwardInfo& link);

}  // namespace ringbus::tools
