// Links the installed ringbus through its CMake package and uses the public API end to end:
// the public headers compile on their own, the static library resolves its private
// dependencies (hwloc) for the consumer, and a shared library built with hidden symbols exports
// everything a user calls (a missing RINGBUS_API fails this link).
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "ringbus/ringbus.hpp"

namespace {

int failed(const std::string& what) {
  std::fprintf(stderr, "package check: %s\n", what.c_str());
  return 1;
}

// A topic in a temporary bus directory: publish, read as a subscriber and as a queue group,
// inspect its ring, snapshot it, remove it.
int use_a_topic(const std::string& dir) {
  ringbus::Bus bus(dir);
  ringbus::TopicOptions options;
  options.capacity = 1 << 16;
  auto topic = bus.create_topic("orders", options);
  if (!topic) return failed("create_topic: " + topic.error().message());
  ringbus::SubscriberOptions from_start;
  from_start.start = ringbus::StartFrom::earliest();
  auto subscriber = ringbus::Subscriber::attach(*topic, from_start);
  if (!subscriber) return failed("Subscriber::attach: " + subscriber.error().message());
  auto member = ringbus::GroupMember::join(*topic, "workers");
  if (!member) return failed("GroupMember::join: " + member.error().message());
  ringbus::Producer producer(*topic);
  for (int i = 0; i < 10; ++i) {
    auto offset = producer.publish(ringbus::as_bytes("k"), ringbus::as_bytes(std::to_string(i)));
    if (!offset) return failed("publish: " + offset.error().message());
  }
  const ringbus::Record batch[] = {{{}, ringbus::as_bytes("b1")}, {{}, ringbus::as_bytes("b2")}};
  auto batched = producer.publish_batch(batch);
  if (!batched) return failed("publish_batch: " + batched.error().message());
  std::size_t read = 0;
  auto polled = subscriber->poll([&](const ringbus::Message&) { ++read; }, 64);
  if (!polled || read != 12) return failed("the subscriber read " + std::to_string(read));
  std::vector<std::uint64_t> offsets;
  auto taken = member->poll([&](const ringbus::Message& m) { offsets.push_back(m.offset); }, 64);
  if (!taken || offsets.empty()) return failed("the group member got nothing");
  for (std::uint64_t offset : offsets) {
    if (auto ok = member->ack(offset); !ok) return failed("ack: " + ok.error().message());
  }
  ringbus::RingInspector ring(*topic);
  auto frame = ring.read(0);
  if (!frame || frame->state != ringbus::FrameState::data) return failed("inspector read(0)");
  const ringbus::TopicSnapshot snapshot = topic->snapshot();
  if (snapshot.messages != 12 || snapshot.readers.empty()) return failed("snapshot");
  std::printf("package consumer: %zu messages read, %zu by the group, policy %s\n", read,
              offsets.size(), std::string(ringbus::to_string(snapshot.config.policy)).c_str());
  return 0;
}

}  // namespace

int main() {
  if (auto ok = ringbus::validate_name("orders"); !ok) {
    return failed("validate_name(\"orders\") failed: " + ok.error().message());
  }
  if (ringbus::validate_name("no/slashes")) return failed("validate_name accepted \"no/slashes\"");
  // Pulls in the hwloc-backed code, so a missing link dependency fails here, not in a user's app.
  const std::vector<int> cpus = ringbus::allowed_cpus();
  if (cpus.empty()) return failed("allowed_cpus() is empty");
  char dir[] = "/tmp/ringbus-package-XXXXXX";
  if (::mkdtemp(dir) == nullptr) return failed("mkdtemp failed");
  const int status = use_a_topic(dir);
  (void)ringbus::Bus(dir).remove_topic("orders");
  ::rmdir(dir);
  if (status != 0) return status;
  std::printf("package consumer: validate_name ok, %zu allowed cpus\n", cpus.size());
  return 0;
}
