// Where a DenseNet training step spends its time, by LibTorch operator (issue 11, item 3:
// is the concatenation's memory traffic material? and what makes a gated step dearer
// than a dense one?). Runs SGD steps of a dense DenseNet (--gated: REINFORCE steps with
// the default method settings, reinforce_step)
// on random CIFAR-shaped batches under LibTorch's autograd profiler (legacy
// RecordProfile, a Chrome trace), then sums the trace's events by name and prints each
// operator's inclusive time as a share of the profiled steps' wall time. Inclusive: an
// operator called inside another (aten::cat inside nothing here; aten::add inside the
// autograd engine's gradient accumulation) counts in both. Used for docs/perf.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_legacy.h>

#include "common/allocator.h"
#include "model/densenet.h"
#include "model/gated_macs.h"
#include "model/masked_bn_relu.h"
#include "train/reinforce.h"

namespace {

using namespace mapgate;

// One training step: dense, or REINFORCE (gates by Adam, as mapgate train does).
struct Stepper {
  DenseNet& model;
  torch::optim::SGD& optimizer;
  torch::optim::Optimizer* gate_optimizer;  // gated only
  const GatedCost* cost;                    // gated only
  double mean_baseline = std::nan("");

  void operator()(const torch::Tensor& images, const torch::Tensor& labels) {
    optimizer.zero_grad();
    if (gate_optimizer) gate_optimizer->zero_grad();
    torch::Tensor loss;
    if (cost) {
      ReinforceSettings settings;
      settings.penalty = 4;
      settings.baseline = Baseline::kAuto;  // as mapgate train by default
      loss = reinforce_step(model, images, labels, *cost, settings, mean_baseline).loss;
    } else {
      loss = torch::nn::functional::cross_entropy(model->forward(images), labels);
    }
    loss.backward();
    optimizer.step();
    if (gate_optimizer) gate_optimizer->step();
    loss.item<float>();
  }
};

// Total duration (microseconds) of the trace's complete events, by name.
std::map<std::string, double> totals_by_name(const std::string& trace) {
  std::ifstream in(trace);
  const auto events = nlohmann::json::parse(in);
  std::map<std::string, double> totals;
  for (const auto& e : events)
    if (e.value("ph", "") == "X") totals[e.at("name").get<std::string>()] += e.at("dur").get<double>();
  return totals;
}

// Masked BN-ReLU-mask alone, forward and backward at one DenseNet shape: the fused CPU
// kernel (masked_bn_relu) against its reference composition (masked_batch_norm's closed
// form, relu, mask multiply), alternating; median ms of each, the fused one split into
// forward and backward.
void time_masked_bn(int batch, int channels, int size, int repeats) {
  torch::manual_seed(0);
  torch::nn::BatchNorm2d bn(channels);
  bn->train();
  const auto keep = torch::bernoulli(torch::full({batch, channels}, 0.5));
  const auto mask = keep.view({batch, channels, 1, 1});
  const auto x = (torch::randn({batch, channels, size, size}) * mask).requires_grad_(true);
  const auto dy = torch::randn_like(x);
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  std::vector<double> forward, backward, composition;
  for (int r = 0; r < repeats; ++r) {
    auto start = Clock::now();
    auto y = masked_bn_relu(*bn, x, keep);
    forward.push_back(ms_since(start));
    start = Clock::now();
    y.backward(dy);
    backward.push_back(ms_since(start));
    start = Clock::now();
    (torch::relu(masked_batch_norm(*bn, x, keep)) * mask).backward(dy);
    composition.push_back(ms_since(start));
    x.grad().zero_();
  }
  for (auto* v : {&forward, &backward, &composition}) std::sort(v->begin(), v->end());
  const int m = repeats / 2;
  std::printf("masked BN-ReLU-mask (%d, %d, %d, %d) forward + backward: fused %.2f ms (%.2f + %.2f), composition %.2f ms (medians of %d)\n",
              batch, channels, size, size, forward[m] + backward[m], forward[m], backward[m], composition[m], repeats);
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_memory_for_reuse();  // as the mapgate binary
  CLI::App app{"Per-operator time of DenseNet training steps (LibTorch's profiler)"};
  int depth = 22, growth = 12, batch = 64, threads = 2, steps = 5, top = 25;
  std::string trace = "concat_profile_trace.json";
  bool gated = false, masked_bn = false;
  app.add_option("--depth", depth, "DenseNet depth");
  app.add_option("--growth", growth, "growth rate k");
  app.add_option("--batch", batch, "mini-batch size");
  app.add_option("--threads", threads, "LibTorch intra-op threads");
  app.add_option("--steps", steps, "profiled steps (after 2 unprofiled warm-up steps)");
  app.add_option("--top", top, "operators listed, longest first");
  app.add_option("--trace", trace, "where the Chrome trace is written");
  app.add_flag("--gated", gated, "REINFORCE-gated steps (lambda 4, default method settings)");
  app.add_flag("--masked-bn", masked_bn, "time the masked BN-ReLU-mask alone (fused vs composition) instead");
  CLI11_PARSE(app, argc, argv);
  torch::set_num_threads(threads);
  if (masked_bn) {
    for (const auto& [channels, size] : {std::pair{96, 32}, std::pair{240, 16}, std::pair{384, 8}})
      time_masked_bn(batch, channels, size, 21);
    return 0;
  }
  DenseNetConfig c;
  c.depth = depth;
  c.growth = growth;
  c.gated = gated;
  c.gate_standardize = gated;  // mapgate train's default gate input
  torch::manual_seed(0);
  DenseNet model(c);
  model->train();
  model->set_masked_norm(MaskedNorm{gated});  // mapgate train's default --bn-stats masked
  const auto [theta, phi] = split_parameters(*model);
  torch::optim::SGD optimizer(theta, torch::optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(1e-4));
  std::unique_ptr<torch::optim::Optimizer> gate_optimizer;
  std::unique_ptr<GatedCost> cost;
  if (gated) {
    gate_optimizer = make_gate_optimizer(GateOptimizer::kAdam, 0.01, phi);
    cost = std::make_unique<GatedCost>(c);
  }
  Stepper step{model, optimizer, gate_optimizer.get(), cost.get()};
  const auto images = torch::randn({batch, 3, 32, 32});
  const auto labels = torch::randint(0, 10, {batch}, torch::kInt64);
  for (int s = 0; s < 2; ++s) step(images, labels);
  double wall_us = 0;
  {
    torch::autograd::profiler::RecordProfile profile(trace);
    const auto start = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) step(images, labels);
    wall_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  }
  const auto totals = totals_by_name(trace);
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [name, us] : totals) rows.emplace_back(us, name);
  std::sort(rows.rbegin(), rows.rend());
  std::printf("DenseNet-%d k=%d%s, batch %d, %d thread(s): %d profiled steps, %.1f ms per step (wall, profiler on)\n",
              depth, growth, gated ? " REINFORCE-gated" : "", batch, threads, steps, wall_us / 1e3 / steps);
  std::printf("%-44s %12s %8s\n", "operator (inclusive)", "ms/step", "share");
  for (int i = 0; i < std::min<int>(top, static_cast<int>(rows.size())); ++i)
    std::printf("%-44s %12.2f %7.1f%%\n", rows[i].second.c_str(), rows[i].first / 1e3 / steps,
                100.0 * rows[i].first / wall_us);
  return 0;
}
