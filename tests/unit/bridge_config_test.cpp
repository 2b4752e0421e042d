// The bridge's options: flags and TOML go through one table and give the same configuration;
// the forwarding options (listen, accept, forward, key file, link timeout) and their checks.
#include "bridge_config.hpp"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "command_line.hpp"
#include "link_tls.hpp"
#include "support/test_support.hpp"

namespace ringbus {
namespace {

using bridge::BridgeConfig;
using testing::contains;

Result<bridge::CommandLine> parse(std::initializer_list<std::string> args) {
  std::vector<std::string> words{"ringbus-bridge"};
  words.insert(words.end(), args);
  std::vector<const char*> argv;
  for (const std::string& w : words) argv.push_back(w.c_str());
  return bridge::parse_command_line(static_cast<int>(argv.size()), argv.data());
}

// The message of a command line that must fail.
std::string parse_error(std::initializer_list<std::string> args) {
  auto r = parse(args);
  EXPECT_FALSE(r) << "accepted";
  return r ? std::string() : r.error().message();
}

std::string write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
  return path;
}

std::string key_file(const testing::TempDir& dir, mode_t mode) {
  return write_file(dir.path() + "/link-" + std::to_string(mode) + ".key",
                    "0123456789abcdef0123456789abcdef", mode);
}

std::string toml_error(const testing::TempDir& dir, const std::string& text) {
  const std::string path = write_file(dir.path() + "/bridge.toml", text, 0644);
  auto c = bridge::load_config_file(path);
  EXPECT_FALSE(c) << text;
  return c ? std::string() : c.error().message();
}

TEST(BridgeOptions, FlagsAndTomlGiveTheSameConfig) {
  testing::TempDir dir;
  const std::string key = key_file(dir, 0600);
  auto flags = parse({"--log-dir",
                      "/var/log/rb",
                      "--record",
                      "orders",
                      "--record",
                      "md.*",
                      "--segment-bytes",
                      "1MiB",
                      "--fsync",
                      "bytes",
                      "--fsync-bytes",
                      "65536",
                      "--retention-bytes",
                      "2GiB",
                      "--retention-age",
                      "7d",
                      "--reader-name",
                      "recorder",
                      "--scan-interval",
                      "500ms",
                      "--cpu",
                      "1",
                      "--no-restore",
                      "--listen",
                      "0.0.0.0:7460",
                      "--accept",
                      "orders",
                      "--accept",
                      "md.*",
                      "--forward",
                      "orders=10.0.0.2:7460",
                      "--forward",
                      "md.*=backup:7461",
                      "--key-file",
                      key,
                      "--link-timeout",
                      "3s"});
  ASSERT_TRUE(flags) << flags.error().message();
  const std::string path = write_file(dir.path() + "/bridge.toml", R"(
log_dir = "/var/log/rb"
record = ["orders", "md.*"]
segment_bytes = "1MiB"
reader_name = "recorder"
scan_interval = 500
cpu = 1
restore_topics = false
key_file = ")" + key + R"("
link_timeout = "3s"
[fsync]
policy = "bytes"
bytes = 65536
[retention]
bytes = "2GiB"
age = "7d"
[listen]
address = "0.0.0.0:7460"
accept = ["orders", "md.*"]
[[forward]]
topics = ["orders"]
to = "10.0.0.2:7460"
[[forward]]
topics = "md.*"
to = "backup:7461"
)",
                                      0644);
  auto file = parse({"--config", path});
  ASSERT_TRUE(file) << file.error().message();
  const BridgeConfig& a = flags->config;
  const BridgeConfig& b = file->config;
  EXPECT_EQ(a.log_dir, b.log_dir);
  EXPECT_EQ(a.record, b.record);
  EXPECT_EQ(a.segment_bytes, b.segment_bytes);
  EXPECT_EQ(a.fsync, b.fsync);
  EXPECT_EQ(a.fsync_bytes, b.fsync_bytes);
  EXPECT_EQ(a.retention_bytes, b.retention_bytes);
  EXPECT_EQ(a.retention_age, b.retention_age);
  EXPECT_EQ(a.reader_name, b.reader_name);
  EXPECT_EQ(a.scan_interval, b.scan_interval);
  EXPECT_EQ(a.cpu, b.cpu);
  EXPECT_EQ(a.restore_topics, b.restore_topics);
  EXPECT_FALSE(b.restore_topics);
  EXPECT_EQ(a.listen.address, "0.0.0.0:7460");
  EXPECT_EQ(a.listen.address, b.listen.address);
  EXPECT_EQ(a.listen.accept, (std::vector<std::string>{"orders", "md.*"}));
  EXPECT_EQ(a.listen.accept, b.listen.accept);
  ASSERT_EQ(a.forward.size(), 2U);
  ASSERT_EQ(b.forward.size(), 2U);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a.forward[i].topics, b.forward[i].topics);
    EXPECT_EQ(a.forward[i].to, b.forward[i].to);
  }
  EXPECT_EQ(a.forward[1].to, "backup:7461");
  EXPECT_EQ(a.key_file, b.key_file);
  EXPECT_EQ(a.key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.link_timeout, std::chrono::seconds(3));
  EXPECT_EQ(a.link_timeout, b.link_timeout);
}

