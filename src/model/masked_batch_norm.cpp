// Masked BatchNorm statistics; see masked_batch_norm.h. The reference recomputes them per
// channel with LibTorch's batch_norm on the kept examples only.
#include "model/masked_batch_norm.h"

#include <torch/nn/functional/batchnorm.h>

namespace mapgate {
namespace F = torch::nn::functional;
namespace {

torch::Tensor per_channel(const torch::Tensor& v) { return v.view({1, -1, 1, 1}); }

void update_running(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& count, const torch::Tensor& mean,
                    const torch::Tensor& var) {
  torch::NoGradGuard no_grad;
  bn.num_batches_tracked += 1;
  const auto momentum = bn.options.momentum();
  const double m = momentum ? *momentum : 1.0 / bn.num_batches_tracked.item<double>();
  const auto seen = count.gt(1);
  const auto unbiased = var * count / (count - 1).clamp_min(1);
  bn.running_mean.copy_(torch::where(seen, (1 - m) * bn.running_mean + m * mean, bn.running_mean));
  bn.running_var.copy_(torch::where(seen, (1 - m) * bn.running_var + m * unbiased, bn.running_var));
}

}  // namespace

void BatchStatSums::add(const torch::Tensor& batch_count, const torch::Tensor& batch_mean,
                        const torch::Tensor& batch_var) {
  const auto n = batch_count.to(torch::kDouble), mean = batch_mean.to(torch::kDouble);
  const auto s = n * mean, sq = n * (batch_var.to(torch::kDouble) + mean * mean);
  if (!count.defined()) {
    count = n;
    sum = s;
    sum_sq = sq;
    return;
  }
  count += n;
  sum += s;
  sum_sq += sq;
}

void BatchStatSums::write_to(torch::nn::BatchNorm2dImpl& bn) const {
  if (!count.defined()) return;
  torch::NoGradGuard no_grad;
  const auto n = count.clamp_min(2);
  const auto mean = sum / n;
  const auto var = ((sum_sq - n * mean * mean) / (n - 1)).clamp_min(0);
  const auto seen = count.gt(1);
  const auto type = bn.running_mean.scalar_type();
  bn.running_mean.copy_(torch::where(seen, mean.to(type), bn.running_mean));
  bn.running_var.copy_(torch::where(seen, var.to(type), bn.running_var));
}

torch::Tensor masked_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep,
                                BatchStatAccumulator* sums) {
  if (!bn.is_training() || !keep.defined()) return bn.forward(x);
  // Every map on (the dense warm-up, block inputs): LibTorch's own BN, bit for bit.
  if (!sums && keep.min().item<float>() > 0) return bn.forward(x);
  // x (N, C, H, W), keep (N, C): statistics over the N_c * H * W values of the kept examples.
  const double pixels = static_cast<double>(x.size(2) * x.size(3));
  const auto count = keep.sum(0) * pixels;                             // (C)
  const auto safe = count.clamp_min(1);
  const auto mean = (x.sum({2, 3}) * keep).sum(0) / safe;              // (C)
  const auto centred = x - per_channel(mean);
  const auto var = (centred.pow(2).sum({2, 3}) * keep).sum(0) / safe; // biased, as BN normalises
  if (sums) {
    torch::NoGradGuard no_grad;
    (*sums)[&bn].add(count, mean, var);
  } else {
    update_running(bn, count.detach(), mean.detach(), var.detach());
  }
  // A channel no example kept gets variance 1: its output is masked away anyway.
  const auto safe_var = torch::where(count.gt(0), var, torch::ones_like(var));
  const auto scale = bn.weight * torch::rsqrt(safe_var + bn.options.eps());
  return centred * per_channel(scale) + per_channel(bn.bias);
}

torch::Tensor masked_batch_norm_reference(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                                          const torch::Tensor& keep) {
  auto out = torch::zeros_like(x);
  for (std::int64_t c = 0; c < x.size(1); ++c) {
    const auto rows = keep.select(1, c).nonzero().flatten();
    if (rows.numel() == 0) continue;
    const auto xc = x.index_select(0, rows).narrow(1, c, 1);
    auto rm = torch::zeros({1}, x.options()), rv = torch::ones({1}, x.options());
    const auto y = F::batch_norm(xc, rm, rv,
                                 F::BatchNormFuncOptions()
                                     .weight(bn.weight.narrow(0, c, 1))
                                     .bias(bn.bias.narrow(0, c, 1))
                                     .training(true)
                                     .eps(bn.options.eps()));
    out.narrow(1, c, 1).index_copy_(0, rows, y);
  }
  return out;
}

}  // namespace mapgate
