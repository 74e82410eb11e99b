// Format 1 of the checkpoint: a LibTorch archive (torch::serialize::OutputArchive), which
// mapgate wrote before version 2 (checkpoint_file.h). Its reader compiles the TorchScript
// source records inside the archive, which a crafted file can make crash LibTorch
// (docs/reliability.md), so only `mapgate upgrade-checkpoint` reads it, for files the
// user trusts; every other command refuses format 1 and names that command.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

namespace mapgate {

struct Format1Checkpoint {
  nlohmann::json state;                                       // its state record
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // "model/NAME", checked
};

// Reads the state record and the model's tensors (the optimizers' state is left behind).
// Throws Error "checkpoint "P": ..." when the file is not a readable LibTorch archive
// (checked first by check_checkpoint_archive), has no mapgate state record, or holds a
// tensor that is not a dense float32/int64 CPU tensor inside its storage with finite values.
Format1Checkpoint read_format1_checkpoint(const std::string& path);

}  // namespace mapgate
