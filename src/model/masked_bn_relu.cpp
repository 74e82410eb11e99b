// Fused masked BN-ReLU-mask for the CPU training step; see masked_bn_relu.h. Each pass is
// one loop over the (n, c) planes of x, in parallel on LibTorch's intra-op threads
// (at::parallel_for, OpenMP: CMakeLists.txt); each plane's loop is an "omp simd" loop,
// its sums in float, combined per channel in double in a fixed order.
#include "model/masked_bn_relu.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <vector>

namespace mapgate {
namespace {

using Index = std::int64_t;

struct Planes {
  Index n, c, pixels;
  Index count() const { return n * c; }
};

Planes planes_of(const torch::Tensor& x) { return {x.size(0), x.size(1), x.size(2) * x.size(3)}; }

template <typename Body>
void for_each_plane(const Planes& s, const Body& body) {
  const Index grain = std::max<Index>(1, at::internal::GRAIN_SIZE / std::max<Index>(s.pixels, 1));
  at::parallel_for(0, s.count(), grain, [&](Index begin, Index end) {
    for (Index p = begin; p < end; ++p) body(p);
  });
}

// sum of u[i] and of u[i] v[i] over i < n, counting only the i where gate[i] > 0 when
// kGated. "omp simd" lets the compiler vectorise the float sums (it may not reorder them
// otherwise); the order is fixed per plane, whatever the thread count.
template <bool kGated>
void plane_sums(const float* __restrict u, const float* __restrict v, const float* __restrict gate, Index n,
                double& sum_u, double& sum_uv) {
  float su = 0.0f, suv = 0.0f;
#pragma omp simd reduction(+ : su, suv)
  for (Index i = 0; i < n; ++i) {
    const float on = !kGated || gate[i] > 0.0f ? 1.0f : 0.0f;  // a select of constants, no branch
    const float g = u[i] * on;
    su += g;
    suv += g * v[i];
  }
  sum_u = su;
  sum_uv = suv;
}

// dx on one kept plane: a g - c2 x + shift, g = dy where the output is positive.
void plane_dx(float* __restrict out, const float* __restrict x, const float* __restrict y,
              const float* __restrict dy, Index n, float a, float c2, float shift) {
#pragma omp simd
  for (Index i = 0; i < n; ++i) {
    const float on = y[i] > 0.0f ? 1.0f : 0.0f;
    out[i] = a * dy[i] * on - c2 * x[i] + shift;
  }
}

// y = relu(a x + b) on one kept plane.
void plane_bn_relu(float* __restrict out, const float* __restrict x, Index n, float a, float b) {
#pragma omp simd
  for (Index i = 0; i < n; ++i) out[i] = std::max(a * x[i] + b, 0.0f);
}

// Per-plane sums of u and u v (zero for switched-off planes), then per channel over n.
void channel_sums(const Planes& s, const float* keep, const float* u, const float* v, const float* gate,
                  std::vector<double>& sum_u, std::vector<double>& sum_uv) {
  std::vector<double> plane_u(s.count(), 0.0), plane_uv(s.count(), 0.0);
  for_each_plane(s, [&](Index p) {
    if (keep[p] == 0) return;
    const Index at = p * s.pixels;
    if (gate)
      plane_sums<true>(u + at, v + at, gate + at, s.pixels, plane_u[p], plane_uv[p]);
    else
      plane_sums<false>(u + at, v + at, nullptr, s.pixels, plane_u[p], plane_uv[p]);
  });
  sum_u.assign(s.c, 0.0);
  sum_uv.assign(s.c, 0.0);
  for (Index p = 0; p < s.count(); ++p) {
    sum_u[p % s.c] += plane_u[p];
    sum_uv[p % s.c] += plane_uv[p];
  }
}

struct KeptStatistics {
  torch::Tensor count, mean, var;  // (C) float: kept values, their mean and biased variance
};

KeptStatistics kept_statistics(const torch::Tensor& x, const torch::Tensor& keep) {
  const Planes s = planes_of(x);
  const float* k = keep.data_ptr<float>();
  std::vector<double> sum, sum_sq;
  channel_sums(s, k, x.data_ptr<float>(), x.data_ptr<float>(), nullptr, sum, sum_sq);
  KeptStatistics out{torch::zeros({s.c}), torch::zeros({s.c}), torch::zeros({s.c})};
  auto count = out.count.accessor<float, 1>(), mean = out.mean.accessor<float, 1>(), var = out.var.accessor<float, 1>();
  for (Index c = 0; c < s.c; ++c) {
    double kept = 0;
    for (Index n = 0; n < s.n; ++n) kept += k[n * s.c + c];
    const double values = kept * static_cast<double>(s.pixels);
    count[c] = static_cast<float>(values);
    if (values == 0) continue;
    const double m = sum[c] / values;
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(std::max(0.0, sum_sq[c] / values - m * m));
  }
  return out;
}

// y = relu(a x + b) on kept planes, 0 on the others, a = gamma invstd, b = beta - mean a.
// Backward with g = dy where y > 0 (kept and active), G1 = sum g, G2 = (sum g x - mean G1)
// invstd per channel and K its kept values: dgamma = G2, dbeta = G1, and on kept planes
// dx = a g - c2 x + (c2 mean - c1), c1 = a G1 / K, c2 = a G2 invstd / K (masked_batch_norm's
// closed form, its dy replaced by g); dx = 0 on switched-off planes.
class MaskedBnReluFunction : public torch::autograd::Function<MaskedBnReluFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight, const torch::Tensor& bias, const torch::Tensor& keep,
                               const torch::Tensor& count, const torch::Tensor& mean, const torch::Tensor& invstd) {
    const Planes s = planes_of(x);
    const auto a = (weight.detach() * invstd).contiguous(), b = (bias.detach() - mean * a).contiguous();
    auto y = torch::empty_like(x);
    const float *xs = x.data_ptr<float>(), *k = keep.data_ptr<float>(), *as = a.data_ptr<float>(),
                *bs = b.data_ptr<float>();
    float* ys = y.data_ptr<float>();
    for_each_plane(s, [&](Index p) {
      float* out = ys + p * s.pixels;
      if (k[p] == 0) return static_cast<void>(std::fill(out, out + s.pixels, 0.0f));
      plane_bn_relu(out, xs + p * s.pixels, s.pixels, as[p % s.c], bs[p % s.c]);
    });
    ctx->save_for_backward({x, y, a, keep, count, mean, invstd});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &y = saved[1], &keep = saved[3];  // saved[2]: a, per channel
    const auto dy = grads[0].contiguous();
    const Planes s = planes_of(x);
    const float *xs = x.data_ptr<float>(), *ys = y.data_ptr<float>(), *dys = dy.data_ptr<float>(),
                *k = keep.data_ptr<float>();
    std::vector<double> g1, gx;
    channel_sums(s, k, dys, xs, ys, g1, gx);
    const auto count = saved[4].accessor<float, 1>(), mean = saved[5].accessor<float, 1>(),
               invstd = saved[6].accessor<float, 1>();
    auto dgamma = torch::empty({s.c}), dbeta = torch::empty({s.c});
    auto dg = dgamma.accessor<float, 1>(), db = dbeta.accessor<float, 1>();
    const float* a = saved[2].data_ptr<float>();
    std::vector<float> c1(s.c), c2(s.c), shift(s.c);
    for (Index c = 0; c < s.c; ++c) {
      const double g2 = (gx[c] - mean[c] * g1[c]) * invstd[c];
      dg[c] = static_cast<float>(g2);
      db[c] = static_cast<float>(g1[c]);
      const double per_kept = a[c] / std::max(count[c], 1.0f);
      c1[c] = static_cast<float>(per_kept * g1[c]);
      c2[c] = static_cast<float>(per_kept * g2 * invstd[c]);
      shift[c] = c2[c] * mean[c] - c1[c];
    }
    auto dx = torch::empty_like(x);
    float* dxs = dx.data_ptr<float>();
    for_each_plane(s, [&](Index p) {
      float* out = dxs + p * s.pixels;
      if (k[p] == 0) return static_cast<void>(std::fill(out, out + s.pixels, 0.0f));
      const Index at = p * s.pixels, c = p % s.c;
      plane_dx(out, xs + at, ys + at, dys + at, s.pixels, a[c], c2[c], shift[c]);
    });
    return {dx, dgamma, dbeta, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool masked_bn_relu_applies(const torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep) {
  return bn.is_training() && bn.options.affine() && x.dim() == 4 && x.device().is_cpu() &&
         x.scalar_type() == torch::kFloat && x.is_contiguous() && keep.defined() && !keep.requires_grad();
}

torch::Tensor masked_bn_relu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep) {
  TORCH_CHECK(masked_bn_relu_applies(bn, x, keep), "masked_bn_relu: not a case it computes (masked_bn_relu_applies)");
  // Every map on (the dense warm-up, block inputs): LibTorch's own BN, bit for bit.
  if (keep.min().item<float>() > 0) return torch::relu(bn.forward(x));
  const auto k = keep.to(torch::kFloat).contiguous();
  const KeptStatistics st = kept_statistics(x, k);
  const auto invstd = record_kept_statistics(bn, st.count, st.mean, st.var, nullptr);
  return MaskedBnReluFunction::apply(x, bn.weight, bn.bias, k, st.count, st.mean, invstd);
}

}  // namespace mapgate
