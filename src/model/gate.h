// Feature-map gates (docs/method.md §1): from a dense layer's input x (N, C_in, H, W),
//   s = GAP(x) (N, C_in),  [standardised: s <- (s - mu) / sqrt(var + e), per channel]
//   p = eps + (1 - 2 eps) * sigmoid(W s + b)   (N, k),
// and the mask m (N, k) of the k maps the layer computes: sampled (training), p > tau
// (inference), all on, or given. The Bernoulli helpers are the policy pi(m | x) that
// REINFORCE differentiates (src/train/reinforce.h).
#pragma once

#include <cstdint>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace mapgate {

// Initial gate bias: p = 0.01 + 0.98 sigmoid(3) = 0.944 at the default eps, so a fresh
// gate keeps ~94% of the maps and a warm (dense-trained) network starts almost dense. The weight starts at zero: the
// policy is input-independent until REINFORCE moves it.
inline constexpr double kGateBiasInit = 3.0;

class GateImpl : public torch::nn::Module {
 public:
  // standardize: s passes a BatchNorm1d without affine ("norm": batch statistics in
  // training, running ones in eval), so W s has no common mode and b alone sets the rate.
  GateImpl(int in_channels, int maps, bool standardize = false);
  // s: (N, C_in) per-channel means of the layer input -> logits z (N, k)
  torch::Tensor forward(const torch::Tensor& s);
  torch::nn::Linear& fc() { return fc_; }
  // Eval-mode W' and b' of the gate as one linear map of the raw s (the standardisation
  // folded in): what a weight file stores. Without standardisation, W and b.
  std::pair<torch::Tensor, torch::Tensor> folded() const;

 private:
  torch::nn::Linear fc_{nullptr};
  torch::nn::BatchNorm1d norm_{nullptr};
};
TORCH_MODULE(Gate);

// p = eps + (1 - 2 eps) sigmoid(z): the "p clamp" as a smooth squash, so p never leaves
// [eps, 1-eps] and every map keeps a chance eps of being explored. It does not keep the
// gradient alive: dp/dz is 0.044 at z = 3 and 1.2e-4 at z = 9 (docs/method.md §1).
torch::Tensor gate_probability(const torch::Tensor& logits, double eps);

enum class GateMode {
  kSample,     // m ~ Bernoulli(p), independently per example and map
  kThreshold,  // m = [p > tau]
  kAllOn,      // m = 1: the dense network (gates still evaluated for their statistics)
  kGiven,      // m = GateControl::masks[l]
  kGumbel,     // straight-through Gumbel-sigmoid (src/train/gumbel.h): forward m = [soft > 0.5],
               // exactly 0/1; backward d m / d soft = 1, soft = sigmoid((logit(p) + L) / T)
};

struct GateControl {
  GateMode mode = GateMode::kThreshold;
  double threshold = -1;              // tau; < 0: the model's configured threshold
  std::vector<torch::Tensor> masks;   // kGiven: one (N, k) 0/1 tensor per dense layer
  double temperature = 1.0;           // kGumbel: T > 0
  bool keep_features = false;         // fill GatedOutput::features (tests, inspection)
};

struct GatedOutput {
  torch::Tensor logits;               // (N, classes)
  std::vector<torch::Tensor> masks;   // per dense layer (block-major order): (N, k) float 0/1
                                      // (kGumbel: differentiable w.r.t. the gates, straight-through)
  std::vector<torch::Tensor> probs;   // per dense layer: p (N, k), differentiable w.r.t. gates
  torch::Tensor log_prob;             // (N): sum over layers and maps of log pi(m | x)
  std::vector<torch::Tensor> features;  // keep_features: each block's concatenated output
};

class GatedCost;
// Kept maps per example and gate: (N, L) int64 where the masks are, from the per-layer (N, k) masks.
torch::Tensor kept_counts(const std::vector<torch::Tensor>& masks);
// Exact MACs of each example (N values) under its masks.
std::vector<std::int64_t> example_macs(const GatedCost& cost, const std::vector<torch::Tensor>& masks);

// m: 0/1 masks, p: probabilities of the same shape (N, ...). Returns (N):
//   log pi(m) = sum_j m_j log p_j + (1 - m_j) log(1 - p_j)
torch::Tensor bernoulli_log_prob(const torch::Tensor& p, const torch::Tensor& m);
// (N): sum_j -(p_j log p_j + (1 - p_j) log(1 - p_j)), in nats.
torch::Tensor bernoulli_entropy(const torch::Tensor& p);

// Straight-through Gumbel-sigmoid mask from gate probabilities p (N, k): with logistic
// noise L = log u - log(1 - u), u ~ U(0, 1) (the difference of two Gumbel(0, 1)),
//   soft = sigmoid((logit(p) + L) / T),  hard = [soft > 0.5],  m = hard + (soft - soft.detach()).
// Forward m is exactly hard (x - x = 0 exactly), and hard ~ Bernoulli(p) for every T;
// backward dm/dsoft = 1. `noise` (same shape as p), if defined, replaces the draw of L.
torch::Tensor gumbel_straight_through(const torch::Tensor& p, double temperature,
                                      const torch::Tensor& noise = {});

}  // namespace mapgate
