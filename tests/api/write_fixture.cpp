// Writes the data of tests/api/check_install.cmake into a folder: tiny.bin (a gated
// DenseNet-7 with random weights, 3 x 8 x 8 inputs, 10 classes), records.bin (three
// CIFAR-style records: 1 label byte + 192 planar pixels) and expected.txt, the line the
// examples must print for record 2, computed here with the engine itself.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace {

mapgate::DenseNetConfig tiny() {
  mapgate::DenseNetConfig c;
  c.depth = 7;  // 1 layer per block
  c.growth = 3;
  c.num_classes = 10;
  c.image_size = 8;
  c.gated = true;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mapgate_api_fixture DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const mapgate::Weights w = mapgate::random_weights(tiny(), /*seed=*/11);
  mapgate::write_weights(dir + "/tiny.bin", w);
  const int pixels = 3 * 8 * 8, index = 2;
  std::vector<std::uint8_t> records(3 * (1 + pixels));
  for (std::size_t i = 0; i < records.size(); ++i) records[i] = static_cast<std::uint8_t>((i * 7 + i / 5) % 256);
  for (int r = 0; r < 3; ++r) records[r * (1 + pixels)] = static_cast<std::uint8_t>(r + 4);  // labels
  std::ofstream(dir + "/records.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(records.data()), static_cast<std::streamsize>(records.size()));

  // The record as the library normalises it: (pixel / 255 - mean[c]) / std[c].
  std::vector<float> image(pixels);
  const std::uint8_t* record = records.data() + index * (1 + pixels);
  for (int i = 0; i < pixels; ++i)
    image[i] = (static_cast<float>(record[1 + i]) / 255.0f - w.mean[i / 64]) / w.std[i / 64];
  mapgate::Engine engine(w);
  std::vector<float> logits(10);
  mapgate::EngineStats stats;
  engine.forward(image.data(), logits.data(), &stats);
  int best = 0;
  for (int j = 1; j < 10; ++j)
    if (logits[j] > logits[best]) best = j;
  std::ofstream(dir + "/expected.txt") << "class " << best << " (label " << int(record[0]) << "), " << stats.macs
                                       << " MACs\n";
  return 0;
}
