// In-memory image classification dataset shared by every reader:
// uint8 pixels, N x C x H x W (channel planes per image, as in CIFAR's binary layout).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mapgate {

struct Dataset {
  std::string name;                      // "cifar10", "cifar100", "mnist", "fashion-mnist"
  int channels = 0, height = 0, width = 0;
  int num_classes = 0;
  std::vector<std::uint8_t> images;      // size() * channels * height * width
  std::vector<std::uint8_t> labels;      // one per image, each < num_classes
  std::vector<std::string> class_names;  // num_classes entries (may be "0".."9" if unknown)

  std::size_t size() const { return labels.size(); }
  std::size_t image_bytes() const {
    return static_cast<std::size_t>(channels) * height * width;
  }
  const std::uint8_t* image(std::size_t i) const { return images.data() + i * image_bytes(); }
  // First n examples (all if n == 0 or n >= size()).
  Dataset head(std::size_t n) const;
};

struct DatasetSplits {
  Dataset train;
  Dataset test;
};

// Which splits a loader reads: evaluation needs the test split only, and skipping the
// training files saves inflating CIFAR-10's 150 MB of them.
enum class Splits { kTrainAndTest, kTestOnly };

// Names accepted by --dataset.
const std::vector<std::string>& dataset_names();

// Loads both splits of `name` from `dir` (kTestOnly: `train` stays empty). Throws
// UsageError for an unknown name and Error (naming the file and the rule) for anything
// missing or malformed.
DatasetSplits load_dataset(const std::string& name, const std::string& dir,
                           Splits which = Splits::kTrainAndTest);

// The test split alone; no training file is opened.
Dataset load_test_split(const std::string& name, const std::string& dir);

}  // namespace mapgate
