// Gate module and Bernoulli policy helpers; formulas in gate.h (docs/design.md §2).
#include "model/gate.h"

#include <torch/nn/init.h>

#include "model/gated_macs.h"

namespace mapgate {

GateImpl::GateImpl(int in_channels, int maps, bool standardize) {
  fc_ = register_module("fc", torch::nn::Linear(in_channels, maps));
  if (standardize)
    norm_ = register_module("norm", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(in_channels).affine(false)));
  torch::NoGradGuard no_grad;
  fc_->weight.zero_();
  fc_->bias.fill_(kGateBiasInit);
}

torch::Tensor GateImpl::forward(const torch::Tensor& pooled) {
  // float32 in and out (no-ops but under --amp bf16): the policy's log-probabilities and
  // the gates' BN statistics need more than bfloat16's 8 bits of mantissa.
  torch::Tensor s = pooled.to(torch::kFloat);
  if (norm_ && is_training() && s.size(0) > 1)
    s = norm_->forward(s);
  else if (norm_)  // a single example has no batch statistics: standardised by the running ones
    s = (s - norm_->running_mean) * torch::rsqrt(norm_->running_var + norm_->options.eps());
  return fc_->forward(s).to(torch::kFloat);
}

std::pair<torch::Tensor, torch::Tensor> GateImpl::folded() const {
  torch::NoGradGuard no_grad;
  if (!norm_) return {fc_->weight.clone(), fc_->bias.clone()};
  // W ((s - mu) / sd) + b = (W / sd) s + (b - W mu / sd)
  const auto inv_sd = torch::rsqrt(norm_->running_var + norm_->options.eps());
  const auto w = fc_->weight * inv_sd.unsqueeze(0);
  return {w, fc_->bias - w.matmul(norm_->running_mean)};
}

torch::Tensor gate_probability(const torch::Tensor& logits, double eps) {
  return eps + (1 - 2 * eps) * torch::sigmoid(logits);
}

torch::Tensor bernoulli_log_prob(const torch::Tensor& p, const torch::Tensor& m) {
  // p stays inside [eps, 1-eps]; the floor only guards eps = 0 against log(0).
  const double tiny = 1e-12;
  auto terms = m * torch::log(p.clamp_min(tiny)) + (1 - m) * torch::log((1 - p).clamp_min(tiny));
  return terms.flatten(1).sum(1);
}

torch::Tensor bernoulli_entropy(const torch::Tensor& p) {
  const double tiny = 1e-12;
  auto terms = p * torch::log(p.clamp_min(tiny)) + (1 - p) * torch::log((1 - p).clamp_min(tiny));
  return -terms.flatten(1).sum(1);
}

torch::Tensor gumbel_straight_through(const torch::Tensor& p, double temperature,
                                      const torch::Tensor& noise) {
  TORCH_CHECK(temperature > 0, "gumbel_straight_through: temperature must be > 0");
  const double tiny = 1e-12;
  torch::Tensor l = noise;
  if (!l.defined()) {
    const auto u = torch::rand_like(p).clamp(tiny, 1 - tiny);
    l = torch::log(u) - torch::log1p(-u);
  }
  // logit of the clamped p, so hard ~ Bernoulli(p): the distribution REINFORCE samples.
  const auto logit = torch::log(p.clamp_min(tiny)) - torch::log((1 - p).clamp_min(tiny));
  const auto soft = torch::sigmoid((logit + l) / temperature);
  const auto hard = soft.detach().gt(0.5).to(p.scalar_type());
  return hard + (soft - soft.detach());
}

torch::Tensor kept_counts(const std::vector<torch::Tensor>& masks) {
  return torch::stack(masks, 1).detach().sum(2).round().to(torch::kInt64);
}

std::vector<std::int64_t> example_macs(const GatedCost& cost, const std::vector<torch::Tensor>& masks) {
  const auto counts = kept_counts(masks).to(torch::kCPU).contiguous();  // (N, L)
  const auto n = counts.size(0);
  const int layers = static_cast<int>(counts.size(1));
  const auto* data = counts.data_ptr<std::int64_t>();
  std::vector<std::int64_t> macs(n);
  std::vector<int> active(layers);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int l = 0; l < layers; ++l) active[l] = static_cast<int>(data[i * layers + l]);
    macs[i] = cost.macs(active);
  }
  return macs;
}

}  // namespace mapgate
