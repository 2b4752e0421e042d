// Topic lifecycle: create (atomic, reserved, mode), open, list, remove, option validation.
#include "ringbus/topic.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "ringbus/producer.hpp"
#include "ringbus/subscriber.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using testing::TempBus;

TEST(Topic, CreateThenOpenSeesSameConfig) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  o.max_message = 1000;
  o.policy = Policy::overwrite;
  o.max_readers = 5;
  o.stuck_claim_timeout = std::chrono::milliseconds(1234);
  auto created = tb.bus().create_topic("orders", o);
  ASSERT_TRUE(created) << created.error().message();
  auto opened = tb.bus().open_topic("orders");
  ASSERT_TRUE(opened) << opened.error().message();
  const auto& c = opened->config();
  EXPECT_EQ(c.capacity, 64u * 1024);
  EXPECT_EQ(c.max_message, 1000u);
  EXPECT_EQ(c.policy, Policy::overwrite);
  EXPECT_EQ(c.max_readers, 5u);
  EXPECT_EQ(c.stuck_claim_timeout.count(), 1234);
  EXPECT_EQ(c.layout_version, 1u);
}

TEST(Topic, DefaultMaxMessageIsQuarterOfCapacity) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  auto t = tb.create("small", o);
  ASSERT_TRUE(t.valid());
  EXPECT_EQ(t.config().max_message, 1024u);
}

TEST(Topic, FileIsFullyReservedAndPrivateByDefault) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 1 << 20;
  auto t = tb.create("reserved", o);
  ASSERT_TRUE(t.valid());
  struct stat st {};
  ASSERT_EQ(::stat(t.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_GE(static_cast<std::uint64_t>(st.st_size), o.capacity + 4096);
  // Reserved, not sparse: every byte has a block.
  EXPECT_GE(static_cast<std::uint64_t>(st.st_blocks) * 512, static_cast<std::uint64_t>(st.st_size));
}

TEST(Topic, GroupReadableOnRequest) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 4096;
  o.mode = 0640;
  auto t = tb.create("shared", o);
  ASSERT_TRUE(t.valid());
  struct stat st {};
  ASSERT_EQ(::stat(t.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Topic, CreateTwiceFailsWithAlreadyExists) {
  TempBus tb;
  ASSERT_TRUE(tb.create("dup").valid());
  auto again = tb.bus().create_topic("dup");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), Errc::already_exists);
}

TEST(Topic, RejectsBadOptionsWithClearMessages) {
  TempBus tb;
  struct Case {
    TopicOptions options;
    const char* expect;
  };
  TopicOptions not_pow2;
  not_pow2.capacity = 5000;
  TopicOptions too_small;
  too_small.capacity = 2048;
  TopicOptions big_message;
  big_message.capacity = 4096;
  big_message.max_message = 2000;
  TopicOptions no_readers;
  no_readers.max_readers = 0;
  TopicOptions bad_mode;
  bad_mode.mode = 0666;
  for (const auto& c :
       {Case{not_pow2, "power of two"}, Case{too_small, "power of two"},
        Case{big_message, "quarter"}, Case{no_readers, "max readers"}, Case{bad_mode, "mode"}}) {
    auto r = tb.bus().create_topic("t", c.options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), Errc::invalid_argument);
    EXPECT_NE(r.error().message().find(c.expect), std::string::npos) << r.error().message();
  }
  auto bad_name = tb.bus().create_topic("no/slash");
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.code(), Errc::invalid_argument);
}

TEST(Topic, CapacityOfOneGibibyteIsAccepted) {
  TempBus tb;
  TopicOptions o;
  o.capacity = std::uint64_t{1} << 30;
  o.max_message = o.capacity / 4;
  auto r = tb.bus().create_topic("huge", o);
  if (!r && r.code() == Errc::no_space) GTEST_SKIP() << "not enough shared memory here";
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->config().max_message, o.capacity / 4);
  ASSERT_TRUE(tb.bus().remove_topic("huge"));
}

TEST(Topic, ListIsSortedAndSkipsLeftoversOfCrashedCreations) {
  TempBus tb;
  ASSERT_TRUE(tb.create("b").valid());
  ASSERT_TRUE(tb.create("a").valid());
  // A temporary file whose creator (pid 999999999) does not exist: a crashed creation.
  std::string leftover = tb.dir() + "/.tmp.999999999.1.c";
  std::ofstream(leftover) << "half";
  auto names = tb.bus().list_topics();
  ASSERT_TRUE(names);
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(std::filesystem::exists(leftover));
}

