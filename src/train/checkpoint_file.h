// The checkpoint's byte layout, version 2 (docs/checkpoint-format.md): magic, version,
// a JSON header (the run's state record, the optimizers stored, the tensor list), then
// each tensor's elements, little-endian, in the header's order. Plain data only: nothing
// in the file is code or an object graph, so reading it runs no other parser than
// mapgate's own bounded one. No LibTorch here: checkpoint.cpp converts to tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/regular_file.h"

namespace mapgate {

inline constexpr char kCheckpointMagic[8] = {'M', 'G', 'C', 'H', 'K', 'P', 'T', '\0'};
inline constexpr std::uint32_t kCheckpointFormatVersion = 2;

// One stored tensor: float32 (`floats`) or int64 (`ints`), row-major.
struct StoredTensor {
  enum class Type { kFloat32, kInt64 };
  Type type = Type::kFloat32;
  std::vector<std::int64_t> shape;
  std::vector<float> floats;
  std::vector<std::int64_t> ints;

  std::size_t numel() const { return type == Type::kFloat32 ? floats.size() : ints.size(); }
};

struct CheckpointContents {
  nlohmann::json state;                      // the run's state record (an object)
  std::map<std::string, std::string> optimizers;  // key ("optimizer", "gate_optimizer") -> kind ("sgd", "adam")
  std::map<std::string, StoredTensor> tensors;    // by name, e.g. "model/stem.weight"
};

// The file's bytes. Throws Error when a tensor's data does not match its shape.
std::string encode_checkpoint(const CheckpointContents& contents);

// Parses the bytes of the file at `path` (named in messages). Throws Error "checkpoint
// "P": ..." for a wrong magic or version, a malformed header (not JSON, nested too deep,
// a field of the wrong type, a tensor named twice, rank above 8), data shorter than the
// shapes need, or bytes after the last tensor. Values are not checked (finite, shape for
// a model): that is the reader's job, which knows what it expects.
CheckpointContents parse_checkpoint(const std::string& bytes, const std::string& path);

// The most bytes a checkpoint file may hold, either format: the largest model (kMaxParams
// floats) with SGD momentum and Adam's two moments holds four copies of its parameters.
const SizeLimit& checkpoint_size_limit();

// True when `bytes` start like a format-1 checkpoint (a LibTorch archive: a zip file).
bool is_format1_checkpoint(const std::string& bytes);

}  // namespace mapgate
