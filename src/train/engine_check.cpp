// The engine against LibTorch; see engine_check.h.
#include "train/engine_check.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "common/error.h"

namespace mapgate {
namespace {

constexpr int kTorchBatch = 64;

struct TorchRun {
  torch::Tensor logits;              // (n, classes)
  std::vector<torch::Tensor> masks;  // gated: per dense layer (n, k) 0/1
};

// LibTorch's logits (and masks, gated) for the engine's mode, batch by batch.
TorchRun torch_run(DenseNet& model, const DenseNetConfig& c, const EngineOptions& options, const float* images, int n,
                   const std::uint8_t* masks) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int layers = c.dense_layers(), k = c.growth;
  const std::int64_t floats = static_cast<std::int64_t>(c.in_channels) * c.image_size * c.image_size;
  std::vector<torch::Tensor> logits;
  std::vector<std::vector<torch::Tensor>> per_layer(layers);
  for (int at = 0; at < n; at += kTorchBatch) {
    const int b = std::min(kTorchBatch, n - at);
    const auto x = torch::from_blob(const_cast<float*>(images) + at * floats,
                                    {b, c.in_channels, c.image_size, c.image_size}, torch::kFloat);
    if (options.mode == EngineMode::kDense) {
      logits.push_back(model->forward(x));
      continue;
    }
    GateControl control;
    control.threshold = options.threshold;
    if (options.mode == EngineMode::kGiven) {
      control.mode = GateMode::kGiven;
      const auto all = torch::from_blob(const_cast<std::uint8_t*>(masks) + static_cast<std::size_t>(at) * layers * k,
                                        {b, layers, k}, torch::kUInt8)
                           .to(torch::kFloat);
      for (int l = 0; l < layers; ++l) control.masks.push_back(all.select(1, l).contiguous());
    }
    auto out = model->forward_gated(x, control);
    logits.push_back(out.logits);
    for (int l = 0; l < layers; ++l) per_layer[l].push_back(out.masks[l]);
  }
  TorchRun run;
  run.logits = torch::cat(logits, 0).contiguous();
  if (options.mode != EngineMode::kDense)
    for (auto& m : per_layer) run.masks.push_back(torch::cat(m, 0).contiguous());
  return run;
}

void compare_logits(const TorchRun& torch, int classes, EngineComparison& r) {
  const float* t = torch.logits.data_ptr<float>();
  std::size_t worst = 0;
  for (std::size_t i = 0; i < r.logits.size(); ++i) {
    const double d = std::fabs(double(r.logits[i]) - double(t[i]));
    if (!(d <= r.max_abs_diff)) r.max_abs_diff = d, worst = i;  // NaN propagates as the maximum
  }
  r.max_abs_logit = torch.logits.abs().max().item<double>();
  r.worst = "example " + std::to_string(worst / classes) + ", class " + std::to_string(worst % classes) +
            ": engine " + std::to_string(r.logits[worst]) + ", LibTorch " + std::to_string(t[worst]);
  for (std::size_t i = 0; i < r.stats.size(); ++i) {
    const float* e = r.logits.data() + i * classes;
    const float* p = t + i * classes;
    if (std::max_element(e, e + classes) - e != std::max_element(p, p + classes) - p) ++r.prediction_mismatches;
  }
}

void compare_masks(const TorchRun& torch, int k, EngineComparison& r) {
  for (std::size_t i = 0; i < r.stats.size(); ++i) {
    bool same = true;
    for (std::size_t l = 0; l < torch.masks.size(); ++l) {
      const float* m = torch.masks[l].data_ptr<float>() + i * k;
      for (int j = 0; j < k; ++j) {
        const bool torch_on = m[j] > 0.5f, engine_on = r.stats[i].masks[l * k + j] != 0;
        if (torch_on == engine_on) continue;
        if (same && r.first_mask_mismatch.empty())
          r.first_mask_mismatch = "example " + std::to_string(i) + ", layer " + std::to_string(l) + ", map " +
                                  std::to_string(j) + ": engine " + (engine_on ? "on" : "off") + ", LibTorch " +
                                  (torch_on ? "on" : "off");
        same = false;
      }
    }
    if (!same) ++r.mask_mismatches;
  }
}

}  // namespace

std::vector<std::uint8_t> random_layer_masks(const DenseNetConfig& c, int n, double keep, std::uint64_t seed) {
  const int layers = c.dense_layers(), k = c.growth;
  const int kept = static_cast<int>(std::lround(keep * k));
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> masks(static_cast<std::size_t>(n) * layers * k, 0);
  std::vector<int> order(k);
  for (int i = 0; i < n; ++i)
    for (int l = 0; l < layers; ++l) {
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      for (int j = 0; j < kept; ++j) masks[(static_cast<std::size_t>(i) * layers + l) * k + order[j]] = 1;
    }
  return masks;
}

EngineComparison compare_engine_with_libtorch(Engine& engine, DenseNet& model, const float* images, int n,
                                              const std::uint8_t* masks, int threads) {
  const DenseNetConfig& c = engine.config();
  const EngineOptions& options = engine.options();
  if (options.mode == EngineMode::kGiven && !masks) throw Error("engine check: mode kGiven needs masks");
  EngineComparison r;
  r.logits.resize(static_cast<std::size_t>(n) * c.num_classes);
  r.stats.resize(n);
  engine.forward_batch(images, n, r.logits.data(), r.stats.data(), threads, masks);
  const TorchRun torch = torch_run(model, c, options, images, n, masks);
  compare_logits(torch, c.num_classes, r);
  if (options.mode != EngineMode::kDense) compare_masks(torch, c.growth, r);
  return r;
}

}  // namespace mapgate