TEST(BridgeOptions, FlagsOverrideTheFileAndListsReplaceIt) {
  testing::TempDir dir;
  const std::string path = write_file(dir.path() + "/bridge.toml",
                                      "log_dir = \"/x\"\nrecord = [\"a\", \"b\"]\n"
                                      "[listen]\naddress = \"7000\"\naccept = [\"a\"]\n",
                                      0644);
  auto c = parse({"--config", path, "--record", "c", "--accept", "d", "--segment-bytes", "8KiB"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->config.record, std::vector<std::string>{"c"});
  EXPECT_EQ(c->config.listen.accept, std::vector<std::string>{"d"});
  EXPECT_EQ(c->config.listen.address, "127.0.0.1:7000");
  EXPECT_EQ(c->config.segment_bytes, 8192U);
}

TEST(BridgeOptions, AnEmptyFlagOrCpuMinusOneCountsAsNotGiven) {
  auto c = parse({"--listen", "1", "--reader-name", "", "--bus-dir", "", "--cpu", "-1"});
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->config.reader_name, BridgeConfig{}.reader_name);
  EXPECT_FALSE(c->config.cpu.has_value());
  EXPECT_TRUE(contains(parse_error({"--listen", "1", "--cpu", "-2"}), "cpu -2 is not a core"));
}

TEST(BridgeOptions, ListenTakesAPortAloneAsLoopback) {
  for (const char* given : {"7460", ":7460", "127.0.0.1:7460"}) {
    auto c = parse({"--listen", given});
    ASSERT_TRUE(c) << given << ": " << c.error().message();
    EXPECT_EQ(c->config.listen.address, "127.0.0.1:7460") << given;
  }
  auto host = parse({"--listen", "localhost:80"});
  ASSERT_TRUE(host) << host.error().message();
  EXPECT_EQ(host->config.listen.address, "localhost:80");
}

TEST(BridgeOptions, DefaultsOfTheLinkOptions) {
  const BridgeConfig c;
  EXPECT_TRUE(c.listen.address.empty());
  EXPECT_EQ(c.listen.accept, std::vector<std::string>{"*"});
  EXPECT_TRUE(c.forward.empty());
  EXPECT_TRUE(c.key_file.empty());
  EXPECT_EQ(c.link_timeout, std::chrono::seconds(10));
}

TEST(BridgeOptions, ABridgeThatOnlyListensOrForwardsNeedsNoLogDirectory) {
  auto listen = parse({"--listen", "7460"});
  ASSERT_TRUE(listen) << listen.error().message();
  EXPECT_TRUE(listen->config.log_dir.empty());
  auto forward = parse({"--forward", "orders=127.0.0.1:7460"});
  ASSERT_TRUE(forward) << forward.error().message();
  EXPECT_EQ(forward->config.forward[0].topics, std::vector<std::string>{"orders"});
  EXPECT_TRUE(contains(parse_error({"--record", "*"}), "no log directory"));
  EXPECT_TRUE(contains(parse_error({}), "nothing to do"));
  EXPECT_FALSE(bridge::validate_config(BridgeConfig{}));
  BridgeConfig only_listen;
  only_listen.listen.address = "127.0.0.1:7460";
  EXPECT_TRUE(bridge::validate_config(only_listen));
}

