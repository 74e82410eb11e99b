// Checkpoint file: model tensors, optimizer state and a JSON "state" (run config,
// epoch, normalisation, class names) in mapgate's own layout (checkpoint_file.h, version
// 2: plain tensors, nothing LibTorch would have to parse), written atomically (temporary
// file in the same directory, fsync, rename) so a crash never leaves a half-written
// checkpoint in place of the last good one. Format 1 (a LibTorch archive) is refused
// here and read only by `mapgate upgrade-checkpoint` (checkpoint_format1.h).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "train/checkpoint_file.h"

namespace mapgate {

inline constexpr const char* kCheckpointFile = "checkpoint.pt";
// Most epochs a checkpoint's state may say are done (far above any training recipe).
inline constexpr std::int64_t kMaxEpochs = 1000000;

// RUN directory -> RUN/checkpoint.pt; a file path is returned unchanged.
std::string checkpoint_path(const std::string& run_or_file);

// `state` is stored with "format" and "version" added. A gated run also stores its gate
// optimizer under "gate_optimizer".
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, nlohmann::json state,
                     const torch::optim::Optimizer* gate_optimizer = nullptr);

// The lower level of save_checkpoint, also for `mapgate upgrade-checkpoint`: `state`
// (with "format" and "version" set) and `tensors` (float32 or int64, any device) with
// `optimizers` (key -> "sgd" or "adam") saying whose state the "KEY/..." tensors are.
void write_checkpoint(const std::string& path, nlohmann::json state,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& optimizers);

class Checkpoint {
 public:
  // Throws Error: missing file, not a regular file or too large, format 1 (naming
  // `mapgate upgrade-checkpoint`), not a mapgate checkpoint, a version this build does
  // not read, or a malformed file (parse_checkpoint).
  explicit Checkpoint(const std::string& path);

  const nlohmann::json& state() const { return contents_.state; }
  // Everything the file holds, as parsed (mapgate upgrade-checkpoint rewrites it).
  const CheckpointContents& contents() const { return contents_; }
  // Epochs done: the state's "epoch" (0 when absent); Error naming the file when it is not
  // an integer in 0..kMaxEpochs.
  int epoch() const;
  const std::string& path() const { return path_; }
  // Copies every parameter and buffer of `model` from the file; throws Error naming
  // the first layer that is missing, has a different shape, or is corrupt (another
  // dtype, NaN or infinite values). Tensors whose name
  // `skip` accepts are left as they are (--init: fresh gates on dense weights).
  void load_model(torch::nn::Module& model,
                  const std::function<bool(const std::string&)>& skip = nullptr);
  // key: "optimizer" (network weights) or "gate_optimizer". Every stored tensor, here
  // and in load_model, is checked before use (dtype, shape, finite values). Error when
  // the file holds no state for `key` or state of another kind of optimizer.
  void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& key = "optimizer");

 private:
  // The stored tensor `name` as a new tensor; Error "`what` ..." when it is not
  // of `type` or (float32) holds NaN or infinite values.
  torch::Tensor tensor(const std::string& name, c10::ScalarType type, const std::string& what) const;

  std::string path_;
  CheckpointContents contents_;
};

}  // namespace mapgate
