// Bridge: discovery, one recorder per topic on one thread, restore, retries, shutdown.
#include "bridge.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include <fnmatch.h>

#include "event_log.hpp"
#include "log_state.hpp"
#include "ringbus/connector_counters.hpp"
#include "ringbus/group.hpp"
#include "ringbus/pin.hpp"
#include "topic_log.hpp"

namespace ringbus::bridge {

namespace {

// Sleep when no recorder found anything: short enough for latency-insensitive recording, long
// enough to leave the core alone when the bus is idle.
constexpr auto kIdleSleep = std::chrono::microseconds(200);
// With nothing to record the loop only scans for topics.
constexpr auto kNothingToRecordSleep = std::chrono::milliseconds(20);

std::uint64_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace

Bridge::Bridge(BridgeConfig config)
    : config_(std::move(config)),
      bus_(config_.bus_dir.empty() ? Bus::default_directory() : config_.bus_dir) {}

bool Bridge::wanted(const std::string& topic) const {
  return std::any_of(config_.record.begin(), config_.record.end(), [&](const std::string& p) {
    return ::fnmatch(p.c_str(), topic.c_str(), 0) == 0;
  });
}

void Bridge::report_once(const std::string& topic, const std::string& message) {
  auto& last = last_error_[topic];
  if (last == message) return;
  last = message;
  log_event(topic, "error: " + message + " (retrying)");
}

void Bridge::start_recorder(const std::string& name, Clock::time_point now) {
  auto topic = bus_.open_topic(name);
  if (!topic) {
    if (topic.error().code() != Errc::not_found) report_once(name, topic.error().message());
    retry_at_[name] = now + config_.retry_interval;
    return;
  }
  auto recorder = TopicRecorder::start(*topic, config_);
  if (!recorder) {
    report_once(name, recorder.error().message());
    // Another bridge's counters are not ours to touch.
    if (recorder.error().code() != Errc::busy) {
      RecorderCounters(*topic).failed_to_start(config_.log_dir + "/" + name,
                                               recorder.error().message());
    }
    retry_at_[name] = now + config_.retry_interval;
    return;
  }
  last_error_.erase(name);
  retry_at_.erase(name);
  removed_.erase(name);
  recorders_[name] = std::move(*recorder);
}

void Bridge::restore_lost_topics(const std::vector<std::string>& present, Clock::time_point now) {
  DIR* d = ::opendir(config_.log_dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> candidates;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || !wanted(name) || !validate_name(name)) {
      continue;
    }
    if (std::find(present.begin(), present.end(), name) != present.end()) continue;
    if (removed_.count(name) != 0) continue;
    candidates.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : candidates) {
    if (auto it = retry_at_.find(name); it != retry_at_.end() && now < it->second) continue;
    const std::string dir = config_.log_dir + "/" + name;
    auto state = read_log_state(dir);
    if (!state) {
      if (state.error().code() != Errc::not_found) report_once(name, state.error().message());
      retry_at_[name] = now + config_.retry_interval;
      continue;
    }
    // The log's end (after recovery) is where the re-created topic's stream continues.
    std::uint64_t end = 0;
    std::uint64_t sequence = state->durable_messages;
    {
      TopicLogOptions log_options{config_.segment_bytes, state->config.max_message,
                                  state->config.frame_alignment,
                                  config_.fsync != FsyncPolicy::never};
      log_options.durable_hint = state->durable_position;
      auto log = TopicLog::open(dir, log_options);
      if (!log) {
        report_once(name, log.error().message());
        retry_at_[name] = now + config_.retry_interval;
        continue;
      }
      end = log->end();
      log->end_sequence(sequence);
      if (!log->recovery().empty()) log_event(name, "log recovery: " + log->recovery());
    }
    TopicOptions options;
    options.capacity = state->config.capacity;
    options.max_message = state->config.max_message;
    options.policy = state->config.policy;
    options.max_readers = state->config.max_readers;
    options.frame_alignment = state->config.frame_alignment;
    options.stuck_claim_timeout = state->config.stuck_claim_timeout;
    options.start_position = end;
    options.start_sequence = sequence;
    options.mirror_of = state->config.mirror_of;  // a mirror stays one: its receiver continues it
    auto created = bus_.create_topic(name, options);
    if (!created) {
      if (created.error().code() != Errc::already_exists) {
        report_once(name, "cannot restore the topic: " + created.error().message());
        retry_at_[name] = now + config_.retry_interval;
      }
      continue;
    }
    log_event(name, "restored the topic from its log: it continues at offset " +
                        std::to_string(end) + " (message " + std::to_string(sequence) + ")");
    // Readers find the log through the header; queue groups resume where they committed,
    // reading the log until they reach the ring.
    RecorderCounters(*created).attach(dir);
    for (const GroupPosition& g : state->groups) {
      GroupOptions group_options;
      group_options.start = StartFrom::at(g.position);
      auto member = GroupMember::join(*created, g.name, group_options);
      if (!member) {
        log_event(name, "error: cannot restore queue group '" + g.name + "' at offset " +
                            std::to_string(g.position) + ": " + member.error().message() +
                            "; it starts again at the earliest offset");
        group_options.start = StartFrom::earliest();
        member = GroupMember::join(*created, g.name, group_options);
      }
      if (member) {
        log_event(name,
                  "restored queue group '" + g.name + "' at offset " + std::to_string(g.position));
      }
    }
  }
}

void Bridge::scan(Clock::time_point now) {
  // Recorders whose topic was deleted (or replaced by a new file) stop.
  for (auto it = recorders_.begin(); it != recorders_.end();) {
    if (it->second->topic_gone()) {
      log_event(it->first,
                "the topic was removed; recording stops (its log stays; the topic "
                "is not restored from it while this bridge runs)");
      removed_.insert(it->first);
      it->second->stop();
      it = recorders_.erase(it);
    } else {
      ++it;
    }
  }
  auto topics = bus_.list_topics();
  if (!topics) {
    report_once("", topics.error().message());
    return;
  }
  if (config_.restore_topics && !config_.log_dir.empty()) restore_lost_topics(*topics, now);
  topics = bus_.list_topics();
  if (!topics) return;
  for (const std::string& name : *topics) {
    if (!wanted(name) || recorders_.count(name) != 0) continue;
    if (auto it = retry_at_.find(name); it != retry_at_.end() && now < it->second) continue;
    start_recorder(name, now);
  }
  scan_forwards(*topics);
  scan_kafka_sinks(*topics);
}

void Bridge::scan_forwards(const std::vector<std::string>& topics) {
  // Links whose topic was deleted or replaced stop (a new file is picked up below).
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    const std::string path = bus_.directory() + "/" + it->first.topic;
    if (inode_of(path) != it->second.inode) {
      log_event(it->first.topic, "the topic was removed; forwarding to " + it->first.to + " stops");
      it = forwards_.erase(it);
    } else {
      ++it;
    }
  }
  for (const ForwardRule& rule : config_.forward) {
    for (const std::string& name : topics) {
      const bool match = std::any_of(rule.topics.begin(), rule.topics.end(), [&](const auto& p) {
        return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
      });
      if (!match || forwards_.count(ForwardKey{name, rule.to}) != 0) continue;
      auto topic = bus_.open_topic(name);
      if (!topic) {
        if (topic.error().code() != Errc::not_found) report_once(name, topic.error().message());
        continue;
      }
      ForwarderOptions options;
      options.destination = rule.to;
      options.key = config_.key;
      options.link_timeout = config_.link_timeout;
      options.reader_name = forward_reader_name(config_.reader_name, rule.to);
      options.log_covers = wanted(name) && !config_.log_dir.empty();
      options.busy_spin = config_.link_busy_spin;
      options.tls = tls_;
      RunningForward running;
      running.inode = inode_of(topic->path());
      running.forwarder = std::make_unique<Forwarder>(*topic, options);
      log_event(name, "forwarding to " + rule.to +
                          (options.log_covers ? " (old frames from the disk log)" : ""));
      forwards_[ForwardKey{name, rule.to}] = std::move(running);
    }
  }
}

