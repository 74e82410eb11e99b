// Non-finite checks and buffer snapshots; see numeric_guard.h.
#include "train/numeric_guard.h"

#include <limits>

#include <ATen/ops/_foreach_norm.h>

namespace mapgate {

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

std::string first_nonfinite_gradient(const torch::nn::Module& model) {
  const auto params = model.named_parameters();
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.value().grad().defined()) grads.push_back(p.value().grad());
  if (grads.empty()) return "";
  // The largest |g| of every gradient at once (a NaN or an infinity makes it non-finite,
  // and it cannot overflow), one multi-tensor operator on a GPU.
  const auto largest = at::_foreach_norm(grads, std::numeric_limits<double>::infinity());
  if (all_finite(torch::stack(largest))) return "";
  for (const auto& p : params)
    if (p.value().grad().defined() && !all_finite(p.value().grad())) return p.key();
  return "";  // unreachable: some gradient was not finite
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
