// BatchNorm over the examples whose channel is on (docs/method.md §1, "BN under masks").
// A switched-off map is an exact zero; counting it in the batch statistics would shift and
// scale the examples that do compute it by about 1/sqrt(on-rate), penalising maps that are
// on for some inputs only. Eval mode is LibTorch's BatchNorm on the running statistics.
#pragma once

#include <unordered_map>

#include <torch/nn/modules/batchnorm.h>

namespace mapgate {

// Per-channel sums of the on-values seen by one BN layer (for recalibration), in double.
struct BatchStatSums {
  torch::Tensor count, sum, sum_sq;  // (C)
  // One batch: per channel, the number of on-values, their mean and biased variance.
  void add(const torch::Tensor& batch_count, const torch::Tensor& batch_mean, const torch::Tensor& batch_var);
  // running_mean/var <- the pooled mean and unbiased variance, for channels seen on more
  // than once; other channels keep the statistics they had (never a zero variance).
  void write_to(torch::nn::BatchNorm2dImpl& bn) const;
};
using BatchStatAccumulator = std::unordered_map<const torch::nn::BatchNorm2dImpl*, BatchStatSums>;

// x (N, C, H, W), keep (N, C) 0/1 or undefined (all on). Training: normalise each channel
// by the mean and variance of its on-examples only and update the running statistics by
// the module's momentum, skipping channels that no example kept (with `sums`, add to it
// instead of updating: recalibration). Eval: bn's forward. Returns BN(x), not masked: the
// caller multiplies by the mask after the ReLU.
torch::Tensor masked_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x, const torch::Tensor& keep,
                                BatchStatAccumulator* sums = nullptr);

// One batch's kept statistics (count of values, mean, biased variance per channel): added
// to `sums` when given (recalibration), else into bn's running statistics by its momentum.
// Returns the invstd to normalise with (variance 1 for a channel no example kept: its
// output is masked away anyway).
torch::Tensor record_kept_statistics(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& count,
                                     const torch::Tensor& mean, const torch::Tensor& var,
                                     BatchStatAccumulator* sums);

// Reference: the same statistics computed example by example with LibTorch's own
// batch_norm on the kept examples of each channel (tests).
torch::Tensor masked_batch_norm_reference(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x,
                                          const torch::Tensor& keep);

}  // namespace mapgate
