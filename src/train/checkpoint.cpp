// Checkpoint save/load; see checkpoint.h for the layout.
#include "train/checkpoint.h"

#include <malloc.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include <c10/core/CPUAllocator.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "common/write_file.h"
#include "model/config.h"
#include "train/checkpoint_archive.h"

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

// Bytes that can really be read behind a storage from an archive. LibTorch's reader sizes
// a storage by the pickled claim but fills it from the file's record, which a crafted file
// can make shorter or empty (then no memory at all). Where the memory came from LibTorch's
// CPU allocator (malloc-based), the allocation's usable size bounds what can be read;
// memory from elsewhere is taken at its claimed size.
std::int64_t readable_bytes(const c10::Storage& storage) {
  const auto claimed = static_cast<std::int64_t>(storage.nbytes());
  void* data = const_cast<void*>(storage.data());
  if (claimed == 0 || !data) return 0;
  if (storage.data_ptr().get_deleter() != c10::GetCPUAllocator()->raw_deleter()) return claimed;
  return std::min(claimed, static_cast<std::int64_t>(malloc_usable_size(data)));
}

// What is wrong with a tensor read from a file, or "" if nothing: LibTorch's reader
// trusts the archive, so a crafted file can put a right shape over a storage that is
// empty, starts past its end or is left by a stride; reading it would crash or read
// foreign memory. Checked before anything reads an element: dense, on the CPU, of the
// dtype expected, every element inside the storage, then finite values.
std::string stored_tensor_problem(const torch::Tensor& t, c10::ScalarType expected) {
  if (t.layout() != torch::kStrided || !t.device().is_cpu() || !t.has_storage())
    return "is not a dense CPU tensor";
  if (t.scalar_type() != expected)
    return std::string("has dtype ") + c10::toString(t.scalar_type()) + ", expected " + c10::toString(expected);
  if (t.numel() > 0) {
    // The last element's index into the storage: offset + sum_i (size_i - 1) * stride_i.
    std::int64_t last = t.storage_offset(), step = 0;
    bool overflow = last < 0;
    for (std::int64_t d = 0; d < t.dim() && !overflow; ++d)
      overflow = t.stride(d) < 0 || __builtin_mul_overflow(t.size(d) - 1, t.stride(d), &step) ||
                 __builtin_add_overflow(last, step, &last);
    std::int64_t need = 0;
    overflow = overflow || __builtin_add_overflow(last, 1, &need) ||
               __builtin_mul_overflow(need, static_cast<std::int64_t>(t.element_size()), &need);
    const std::int64_t held = readable_bytes(t.storage());
    if (overflow) return "has an offset or strides outside any storage";
    if (need > held)
      return "reaches byte " + std::to_string(need) + " of a storage of " + std::to_string(held) + " bytes";
  }
  if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) return "holds NaN or infinite values";
  return "";
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
  // LibTorch's reader would wait on a FIFO. The largest model (kMaxParams floats) with
  // SGD momentum and Adam's two moments holds four copies of its parameters.
  static const SizeLimit kLimit{static_cast<std::uint64_t>(4 * 4 * kMaxParams) + (std::uint64_t{1} << 30),
                                "a checkpoint may hold (4 copies of the largest model's parameters, 1 GiB to spare)"};
  require_regular_file(path, "checkpoint", &kLimit);
  check_checkpoint_archive(path, std::filesystem::file_size(path));  // what LibTorch's reader would trust
  try {
    archive_.load_from(path);
  } catch (const std::exception& e) {  // c10::Error, and std::out_of_range & co. from its unpickler
    // (fuzz_checkpoint found a one-byte change that made it throw "Argument passed to at()
    // was not in the map.", which named no file).
    throw Error("checkpoint " + quoted(path) + ": not a readable LibTorch archive (" +
                first_line(e.what()) + ")");
  }
  c10::IValue text;
  if (!archive_.try_read("state", text) || !text.isString())
    throw Error("checkpoint " + quoted(path) + ": no mapgate state record (not a mapgate checkpoint?)");
  // Depth-limited: messages dump() parts of it (the model config), which recurses.
  state_ = parse_json_limited(text.toStringRef(), "checkpoint " + quoted(path) + ": state record");
  // value() would throw nlohmann's own text for a field of the wrong type: ask first.
  if (!state_.is_object() || !state_.contains("format") || state_.at("format") != "mapgate-checkpoint")
    throw Error("checkpoint " + quoted(path) + ": not a mapgate checkpoint");
  const nlohmann::json version = state_.value("version", nlohmann::json(0));
  if (!version.is_number_integer() || version.get<std::int64_t>() < 1 ||
      version.get<std::int64_t>() > kCheckpointVersion)
    throw Error("checkpoint " + quoted(path) + ": version " + version.dump().substr(0, 40) +
                ", this build reads 1.." + std::to_string(kCheckpointVersion));
}

int Checkpoint::epoch() const {
  if (!state_.contains("epoch")) return 0;
  const auto& v = state_.at("epoch");
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > kMaxEpochs)
    throw Error("checkpoint " + quoted(path_) + ": state \"epoch\" is " + v.dump().substr(0, 40) +
                ", expected an integer in 0.." + std::to_string(kMaxEpochs));
  return static_cast<int>(v.get<std::int64_t>());
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
    const std::string problem = stored_tensor_problem(stored, target.scalar_type());
    if (!problem.empty()) throw Error("checkpoint " + quoted(path_) + ": layer " + name + " " + problem);
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
  } catch (const std::exception& e) {  // c10::Error or whatever a malformed archive makes it throw
    throw Error("checkpoint " + quoted(path_) + ": optimizer state does not fit this model (" +
                first_line(e.what()) + ")");
  }
  check_optimizer_state(optimizer, key);
}

void Checkpoint::check_optimizer_state(torch::optim::Optimizer& optimizer, const std::string& key) const {
  auto check = [&](const torch::Tensor& t, const char* what) {
    if (!t.defined()) return;
    const std::string problem = stored_tensor_problem(t, torch::kFloat);
    if (!problem.empty()) throw Error("checkpoint " + quoted(path_) + ": " + key + " " + what + " " + problem);
  };
  // The step reads these per parameter; SGD's momentum, Adam's moments.
  for (const auto& [id, state] : optimizer.state()) {
    if (const auto* sgd = dynamic_cast<const torch::optim::SGDParamState*>(state.get())) {
      check(sgd->momentum_buffer(), "momentum buffer");
    } else if (const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(state.get())) {
      check(adam->exp_avg(), "first moment");
      check(adam->exp_avg_sq(), "second moment");
      check(adam->max_exp_avg_sq(), "max second moment");
    }
  }
}

}  // namespace mapgate
