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

// `v` as a T, or Error "checkpoint "P": state "name" is a number, expected a string".
template <typename T>
T get_as(const nlohmann::json& v, const std::string& source, const std::string& name, const char* expected) {
  try {
    return v.get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(source + ": state \"" + name + "\" is " + (v.is_array() || v.is_object() ? "an " : "a ") + v.type_name() +
                ", expected " + expected);
  }
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
  t.dataset = get_as<std::string>(field(checkpoint, "dataset"), source, "dataset", "a string");
  t.class_names = get_as<std::vector<std::string>>(field(checkpoint, "class_names"), source, "class_names",
                                                   "an array of strings");
  const auto& norm = field(checkpoint, "normalization");
  for (const char* key : {"mean", "std"})
    if (!norm.is_object() || !norm.contains(key))
      throw Error(source + ": state \"normalization\" lacks \"" + key + "\"");
  const char* numbers = "an array of numbers";
  t.normalization.mean = get_as<std::vector<float>>(norm.at("mean"), source, "normalization.mean", numbers);
  t.normalization.std = get_as<std::vector<float>>(norm.at("std"), source, "normalization.std", numbers);
  t.epoch = checkpoint.epoch();
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
