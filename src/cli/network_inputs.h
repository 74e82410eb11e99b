// The test images that `mapgate infer` and `mapgate bench` feed a network: every image of
// the split, normalised and unaugmented, one after another (C x S x S floats each).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/config.h"

namespace mapgate {

// Throws Error when the split is empty, or when its images or classes are not the
// network's: "NETWORK: takes 3x32x32 images and 10 classes; fashion-mnist in "DIR" has
// 1x28x28 images and 10 classes". `network` names the weight file or model.
std::vector<float> network_inputs(const Dataset& test, const std::string& data_dir, const DenseNetConfig& c,
                                  const Normalization& norm, const std::string& network);

}  // namespace mapgate
