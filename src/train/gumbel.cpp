// Straight-through Gumbel-sigmoid step; formulas in gumbel.h and docs/method.md.
#include "train/gumbel.h"

namespace mapgate {
namespace F = torch::nn::functional;

torch::Tensor target_rate_loss(const std::vector<torch::Tensor>& masks, double target, double lambda) {
  TORCH_CHECK(!masks.empty(), "target_rate_loss: no masks");
  torch::Tensor sum = torch::scalar_tensor(0.0, masks[0].options());
  for (const auto& m : masks) sum = sum + (m.mean() - target).pow(2);
  return lambda * sum;
}

GatedStep gumbel_step(DenseNet& model, const torch::Tensor& images, const torch::Tensor& labels,
                      const GatedCost& cost, const GumbelSettings& s) {
  GateControl control;
  control.mode = GateMode::kGumbel;
  control.temperature = s.temperature;
  const GatedOutput out = model->forward_gated(images, control);
  const auto ce = F::cross_entropy(out.logits, labels);
  const auto rate = target_rate_loss(out.masks, s.target, s.penalty);
  std::vector<torch::Tensor> probs;
  for (const auto& p : out.probs) probs.push_back(p.flatten(1));
  const auto p_all = torch::cat(probs, 1);  // (N, gated maps)
  const auto entropy = bernoulli_entropy(p_all);  // (N): hard masks are Bernoulli(p)
  auto loss = ce + rate;
  if (s.entropy != 0) loss = loss - s.entropy * entropy.mean();

  GatedStep step;
  step.logits = out.logits;
  step.loss = loss;
  step.ce_loss = ce;
  const auto v = host_values({ce, rate, mask_cost(out.masks, cost, GateCost::kMaps).mean(),
                              mask_macs(out.masks, cost).mean(), entropy.mean()});
  step.ce = v[0];
  step.rate_loss = v[1];
  step.kept = v[2];
  step.macs = v[3];
  step.entropy = v[4] / p_all.size(1);
  return step;
}

}  // namespace mapgate
