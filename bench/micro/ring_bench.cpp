// Micro-benchmarks of the hot path in one process: claim+commit, publish by size, poll.
// Each also runs a memcpy of the same size as an in-process baseline.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "ringbus/ringbus.hpp"

namespace {

// One bus directory and topic for the whole run (Google Benchmark calls each function often).
ringbus::Topic& topic(bool with_reader_room = true) {
  static std::string dir = [] {
    std::string pattern = "/dev/shm/ringbus-micro-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(dir); });
    return pattern;
  }();
  static ringbus::Topic t = [] {
    ringbus::TopicOptions o;
    o.capacity = std::uint64_t{16} << 20;
    auto created = ringbus::Bus(dir).create_topic("micro", o);
    if (!created) std::abort();
    return *created;
  }();
  (void)with_reader_room;
  return t;
}

// claim + commit with no reader: the producer's own cost (CAS, header, commit CAS).
void BM_ClaimCommit(benchmark::State& state) {
  ringbus::Producer producer(topic());
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    auto claim = producer.try_claim(size);
    if (!claim) state.SkipWithError("claim failed");
    benchmark::DoNotOptimize(claim->bytes().data());
    (void)claim->commit(1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClaimCommit)->Arg(64)->Threads(1)->Threads(2);

// publish (copy) by size, with no reader.
void BM_Publish(benchmark::State& state) {
  ringbus::Producer producer(topic());
  std::vector<std::byte> value(static_cast<std::size_t>(state.range(0)), std::byte{7});
  for (auto _ : state) {
    auto r = producer.try_publish({}, value);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Publish)->RangeMultiplier(8)->Range(8, 64 << 10)->Threads(1)->Threads(2);

// Batches of range(1) messages of range(0) bytes: the cost per message (items) against
// BM_Publish's. No reader: the producer never waits.
void BM_PublishBatch(benchmark::State& state) {
  ringbus::Producer producer(topic());
  std::vector<std::byte> value(static_cast<std::size_t>(state.range(0)), std::byte{7});
  const std::vector<ringbus::Record> records(static_cast<std::size_t>(state.range(1)),
                                             ringbus::Record{{}, value});
  for (auto _ : state) {
    auto r = producer.try_publish_batch(records);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));
  state.SetBytesProcessed(state.iterations() * state.range(0) * state.range(1));
}
BENCHMARK(BM_PublishBatch)->Args({64, 8})->Args({64, 32});

// BM_Publish without a clock on the path (TimestampSource::none, or coarse).
void BM_PublishClock(benchmark::State& state) {
  ringbus::Producer producer(topic(), {static_cast<ringbus::TimestampSource>(state.range(1))});
  std::vector<std::byte> value(static_cast<std::size_t>(state.range(0)), std::byte{7});
  for (auto _ : state) {
    auto r = producer.try_publish({}, value);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishClock)
    ->Args({64, static_cast<int>(ringbus::TimestampSource::realtime)})
    ->Args({64, static_cast<int>(ringbus::TimestampSource::coarse)})
    ->Args({64, static_cast<int>(ringbus::TimestampSource::none)});

// Baseline for BM_Publish: copying the same bytes into a buffer.
void BM_MemcpyBaseline(benchmark::State& state) {
  std::vector<std::byte> from(static_cast<std::size_t>(state.range(0)), std::byte{7});
  std::vector<std::byte> to(from.size());
  for (auto _ : state) {
    std::memcpy(to.data(), from.data(), from.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MemcpyBaseline)->RangeMultiplier(8)->Range(8, 64 << 10);

// publish one + poll one through a durable subscriber in the same thread.
void BM_PublishPoll(benchmark::State& state) {
  ringbus::Producer producer(topic());
  auto sub = ringbus::Subscriber::attach(topic(), {});
  if (!sub) {
    state.SkipWithError("attach failed");
    return;
  }
  std::vector<std::byte> value(static_cast<std::size_t>(state.range(0)), std::byte{7});
  std::uint64_t sum = 0;
  for (auto _ : state) {
    (void)producer.try_publish({}, value);
    auto r = sub->poll([&](const ringbus::Message& m) { sum += m.value.size(); }, 1);
    benchmark::DoNotOptimize(r);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishPoll)->Arg(64)->Arg(1024);

// poll of a batch of 64 published messages: the reader's cost per message.
void BM_PollBatch(benchmark::State& state) {
  ringbus::Producer producer(topic());
  auto sub = ringbus::Subscriber::attach(topic(), {});
  if (!sub) {
    state.SkipWithError("attach failed");
    return;
  }
  std::vector<std::byte> value(64, std::byte{7});
  std::uint64_t sum = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 64; ++i) (void)producer.try_publish({}, value);
    state.ResumeTiming();
    auto r = sub->poll([&](const ringbus::Message& m) { sum += m.value.size(); }, 64);
    benchmark::DoNotOptimize(r);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_PollBatch);

}  // namespace

BENCHMARK_MAIN();
