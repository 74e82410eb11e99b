// Between the LibTorch model and the engine's weight file (docs/weight-format.md):
// `mapgate export` fills a Weights from a trained DenseNet's named parameters and buffers
// (minus num_batches_tracked) and writes it with the engine's writer; the reverse builds a
// LibTorch DenseNet from Weights (tests and `mapgate bench --random-weights`).
#pragma once

#include <string>

#include "data/loader.h"
#include "engine/weights.h"
#include "model/densenet.h"
#include "train/trained_model.h"

namespace mapgate {

// `config` is stored as given (its threshold and p_clamp are what the engine uses); its
// architecture must be the model's. Checks the result (check_weights); throws Error.
Weights export_weights(DenseNet& model, const DenseNetConfig& config, const Normalization& norm);
Weights export_weights(TrainedModel& trained);

// Whether the engine keeps this model's core maps on: a core gate's p is 1 - eps, kept when
// p > tau. export_weights refuses a model with core maps where it does not.
bool core_kept_at_inference(const DenseNetConfig& config);

// load_trained_model(run_or_file), export_weights, write_weights(out). Returns the weights.
Weights export_model(const std::string& run_or_file, const std::string& out);

// A DenseNet in eval mode with every parameter and buffer copied from `weights`
// (checked first); throws Error naming `source` on a missing or mis-shaped tensor.
DenseNet densenet_from_weights(const Weights& weights, const std::string& source = "weights");

// The same weights without gates: config.gated false and no gates.* tensors (the plain
// DenseNet that a gated model's dense weights form).
Weights without_gates(const Weights& weights);

}  // namespace mapgate
