// Checkpoint save/load; see checkpoint.h for the layout.
#include "train/checkpoint.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "train/optimizer_state.h"

namespace mapgate {
namespace {

constexpr const char* kFormat = "mapgate-checkpoint";

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

StoredTensor to_stored(const std::string& name, const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  StoredTensor s;
  s.shape = t.sizes().vec();
  if (t.scalar_type() == torch::kFloat) {
    s.floats.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  } else if (t.scalar_type() == torch::kLong) {
    s.type = StoredTensor::Type::kInt64;
    s.ints.assign(t.data_ptr<std::int64_t>(), t.data_ptr<std::int64_t>() + t.numel());
  } else {
    throw Error("checkpoint tensor " + quoted(name) + ": dtype " + c10::toString(t.scalar_type()) +
                ", a checkpoint stores float32 and int64 only");
  }
  return s;
}

c10::ScalarType scalar_type(const StoredTensor& s) {
  return s.type == StoredTensor::Type::kFloat32 ? torch::kFloat : torch::kLong;
}

}  // namespace

std::string checkpoint_path(const std::string& run_or_file) {
  if (std::filesystem::is_directory(run_or_file))
    return (std::filesystem::path(run_or_file) / kCheckpointFile).string();
  return run_or_file;
}

void write_checkpoint(const std::string& path, nlohmann::json state,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& optimizers) {
  state["format"] = kFormat;
  state["version"] = kCheckpointFormatVersion;
  CheckpointContents contents{std::move(state), optimizers, {}};
  for (const auto& [name, t] : tensors) contents.tensors.emplace(name, to_stored(name, t));
  // Encoded in memory, then written by write_file_atomic (temporary file, fsync, rename):
  // a kill or a full disk never leaves a half-written file at `path`.
  const std::string bytes = encode_checkpoint(contents);
  write_file_atomic(path, bytes.data(), bytes.size());
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, nlohmann::json state,
                     const torch::optim::Optimizer* gate_optimizer) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model.named_parameters()) tensors.emplace_back("model/" + p.key(), p.value());
  for (const auto& b : model.named_buffers()) tensors.emplace_back("model/" + b.key(), b.value());
  std::map<std::string, std::string> optimizers;
  auto add = [&](const torch::optim::Optimizer* o, const std::string& key) {
    if (!o) return;
    optimizers[key] = optimizer_kind(*o);
    for (auto& [name, t] : optimizer_state_tensors(*o)) tensors.emplace_back(key + "/" + name, t);
  };
  add(optimizer, "optimizer");
  add(gate_optimizer, "gate_optimizer");
  write_checkpoint(path, std::move(state), tensors, optimizers);
}

Checkpoint::Checkpoint(const std::string& path) : path_(path) {
  const std::string who = "checkpoint " + quoted(path) + ": ";
  if (!std::filesystem::exists(path)) throw Error(who + "no such file");
  const std::string bytes = read_regular_file<std::string>(path, checkpoint_size_limit(), "checkpoint");
  if (is_format1_checkpoint(bytes))
    throw Error(who + "format 1 (a LibTorch archive, written by mapgate before December 2026); "
                "convert it once with `mapgate upgrade-checkpoint " + quoted(path) + "` (for files you trust)");
  contents_ = parse_checkpoint(bytes, path);
  const auto& state = contents_.state;
  if (state.value("format", nlohmann::json()) != kFormat)
    throw Error(who + "state record is not a mapgate checkpoint's (no \"format\": \"" + kFormat + "\")");
  if (state.value("version", nlohmann::json()) != kCheckpointFormatVersion)
    throw Error(who + "state record says version " + state.value("version", nlohmann::json()).dump().substr(0, 40) +
                ", the file's header version " + std::to_string(kCheckpointFormatVersion));
}

int Checkpoint::epoch() const {
  const auto& state = contents_.state;
  if (!state.contains("epoch")) return 0;
  const auto& v = state.at("epoch");
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > kMaxEpochs)
    throw Error("checkpoint " + quoted(path_) + ": state \"epoch\" is " + v.dump().substr(0, 40) +
                ", expected an integer in 0.." + std::to_string(kMaxEpochs));
  return static_cast<int>(v.get<std::int64_t>());
}

torch::Tensor Checkpoint::tensor(const std::string& name, c10::ScalarType type, const std::string& what) const {
  const StoredTensor& s = contents_.tensors.at(name);
  const bool is_float = s.type == StoredTensor::Type::kFloat32;
  const c10::ScalarType stored = scalar_type(s);
  if (stored != type)
    throw Error(what + " has dtype " + c10::toString(stored) + ", expected " + c10::toString(type));
  torch::Tensor t = torch::empty(s.shape, torch::TensorOptions().dtype(type));
  if (is_float) {
    for (float v : s.floats)
      if (!std::isfinite(v)) throw Error(what + " holds NaN or infinite values");
    if (!s.floats.empty()) std::memcpy(t.data_ptr<float>(), s.floats.data(), 4 * s.floats.size());
  } else if (!s.ints.empty()) {
    std::memcpy(t.data_ptr<std::int64_t>(), s.ints.data(), 8 * s.ints.size());
  }
  return t;
}

void Checkpoint::load_model(torch::nn::Module& model,
                            const std::function<bool(const std::string&)>& skip) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& target) {
    if (skip && skip(name)) return;
    const std::string what = "checkpoint " + quoted(path_) + ": layer " + name;
    if (!contents_.tensors.count("model/" + name)) throw Error(what + " is missing (different --depth or --bc?)");
    const torch::Tensor stored = tensor("model/" + name, target.scalar_type(), what);
    if (!stored.sizes().equals(target.sizes()))
      throw Error(what + " has shape " + shape_text(stored) + ", this model expects " + shape_text(target) +
                  " (different --growth, --depth or --bc?)");
    target.copy_(stored);
  };
  for (auto& p : model.named_parameters()) copy(p.key(), p.value());
  for (auto& b : model.named_buffers()) copy(b.key(), b.value());
}

void Checkpoint::load_optimizer(torch::optim::Optimizer& optimizer, const std::string& key) {
  const std::string who = "checkpoint " + quoted(path_) + ": ";
  const auto kind = contents_.optimizers.find(key);
  if (kind == contents_.optimizers.end())
    throw Error(who + "has no " + key + " state (cannot --resume from it)");
  const std::string expected = optimizer_kind(optimizer);
  if (kind->second != expected)
    throw Error(who + key + " state is " + quoted(kind->second) + "'s, this run's " + key + " is " + quoted(expected));
  const std::string prefix = key + "/";
  std::map<std::string, torch::Tensor> stored;
  for (const auto& [name, s] : contents_.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string field = name.substr(prefix.size());
    stored.emplace(field, tensor(name, scalar_type(s), who + key + " " + quoted(field)));
  }
  restore_optimizer_state(optimizer, stored, who + key + " ");
}

}  // namespace mapgate
