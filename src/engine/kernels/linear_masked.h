// Fully connected layer reading only the active inputs of one example: the classifier
// (docs/design.md §1) and the gates' W s + b (§2). Must match LibTorch's Linear with the
// inactive inputs set to zero.
#pragma once

namespace mapgate {

// x: (in_total) of which only x[c] for c in active is read; weight: (out_dim, in_total);
// bias: (out_dim) or null.  y[o] = bias[o] + sum_{c in active} weight[o][c] * x[c].
void linear_masked_f32(const float* x, const int* active, int n, const float* weight, int in_total,
                       const float* bias, int out_dim, float* y);
void linear_masked_f32_ref(const float* x, const int* active, int n, const float* weight, int in_total,
                           const float* bias, int out_dim, float* y);  // double accumulation

}  // namespace mapgate
