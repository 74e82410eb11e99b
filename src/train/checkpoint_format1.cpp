// Reading format-1 checkpoints (LibTorch archives) for `mapgate upgrade-checkpoint`.
#include "train/checkpoint_format1.h"

#include <malloc.h>

#include <algorithm>
#include <filesystem>

#include <c10/core/CPUAllocator.h>
#include <torch/serialize/input-archive.h>

#include "common/error.h"
#include "common/json_limits.h"
#include "common/regular_file.h"
#include "train/checkpoint_archive.h"
#include "train/checkpoint_file.h"

namespace mapgate {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

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

Format1Checkpoint read_format1_checkpoint(const std::string& path) {
  const std::string who = "checkpoint " + quoted(path) + ": ";
  require_regular_file(path, "checkpoint", &checkpoint_size_limit());  // LibTorch's reader would wait on a FIFO
  check_checkpoint_archive(path, std::filesystem::file_size(path));  // what LibTorch's reader would trust
  torch::serialize::InputArchive archive;
  std::vector<std::string> keys;
  try {
    archive.load_from(path);
    keys = archive.keys();
  } catch (const std::exception& e) {  // c10::Error, and std::out_of_range & co. from its unpickler
    throw Error(who + "not a readable LibTorch archive (" + first_line(e.what()) + ")");
  }
  Format1Checkpoint out;
  c10::IValue text;
  if (!archive.try_read("state", text) || !text.isString())
    throw Error(who + "no mapgate state record (not a mapgate checkpoint?)");
  out.state = parse_json_limited(text.toStringRef(), who + "state record");
  if (!out.state.is_object() || out.state.value("format", nlohmann::json()) != "mapgate-checkpoint" ||
      out.state.value("version", nlohmann::json()) != 1)
    throw Error(who + "not a format-1 mapgate checkpoint (its state record says no format \"mapgate-checkpoint\", version 1)");
  for (const std::string& key : keys) {
    if (key.rfind("model/", 0) != 0) continue;
    c10::IValue value;
    if (!archive.try_read(key, value) || !value.isTensor()) throw Error(who + "record " + quoted(key) + " is not a tensor");
    const torch::Tensor t = value.toTensor();
    const auto type = t.scalar_type() == torch::kLong ? torch::kLong : torch::kFloat;
    const std::string problem = stored_tensor_problem(t, type);
    if (!problem.empty()) throw Error(who + "layer " + key.substr(6) + " " + problem);
    out.tensors.emplace_back(key, t.contiguous().clone());
  }
  return out;
}

}  // namespace mapgate
