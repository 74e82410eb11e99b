// A trained model as `eval`, `flops --model` and `export` see it: architecture and
// weights from a checkpoint, plus the normalisation and labels it was trained with.
#pragma once

#include <string>
#include <vector>

#include "data/loader.h"
#include "model/densenet.h"

namespace mapgate {

struct TrainedModel {
  std::string path;                 // the checkpoint file
  std::string dataset;
  std::vector<std::string> class_names;
  Normalization normalization;
  int epoch = 0;
  DenseNetConfig config;
  DenseNet model{nullptr};
};

// Throws Error naming the file and the problem (missing key, wrong shape, corrupt file).
DenseNetConfig read_model_config(const std::string& run_or_file);
TrainedModel load_trained_model(const std::string& run_or_file);

}  // namespace mapgate
