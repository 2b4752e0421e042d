// state.json: JSON (nlohmann) so operators can read it; written to a temporary file, fsynced,
// renamed over the old one, and the directory fsynced.
#include "log_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "layout/log_layout.hpp"
#include "log/log_files.hpp"
#include "sys/unique_fd.hpp"

namespace ringbus::detail {

namespace {

constexpr int kStateVersion = 1;

}  // namespace

Result<void> write_log_state(const std::string& dir, const LogState& s, bool sync,
                             std::uint32_t file_mode) {
  nlohmann::json j;
  j["format"] = "ringbus-log-state";
  j["version"] = kStateVersion;
  j["topic"] = s.topic;
  j["durable_position"] = s.durable_position;
  j["durable_messages"] = s.durable_messages;
  j["log_start"] = s.log_start;
  j["config"] = {
      {"capacity", s.config.capacity},
      {"max_message", s.config.max_message},
      {"policy", std::string(to_string(s.config.policy))},
      {"max_readers", s.config.max_readers},
      {"frame_alignment", s.config.frame_alignment},
      {"stuck_claim_timeout_ms", s.config.stuck_claim_timeout.count()},
  };
  // A mirror of another host's topic: restored as a mirror, so its receiver can continue it.
  if (!s.config.mirror_of.empty()) j["config"]["mirror_of"] = s.config.mirror_of;
  j["groups"] = nlohmann::json::array();
  for (const auto& g : s.groups) {
    j["groups"].push_back({{"name", g.name}, {"position", g.position}, {"messages", g.messages}});
  }
  j["forwards"] = nlohmann::json::array();
  for (const auto& f : s.forwards) {
    j["forwards"].push_back({{"destination", f.destination},
                             {"acked_position", f.acked_position},
                             {"acked_messages", f.acked_messages},
                             {"reconnects", f.reconnects},
                             {"last_error", f.last_error}});
  }
  // Names come from shared memory another process may have damaged: bytes that are not UTF-8
  // become U+FFFD instead of an exception (which would end the recorder).
  const std::string text = j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  const std::string path = dir + "/" + layout::kLogStateFile;
  const std::string temp = path + ".tmp";
  {
    const UniqueFd fd(
        ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, file_mode));
    if (!fd) return io_error("cannot write " + temp, errno);
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::unlink(temp.c_str());
        return io_error("cannot write " + temp, err);
      }
      done += static_cast<std::size_t>(n);
    }
    if (sync && ::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(temp.c_str());
      return io_error("cannot fsync " + temp, err);
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return io_error("cannot rename " + temp + " to " + path, err);
  }
  if (sync) return sync_directory(dir);
  return {};
}

Result<LogState> read_log_state(const std::string& dir) {
  const std::string path = dir + "/" + layout::kLogStateFile;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Error(Errc::not_found, path + " does not exist");
    return io_error("cannot read " + path, errno);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto bad = [&](const std::string& why) {
    return Error(Errc::corrupt, path + ": " + why +
                                    ". Move it away (e.g. to state.json.bad): the bridge then "
                                    "writes a new one from the log; only the queue group "
                                    "positions it held, used to restore a lost topic, are lost");
  };
  nlohmann::json j = nlohmann::json::parse(buffer.str(), nullptr, false);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object()) return bad("holds a JSON " + std::string(j.type_name()) + ", not an object");
  // A JSON number that is not a whole number >= 0 (nlohmann would wrap -1 to 2^64 - 1).
  auto unsigned_field = [&](const nlohmann::json& o, const char* key) -> std::uint64_t {
    const auto& v = o.at(key);
    if (!v.is_number_unsigned()) {
      throw std::invalid_argument(std::string(key) + " is " + v.dump() +
                                  ", not a whole number >= 0");
    }
    return v.get<std::uint64_t>();
  };
  try {
    if (j.at("format") != "ringbus-log-state") return bad("not a ringbus log state file");
    if (j.at("version").get<int>() != kStateVersion) {
      return Error(Errc::incompatible, path + ": version " + j.at("version").dump() +
                                           ", this bridge reads version " +
                                           std::to_string(kStateVersion));
    }
    LogState s;
    s.topic = j.at("topic").get<std::string>();
    s.durable_position = unsigned_field(j, "durable_position");
    s.durable_messages = unsigned_field(j, "durable_messages");
    s.log_start = unsigned_field(j, "log_start");
    const auto& c = j.at("config");
    s.config.capacity = unsigned_field(c, "capacity");
    s.config.max_message = unsigned_field(c, "max_message");
    auto policy = c.at("policy").get<std::string>();
    if (policy != "block" && policy != "overwrite") return bad("unknown policy '" + policy + "'");
    s.config.policy = policy == "block" ? Policy::block : Policy::overwrite;
    s.config.max_readers = c.at("max_readers").get<std::uint32_t>();
    s.config.frame_alignment = c.at("frame_alignment").get<std::uint32_t>();
    s.config.stuck_claim_timeout =
        std::chrono::milliseconds(c.at("stuck_claim_timeout_ms").get<std::int64_t>());
    if (c.contains("mirror_of")) s.config.mirror_of = c.at("mirror_of").get<std::string>();
    for (const auto& g : j.at("groups")) {
      s.groups.push_back(GroupPosition{g.at("name").get<std::string>(),
                                       unsigned_field(g, "position"),
                                       unsigned_field(g, "messages")});
    }
    if (j.contains("forwards")) {  // written since forwarding exists
      for (const auto& f : j.at("forwards")) {
        s.forwards.push_back(ForwardPosition{
            f.at("destination").get<std::string>(), unsigned_field(f, "acked_position"),
            unsigned_field(f, "acked_messages"), unsigned_field(f, "reconnects"),
            f.at("last_error").get<std::string>()});
      }
    }
    return s;
  } catch (const nlohmann::json::exception& e) {
    return bad(std::string("missing or invalid field (") + e.what() + ")");
  } catch (const std::invalid_argument& e) {
    return bad(e.what());
  }
}

}  // namespace ringbus::detail
