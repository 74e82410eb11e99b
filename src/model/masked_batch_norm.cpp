// Masked BatchNorm statistics; see masked_batch_norm.h. The reference recomputes them per
// channel with LibTorch's batch_norm on the kept examples only.
#include "model/masked_batch_norm.h"

#include <torch/autograd.h>
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

namespace {

// Training-mode statistics of the kept values: count (values, pixels included), mean and
// biased variance per channel (C), from per-(example, channel) moments; no gradient.
struct KeptMoments {
  torch::Tensor count, mean, var;
};

KeptMoments kept_moments(const torch::Tensor& x, const torch::Tensor& keep) {
  torch::NoGradGuard no_grad;
  const double pixels = static_cast<double>(x.size(2) * x.size(3));
  // Per (example, channel): mean and E[x^2] - mean^2 (clamped at 0 against rounding);
  // torch::var_mean does the same in one pass but about three times slower here.
  const auto m = x.mean({2, 3});  // (N, C)
  const auto v = ((x * x).mean({2, 3}) - m * m).clamp_min(0);
  const auto k = keep.to(x.scalar_type());
  const auto kept = k.sum(0);  // (C) examples
  const auto safe = kept.clamp_min(1);
  const auto mean = (m * k).sum(0) / safe;
  const auto var = ((v + (m - mean).pow(2)) * k).sum(0) / safe;  // pooled: every example has `pixels` values
  return {kept * pixels, mean, var};
}

// y = (x - mean) a + beta with a = gamma * invstd, for every example, the statistics from
// the kept ones (passed in, computed without gradient). The backward pass is the closed
// form: with G1 = sum dy and G2 = sum dy xhat over every example and pixel of a channel,
// xhat = (x - mean) invstd, and K the channel's kept values,
//   dx = a (dy - keep[n,c] / K (G1 + xhat G2)),   dgamma = G2,   dbeta = G1,
// two reductions and two fused elementwise passes instead of autograd through about eight.
class MaskedBatchNormFunction : public torch::autograd::Function<MaskedBatchNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& keep,
                               const torch::Tensor& count, const torch::Tensor& mean, const torch::Tensor& invstd) {
    ctx->save_for_backward({x, weight, keep, count, mean, invstd});
    const auto a = weight * invstd;
    return torch::addcmul(per_channel(bias - mean * a), x, per_channel(a));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &keep = saved[2], &count = saved[3], &mean = saved[4],
               &invstd = saved[5];
    const auto& dy = grads[0];
    const auto g1 = dy.sum({0, 2, 3});
    const auto g2 = ((dy * x).sum({0, 2, 3}) - mean * g1) * invstd;
    const auto a = weight * invstd;
    // dx = a dy - c2 x + (c2 mean - c1), with c1 = a keep G1 / K and c2 = a keep G2 invstd / K.
    const auto per_kept = keep.to(x.scalar_type()) * (a / count.clamp_min(1));  // (N, C)
    const auto c1 = per_kept * g1, c2 = per_kept * (g2 * invstd);
    const auto nc = std::vector<std::int64_t>{x.size(0), x.size(1), 1, 1};
    auto dx = torch::addcmul((c2 * mean - c1).view(nc), x, (-c2).view(nc));
    dx.addcmul_(dy, per_channel(a));
    return {dx, g2, g1, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// The same by autograd through elementary ops: for a keep with a gradient (Gumbel's
// straight-through masks), whose statistics pass it on.
torch::Tensor masked_batch_norm_autograd(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                                         const torch::Tensor& keep) {
  const double pixels = static_cast<double>(x.size(2) * x.size(3));
  const auto count = keep.sum(0) * pixels;                             // (C)
  const auto safe = count.clamp_min(1);
  const auto mean = (x.sum({2, 3}) * keep).sum(0) / safe;              // (C)
  const auto centred = x - per_channel(mean);
  const auto var = (centred.pow(2).sum({2, 3}) * keep).sum(0) / safe; // biased, as BN normalises
  update_running(bn, count.detach(), mean.detach(), var.detach());
  const auto safe_var = torch::where(count.gt(0), var, torch::ones_like(var));
  const auto scale = bn.weight * torch::rsqrt(safe_var + bn.options.eps());
  return centred * per_channel(scale) + per_channel(bn.bias);
}

}  // namespace

torch::Tensor masked_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep,
                                BatchStatAccumulator* sums) {
  if (!bn.is_training() || !keep.defined()) return bn.forward(x);
  // Every map on (the dense warm-up, block inputs): LibTorch's own BN, bit for bit.
  if (!sums && keep.min().item<float>() > 0) return bn.forward(x);
  if (!sums && keep.requires_grad()) return masked_batch_norm_autograd(bn, x, keep);
  // x (N, C, H, W), keep (N, C): statistics over the N_c * H * W values of the kept examples.
  const KeptMoments s = kept_moments(x, keep);
  const auto invstd = record_kept_statistics(bn, s.count, s.mean, s.var, sums);
  return MaskedBatchNormFunction::apply(x, bn.weight, bn.bias, keep.detach(), s.count, s.mean, invstd);
}

torch::Tensor record_kept_statistics(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& count,
                                     const torch::Tensor& mean, const torch::Tensor& var,
                                     BatchStatAccumulator* sums) {
  torch::NoGradGuard no_grad;
  if (sums)
    (*sums)[&bn].add(count, mean, var);
  else
    update_running(bn, count, mean, var);
  return torch::rsqrt(torch::where(count.gt(0), var, torch::ones_like(var)) + bn.options.eps());
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