TEST(BridgeOptions, BadAddressesNameTheOption) {
  for (const char* bad :
       {"0", "65536", "host:", "host:x", "300.1.1.1:80", "-bad:80", "a b:80", "1.2.3:80"}) {
    const std::string e = parse_error({"--listen", bad});
    EXPECT_TRUE(contains(e, "--listen '" + std::string(bad) + "' is not HOST:PORT")) << e;
  }
  EXPECT_TRUE(contains(parse_error({"--forward", "orders=7460"}), "the port is missing"));
  EXPECT_TRUE(contains(parse_error({"--forward", "orders=:7460"}), "the host is missing"));
  EXPECT_TRUE(contains(parse_error({"--forward", "orders"}),
                       "--forward 'orders' must be "
                       "GLOB=HOST:PORT"));
  EXPECT_TRUE(contains(parse_error({"--forward", "or/ders=h:1"}), "--forward 'or/ders'"));
  EXPECT_TRUE(contains(parse_error({"--forward", "md.[ab=h:1"}), "'[' is not closed"));
  EXPECT_TRUE(contains(parse_error({"--listen", "1", "--accept", "a,b"}), "--accept 'a,b'"));
  EXPECT_TRUE(
      contains(parse_error({"--listen", "1", "--link-timeout", "soon"}), "--link-timeout 'soon'"));
  EXPECT_TRUE(contains(parse_error({"--listen", "1", "--link-timeout", "0"}),
                       "link_timeout must be positive"));
}

TEST(BridgeOptions, TomlErrorsNameTheFileLineAndKey) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/bridge.toml";
  std::string e = toml_error(dir, "[listen]\naddress = \"h:0\"\n");
  EXPECT_TRUE(contains(e, path + ":2: listen.address 'h:0' is not HOST:PORT")) << e;
  e = toml_error(dir, "[listen]\nadress = \"1\"\n");
  EXPECT_TRUE(contains(e, path + ":2: listen.adress is not a listen option (address, accept)"))
      << e;
  e = toml_error(dir, "[[forward]]\nto = \"h:1\"\n");
  EXPECT_TRUE(contains(e, path + ":1: [[forward]] has no topics")) << e;
  e = toml_error(dir, "[[forward]]\ntopics = []\nto = \"h:1\"\n");
  EXPECT_TRUE(contains(e, "[[forward]] has no topics")) << e;
  e = toml_error(dir, "[[forward]]\ntopics = [\"a\"]\n");
  EXPECT_TRUE(contains(e, path + ":1: [[forward]] has no destination")) << e;
  e = toml_error(dir, "[[forward]]\ntopics = [\"a\", 3]\nto = \"h:1\"\n");
  EXPECT_TRUE(contains(e, path + ":2: forward.topics entries must be strings")) << e;
  e = toml_error(dir, "[[forward]]\ntopics = [\"a\"]\nto = \"h\"\n");
  EXPECT_TRUE(contains(e, path + ":3: forward.to 'h' is not HOST:PORT: the port is missing")) << e;
  e = toml_error(dir, "forward = \"a=h:1\"\n");
  EXPECT_TRUE(contains(e, path + ":1: forward must be an array of tables ([[forward]])")) << e;
  e = toml_error(dir, "link_timeout = \"10 s\"\n");
  EXPECT_TRUE(contains(e, path + ":1: link_timeout '10 s'")) << e;
  e = toml_error(dir, "key_file = \"" + dir.path() + "/none\"\n");
  EXPECT_TRUE(contains(e, path + ":1: key_file '" + dir.path() + "/none'")) << e;
}