TEST(Topic, RemoveDeletesTheFileAndMissingTopicIsNotFound) {
  TempBus tb;
  ASSERT_TRUE(tb.create("gone").valid());
  ASSERT_TRUE(tb.bus().remove_topic("gone"));
  auto opened = tb.bus().open_topic("gone");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.code(), Errc::not_found);
  auto removed = tb.bus().remove_topic("gone");
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.code(), Errc::not_found);
}

TEST(Topic, BusDirectoryDefaultsFromEnvironment) {
  ::setenv("RINGBUS_DIR", "/some/where", 1);
  EXPECT_EQ(Bus::default_directory(), "/some/where");
  ::unsetenv("RINGBUS_DIR");
  EXPECT_EQ(Bus::default_directory(), "/dev/shm/ringbus-" + std::to_string(::getuid()));
}

TEST(Topic, WorksInAnOrdinaryDiskDirectory) {
  char dir[] = "/tmp/ringbus-disk-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  Bus bus(dir);
  auto t = bus.create_topic("ondisk");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->config().capacity, TopicOptions{}.capacity);
  std::filesystem::remove_all(dir);
}

TEST(Topic, WorksOnHugetlbfsWhenHugePagesAreReserved) {
  // Needs root (a private mount) and free huge pages (vm.nr_hugepages); skips otherwise.
  pid_t pid = testing::fork_child([] {
    std::ifstream meminfo("/proc/meminfo");
    long free_pages = 0;
    for (std::string line; std::getline(meminfo, line);) {
      if (line.rfind("HugePages_Free:", 0) == 0) free_pages = std::stol(line.substr(15));
    }
    if (free_pages < 1) return 77;
    if (::unshare(CLONE_NEWNS) != 0) return 77;
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
    char dir[] = "/tmp/ringbus-huge-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return 77;
    if (::mount("none", dir, "hugetlbfs", 0, nullptr) != 0) return 77;
    Bus bus(std::string(dir) + "/bus");
    TopicOptions o;
    o.capacity = 1 << 20;
    int code = 0;
    {
      auto t = bus.create_topic("huge", o);
      if (!t) {
        std::fprintf(stderr, "%s\n", t.error().message().c_str());
        code = 1;
      } else {
        Producer p(*t);
        SubscriberOptions so;
        so.start = StartFrom::earliest();
        auto sub = Subscriber::attach(*t, so);
        if (!sub || !p.try_publish({}, as_bytes("on huge pages"))) code = 2;
        std::string got;
        if (sub) (void)sub->poll([&](const Message& m) { got = as_string(m.value); });
        if (code == 0 && got != "on huge pages") code = 3;
      }
    }
    (void)bus.remove_topic("huge");
    ::umount(dir);
    ::rmdir(dir);
    return code;
  });
  int status = testing::wait_child(pid, std::chrono::seconds(60));
  if (status == 77) GTEST_SKIP() << "no free huge pages, or cannot mount hugetlbfs here";
  EXPECT_EQ(status, 0) << "1: create failed; 2: attach/publish failed; 3: wrong message";
}

// VmLck of this process, in KiB.
std::uint64_t locked_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmLck:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

