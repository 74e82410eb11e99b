// relu(masked BN(x)) * keep for the training step on the CPU, one pass over the maps for
// the statistics, one for the output, two for the gradient: the composition
// masked_batch_norm -> relu -> mask multiply (its reference, and the path everywhere else)
// takes about ten, each a temporary of the size of x.
#pragma once

#include "model/masked_batch_norm.h"

namespace mapgate {

// Whether masked_bn_relu computes this case: bn in training, x a contiguous float32 CPU
// tensor (N, C, H, W), keep (N, C) without a gradient.
bool masked_bn_relu_applies(const torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep);

// The statistics of masked_batch_norm (kept examples only; into bn's running statistics by
// its momentum), then relu, then zero the switched-off (n, c) maps. Gradients for x, bn's
// weight and bias equal the composition's to float rounding (tests).
torch::Tensor masked_bn_relu(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep);

}  // namespace mapgate