TEST(BridgeOptions, KeyFileMustBePrivateAndOfAKeysSize) {
  testing::TempDir dir;
  const std::string open = key_file(dir, 0644);
  std::string e = parse_error({"--listen", "7460", "--key-file", open});
  EXPECT_TRUE(contains(e, "--key-file '" + open +
                              "' is readable or writable by group or others "
                              "(mode 0644): run `chmod 600 " +
                              open + "`"))
      << e;
  const std::string key = key_file(dir, 0600);
  auto ok = parse({"--listen", "7460", "--key-file", key});
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->config.key.size(), 32U);
  const std::string small = write_file(dir.path() + "/small.key", "short", 0600);
  e = parse_error({"--listen", "7460", "--key-file", small});
  EXPECT_TRUE(contains(e, "holds 5 bytes; a key must be 16 to 4096 bytes")) << e;
  const std::string big = write_file(dir.path() + "/big.key", std::string(4097, 'k'), 0600);
  EXPECT_TRUE(contains(parse_error({"--listen", "7460", "--key-file", big}), "holds 4097 bytes"));
  e = parse_error({"--listen", "7460", "--key-file", dir.path()});
  EXPECT_TRUE(contains(e, "is not a regular file")) << e;
  e = parse_error({"--listen", "7460", "--key-file", dir.path() + "/none"});
  EXPECT_TRUE(contains(e, "No such file")) << e;
  // validate_config checks the file again, for a configuration built in code.
  BridgeConfig c;
  c.listen.address = "127.0.0.1:7460";
  c.key_file = open;
  EXPECT_FALSE(bridge::validate_config(c));
}

TEST(BridgeOptions, ListeningBeyondLoopbackNeedsAKeyFile) {
  testing::TempDir dir;
  std::string e = parse_error({"--listen", "0.0.0.0:7460"});
  EXPECT_TRUE(contains(e, "binding beyond loopback needs --key-file")) << e;
  EXPECT_TRUE(contains(parse_error({"--listen", "db1:7460"}), "beyond loopback"));
  auto keyed = parse({"--listen", "0.0.0.0:7460", "--key-file", key_file(dir, 0600)});
  EXPECT_TRUE(keyed) << keyed.error().message();
  EXPECT_TRUE(parse({"--listen", "127.1.2.3:7460"}));
}

TEST(BridgeOptions, TlsNeedsItsThreeFilesAndAPrivateKey) {
  testing::TempDir dir;
  const std::string cert = write_file(dir.path() + "/b.pem", "not checked here", 0644);
  const std::string ca = write_file(dir.path() + "/ca.pem", "not checked here", 0644);
  const std::string key = write_file(dir.path() + "/b.key", "not checked here", 0600);
  const std::string open_key = write_file(dir.path() + "/open.key", "not checked here", 0640);
  std::string e = parse_error({"--listen", "7460", "--tls-cert", cert});
  EXPECT_TRUE(contains(e, "TLS needs all of tls.cert, tls.key and tls.ca")) << e;
  e = parse_error({"--listen", "7460", "--tls-cert", cert, "--tls-key", open_key, "--tls-ca", ca});
  EXPECT_TRUE(contains(e, "tls.key '" + open_key + "' is readable or writable by group or others"))
      << e;
  e = parse_error(
      {"--listen", "7460", "--tls-cert", dir.path() + "/none", "--tls-key", key, "--tls-ca", ca});
  EXPECT_TRUE(contains(e, "tls.cert '" + dir.path() + "/none': No such file")) << e;
  // TLS is enough to listen beyond loopback; flags and TOML agree.
  auto flags =
      parse({"--listen", "0.0.0.0:7460", "--tls-cert", cert, "--tls-key", key, "--tls-ca", ca});
  ASSERT_TRUE(flags) << flags.error().message();
  const std::string path = write_file(dir.path() + "/bridge.toml",
                                      "[listen]\naddress = \"0.0.0.0:7460\"\n[tls]\ncert = \"" +
                                          cert + "\"\nkey = \"" + key + "\"\nca = \"" + ca + "\"\n",
                                      0644);
  auto file = bridge::load_config_file(path);
  ASSERT_TRUE(file) << file.error().message();
  EXPECT_EQ(file->tls.cert, flags->config.tls.cert);
  EXPECT_EQ(file->tls.key, flags->config.tls.key);
  EXPECT_EQ(file->tls.ca, flags->config.tls.ca);
  e = toml_error(dir, "[tls]\ncertificate = \"x\"\n");
  EXPECT_TRUE(contains(e, "certificate")) << e;
}

