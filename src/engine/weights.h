// The engine's weight file (docs/weight-format.md): magic "MAPGATE\0", a version, a JSON
// header (architecture, gate settings, input normalisation) and named float32 tensors
// with shapes, little-endian. Tensor names and shapes are those of the LibTorch model
// (src/model/densenet.h, gate.h), so `mapgate export` fills a Weights from the module's
// named parameters and buffers in memory, then calls write_weights.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/config.h"

namespace mapgate {

inline constexpr char kWeightMagic[8] = {'M', 'A', 'P', 'G', 'A', 'T', 'E', '\0'};
inline constexpr std::uint32_t kWeightFormatVersion = 1;
// The largest weight file read_weights takes: 1 GiB, 2^28 float32 values, ten times the
// largest CIFAR DenseNet (DenseNet-BC-190, growth 40: 25.6M parameters).
inline constexpr std::uint64_t kMaxWeightFileBytes = std::uint64_t{1} << 30;

struct WeightTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // row-major, product(shape) values
};

struct Weights {
  // Architecture and gate settings (depth, growth, bc, compression, num_classes,
  // in_channels, image_size; gated, threshold, p_clamp). dropout is not stored.
  DenseNetConfig config;
  // Input normalisation, one value per input channel: x = (pixel / 255 - mean) / std.
  std::vector<float> mean, std;
  double bn_eps = 1e-5;  // BatchNorm2d eps of every BN layer
  // LibTorch names: "stem.weight", "block1.0.norm.running_var", "gates.3.fc.weight", ...
  std::map<std::string, WeightTensor> tensors;
};

// Every tensor the architecture needs, in network order, with its LibTorch shape.
std::vector<std::pair<std::string, std::vector<std::int64_t>>> expected_tensors(const DenseNetConfig& config);

// Throws Error, one line naming `source`: an invalid architecture, a normalisation of the
// wrong length, a missing, unexpected or wrongly shaped tensor, or a data size that is not
// the product of its shape.
void check_weights(const Weights& weights, const std::string& source);

// Writes `path` atomically (write_file_atomic: temporary, fsync, rename); checks the weights first.
void write_weights(const std::string& path, const Weights& weights);
// Reads and checks `path`. Throws Error naming the file when it is not a regular file (a
// FIFO, a device), is larger than kMaxWeightFileBytes, or has a wrong magic, another
// version, a truncated or over-long body, a bad header (nested deeper than 64 levels
// included), or inconsistent tensors.
Weights read_weights(const std::string& path);
// The same from a weight file's bytes already in memory (`source` names them in
// messages); read_weights is read + this. Used by fuzz/fuzz_weights.cpp.
Weights parse_weights(const std::string& bytes, const std::string& source);

// Random weights for tests and `mapgate bench --random-weights`: Kaiming-normal convolutions,
// BN statistics near (but not at) the identity, gate biases near `gate_bias`, so that
// p ~ sigmoid(gate_bias) with some spread between inputs. Deterministic in `seed`.
Weights random_weights(const DenseNetConfig& config, std::uint64_t seed, double gate_bias = 0.0);

}  // namespace mapgate
