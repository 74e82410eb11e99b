// Gate set-up of a training run; see gate_setup.h.
#include "train/gate_setup.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "model/gate.h"
#include "train/trained_model.h"

namespace mapgate {
namespace {

// Logits of the two static masks: --gates fixed thresholds (a hard mask), --init-mask
// leaves REINFORCE room to depart (p = 0.95 or 0.05).
constexpr double kFixedMaskLogit = 10.0;
constexpr double kInitMaskLogit = 3.0;

// Every gate at W = 0 and b = +-logit for the maps `bits` keeps or drops (one 0/1 per
// gated map, layer after layer).
void set_static_mask(DenseNet& model, const DenseNetConfig& c, const std::vector<int>& bits, double logit) {
  torch::NoGradGuard no_grad;
  const int k = c.growth, units = c.gate_outputs();  // per layer: its bits agree (validate)
  for (int l = 0; l < c.dense_layers(); ++l) {
    auto* gate = model->named_modules()["gates." + std::to_string(l)]->as<GateImpl>();
    gate->fc()->weight.zero_();
    for (int j = 0; j < units; ++j) gate->fc()->bias[j] = bits[l * k + j] ? logit : -logit;
  }
}

// W = 0 and b such that p = eps + (1 - 2 eps) sigmoid(b) is the layer's rate. With a core
// of K of k maps (always on), the rate r is the whole layer's: each other map is on with
// q = routed_rate(r), so that K + (k - K) q = r k maps are kept on average; a layer at the
// core's own share (r = K / k) gets the smallest q the clamp allows.
void set_random_rates(DenseNet& model, const DenseNetConfig& c, const std::vector<double>& rates) {
  torch::NoGradGuard no_grad;
  const double eps = c.p_clamp;
  constexpr double kMargin = 1e-3;  // keeps the logit finite at the clamp's edge
  for (int l = 0; l < c.dense_layers(); ++l) {
    auto* gate = model->named_modules()["gates." + std::to_string(l)]->as<GateImpl>();
    gate->fc()->weight.zero_();
    const double q = std::max(c.routed_rate(rates[l]), eps + kMargin);
    const double sigmoid_b = (q - eps) / (1 - 2 * eps);
    gate->fc()->bias.fill_(std::log(sigmoid_b / (1 - sigmoid_b)));
  }
}

}  // namespace

void apply_gate_flags(TrainConfig& c) {
  c.model.gated = c.gated();
  c.model.gate_standardize = c.learns_gates() && c.gate_input == GateInput::kStandardized;
  c.model.sampled_inference = c.gates == Gates::kRandom;
  c.model.gate_per_layer = c.gates_per_layer();
  if (c.gates != Gates::kFrozen) return;
  const DenseNetConfig source = read_model_config(c.init);
  if (!source.gated)
    throw UsageError("--gates frozen: --init " + quoted(c.init) + " has no gates (trained with --gates off)");
  c.model.gate_standardize = source.gate_standardize;
  c.model.gate_per_layer = source.gate_per_layer;
  c.model.core_maps = source.core_maps;
  c.model.threshold = source.threshold;
  c.model.p_clamp = source.p_clamp;
}

std::vector<torch::Tensor> trainable_gate_parameters(DenseNet& model, const TrainConfig& c) {
  std::vector<torch::Tensor> phi;
  if (!c.learns_gates()) return phi;
  const bool frozen = c.gate_weights == GateWeights::kFrozen;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("gates.", 0) != 0) continue;
    if (frozen && name.size() > 10 && name.compare(name.size() - 10, 10, ".fc.weight") == 0) {
      p.value().requires_grad_(false);
      continue;
    }
    phi.push_back(p.value());
  }
  return phi;
}

void initialise_gates(DenseNet& model, const TrainConfig& c) {
  if (c.gates == Gates::kRandom) set_random_rates(model, c.model, c.random_keep);
  if (c.gates == Gates::kFixed) set_static_mask(model, c.model, c.fixed_maps, kFixedMaskLogit);
  if (!c.init_mask.empty()) set_static_mask(model, c.model, c.init_mask, kInitMaskLogit);
}

}  // namespace mapgate
