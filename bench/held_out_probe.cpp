// The held-out probe; see held_out_probe.h. The hidden layer stands for a gate with one,
// as ConvNet-AIG's.
#include "held_out_probe.h"

#include <cmath>
#include <vector>

#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/torch.h>

namespace mapgate {

torch::Tensor probe_held_out(const torch::Tensor& x, const torch::Tensor& target, int classes, int hidden) {
  const auto half = x.size(0) / 2;
  auto fit = x.narrow(0, 0, half), test = x.narrow(0, half, x.size(0) - half);
  const auto mean = fit.mean(0), scale = fit.std(0).clamp_min(1e-6);
  fit = (fit - mean) / scale;
  test = (test - mean) / scale;
  torch::manual_seed(0);
  torch::Tensor w1, b1;  // the hidden layer, if any
  if (hidden > 0) {
    w1 = (torch::randn({x.size(1), hidden}) / std::sqrt(static_cast<double>(x.size(1)))).requires_grad_();
    b1 = torch::zeros({hidden}, torch::requires_grad());
  }
  auto w = torch::zeros({hidden > 0 ? hidden : x.size(1), classes}, torch::requires_grad());
  auto b = torch::zeros({classes}, torch::requires_grad());
  std::vector<torch::Tensor> params{w, b}, weights{w};
  if (hidden > 0) params.insert(params.end(), {w1, b1}), weights.push_back(w1);
  auto forward = [&](const torch::Tensor& in) {
    return torch::matmul(hidden > 0 ? torch::relu(torch::matmul(in, w1) + b1) : in, w) + b;
  };
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(hidden > 0 ? 0.01 : 0.05));
  const auto y = target.narrow(0, 0, half);
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    const auto z = forward(fit);
    auto loss = classes == 1 ? torch::binary_cross_entropy_with_logits(z.squeeze(1), y.to(torch::kFloat))
                             : torch::nn::functional::cross_entropy(z, y);
    for (const auto& weight : weights) loss = loss + 1e-3 * weight.pow(2).sum();
    loss.backward();
    optimizer.step();
  }
  torch::NoGradGuard no_grad;
  return forward(test);
}

}  // namespace mapgate
