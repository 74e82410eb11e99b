// Non-finite checks and buffer snapshots; see numeric_guard.h.
#include "train/numeric_guard.h"

#include <limits>

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_foreach_zero.h>

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
  const auto buffers = model.buffers();
  count_ = buffers.size();
  std::vector<std::vector<torch::Tensor>> flat;
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const auto& b = buffers[i];
    std::size_t g = 0;
    while (g < groups_.size() && !(buffers[groups_[g].index[0]].options().dtype() == b.options().dtype() &&
                                   buffers[groups_[g].index[0]].device() == b.device()))
      ++g;
    if (g == groups_.size()) {
      groups_.emplace_back();
      flat.emplace_back();
    }
    groups_[g].index.push_back(i);
    flat[g].push_back(b.detach().reshape({-1}));
  }
  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].saved = torch::cat(flat[g]);
}

void BufferSnapshot::restore(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  auto buffers = model.buffers();
  TORCH_CHECK(buffers.size() == count_, "BufferSnapshot::restore: the module has ", buffers.size(),
              " buffers, the snapshot ", count_);
  for (const Group& g : groups_) {
    std::vector<torch::Tensor> targets, values;
    std::int64_t at = 0;
    for (std::size_t i : g.index) {
      targets.push_back(buffers[i]);
      values.push_back(g.saved.narrow(0, at, buffers[i].numel()).view(buffers[i].sizes()));
      at += buffers[i].numel();
    }
    at::_foreach_zero_(targets);  // then 0 + saved: the saved values exactly
    at::_foreach_add_(targets, values);
  }
}

}  // namespace mapgate
