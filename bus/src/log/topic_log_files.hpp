// TopicLog's descriptors, out of its header so that the writer's public header needs nothing
// from bus/src (topic_log.cpp and log_recovery.cpp use them).
#pragma once

#include "sys/unique_fd.hpp"
#include "topic_log.hpp"

namespace ringbus::detail {

struct TopicLog::Files {
  UniqueFd lock;   // the directory's lock file, held for the log's life
  UniqueFd log;    // active segment
  UniqueFd index;  // its chunk index
};

}  // namespace ringbus::detail
