// LibTorch model <-> engine Weights; see export.h and docs/weight-format.md.
#include "train/export.h"

#include <cstring>
#include <filesystem>

#include <torch/nn/modules/batchnorm.h>

#include "common/dir_lock.h"
#include "common/error.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace mapgate {
namespace {

bool skipped(const std::string& name) {
  const std::string tail = "num_batches_tracked";
  return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

// Every parameter and buffer the weight file carries, with its LibTorch name.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(DenseNet& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_parameters(/*recurse=*/true))
    if (!skipped(item.key())) out.emplace_back(item.key(), item.value());
  for (const auto& item : model->named_buffers(/*recurse=*/true))
    if (!skipped(item.key())) out.emplace_back(item.key(), item.value());
  return out;
}

std::string shape_str(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// The BatchNorm eps the model uses (the file stores one for all layers).
double batch_norm_eps(DenseNet& model) {
  double eps = -1;
  for (const auto& module : model->modules(/*include_self=*/false)) {
    const auto* bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(module.get());
    if (!bn) continue;
    const double e = bn->options.eps();
    if (eps >= 0 && e != eps) throw Error("export: BatchNorm layers use different eps values");
    eps = e;
  }
  return eps >= 0 ? eps : 1e-5;
}

// The field of a gate's tensor ("gates.L.fc.weight" -> "fc.weight"); "" for any other tensor.
std::string gate_field(const std::string& name) {
  constexpr std::size_t kPrefix = 6;  // "gates."
  if (name.rfind("gates.", 0) != 0) return "";
  return name.substr(name.find('.', kPrefix) + 1);
}

// A standardised gate's eval-mode map folded into one linear map (GateImpl::folded): the
// weight file stores W' and b' under the fc names and no norm statistics.
void fold_gate_inputs(DenseNet& model, std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const auto modules = model->named_modules();
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, tensor] : tensors) {
    const std::string field = gate_field(name);
    if (field.empty()) {
      out.emplace_back(name, tensor);
      continue;
    }
    if (field.rfind("norm.", 0) == 0) continue;
    const std::string gate = name.substr(0, name.size() - field.size() - 1);
    const auto folded = modules[gate]->as<GateImpl>()->folded();
    out.emplace_back(name, field == "fc.weight" ? folded.first : folded.second);
  }
  tensors = std::move(out);
}

// A per-layer gate (one output) as k equal outputs, one per map: the same decision for
// every map of the layer, in the per-map form the weight file and the engine know.
void widen_layer_gates(std::vector<std::pair<std::string, torch::Tensor>>& tensors, int growth) {
  for (auto& [name, tensor] : tensors) {
    if (gate_field(name).empty()) continue;
    if (tensor.dim() == 2) tensor = tensor.expand({growth, tensor.size(1)}).contiguous();
    else if (tensor.dim() == 1 && tensor.size(0) == 1) tensor = tensor.expand({growth}).contiguous();
  }
}

// Core maps (--core-maps K): the first K rows of every gate as W = 0 and a bias that puts
// p at 1 - eps, above any tau the export accepts, so the engine computes them for every
// image as LibTorch does, in the per-map form it knows.
void open_core_gates(std::vector<std::pair<std::string, torch::Tensor>>& tensors, int core) {
  constexpr double kCoreLogit = 30.0;  // sigmoid(30) is 1 in float32
  for (auto& [name, tensor] : tensors) {
    const std::string field = gate_field(name);
    if (field != "fc.weight" && field != "fc.bias") continue;
    tensor = tensor.clone();  // the model's own parameter stays as trained
    auto rows = tensor.narrow(0, 0, core);
    if (field == "fc.weight") rows.zero_();
    else rows.fill_(kCoreLogit);
  }
}

}  // namespace

bool core_kept_at_inference(const DenseNetConfig& config) {
  return config.core_maps == 0 || config.threshold < 1 - config.p_clamp;
}

