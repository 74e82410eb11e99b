// The whole engine network, DenseNet-40 k = 12 on random weights, batch 1, 1 thread:
// engine dense (EngineMode::kDense) and engine gated with random masks (kGiven, each map
// of each layer kept with probability F, a new mask set and image per iteration from a
// pool of 16). Time per iteration is ms per image; counters, averaged over the pool:
// macs_ratio = dense MACs / gated MACs under the paper's convention (EngineStats::macs),
// executed_ratio = the same for the MACs the engine executes (EngineStats::macs_executed:
// transitions pool first), flops = executed FLOP/s, dense_flops = dense-equivalent FLOP/s
// (2 per MAC of the paper's dense count). engine_main.cpp prints the speed-ups.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "engine_bench.h"
#include "engine/engine.h"

namespace mapgate::bench {
namespace {

constexpr int kPool = 16;

struct Network {
  DenseNetConfig config;
  Weights weights;
  std::vector<float> images;  // (kPool, C, S, S)
  std::int64_t dense_macs = 0;           // the paper's count (EngineStats::macs)
  std::int64_t dense_macs_executed = 0;  // what kDense executes
};

const Network& network() {
  static const Network* net = [] {
    auto* n = new Network;
    n->config.gated = false;  // DenseNet-40, k = 12; masks are given
    n->weights = random_weights(n->config, /*seed=*/1);
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    n->images.resize(static_cast<std::size_t>(kPool) * n->config.in_channels * n->config.image_size *
                     n->config.image_size);
    for (auto& x : n->images) x = normal(rng);
    EngineOptions o;
    o.mode = EngineMode::kDense;
    Engine e(n->weights, o);
    std::vector<float> logits(n->config.num_classes);
    EngineStats stats;
    e.forward(n->images.data(), logits.data(), &stats);
    n->dense_macs = stats.macs;
    n->dense_macs_executed = stats.macs_executed;
    return n;
  }();
  return *net;
}

// keep < 0: dense mode. One image per call on `threads` threads (more than one: they share
// the image's pass, Engine::forward_batch).
void bm_network(benchmark::State& state, double keep, int threads = 1) {
  const Network& net = network();
  const DenseNetConfig& c = net.config;
  EngineOptions o;
  o.mode = keep < 0 ? EngineMode::kDense : EngineMode::kGiven;
  Engine engine(net.weights, o);
  const std::size_t image_size = static_cast<std::size_t>(c.in_channels) * c.image_size * c.image_size;
  const std::size_t mask_size = static_cast<std::size_t>(c.dense_layers()) * c.growth;
  std::vector<std::uint8_t> masks(kPool * mask_size, 1);
  if (keep >= 0) {
    std::mt19937 rng(11);
    std::bernoulli_distribution on(keep);
    for (auto& m : masks) m = on(rng);
  }
  std::vector<float> logits(c.num_classes);
  // Mean MACs over the pool, counted and executed (also warms the workspace).
  double macs = 0, executed = 0;
  for (int i = 0; i < kPool; ++i) {
    EngineStats stats;
    engine.forward(net.images.data() + i * image_size, logits.data(), &stats, masks.data() + i * mask_size);
    macs += static_cast<double>(stats.macs);
    executed += static_cast<double>(stats.macs_executed);
  }
  macs /= kPool;
  executed /= kPool;
  int i = 0;
  for (auto _ : state) {
    engine.forward_batch(net.images.data() + i * image_size, 1, logits.data(), nullptr, threads,
                         masks.data() + i * mask_size);
    benchmark::DoNotOptimize(logits.data());
    i = (i + 1) % kPool;
  }
  state.counters["macs_ratio"] = static_cast<double>(net.dense_macs) / macs;
  state.counters["executed_ratio"] = static_cast<double>(net.dense_macs_executed) / executed;
  state.counters["flops"] = benchmark::Counter(2 * executed * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
  state.counters["dense_flops"] = benchmark::Counter(
      2.0 * static_cast<double>(net.dense_macs) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

void register_network_benchmarks() {
  benchmark::RegisterBenchmark("engine_network/dense", [](benchmark::State& s) { bm_network(s, -1); })
      ->Unit(benchmark::kMillisecond);
  for (int threads : {1, 2}) {  // batch-1 latency, one image shared by the threads
    const std::string name = "engine_network/dense/batch:1/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(name.c_str(), [threads](benchmark::State& s) { bm_network(s, -1, threads); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  for (double keep : kKeeps) {
    char name[64];
    std::snprintf(name, sizeof name, "engine_network/given/keep:%.2f", keep);
    benchmark::RegisterBenchmark(name, [keep](benchmark::State& s) { bm_network(s, keep); })
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace mapgate::bench
