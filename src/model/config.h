// DenseNet architecture settings (docs/design.md §1) and their checks; no LibTorch here:
// part of mapgate_base, which the engine and the LibTorch side both link.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace mapgate {

struct DenseNetConfig {
  int depth = 40;           // total conv + linear layers: 3 blocks of (depth-4)/3 layers
  int growth = 12;          // k: new maps per dense layer
  bool bc = false;          // bottleneck (1x1 -> 4k) layers and compression
  double compression = 0;   // transition output = floor(compression * C); 0 = 1.0, BC 0.5
  double dropout = 0;       // after each dense-layer conv (training only)
  int num_classes = 10;
  int in_channels = 3;
  int image_size = 32;      // square inputs
  // Gates (docs/design.md §2): one per dense layer, deciding from the layer's input which of
  // its k output maps to compute. Off: the plain DenseNet, bit for bit.
  bool gated = false;
  double threshold = 0.5;   // tau: inference keeps map j when p_j > tau
  double p_clamp = 0.01;    // eps: p = eps + (1 - 2 eps) sigmoid(z), so p stays in [eps, 1-eps]
  // Gate input (docs/method.md §1): false, the raw GAP of the layer input; true, that GAP
  // standardised per channel by the gate's own BatchNorm (no affine), which a weight file
  // folds into the gate's linear map. Files without the key were trained raw.
  bool gate_standardize = false;
  // Gate unit: false, one decision per map (k per layer, the paper's gates); true, one per
  // layer, shared by its k maps (ConvNet-AIG's granularity: a layer is computed whole or
  // skipped). A weight file stores a per-layer gate as k equal rows, so the engine needs
  // no mode of its own. Files without the key gate maps.
  bool gate_per_layer = false;
  // Core maps: the first K of every layer's k maps are computed for every image, without a
  // decision; the gates decide the other k - K (per-map gates only). 0: every map gated,
  // the paper's gates. A weight file stores a core map's gate as W = 0 and a large bias, so
  // the engine needs no mode of its own. Files without the key gate every map.
  int core_maps = 0;
  // Inference rule: false, m = [p > tau]; true, m ~ Bernoulli(p) also in eval mode (the
  // random-mask baseline, --gates random; the engine does not run such a model).
  bool sampled_inference = false;

  double effective_compression() const { return compression > 0 ? compression : (bc ? 0.5 : 1.0); }
  int layers_per_block() const { return bc ? (depth - 4) / 6 : (depth - 4) / 3; }
  int stem_channels() const { return bc ? 2 * growth : 16; }
  // Channels after a transition that receives `channels` maps.
  int transition_out(int channels) const;
  int dense_layers() const { return 3 * layers_per_block(); }   // = number of gates
  int gate_outputs() const { return gate_per_layer ? 1 : growth; }  // decisions per gate
  // How often each routed (non-core) map must be on for a layer to keep `layer_rate` of its
  // k maps on average, the core's K included: (r k - K) / (k - K); below 0 when r is under
  // the core's own share K / k.
  double routed_rate(double layer_rate) const {
    return (layer_rate * growth - core_maps) / static_cast<double>(growth - core_maps);
  }
};

// Largest model validate() accepts, in parameters (conv and linear weights).
inline constexpr double kMaxParams = 1e9;

// tau keeps map j when p_j > tau; a threshold is valid in [0, 1] (NaN is not). The one
// rule for every place that takes a tau: flags, model configs, files, the engine, the C API.
inline bool is_valid_threshold(double tau) { return tau >= 0 && tau <= 1; }

// How a problem names the setting: by its CLI flag (--p-clamp) or its field in a file (p_clamp).
enum class SettingNames { kFlags, kFields };

// The first rule `config` breaks, in one line naming the setting and the rule; empty when
// it is valid. The one architecture check: the CLI, checkpoints and weight files use it.
std::string architecture_problem(const DenseNetConfig& config, SettingNames names);

// Throws UsageError naming the flag (--depth, --growth, ...) and the rule.
void validate(const DenseNetConfig& config);

nlohmann::json to_json(const DenseNetConfig& config);
// Reads the keys written by to_json; throws Error naming `source` on a missing key.
DenseNetConfig densenet_config_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace mapgate
