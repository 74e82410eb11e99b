// Checkpoints the tests craft: a format-2 file from a header written by hand (for the
// reader's refusals), and a format-1 file (a LibTorch archive, as mapgate wrote before
// format 2) for `mapgate upgrade-checkpoint`. Needs LibTorch.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/serialize/output-archive.h>

#include "common/little_endian.h"
#include "files.h"
#include "train/checkpoint_file.h"

namespace mapgate::test {

// Magic, `version`, the header `header_text` as it is, then `data`.
inline void write_checkpoint_header(const std::string& path, const std::string& header_text,
                                    const std::string& data = "",
                                    std::uint32_t version = kCheckpointFormatVersion) {
  std::string bytes(kCheckpointMagic, sizeof kCheckpointMagic);
  put_u32(bytes, version);
  put_u32(bytes, static_cast<std::uint32_t>(header_text.size()));
  write_bytes(path, bytes + header_text + data);
}

// A header with `state` and the one float32 tensor "model/x" of `shape`, followed by
// `data` (4 bytes per element when it fits the shape).
inline void write_checkpoint_with_tensor(const std::string& path, const nlohmann::json& state,
                                         const nlohmann::json& shape, const std::string& data,
                                         const std::string& dtype = "float32") {
  const nlohmann::json header = {{"state", state},
                                 {"optimizers", nlohmann::json::object()},
                                 {"tensors", {{{"name", "model/x"}, {"dtype", dtype}, {"shape", shape}}}}};
  write_checkpoint_header(path, header.dump(), data);
}

// A format-1 checkpoint of `model`: the state record (with format and version 1) and
// every parameter and buffer under "model/NAME", as save_checkpoint wrote them then.
inline void write_format1_checkpoint(const std::string& path, const torch::nn::Module& model, nlohmann::json state) {
  state["format"] = "mapgate-checkpoint";
  state["version"] = 1;
  torch::serialize::OutputArchive archive;
  archive.write("state", c10::IValue(state.dump()));
  for (const auto& p : model.named_parameters()) archive.write("model/" + p.key(), p.value());
  for (const auto& b : model.named_buffers()) archive.write("model/" + b.key(), b.value(), true);
  archive.save_to(path);
}

}  // namespace mapgate::test
