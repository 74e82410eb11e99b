// Checkpoint file: model tensors, optimizer state and a JSON "state" (run config,
// epoch, normalisation, class names) in one LibTorch archive, written atomically
// (temporary file in the same directory, fsync, rename) so a crash never leaves a
// half-written checkpoint in place of the last good one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>

namespace mapgate {

inline constexpr int kCheckpointVersion = 1;
inline constexpr const char* kCheckpointFile = "checkpoint.pt";
// Most epochs a checkpoint's state may say are done (far above any training recipe).
inline constexpr std::int64_t kMaxEpochs = 1000000;

// RUN directory -> RUN/checkpoint.pt; a file path is returned unchanged.
std::string checkpoint_path(const std::string& run_or_file);

// `state` is stored as JSON text with "format" and "version" added. A gated run also
// stores its gate optimizer (Adam) under "gate_optimizer".
void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, nlohmann::json state,
                     const torch::optim::Optimizer* gate_optimizer = nullptr);

class Checkpoint {
 public:
  // Throws Error: missing file, not a LibTorch archive, not a mapgate checkpoint,
  // or a version this build does not read.
  explicit Checkpoint(const std::string& path);

  const nlohmann::json& state() const { return state_; }
  // Epochs done: the state's "epoch" (0 when absent); Error naming the file when it is not
  // an integer in 0..kMaxEpochs.
  int epoch() const;
  const std::string& path() const { return path_; }
  // Copies every parameter and buffer of `model` from the file; throws Error naming
  // the first layer that is missing, has a different shape, or is corrupt (another
  // dtype, data outside its storage, NaN or infinite values). Tensors whose name
  // `skip` accepts are left as they are (--init: fresh gates on dense weights).
  void load_model(torch::nn::Module& model,
                  const std::function<bool(const std::string&)>& skip = nullptr);
  // key: "optimizer" (network weights) or "gate_optimizer". Every stored tensor, here
  // and in load_model, is checked before use (dtype, storage bounds, finite values).
  void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& key = "optimizer");

 private:
  void check_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& key) const;

  std::string path_;
  torch::serialize::InputArchive archive_;
  nlohmann::json state_;
};

}  // namespace mapgate
