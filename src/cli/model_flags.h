// Architecture flags shared by `train` and `flops` (docs/design.md §1 defaults).
#pragma once

#include <CLI/CLI.hpp>

#include "model/config.h"

namespace mapgate {

inline void add_model_flags(CLI::App* cmd, DenseNetConfig& c) {
  cmd->add_option("--depth", c.depth, "DenseNet depth: 3n+4 (BC: 6n+4)");
  cmd->add_option("--growth", c.growth, "growth rate k: new maps per dense layer");
  cmd->add_flag("--bc", c.bc, "bottleneck + compression variant (DenseNet-BC)");
  cmd->add_option("--compression", c.compression, "transition compression, 0 = 1.0 (BC: 0.5)");
  cmd->add_option("--dropout", c.dropout, "dropout after each dense-layer conv");
}

}  // namespace mapgate
