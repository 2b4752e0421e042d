// One-line event log on stderr (journald adds its own metadata under systemd).
#include "event_log.hpp"

#include <cstdio>
#include <ctime>
#include <string>

namespace ringbus::bridge {

void log_event(std::string_view topic, std::string_view message) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  ::gmtime_r(&ts.tv_sec, &utc);
  char stamp[80];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                ts.tv_nsec / 1'000'000);
  std::string line = std::string(stamp) + " ringbus-bridge: ";
  if (!topic.empty()) line += std::string(topic) + ": ";
  line += std::string(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace ringbus::bridge
