// Per-layer parameter and MAC table of a DenseNet, mirroring src/model/densenet.cpp
// layer for layer (same names, same order of construction).
#include "model/macs.h"

namespace mapgate {
namespace {

struct CostTable {
  std::vector<LayerCost> rows;
  int h, w;

  void conv(const std::string& name, int kernel, int in, int out) {
    const std::int64_t weights = static_cast<std::int64_t>(kernel) * kernel * in * out;
    rows.push_back({name, kernel == 3 ? "conv3x3" : "conv1x1", in, out, h, w, weights,
                    weights * h * w});
  }
  void bn(const std::string& name, int channels) {
    rows.push_back({name, "bn", channels, channels, h, w, 2LL * channels, 0});
  }
};

}  // namespace

std::vector<LayerCost> densenet_layer_costs(const DenseNetConfig& c) {
  CostTable t{{}, c.image_size, c.image_size};
  const int k = c.growth;
  int channels = c.stem_channels();
  t.conv("stem", 3, c.in_channels, channels);
  for (int b = 1; b <= 3; ++b) {
    const std::string block = "block" + std::to_string(b);
    for (int i = 0; i < c.layers_per_block(); ++i) {
      const std::string layer = block + "." + std::to_string(i);
      if (c.bc) {
        t.bn(layer + ".norm1", channels);
        t.conv(layer + ".conv1", 1, channels, 4 * k);
        t.bn(layer + ".norm2", 4 * k);
        t.conv(layer + ".conv2", 3, 4 * k, k);
      } else {
        t.bn(layer + ".norm", channels);
        t.conv(layer + ".conv", 3, channels, k);
      }
      channels += k;
    }
    if (b < 3) {
      const std::string trans = "trans" + std::to_string(b);
      const int out = c.transition_out(channels);
      t.bn(trans + ".norm", channels);
      t.conv(trans + ".conv", 1, channels, out);
      channels = out;
      t.h /= 2;  // 2x2 average pooling
      t.w /= 2;
    }
  }
  t.bn("norm", channels);
  const std::int64_t fc = static_cast<std::int64_t>(channels) * c.num_classes;
  t.rows.push_back({"classifier", "linear", channels, c.num_classes, 1, 1, fc + c.num_classes, fc});
  return t.rows;
}

ModelCost total_cost(const std::vector<LayerCost>& layers) {
  ModelCost total;
  for (const auto& l : layers) {
    total.params += l.params;
    total.macs += l.macs;
  }
  return total;
}

}  // namespace mapgate