TEST(LinkTls, LoadsRealFilesAndNamesTheFileItCannotUse) {
  testing::TempDir dir;
  ASSERT_TRUE(testing::make_certificates(dir.path(), {"b", "c"})) << "openssl";
  const std::string d = dir.path() + "/";
  auto good = bridge::LinkTls::load({d + "b.pem", d + "b.key", d + "ca.pem"});
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_NE((*good)->context(), nullptr);
  auto mismatched = bridge::LinkTls::load({d + "b.pem", d + "c.key", d + "ca.pem"});
  ASSERT_FALSE(mismatched);
  EXPECT_TRUE(contains(mismatched.error().message(), "tls.key '" + d + "c.key'"))
      << mismatched.error().message();
  EXPECT_TRUE(contains(mismatched.error().message(), "key values mismatch"))
      << mismatched.error().message();
  const std::string garbage =
      write_file(d + "garbage.pem", "-----BEGIN CERTIFICATE-----\nno\n", 0644);
  auto bad = bridge::LinkTls::load({garbage, d + "b.key", d + "ca.pem"});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.error().message(), "tls.cert '" + garbage + "'"))
      << bad.error().message();
  auto bad_ca = bridge::LinkTls::load({d + "b.pem", d + "b.key", garbage});
  ASSERT_FALSE(bad_ca);
  EXPECT_TRUE(contains(bad_ca.error().message(), "tls.ca")) << bad_ca.error().message();
}

TEST(BridgeOptions, KafkaSinksFromFlagsAndTomlAreTheSame) {
  if (!bridge::kafka_built_in()) GTEST_SKIP() << "built without Kafka";
  testing::TempDir dir;
  const std::string path = write_file(dir.path() + "/bridge.toml", R"(
[kafka]
brokers = "k1:9092,k2:9092"
properties = ["linger.ms=2", "compression.type=lz4"]

[[kafka.sink]]
topics = ["orders", "md.*"]
kafka_topic = "rb.{topic}"
properties = ["acks=1"]

[[kafka.sink]]
topics = ["audit"]
kafka_topic = "audit-log"
)",
                                      0644);
  auto file = parse({"--config", path});
  ASSERT_TRUE(file) << file.error().message();
  auto flags = parse({"--kafka-brokers", "k1:9092,k2:9092", "--kafka-property", "linger.ms=2",
                      "--kafka-property", "compression.type=lz4", "--kafka-sink",
                      "orders=rb.{topic}", "--kafka-sink", "audit=audit-log"});
  ASSERT_TRUE(flags) << flags.error().message();
  for (const auto* c : {&file->config, &flags->config}) {
    EXPECT_EQ(c->kafka.brokers, "k1:9092,k2:9092");
    EXPECT_EQ(c->kafka.properties,
              (std::vector<std::string>{"linger.ms=2", "compression.type=lz4"}));
    ASSERT_EQ(c->kafka.sinks.size(), 2U);
    EXPECT_EQ(c->kafka.sinks[0].kafka_topic, "rb.{topic}");
    EXPECT_EQ(c->kafka.sinks[1].topics, std::vector<std::string>{"audit"});
    EXPECT_EQ(c->kafka.sinks[1].kafka_topic, "audit-log");
  }
  EXPECT_EQ(file->config.kafka.sinks[0].topics, (std::vector<std::string>{"orders", "md.*"}));
  EXPECT_EQ(file->config.kafka.sinks[0].properties, std::vector<std::string>{"acks=1"});
}