TEST(Topic, MlockOnRequestSucceedsOrExplainsTheLimit) {
  TempBus tb;
  TopicOptions o;
  o.capacity = 64 * 1024;
  o.lock_memory = true;
  [[maybe_unused]] const std::uint64_t before_kb = locked_kib();
  auto r = tb.bus().create_topic("locked", o);
  if (!r) {
    EXPECT_EQ(r.code(), Errc::io_error);
    EXPECT_NE(r.error().message().find("lock"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("RLIMIT_MEMLOCK"), std::string::npos) << r.error().message();
    return;
  }
  EXPECT_EQ(r->config().capacity, o.capacity);
  auto opened = tb.bus().open_topic("locked", OpenOptions{.lock_memory = true});
  ASSERT_TRUE(opened) << opened.error().message();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers intercept mlock() and make it a no-op that succeeds: VmLck stays 0.
#else
  // Created, then opened again: both mappings of the whole file are locked in this process
  // (VmLck counts locked pages of each mapping).
  EXPECT_GE(locked_kib(), before_kb + 2 * (r->config().file_size / 1024))
      << "created and opened with lock_memory, but " << locked_kib() << " KiB locked";
#endif
}

TEST(Topic, FullFileSystemIsAClearErrorAtCreation) {
  // A child process mounts a 256 KiB tmpfs in its own mount namespace (needs root) and tries
  // to create a 1 MiB topic there.
  pid_t pid = testing::fork_child([] {
    if (::unshare(CLONE_NEWNS) != 0) return 77;
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 77;
    char dir[] = "/tmp/ringbus-full-XXXXXX";
    if (::mkdtemp(dir) == nullptr) return 77;
    if (::mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0) return 77;
    Bus bus(std::string(dir) + "/bus");
    TopicOptions o;
    o.capacity = 1 << 20;
    auto r = bus.create_topic("toobig", o);
    int code = 0;
    if (r)
      code = 1;
    else if (r.code() != Errc::no_space)
      code = 2;
    else if (r.error().message().find("no space") == std::string::npos)
      code = 3;
    else if (std::filesystem::exists(std::string(dir) + "/bus/toobig"))
      code = 4;
    else if (!bus.list_topics() || !bus.list_topics()->empty())
      code = 5;
    ::umount(dir);
    ::rmdir(dir);
    return code;
  });
  int status = testing::wait_child(pid, std::chrono::seconds(60));
  if (status == 77) GTEST_SKIP() << "cannot mount a small tmpfs here (not root?)";
  EXPECT_EQ(status, 0) << "1: created; 2: wrong code; 3: unclear message; 4/5: leftovers";
}

// A symbolic link planted at a topic's name (pointing at a real topic, or at any file) is
// refused by name, never followed; the real topic still opens.
TEST(BusDirectory, ASymbolicLinkAtATopicNameIsRefused) {
  TempBus tb;
  tb.create("real");
  const std::string link = tb.dir() + "/planted";
  ASSERT_EQ(::symlink((tb.dir() + "/real").c_str(), link.c_str()), 0);
  auto opened = tb.bus().open_topic("planted");
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.code(), Errc::invalid_argument);
  EXPECT_TRUE(testing::contains(opened.error().message(), "is a symbolic link"))
      << opened.error().message();
  EXPECT_TRUE(tb.bus().open_topic("real"));
}

// A bus directory that is a symbolic link, or that other users can write to, is refused for
// every use, with a message that says why; the same directory made safe works.
TEST(BusDirectory, ASymbolicLinkOrAWorldWritableDirectoryIsRefused) {
  testing::TempDir root;
  const std::string real = root.path() + "/real";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  const std::string link = root.path() + "/link";
  ASSERT_EQ(::symlink(real.c_str(), link.c_str()), 0);
  const Bus through_link(link);
  auto created = through_link.create_topic("t");
  ASSERT_FALSE(created);
  EXPECT_TRUE(testing::contains(created.error().message(), "is a symbolic link"))
      << created.error().message();
  EXPECT_FALSE(through_link.list_topics());
  EXPECT_FALSE(through_link.open_topic("t"));
  EXPECT_FALSE(std::filesystem::exists(real + "/t"));

  const Bus bus(real);
  ASSERT_EQ(::chmod(real.c_str(), 0777), 0);
  created = bus.create_topic("t");
  ASSERT_FALSE(created);
  EXPECT_TRUE(testing::contains(created.error().message(), "writable by other users (mode 0777)"))
      << created.error().message();
  EXPECT_FALSE(bus.list_topics());
  ASSERT_EQ(::chmod(real.c_str(), 0700), 0);
  EXPECT_TRUE(bus.create_topic("t"));
  EXPECT_TRUE(bus.open_topic("t"));
}

