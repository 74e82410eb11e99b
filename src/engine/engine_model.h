// Inside the engine (not installed): the folded weights an Engine holds and the buffers
// of one example's pass, shared by engine.cpp (loading, batching) and forward_pass.cpp
// (the pass itself).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/engine.h"
#include "engine/team.h"

namespace mapgate {
// Own namespace: mapgate::Transition is also the LibTorch model's module (densenet.h).
namespace folded {

struct Bn {
  std::vector<float> scale, shift;  // y = scale * x + shift
};

struct Layer {
  int in = 0;                        // C_in: channels of the block's concatenation so far
  Bn norm1, norm2;                   // norm2: BC only
  std::vector<float> conv1, conv2;   // plain: conv1 (k, C_in, 3, 3); BC: conv1 (4k, C_in), conv2 (k, 4k, 3, 3)
  std::vector<float> gate_w, gate_b; // (k, C_in), (k); gated models only
};

struct Transition {
  int in = 0, out = 0;
  Bn norm;
  std::vector<float> conv;           // (out, in)
};

}  // namespace folded

struct Engine::Model {
  using Bn = folded::Bn;
  using Layer = folded::Layer;
  using Transition = folded::Transition;
  std::vector<float> stem;           // (S0, in_channels, 3, 3)
  int stem_out = 0;
  std::vector<Layer> blocks[3];
  Transition trans[2];
  Bn norm;
  std::vector<float> classifier_w, classifier_b;
  int size[3] = {};                  // spatial size of each block (square)
  int start[3] = {};                 // channels entering each block
  int total[3] = {};                 // channels leaving each block (start + layers * k)
};

struct Engine::Workspace {
  std::vector<float> feat[3];        // block b's concatenation: (total[b], size[b], size[b])
  std::vector<float> padded[3];      // BN-ReLU'd conv3x3 inputs, (planes, size+2, size+2), zero border
  std::vector<float> flat;           // BN-ReLU'd conv1x1 / head inputs, (planes, size, size)
  std::vector<float> bottleneck;     // BC: conv1 output (4k, size, size)
  std::vector<float> trans_pooled;   // transition: BN-ReLU'd active inputs after pooling, (in, size/2, size/2)
  std::vector<float> gap;            // running GAP of the current block's concatenation
  std::vector<float> z, p, pooled;
  std::vector<int> active, out_active, all;
};

// Buffers sized for model m (zero, so the padded planes' borders are the padding).
std::unique_ptr<Engine::Workspace> make_workspace(const Engine::Model& m, const DenseNetConfig& c);

// Before an example's pass, on one thread: checks kGiven has masks (Error), poisons the
// workspace (the test hook) and resets the stats.
void prepare_pass(const Engine::Model& m, const DenseNetConfig& c, const EngineOptions& options,
                  Engine::Workspace& ws, EngineStats* stats, const std::uint8_t* given);

// One example through the model (Engine::forward's contract), after prepare_pass; every
// member of `team` calls it with the same arguments and its own rank (team.h). Each map is
// computed whole by one member, a convolution's outputs in the groups a one-member call
// forms (conv_group_rows): results equal the one-member pass bit for bit.
// given: kGiven's masks.
void forward_pass(const Engine::Model& m, const DenseNetConfig& c, const EngineOptions& options,
                  Engine::Workspace& ws, const float* image, float* logits, EngineStats* stats,
                  const std::uint8_t* given, const Team& team = {});

}  // namespace mapgate
