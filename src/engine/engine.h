// Gated DenseNet inference without LibTorch (docs/design.md §2, §5). Per example, each dense
// layer first evaluates its gate from the running GAP of its input, then applies BN-ReLU
// to the active input maps only and computes only the active output maps; switched-off
// maps are never read or written. Transitions pool before their 1x1 convolution (exact up
// to rounding, both being linear; a quarter of the MACs). Must match
// DenseNetImpl::forward_gated (src/model/densenet.cpp) in eval mode under the same masks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/weights.h"

namespace mapgate {

enum class EngineMode {
  kDense,   // every map on, gates not evaluated (the plain DenseNet)
  kGated,   // m = [p > tau], p = eps + (1 - 2 eps) sigmoid(W s + b)   (gated models only)
  kGiven,   // masks supplied by the caller (tests, benchmarks with random masks)
};

// What one example did. Layers are the dense layers in block-major order (= gates).
struct EngineStats {
  std::vector<std::uint8_t> masks;  // (layers, k): 1 = map computed
  std::vector<int> active;          // (layers): maps kept per layer
  std::vector<float> probs;         // (layers, k): gate p (kGated only, else empty)
  // Multiply-accumulates under the paper's convention (docs/design.md §4): convolutions,
  // classifier, and the gates' W s (C_in * k each) in kGated mode, a transition's 1x1
  // convolution counted at its block's resolution s x s (n_in * out * s^2). Equals
  // GatedCost::macs(active) (src/model/gated_macs.h) in kGated mode, that minus gate_macs()
  // in kGiven mode, and dense_macs() in kDense mode.
  std::int64_t macs = 0;
  // Multiply-accumulates the engine really executes: `macs` except that each transition
  // pools before its 1x1 convolution, which therefore costs n_in * out * (s/2)^2 (floor
  // s/2), a quarter of the counted figure for even s. Never more than `macs`.
  std::int64_t macs_executed = 0;
};

struct EngineOptions {
  EngineMode mode = EngineMode::kGated;  // kGated falls back to kDense for an ungated model
  double threshold = -1;                 // tau; < 0: the weight file's
  KernelSet kernels = kFastKernels;      // kRefKernels: the whole pass through the *_ref kernels
  // Test hook: before each example, fill every feature buffer with NaN, so that reading a
  // map that was never written shows up in the logits.
  bool poison = false;
};

class Engine {
 public:
  // Checks the weights (check_weights) and folds each BN into scale and shift.
  explicit Engine(const Weights& weights, EngineOptions options = {});
  static Engine load(const std::string& path, EngineOptions options = {});
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  const DenseNetConfig& config() const { return config_; }
  // Input normalisation of the weight file: x = (pixel / 255 - mean) / std per channel.
  const std::vector<float>& input_mean() const { return mean_; }
  const std::vector<float>& input_std() const { return std_; }
  const EngineOptions& options() const { return options_; }
  void set_options(const EngineOptions& options);
  int layers() const { return config_.dense_layers(); }

  // image: (in_channels, S, S) normalised, as DenseNet::forward takes it -> logits
  // (num_classes). masks: kGiven only, (layers, k) 0/1. stats may be null.
  // Uses the engine's own workspace: one call at a time per Engine.
  void forward(const float* image, float* logits, EngineStats* stats = nullptr,
               const std::uint8_t* masks = nullptr);
  // n examples on `threads` threads (the caller and threads - 1 pool threads kept between
  // calls): example-parallel, each thread with its own workspace, when n >= threads; else
  // (batch 1) the threads share each example, splitting every step's maps between them.
  // Results do not depend on `threads`, bit for bit.
  // images (n, C, S, S), logits (n, classes), stats n entries or null, masks (n, layers, k)
  // for kGiven.
  void forward_batch(const float* images, int n, float* logits, EngineStats* stats = nullptr,
                     int threads = 1, const std::uint8_t* masks = nullptr);

  struct Model;       // folded weights (engine.cpp)
  struct Workspace;   // per-thread buffers (engine.cpp)
  class WorkerPool;   // persistent batch threads (engine.cpp)

 private:
  void run(Workspace& ws, const float* image, float* logits, EngineStats* stats, const std::uint8_t* masks) const;
  void forward_shared(const float* images, int n, float* logits, EngineStats* stats, int threads,
                      const std::uint8_t* masks);

  DenseNetConfig config_;
  std::vector<float> mean_, std_;
  EngineOptions options_;
  std::unique_ptr<Model> model_;
  std::vector<std::unique_ptr<Workspace>> workspaces_;  // [0] for forward(), one per batch thread
  std::unique_ptr<WorkerPool> pool_;                     // started by the first forward_batch with threads > 1
};

}  // namespace mapgate
