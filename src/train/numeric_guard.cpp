// Non-finite checks and buffer snapshots; see numeric_guard.h.
#include "train/numeric_guard.h"

#include <algorithm>
#include <limits>

#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_foreach_zero.h>

namespace mapgate {

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

std::string first_nonfinite_gradient(const torch::nn::Module& model) {
  std::vector<std::string> names;
  std::vector<torch::Tensor> grads;
  for (const auto& p : model.named_parameters())
    if (p.value().grad().defined()) {
      names.push_back(p.key());
      grads.push_back(p.value().grad());
    }
  if (grads.empty()) return "";
  // The largest |g| of every gradient at once (a NaN or an infinity makes it non-finite,
  // and it cannot overflow), one multi-tensor operator on a GPU.
  const auto finite = torch::isfinite(torch::stack(at::_foreach_norm(grads, std::numeric_limits<double>::infinity())));
  if (finite.all().item<bool>()) return "";
  return names.at(static_cast<std::size_t>(finite.logical_not().nonzero()[0][0].item<std::int64_t>()));
}

BufferSnapshot::BufferSnapshot(const torch::nn::Module& model) {
  const auto buffers = model.buffers();
  std::vector<std::vector<torch::Tensor>> flat;
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const auto same_kind = [&](const Group& g) {
      const auto& first = buffers[g.index[0]];
      return first.dtype() == buffers[i].dtype() && first.device() == buffers[i].device();
    };
    const auto g = static_cast<std::size_t>(std::find_if(groups_.begin(), groups_.end(), same_kind) - groups_.begin());
    if (g == groups_.size()) {
      groups_.emplace_back();
      flat.emplace_back();
    }
    groups_[g].index.push_back(i);
    flat[g].push_back(buffers[i].detach().reshape({-1}));
  }
  for (std::size_t g = 0; g < groups_.size(); ++g) groups_[g].saved = torch::cat(flat[g]);
}

void BufferSnapshot::restore(torch::nn::Module& model) const {
  torch::NoGradGuard no_grad;
  auto buffers = model.buffers();
  for (const Group& g : groups_) {
    std::vector<torch::Tensor> targets, values;
    std::int64_t at = 0;
    for (std::size_t i : g.index) {
      targets.push_back(buffers.at(i));
      values.push_back(g.saved.narrow(0, at, buffers[i].numel()).view(buffers[i].sizes()));
      at += buffers[i].numel();
    }
    at::_foreach_zero_(targets);  // then 0 + saved: the saved values exactly
    at::_foreach_add_(targets, values);
  }
}

}  // namespace mapgate
