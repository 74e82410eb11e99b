// Non-finite checks and buffer snapshots; see numeric_guard.h.
#include "train/numeric_guard.h"

namespace mapgate {

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

std::string first_nonfinite_gradient(const torch::nn::Module& model) {
  const auto params = model.named_parameters();
  std::vector<torch::Tensor> sums;
  for (const auto& p : params)
    if (p.value().grad().defined()) sums.push_back(p.value().grad().sum().reshape({1}));
  // A NaN or infinity anywhere makes its tensor's sum non-finite (finite sums can only
  // overflow to infinity, which is flagged too: such a gradient is unusable anyway).
  if (sums.empty() || all_finite(torch::cat(sums))) return "";
  for (const auto& p : params)
    if (p.value().grad().defined() && !all_finite(p.value().grad())) return p.key();
  return "(sum of gradients overflows)";
}

BufferSnapshot::BufferSnapshot(const torch::nn::Module& model) {
  for (const auto& b : model.buffers()) saved_.push_back(b.clone());
}

void BufferSnapshot::restore(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  std::size_t i = 0;
  for (auto& b : model.buffers()) b.copy_(saved_.at(i++));
}

}  // namespace mapgate