// Root only: a directory that belongs to another user (and none of this user's groups) is not
// one to create topics in; it can still be read (a monitor run by root).
TEST(BusDirectory, TopicsAreNotCreatedInAnotherUsersDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  testing::TempDir root;
  const std::string dir = root.path() + "/theirs";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  {
    const Bus mine(dir);
    ASSERT_TRUE(mine.create_topic("before"));  // made while the directory was root's
  }
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);  // nobody:nogroup
  const Bus bus(dir);
  auto created = bus.create_topic("t");
  ASSERT_FALSE(created);
  EXPECT_TRUE(testing::contains(created.error().message(), "belongs to uid 65534"))
      << created.error().message();
  EXPECT_FALSE(std::filesystem::exists(dir + "/t"));
  EXPECT_TRUE(bus.open_topic("before"));
  auto listed = bus.list_topics();
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->size(), 1U);
}

// Runs `body` in a child process as uid 65534 (nobody) with the given supplementary group (none
// when 0) and returns its exit code.
SubscriberOptions from_earliest() {
  SubscriberOptions options;
  options.start = StartFrom::earliest();
  return options;
}

int as_other_user(gid_t group, const std::function<int()>& body) {
  const pid_t pid = testing::fork_child([&] {
    const gid_t gid = group != 0 ? group : 65534;
    if (::setgroups(group != 0 ? 1 : 0, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(65534) != 0) {
      return 90;
    }
    return body();
  });
  return testing::wait_child(pid, std::chrono::seconds(30));
}

TEST(BusDirectory, AnotherUserCannotAttachToAPrivateBus) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  testing::TempDir root;
  ASSERT_EQ(::chmod(root.path().c_str(), 0755), 0);  // only the bus directory's mode protects it
  const std::string dir = root.path() + "/bus";
  {
    auto topic = Bus(dir).create_topic("private");  // creates the bus directory (0700)
    ASSERT_TRUE(topic);
    Producer producer(*topic);
    ASSERT_TRUE(producer.publish({}, as_bytes("secret")));
  }
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700U);
  ASSERT_EQ(::stat((dir + "/private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);

  const int code = as_other_user(0, [&] {
    const Bus bus(dir);
    auto opened = bus.open_topic("private");
    if (opened) return 10;
    if (opened.error().message().find("ermission denied") == std::string::npos) return 11;
    if (bus.list_topics()) return 12;
    if (bus.create_topic("planted")) return 13;
    if (::open((dir + "/private").c_str(), O_RDONLY) >= 0 || errno != EACCES) return 14;
    return 0;
  });
  EXPECT_EQ(code, 0) << "10: opened the topic, 11: the error does not say why, 12: listed, "
                        "13: created a topic, 14: opened the file";
  EXPECT_FALSE(std::filesystem::exists(dir + "/planted"));
}

TEST(BusDirectory, AGroupSharedBusLetsItsGroupAttachAndNoOneElse) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a child as another user";
  constexpr gid_t kGroup = 4242;
  testing::TempDir root;
  ASSERT_EQ(::chmod(root.path().c_str(), 0755), 0);
  const std::string dir = root.path() + "/shared";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), 0, kGroup), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 02770), 0);  // setgid: topics inherit the group
  TopicOptions options;
  options.mode = 0660;
  auto topic = Bus(dir).create_topic("orders", options);
  ASSERT_TRUE(topic);
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/orders").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kGroup);
  EXPECT_EQ(st.st_mode & 07777, 0660U);
  auto sub = Subscriber::attach(*topic, from_earliest());
  ASSERT_TRUE(sub);

  // A member of the group publishes and reads.
  const int member = as_other_user(kGroup, [&] {
    auto opened = Bus(dir).open_topic("orders");
    if (!opened) return 10;
    auto reader = Subscriber::attach(*opened, from_earliest());
    if (!reader) return 11;
    Producer producer(*opened);
    if (!producer.publish({}, as_bytes("from the group"))) return 12;
    std::string got;
    if (!reader->poll([&](const Message& m) { got = std::string(as_string(m.value)); })) return 13;
    return got == "from the group" ? 0 : 14;
  });
  EXPECT_EQ(member, 0) << "10: open, 11: attach, 12: publish, 13: poll, 14: wrong message";
  std::string got;
  ASSERT_TRUE(sub->poll([&](const Message& m) { got = std::string(as_string(m.value)); }));
  EXPECT_EQ(got, "from the group");

  // Anyone else cannot.
  const int other = as_other_user(0, [&] { return Bus(dir).open_topic("orders") ? 10 : 0; });
  EXPECT_EQ(other, 0) << "a user outside the group opened the topic";
}

}  // namespace
}  // namespace ringbus
