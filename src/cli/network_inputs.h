// The test images that `mapgate infer` and `mapgate bench` feed a network: normalised and
// unaugmented, one after another (C x S x S floats each).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "model/config.h"

namespace mapgate {

// Throws Error when the split is empty, or when its images or classes are not the
// network's: "NETWORK: takes 3x32x32 images and 10 classes; fashion-mnist in "DIR" has
// 1x28x28 images and 10 classes". `network` names the weight file or model.
void check_network_takes(const Dataset& test, const std::string& data_dir, const DenseNetConfig& c,
                         const std::string& network);

// Images first .. first + count - 1 of `test`, normalised with `norm`.
std::vector<float> network_inputs(const Dataset& test, std::size_t first, std::size_t count,
                                  const Normalization& norm);

}  // namespace mapgate
