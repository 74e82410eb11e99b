// The greedy baseline on the engine; contract in engine_baseline.h.
#include "train/engine_baseline.h"

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "engine/engine.h"
#include "train/device.h"
#include "train/export.h"
#include "train/reinforce.h"

namespace mapgate {

bool engine_baseline_applies(const DenseNet& model) {
  const DenseNetConfig& c = model->config();
  return c.gated && !c.sampled_inference && core_kept_at_inference(c) && device_of(*model).is_cpu();
}

Baseline resolved_baseline(Baseline requested, ThetaMasks theta_masks, const DenseNet& model) {
  if (requested != Baseline::kAuto) return requested;
  return theta_masks == ThetaMasks::kSampled && engine_baseline_applies(model) ? Baseline::kEngine
                                                                                : Baseline::kGreedy;
}

namespace {

// The engine's masks (N entries of layers x k bytes) as forward_gated's per-layer (N, k) floats.
std::vector<torch::Tensor> per_layer_masks(const std::vector<EngineStats>& stats, int layers, int k) {
  const auto n = static_cast<std::int64_t>(stats.size());
  auto all = torch::empty({n, static_cast<std::int64_t>(layers) * k}, torch::kUInt8);
  for (std::int64_t i = 0; i < n; ++i) {
    TORCH_CHECK(stats[i].masks.size() == static_cast<std::size_t>(layers) * k,
                "engine_greedy_reward: the engine gave ", stats[i].masks.size(), " mask bytes for ", layers,
                " layers of ", k, " maps");
    std::copy(stats[i].masks.begin(), stats[i].masks.end(), all[i].data_ptr<std::uint8_t>());
  }
  return all.to(torch::kFloat).split(k, 1);
}

}  // namespace

torch::Tensor engine_greedy_reward(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                                   const GatedCost& cost, GateCost kind, double lambda) {
  TORCH_CHECK(engine_baseline_applies(model), "engine_greedy_reward: needs a gated model with thresholded masks on the CPU");
  const DenseNetConfig& c = model->config();
  // The engine never reads the normalisation (images come normalised); check_weights wants one per channel.
  const Normalization identity{std::vector<float>(c.in_channels, 0.f), std::vector<float>(c.in_channels, 1.f)};
  Engine engine(export_weights(model, c, identity));
  const auto x = images.to(torch::kFloat).contiguous();
  const int n = static_cast<int>(x.size(0));
  auto logits = torch::empty({n, c.num_classes}, torch::kFloat);
  std::vector<EngineStats> stats(n);
  engine.forward_batch(x.data_ptr<float>(), n, logits.data_ptr<float>(), stats.data(), torch::get_num_threads());
  return gate_reward(logits, labels, mask_cost(per_layer_masks(stats, c.dense_layers(), c.growth), cost, kind), lambda);
}

}  // namespace mapgate
