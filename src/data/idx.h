// MNIST / Fashion-MNIST readers for the IDX format (plain or .gz files).
// Must match http://yann.lecun.com/exdb/mnist/: big-endian header, magic 0x00000803
// (ubyte, 3 dims) for images N x 28 x 28 and 0x00000801 (ubyte, 1 dim) for N labels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/regular_file.h"
#include "data/dataset.h"

namespace mapgate {

// Decodes one images file's bytes (`path` for messages): returns N, fills `pixels`
// (N x 28 x 28, row-major). Checks magic, dims and that the size is exactly 16 + N*784.
std::size_t parse_idx_images(const std::vector<std::uint8_t>& bytes, const std::string& path,
                             std::vector<std::uint8_t>& pixels);
// Decodes one labels file: checks magic, size exactly 8 + N, and every label < num_classes.
std::vector<std::uint8_t> parse_idx_labels(const std::vector<std::uint8_t>& bytes,
                                           const std::string& path, int num_classes);

// The most a file may hold, decompressed: all 70000 images (or labels) of MNIST or
// Fashion-MNIST in one file, so that a gzip bomb or a stray huge file stops there.
SizeLimit idx_images_file_limit();
SizeLimit idx_labels_file_limit();

// "T-shirt/top", "Trouser", ... "Ankle boot".
const std::vector<std::string>& fashion_mnist_names();

// Both splits of "mnist" or "fashion-mnist" from `dir`: train-images-idx3-ubyte,
// train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may be .gz).
// Splits::kTestOnly reads the t10k files alone.
DatasetSplits load_idx_dataset(const std::string& name, const std::string& dir,
                               Splits which = Splits::kTrainAndTest);

}  // namespace mapgate
