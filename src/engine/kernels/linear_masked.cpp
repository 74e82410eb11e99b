// Masked fully connected layer; see linear_masked.h. Must match linear_masked_f32_ref.
#include "engine/kernels/linear_masked.h"

#include <cstddef>

namespace mapgate {

void linear_masked_f32(const float* x, const int* active, int n, const float* weight, int in_total,
                       const float* bias, int out_dim, float* y) {
  for (int o = 0; o < out_dim; ++o) {
    const float* row = weight + static_cast<std::ptrdiff_t>(o) * in_total;
    float part[4] = {};
    int i = 0;
    for (; i + 4 <= n; i += 4)
      for (int j = 0; j < 4; ++j) part[j] += row[active[i + j]] * x[active[i + j]];
    float sum = (part[0] + part[1]) + (part[2] + part[3]);
    for (; i < n; ++i) sum += row[active[i]] * x[active[i]];
    y[o] = (bias ? bias[o] : 0.f) + sum;
  }
}

void linear_masked_f32_ref(const float* x, const int* active, int n, const float* weight, int in_total,
                           const float* bias, int out_dim, float* y) {
  for (int o = 0; o < out_dim; ++o) {
    double sum = bias ? bias[o] : 0.0;
    for (int i = 0; i < n; ++i)
      sum += static_cast<double>(weight[static_cast<std::ptrdiff_t>(o) * in_total + active[i]]) * x[active[i]];
    y[o] = static_cast<float>(sum);
  }
}

}  // namespace mapgate
