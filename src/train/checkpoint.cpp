// Checkpoint save/load; see checkpoint.h for the layout.
#include "train/checkpoint.h"

#include <filesystem>
#include <sstream>

#include <torch/serialize/output-archive.h>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "data/file_io.h"

namespace mapgate {
namespace {

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace

std::string checkpoint_path(const std::string& run_or_file) {
  if (std::filesystem::is_directory(run_or_file))
    return (std::filesystem::path(run_or_file) / kCheckpointFile).string();
  return run_or_file;
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, nlohmann::json state,
                     const torch::optim::Optimizer* gate_optimizer) {
  state["format"] = "mapgate-checkpoint";
  state["version"] = kCheckpointVersion;
  torch::serialize::OutputArchive archive;
  archive.write("state", c10::IValue(state.dump()));
  for (const auto& p : model.named_parameters()) archive.write("model/" + p.key(), p.value());
  for (const auto& b : model.named_buffers()) archive.write("model/" + b.key(), b.value(), true);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  if (gate_optimizer) {
    torch::serialize::OutputArchive gate_archive;
    gate_optimizer->save(gate_archive);
    archive.write("gate_optimizer", gate_archive);
  }
  // Serialised in memory, then written by write_file_atomic (temporary file, fsync,
  // rename): a kill or a full disk never leaves a half-written file at `path`.
  std::ostringstream bytes;
  try {
    archive.save_to(bytes);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + quoted(path) + ": cannot serialise (" + first_line(e.what()) + ")");
  }
  const std::string data = bytes.str();
  write_file_atomic(path, data.data(), data.size());
}

Checkpoint::Checkpoint(const std::string& path) : path_(path) {
  if (!std::filesystem::exists(path)) throw Error("checkpoint " + quoted(path) + ": no such file");
  require_regular_file(path, "checkpoint");  // LibTorch's reader would wait on a FIFO
  try {
    archive_.load_from(path);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + quoted(path) + ": not a readable LibTorch archive (" +
                first_line(e.what()) + ")");
  }
  c10::IValue text;
  if (!archive_.try_read("state", text) || !text.isString())
    throw Error("checkpoint " + quoted(path) + ": no mapgate state record (not a mapgate checkpoint?)");
  // Depth-limited: messages dump() parts of it (the model config), which recurses.
  state_ = parse_json_limited(text.toStringRef(), "checkpoint " + quoted(path) + ": state record");
  if (state_.value("format", "") != "mapgate-checkpoint")
    throw Error("checkpoint " + quoted(path) + ": not a mapgate checkpoint");
  const int version = state_.value("version", 0);
  if (version < 1 || version > kCheckpointVersion)
    throw Error("checkpoint " + quoted(path) + ": version " + std::to_string(version) +
                ", this build reads 1.." + std::to_string(kCheckpointVersion));
}

void Checkpoint::load_model(torch::nn::Module& model,
                            const std::function<bool(const std::string&)>& skip) {
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& target) {
    if (skip && skip(name)) return;
    c10::IValue value;
    if (!archive_.try_read("model/" + name, value) || !value.isTensor())
      throw Error("checkpoint " + quoted(path_) + ": layer " + name +
                  " is missing (different --depth or --bc?)");
    const auto stored = value.toTensor();
    if (!stored.sizes().equals(target.sizes()))
      throw Error("checkpoint " + quoted(path_) + ": layer " + name + " has shape " +
                  shape_text(stored) + ", this model expects " + shape_text(target) +
                  " (different --growth, --depth or --bc?)");
    target.copy_(stored);
  };
  for (auto& p : model.named_parameters()) copy(p.key(), p.value());
  for (auto& b : model.named_buffers()) copy(b.key(), b.value());
}

void Checkpoint::load_optimizer(torch::optim::Optimizer& optimizer, const std::string& key) {
  torch::serialize::InputArchive optimizer_archive;
  if (!archive_.try_read(key, optimizer_archive))
    throw Error("checkpoint " + quoted(path_) + ": has no " + key + " state (cannot --resume from it)");
  try {
    optimizer.load(optimizer_archive);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + quoted(path_) + ": optimizer state does not fit this model (" +
                first_line(e.what()) + ")");
  }
}

}  // namespace mapgate
