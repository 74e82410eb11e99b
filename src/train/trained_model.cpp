// Rebuilds a DenseNet from a checkpoint's state record and loads its weights.
#include "train/trained_model.h"

#include <cmath>

#include "common/error.h"
#include "train/checkpoint.h"

namespace mapgate {
namespace {

const nlohmann::json& field(const Checkpoint& c, const char* key) {
  if (!c.state().contains(key))
    throw Error("checkpoint " + quoted(c.path()) + ": state record lacks \"" + key + "\"");
  return c.state().at(key);
}

}  // namespace

DenseNetConfig read_model_config(const std::string& run_or_file) {
  const Checkpoint checkpoint(checkpoint_path(run_or_file));
  return densenet_config_from_json(field(checkpoint, "model"), "checkpoint " + quoted(checkpoint.path()));
}

TrainedModel load_trained_model(const std::string& run_or_file) {
  Checkpoint checkpoint(checkpoint_path(run_or_file));
  TrainedModel t;
  t.path = checkpoint.path();
  const std::string source = "checkpoint " + quoted(t.path);
  try {
    t.dataset = field(checkpoint, "dataset").get<std::string>();
    t.class_names = field(checkpoint, "class_names").get<std::vector<std::string>>();
    const auto& norm = field(checkpoint, "normalization");
    t.normalization.mean = norm.at("mean").get<std::vector<float>>();
    t.normalization.std = norm.at("std").get<std::vector<float>>();
    t.epoch = checkpoint.epoch();
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": malformed state record (" + e.what() + ")");
  }
  t.config = densenet_config_from_json(field(checkpoint, "model"), source);
  if (static_cast<int>(t.normalization.mean.size()) != t.config.in_channels ||
      t.normalization.std.size() != t.normalization.mean.size())
    throw Error(source + ": normalisation has " + std::to_string(t.normalization.mean.size()) +
                " channels, the model expects " + std::to_string(t.config.in_channels));
  // As a weight file's (engine check_weights): a zero or non-finite std, or a non-finite
  // mean, would turn every image into inf or NaN and every prediction into noise.
  for (std::size_t i = 0; i < t.normalization.mean.size(); ++i)
    if (!std::isfinite(t.normalization.mean[i]) || !std::isfinite(t.normalization.std[i]) ||
        !(t.normalization.std[i] > 0))
      throw Error(source + ": normalisation of channel " + std::to_string(i) + ": mean " +
                  std::to_string(t.normalization.mean[i]) + ", std " + std::to_string(t.normalization.std[i]) +
                  ", expected finite values and std > 0");
  t.model = DenseNet(t.config);
  checkpoint.load_model(*t.model);
  t.model->eval();
  return t;
}

}  // namespace mapgate