Weights export_weights(DenseNet& model, const DenseNetConfig& config, const Normalization& norm) {
  torch::NoGradGuard no_grad;
  if (config.sampled_inference)
    throw Error("export: this model samples its masks at inference (--gates random, a baseline); the engine "
                "thresholds them, so it has no weight file");
  Weights w;
  w.config = config;
  w.config.compression = config.effective_compression();
  w.config.dropout = 0;
  w.config.gate_standardize = false;  // folded into the gates' linear maps below
  w.config.gate_per_layer = false;    // a per-layer gate is written as k equal rows
  w.config.core_maps = 0;             // core maps are written as gates that are always on
  if (!core_kept_at_inference(config))
    throw Error("export: a model with core maps needs tau < 1 - eps (" + std::to_string(config.threshold) +
                " >= 1 - " + std::to_string(config.p_clamp) + "): the engine would switch its core maps off");
  w.mean = norm.mean;
  w.std = norm.std;
  w.bn_eps = batch_norm_eps(model);
  auto tensors = named_tensors(model);
  if (config.gate_standardize) fold_gate_inputs(model, tensors);
  if (config.gate_per_layer) widen_layer_gates(tensors, config.growth);
  if (config.core_maps > 0) open_core_gates(tensors, config.core_maps);
  for (auto& [name, tensor] : tensors) {
    const auto t = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
    WeightTensor wt;
    wt.shape.assign(t.sizes().begin(), t.sizes().end());
    wt.data.resize(static_cast<std::size_t>(t.numel()));
    if (t.numel() > 0) std::memcpy(wt.data.data(), t.data_ptr<float>(), sizeof(float) * wt.data.size());
    if (!w.tensors.emplace(name, std::move(wt)).second) throw Error("export: duplicate tensor " + quoted(name));
  }
  check_weights(w, "export");
  return w;
}

Weights export_weights(TrainedModel& trained) {
  return export_weights(trained.model, trained.config, trained.normalization);
}

// A weight file never replaces its own checkpoint or another file of a run directory
// (docs/reliability.md, "Output directory").
void check_export_target(const std::string& run_or_file, const std::string& out) {
  const std::string source = checkpoint_path(run_or_file);
  if (same_file(out, source))
    throw Error("weights " + quoted(out) + ": is the checkpoint being exported; write the weight file elsewhere");
  const std::filesystem::path dir = std::filesystem::path(out).parent_path();
  const std::string name = std::filesystem::path(out).filename().string();
  const bool run_dir = std::filesystem::exists((dir.empty() ? "." : dir) / kCheckpointFile);
  for (const char* file : {kCheckpointFile, kConfigFile, kMetricsFile, kDirLockFile})
    if (run_dir && name == file)
      throw Error("weights " + quoted(out) + ": would replace a file of the run in " +
                  quoted(dir.empty() ? "." : dir.string()) + "; write the weight file elsewhere");
}

Weights export_model(const std::string& run_or_file, const std::string& out) {
  check_export_target(run_or_file, out);
  TrainedModel trained = load_trained_model(run_or_file);
  Weights w = export_weights(trained);
  write_weights(out, w);
  return w;
}

DenseNet densenet_from_weights(const Weights& weights, const std::string& source) {
  check_weights(weights, source);
  DenseNetConfig config = weights.config;
  config.dropout = 0;
  DenseNet model(config);
  torch::NoGradGuard no_grad;
  std::size_t used = 0;
  for (auto& [name, tensor] : named_tensors(model)) {
    const auto it = weights.tensors.find(name);
    if (it == weights.tensors.end()) throw Error("weights " + quoted(source) + ": no tensor " + quoted(name));
    const WeightTensor& wt = it->second;
    const std::vector<std::int64_t> want(tensor.sizes().begin(), tensor.sizes().end());
    if (wt.shape != want)
      throw Error("weights " + quoted(source) + ": tensor " + quoted(name) + " has shape " + shape_str(wt.shape) +
                  ", the model expects " + shape_str(want));
    tensor.copy_(torch::from_blob(const_cast<float*>(wt.data.data()), want, torch::kFloat));
    ++used;
  }
  if (used != weights.tensors.size())
    throw Error("weights " + quoted(source) + ": " + std::to_string(weights.tensors.size() - used) +
                " tensors that the model does not have");
  for (const auto& module : model->modules(/*include_self=*/false))
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get())) bn->options.eps(weights.bn_eps);
  model->eval();
  return model;
}

Weights without_gates(const Weights& weights) {
  Weights w;
  w.config = weights.config;
  w.config.gated = false;
  w.mean = weights.mean;
  w.std = weights.std;
  w.bn_eps = weights.bn_eps;
  for (const auto& [name, t] : weights.tensors)
    if (name.rfind("gates.", 0) != 0) w.tensors.emplace(name, t);
  return w;
}

}  // namespace mapgate
