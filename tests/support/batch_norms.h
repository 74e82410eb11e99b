// A BatchNorm in training mode with random gamma in [0.5, 1.5] and beta in [-0.5, 0.5]
// (from torch's global generator), for the masked-BN tests.
#pragma once

#include <torch/nn/modules/batchnorm.h>

namespace mapgate {

inline torch::nn::BatchNorm2d make_training_bn(int channels) {
  torch::nn::BatchNorm2d bn(channels);
  torch::NoGradGuard no_grad;
  bn->weight.uniform_(0.5, 1.5);
  bn->bias.uniform_(-0.5, 0.5);
  bn->train();
  return bn;
}

}  // namespace mapgate