TEST(BridgeOptions, KafkaMistakesAreNamedAtStart) {
  if (!bridge::kafka_built_in()) GTEST_SKIP() << "built without Kafka";
  testing::TempDir dir;
  EXPECT_TRUE(contains(parse_error({"--kafka-sink", "orders"}), "must be GLOB=KAFKA_TOPIC"));
  EXPECT_TRUE(contains(parse_error({"--kafka-brokers", "k:1", "--kafka-sink", "orders=a/b"}),
                       "'a/b' is not a Kafka topic name"));
  EXPECT_TRUE(contains(parse_error({"--kafka-sink", "orders=x"}), "needs brokers"));
  EXPECT_TRUE(contains(parse_error({"--kafka-brokers", "k:1", "--kafka-sink", "orders=x",
                                    "--kafka-property", "linger.ms"}),
                       "must be KEY=VALUE"));
  // librdkafka itself checks names and values.
  EXPECT_TRUE(contains(parse_error({"--kafka-brokers", "k:1", "--kafka-sink", "orders=x",
                                    "--kafka-property", "no.such.property=1"}),
                       "Kafka property no.such.property=1: "));
  EXPECT_TRUE(contains(parse_error({"--kafka-brokers", "k:1", "--kafka-sink", "orders=x",
                                    "--kafka-property", "acks=several"}),
                       "Kafka property acks=several: "));
  EXPECT_TRUE(
      contains(toml_error(dir, "[[kafka.sink]]\ntopics = [\"a\"]\n"), "is not a Kafka topic name"));
  EXPECT_TRUE(contains(toml_error(dir, "[[kafka.sink]]\nkafka_topic = \"a\"\n"), "has no topics"));
  EXPECT_TRUE(contains(toml_error(dir, "[kafka]\nbroker = \"k:1\"\n"), "is not a kafka option"));
  // Only a Kafka sink: nothing else to do is fine.
  auto only = parse({"--kafka-brokers", "k:1", "--kafka-sink", "orders=x"});
  EXPECT_TRUE(only) << only.error().message();
}

TEST(BridgeOptions, KafkaSourcesFromFlagsAndToml) {
  if (!bridge::kafka_built_in()) GTEST_SKIP() << "built without Kafka";
  testing::TempDir dir;
  const std::string path = write_file(dir.path() + "/bridge.toml", R"(
[kafka]
brokers = "k1:9092"
group = "ingest-group"
source_capacity = "1MiB"

[[kafka.source]]
kafka_topic = "clicks"
topic = "clicks-local"
properties = ["fetch.min.bytes=1"]
)",
                                      0644);
  auto file = parse({"--config", path});
  ASSERT_TRUE(file) << file.error().message();
  auto flags = parse({"--kafka-brokers", "k1:9092", "--kafka-group", "ingest-group",
                      "--kafka-source-capacity", "1MiB", "--kafka-source", "clicks=clicks-local"});
  ASSERT_TRUE(flags) << flags.error().message();
  for (const auto* c : {&file->config, &flags->config}) {
    EXPECT_EQ(c->kafka.group, "ingest-group");
    EXPECT_EQ(c->kafka.source_capacity, 1U << 20);
    ASSERT_EQ(c->kafka.sources.size(), 1U);
    EXPECT_EQ(c->kafka.sources[0].kafka_topic, "clicks");
    EXPECT_EQ(c->kafka.sources[0].topic, "clicks-local");
  }
  EXPECT_EQ(file->config.kafka.sources[0].properties,
            std::vector<std::string>{"fetch.min.bytes=1"});
  EXPECT_EQ(BridgeConfig{}.kafka.source_capacity, 16U << 20);
  EXPECT_TRUE(contains(parse_error({"--kafka-brokers", "k:1", "--kafka-source", "clicks=x"}),
                       "needs a consumer group"));
  EXPECT_TRUE(contains(parse_error({"--kafka-group", "g", "--kafka-source", "clicks=x"}),
                       "a Kafka source needs brokers"));
  EXPECT_TRUE(contains(parse_error({"--kafka-source", "clicks"}), "must be KAFKA_TOPIC=TOPIC"));
  EXPECT_TRUE(contains(parse_error({"--kafka-source", "cl/icks=x"}), "is not a Kafka topic name"));
  EXPECT_TRUE(contains(parse_error({"--kafka-source", "clicks=.x"}), "topic"));
  EXPECT_TRUE(
      contains(parse_error({"--kafka-brokers", "k:1", "--kafka-group", "g", "--kafka-source",
                            "clicks=x", "--kafka-source-capacity", "3000"}),
               "power of two"));
}

TEST(BridgeOptions, HelpListsEveryFlag) {
  auto r = parse({"--help"});
  ASSERT_TRUE(r) << r.error().message();
  for (const char* flag :
       {"--config", "--log-dir", "--record", "--no-restore", "--listen", "--accept", "--forward",
        "--key-file", "--link-timeout", "--tls-cert", "--tls-key", "--tls-ca"}) {
    EXPECT_TRUE(contains(r->help, flag)) << flag;
  }
  EXPECT_TRUE(contains(parse_error({"--no-such-flag"}), "--no-such-flag"));
}

}  // namespace
}  // namespace ringbus
