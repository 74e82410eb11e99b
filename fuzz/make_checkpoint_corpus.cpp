// Writes the seed corpus of fuzz_checkpoint: fuzz_make_checkpoint_corpus fuzz/corpus
// (docs/reliability.md). Small real checkpoints, a few KB to 30 KB each, written by
// save_checkpoint from fixed seeds: dense and gated (per map and per layer), with and
// without the optimizers' state, so the fuzzer starts from every record a run writes.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include "model/densenet.h"
#include "train/checkpoint.h"

namespace {

namespace fs = std::filesystem;
using mapgate::DenseNetConfig;

DenseNetConfig config(bool gated, bool per_layer) {
  DenseNetConfig c;
  c.depth = 7;
  c.growth = 2;
  c.image_size = 8;
  c.num_classes = 3;
  c.gated = gated;
  c.gate_per_layer = per_layer;
  return c;
}

nlohmann::json state(const DenseNetConfig& c) {
  return {{"model", mapgate::to_json(c)},
          {"dataset", "cifar10"},
          {"class_names", {"a", "b", "c"}},
          {"normalization", {{"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.25, 0.25}}}},
          {"epoch", 1}};
}

// One SGD (and, gated, one Adam) step so that the optimizers hold state to save.
void write(const fs::path& path, const DenseNetConfig& c, bool with_optimizers) {
  torch::manual_seed(1);
  mapgate::DenseNet model(c);
  if (!with_optimizers) return mapgate::save_checkpoint(path.string(), *model, nullptr, state(c));
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  model->forward(torch::randn({2, 3, c.image_size, c.image_size})).sum().backward();
  sgd.step();
  adam.step();
  mapgate::save_checkpoint(path.string(), *model, &sgd, state(c), c.gated ? &adam : nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_checkpoint_corpus CORPUS_DIR (e.g. fuzz/corpus)\n");
    return 2;
  }
  const fs::path dir = fs::path(argv[1]) / "fuzz_checkpoint";
  fs::create_directories(dir);
  write(dir / "dense.pt", config(false, false), false);
  write(dir / "dense-sgd.pt", config(false, false), true);
  write(dir / "gated-maps.pt", config(true, false), true);
  write(dir / "gated-layers.pt", config(true, true), false);
  return 0;
}
