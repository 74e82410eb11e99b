// libFuzzer target: the bytes as a checkpoint file, through the path `mapgate eval`,
// `export` and `bench --model` take: Checkpoint (regular-file and size checks, the
// format-2 parser, the state record), then load_trained_model (model config, dataset,
// class names, normalisation, every tensor checked and copied into the model), then
// what --resume adds: the SGD and Adam state restored into optimizers of that model.
// Only mapgate::Error may escape; a model it returns must run a forward pass (its logits
// may still overflow: finite, checked weights can, and eval reports that as an error).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include "common/error.h"
#include "model/macs.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"

namespace {

// Models above this are skipped: valid configs up to kMaxParams (1e9) would exceed
// libFuzzer's memory limits, and their size says nothing about the reader's checks.
constexpr std::int64_t kMaxFuzzParams = 1000000;

const std::string& scratch_path() {
  static const std::string path = "/dev/shm/fuzz_checkpoint." + std::to_string(::getpid()) + ".pt";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = scratch_path();
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), size);
  torch::set_num_threads(1);
  try {
    const mapgate::DenseNetConfig c = mapgate::read_model_config(path);
    if (mapgate::total_cost(mapgate::densenet_layer_costs(c)).params > kMaxFuzzParams) return 0;
    mapgate::TrainedModel t = mapgate::load_trained_model(path);
    torch::NoGradGuard no_grad;
    const torch::Tensor logits =
        t.model->forward(torch::zeros({1, t.config.in_channels, t.config.image_size, t.config.image_size}));
    if (logits.size(0) != 1 || logits.size(1) != t.config.num_classes) __builtin_trap();
    mapgate::Checkpoint checkpoint(path);
    torch::optim::SGD sgd(t.model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    torch::optim::Adam adam(t.model->parameters(), torch::optim::AdamOptions(1e-3));
    checkpoint.load_optimizer(sgd);
    checkpoint.load_optimizer(adam, "gate_optimizer");
  } catch (const mapgate::Error&) {
  }
  return 0;
}