void Bridge::scan_kafka_sinks(const std::vector<std::string>& topics) {
#ifdef RINGBUS_WITH_KAFKA
  for (const KafkaSinkRule& rule : config_.kafka.sinks) {
    bool matched = false;
    for (const std::string& name : topics) {
      const bool match = std::any_of(rule.topics.begin(), rule.topics.end(), [&](const auto& p) {
        return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
      });
      matched = matched || match;
      const std::string to = "kafka:" + expand_kafka_topic(rule.kafka_topic, name);
      if (!match || forwards_.count(ForwardKey{name, to}) != 0) continue;
      auto topic = bus_.open_topic(name);
      if (!topic) {
        if (topic.error().code() != Errc::not_found) report_once(name, topic.error().message());
        continue;
      }
      KafkaSinkOptions options = kafka_sink_options(config_, rule, name);
      options.log_covers = wanted(name) && !config_.log_dir.empty();
      RunningForward running;
      running.inode = inode_of(topic->path());
      running.kafka = std::make_unique<KafkaSink>(*topic, options);
      log_event(name, "publishing to Kafka topic " + options.kafka_topic +
                          (options.log_covers ? " (old frames from the disk log)" : ""));
      forwards_[ForwardKey{name, to}] = std::move(running);
    }
    if (!matched && !kafka_rules_checked_) {
      // Likely a typo; or the topics come later, and then the sink starts (and says so).
      std::string globs;
      for (const std::string& g : rule.topics) globs += (globs.empty() ? "" : ",") + g;
      log_event("", "kafka sink " + globs + "=" + rule.kafka_topic +
                        " matches no topic yet; it starts when a matching topic appears");
    }
  }
  kafka_rules_checked_ = true;
#else
  (void)topics;  // validate_config refuses Kafka sinks in a bridge built without them
#endif
}

