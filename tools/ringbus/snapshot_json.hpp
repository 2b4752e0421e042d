// JSON for the parts of a topic snapshot, shared by `ringbus topic describe --json` and
// `ringbus-monitor --json`, so the two always name and shape a reader and a recorder alike.
#pragma once

#include <nlohmann/json.hpp>

#include "ringbus/topic.hpp"

namespace ringbus::cli {

// Every ReaderInfo field, plus "state" (reader_state()).
nlohmann::ordered_json reader_json(const ReaderInfo& reader);
// The topic's fixed configuration.
nlohmann::ordered_json config_json(const TopicConfig& config);
// Every RecorderInfo field.
nlohmann::ordered_json recorder_json(const RecorderInfo& recorder);

}  // namespace ringbus::cli
