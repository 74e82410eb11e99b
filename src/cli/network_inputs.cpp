#include "cli/network_inputs.h"

#include "common/error.h"

namespace mapgate {
namespace {

std::string shape(int channels, int height, int width, int classes) {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width) + " images and " +
         std::to_string(classes) + " classes";
}

}  // namespace

void check_network_takes(const Dataset& test, const std::string& data_dir, const DenseNetConfig& c,
                         const std::string& network) {
  if (test.size() == 0) throw Error("--data " + quoted(data_dir) + ": no test images");
  if (test.channels != c.in_channels || test.height != c.image_size || test.width != c.image_size ||
      test.num_classes != c.num_classes)
    throw Error(network + ": takes " + shape(c.in_channels, c.image_size, c.image_size, c.num_classes) + "; " +
                test.name + " in " + quoted(data_dir) + " has " +
                shape(test.channels, test.height, test.width, test.num_classes));
}

std::vector<float> network_inputs(const Dataset& test, std::size_t first, std::size_t count,
                                  const Normalization& norm) {
  const std::size_t floats = test.image_bytes();
  std::vector<float> images(floats * count);
  for (std::size_t i = 0; i < count; ++i) prepare_image(test, first + i, norm, 0, 0, false, images.data() + i * floats);
  return images;
}

}  // namespace mapgate