int Bridge::run(const std::atomic<bool>& stop) {
  if (config_.cpu) {
    if (auto pinned = pin_this_thread(static_cast<int>(*config_.cpu)); !pinned) {
      log_event("", "error: " + pinned.error().message());
      return 1;
    }
    log_event("", "recording thread pinned to core " + std::to_string(*config_.cpu));
  }
  log_event("", "started: bus " + bus_.directory() +
                    (config_.log_dir.empty() ? std::string(", recording nothing")
                                             : ", logs in " + config_.log_dir + ", fsync " +
                                                   std::string(to_string(config_.fsync))));
  if (config_.tls.enabled() && !config_.forward.empty()) {
    auto tls = LinkTls::load(config_.tls);
    if (!tls) {
      log_event("", "error: " + tls.error().message());
      return 1;
    }
    tls_ = std::move(*tls);
  }
  if (!config_.listen.address.empty()) {
    auto receiver = Receiver::start(config_, bus_);
    if (!receiver) {
      log_event("", "error: " + receiver.error().message());
      return 1;
    }
    receiver_ = std::move(*receiver);
  }
#ifdef RINGBUS_WITH_KAFKA
  for (const KafkaSourceRule& rule : config_.kafka.sources) {
    kafka_sources_.push_back(
        std::make_unique<KafkaSource>(bus_, kafka_source_options(config_, rule)));
  }
#endif
  Clock::time_point next_scan{};
  // relaxed: a flag set by the signal handler; nothing else is published through it.
  while (!stop.load(std::memory_order_relaxed)) {
    auto now = Clock::now();
    if (now >= next_scan) {
      scan(now);
      next_scan = now + config_.scan_interval;
    }
    bool busy = false;
    for (auto& [name, recorder] : recorders_) busy = recorder->step(now) || busy;
    if (!busy) {
      if (recorders_.empty()) {
        std::this_thread::sleep_for(kNothingToRecordSleep);
      } else {
        std::this_thread::sleep_for(kIdleSleep);
      }
    }
  }
  // Forwarders and the receiver first: they stop at once; the recorders then flush.
  for (auto& [key, running] : forwards_) {
    if (running.forwarder) running.forwarder->request_stop();
#ifdef RINGBUS_WITH_KAFKA
    if (running.kafka) running.kafka->request_stop();
#endif
  }
  forwards_.clear();
#ifdef RINGBUS_WITH_KAFKA
  for (auto& source : kafka_sources_) source->request_stop();
  kafka_sources_.clear();
#endif
  receiver_.reset();
  for (auto& [name, recorder] : recorders_) recorder->stop();
  recorders_.clear();
  log_event("", "stopped");
  return 0;
}

}  // namespace ringbus::bridge
