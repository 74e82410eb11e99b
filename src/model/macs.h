// Hand count of parameters and multiply-accumulates of a DenseNet (docs/design.md §1):
// convolutions and the classifier count MACs; BN, ReLU and pooling count none.
// Must match the LibTorch model's parameter count (tests/unit/test_model.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace mapgate {

struct LayerCost {
  std::string name;     // module path in the LibTorch model, e.g. "block2.5.conv"
  std::string kind;     // "conv3x3", "conv1x1", "bn", "linear"
  int in_channels = 0, out_channels = 0;
  int height = 0, width = 0;   // output spatial size
  std::int64_t params = 0;
  std::int64_t macs = 0;
};

std::vector<LayerCost> densenet_layer_costs(const DenseNetConfig& config);

struct ModelCost {
  std::int64_t params = 0;
  std::int64_t macs = 0;
};
ModelCost total_cost(const std::vector<LayerCost>& layers);

}  // namespace mapgate
