// One example through the engine, step by step: stem; per dense layer gate ->
// BN-ReLU(active inputs) -> conv(active outputs); per transition BN-ReLU-avgpool-conv1x1
// on active inputs; head BN-ReLU-GAP-linear. Order of operations and masking follow
// DenseNetImpl::forward_gated (densenet.cpp); LibTorch pools after the transition's conv:
// the same result, both being linear, for a quarter of the 1x1 MACs.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "engine/engine_model.h"
#include "engine/team.h"

namespace mapgate {
namespace {

using folded::Bn;
using folded::Layer;
using folded::Transition;

// `n` listed planes of a CHW buffer: channel c at data + c * plane.
struct Planes {
  const float* data = nullptr;
  std::ptrdiff_t plane = 0;
  const int* active = nullptr;
  int n = 0;
};

// Where a kernel writes: channel c at data + c * plane.
struct Out {
  float* data = nullptr;
  std::ptrdiff_t plane = 0;
};

// A masked convolution at `size` x `size` outputs: the listed inputs through `weight`
// (dim 1 of size in_total) into the listed outputs.
MaskedConvArgs conv_args(int size, Planes in, const float* weight, int in_total, Planes outputs, Out out) {
  MaskedConvArgs a;
  a.height = a.width = size;
  a.in = in.data;
  a.in_plane = in.plane;
  a.in_active = in.active;
  a.n_in = in.n;
  a.weight = weight;
  a.in_total = in_total;
  a.out_active = outputs.active;
  a.n_out = outputs.n;
  a.out = out.data;
  a.out_plane = out.plane;
  return a;
}

// BN-ReLU of the listed planes into `out`; pad 1 writes the interior of zero-padded planes.
BnReluArgs bn_relu_args(int size, Planes in, const Bn& norm, Out out, int pad) {
  BnReluArgs a;
  a.height = a.width = size;
  a.in = in.data;
  a.in_plane = in.plane;
  a.active = in.active;
  a.n = in.n;
  a.scale = norm.scale.data();
  a.shift = norm.shift.data();
  a.out = out.data;
  a.out_plane = out.plane;
  a.pad = pad;
  return a;
}

void fill_nan(std::vector<float>& v) { std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN()); }

// Test hook (EngineOptions::poison): every buffer NaN but the padding, so that a map read
// before it was written shows up in the logits.
void poison(Engine::Workspace& ws, const Engine::Model& m) {
  for (int b = 0; b < 3; ++b) {
    fill_nan(ws.feat[b]);
    const int s = m.size[b];
    const std::size_t padded = static_cast<std::size_t>(s + 2) * (s + 2);
    for (std::size_t pl = 0; pl < ws.padded[b].size() / padded; ++pl)
      for (int y = 0; y < s; ++y)
        std::fill_n(ws.padded[b].data() + pl * padded + (y + 1) * (s + 2) + 1, s,
                    std::numeric_limits<float>::quiet_NaN());
  }
  fill_nan(ws.flat);
  fill_nan(ws.trans_pooled);
  fill_nan(ws.bottleneck);
  fill_nan(ws.gap);
  fill_nan(ws.pooled);
}

// This member's share of the listed planes.
Planes slice(Planes p, const Team& team) {
  const auto [first, count] = team.share(p.n);
  return {p.data, p.plane, p.active + first, count};
}

// Every step runs on every member of the team (one member: the plain serial pass); a
// step's parallel part ends with team_.sync(), its serial part runs on the leader.
class ForwardPass {
 public:
  ForwardPass(const Engine::Model& m, const DenseNetConfig& c, const EngineOptions& o, Engine::Workspace& ws,
              EngineStats* stats, const std::uint8_t* given, const Team& team)
      : m_(m), c_(c), kern_(o.kernels), mode_(o.mode), ws_(ws), stats_(stats), given_(given),
        tau_(static_cast<float>(o.threshold >= 0 ? o.threshold : c.threshold)), all_(ws.all.data()), team_(team) {}

  void stem(const float* image);
  void dense_layer(int b, const Layer& layer, int l);
  void transition(int b);
  void head(float* logits);

  // macs: the paper's count (docs/design.md §4). The engine executes that less
  // transition_saved: the transitions' 1x1 MACs it skips by pooling first. Leader only.
  std::int64_t macs = 0, transition_saved = 0;

 private:
  void choose_outputs(const Layer& layer, int l);  // ws_.out_active, and the stats' mask
  void plain_conv(int b, const Layer& layer, Planes in, Planes outputs, Out out);
  void bottleneck_conv(int b, const Layer& layer, Planes in, Planes outputs, Out out);
  // The team's shares of a BN-ReLU and of a convolution's outputs, each followed by sync.
  void bn_relu(int size, Planes in, const Bn& norm, Out out, int pad);
  void conv(void (*kernel)(const MaskedConvArgs&), int taps, int size, Planes in, const float* weight, int in_total,
            Planes outputs, Out out);
  void count(std::int64_t n) {
    if (team_.leader()) macs += n;
  }
  int size(int b) const { return m_.size[b]; }
  std::ptrdiff_t plane(int b) const { return static_cast<std::ptrdiff_t>(size(b)) * size(b); }
  std::ptrdiff_t padded_plane(int b) const { return static_cast<std::ptrdiff_t>(size(b) + 2) * (size(b) + 2); }
  Planes every(const float* data, std::ptrdiff_t plane, int n) const { return {data, plane, all_, n}; }

  const Engine::Model& m_;
  const DenseNetConfig& c_;
  const KernelSet& kern_;
  const EngineMode mode_;
  Engine::Workspace& ws_;
  EngineStats* stats_;
  const std::uint8_t* given_;
  const float tau_;
  const int* all_;  // 0, 1, 2, ...: "every channel"
  const Team team_;
};

void ForwardPass::bn_relu(int size, Planes in, const Bn& norm, Out out, int pad) {
  const Planes mine = slice(in, team_);
  if (mine.n > 0) kern_.bn_relu(bn_relu_args(size, mine, norm, out, pad));
  team_.sync();
}

// Alone: one call. In a team: the one-call kernel's output groups (conv_group_rows) dealt
// out whole, one call per group, so every output runs the same arithmetic as alone.
void ForwardPass::conv(void (*kernel)(const MaskedConvArgs&), int taps, int size, Planes in, const float* weight,
                       int in_total, Planes outputs, Out out) {
  if (team_.size == 1) {
    if (outputs.n > 0) kernel(conv_args(size, in, weight, in_total, outputs, out));
    return;
  }
  const int rows = conv_group_rows(taps), groups = (outputs.n + rows - 1) / rows;
  const auto [mine, count] = team_.share(groups);
  for (int g = 0, first = 0; g < mine + count; ++g) {
    const int n = outputs.n / groups + (g < outputs.n % groups ? 1 : 0);
    if (g >= mine) kernel(conv_args(size, in, weight, in_total, {nullptr, 0, outputs.active + first, n}, out));
    first += n;
  }
  team_.sync();
}

// conv3x3 of the zero-padded image into the first maps of block 1; ws.active then lists
// them and ws.gap holds their means.
void ForwardPass::stem(const float* image) {
  const int s = size(0);
  if (team_.leader())
    for (int ci = 0; ci < c_.in_channels; ++ci)
      for (int y = 0; y < s; ++y)
        std::copy_n(image + ci * plane(0) + y * s, s,
                    ws_.padded[0].data() + ci * padded_plane(0) + (y + 1) * (s + 2) + 1);
  team_.sync();
  conv(kern_.conv3x3, 9, s, every(ws_.padded[0].data(), padded_plane(0), c_.in_channels), m_.stem.data(),
       c_.in_channels, every(nullptr, 0, m_.stem_out), {ws_.feat[0].data(), plane(0)});
  count(9LL * c_.in_channels * m_.stem_out * plane(0));
  if (team_.leader()) {
    ws_.active.assign(all_, all_ + m_.stem_out);
    kern_.gap(s, s, ws_.feat[0].data(), plane(0), all_, m_.stem_out, ws_.gap.data());
  }
  team_.sync();
}

// The gate reads s = GAP(x) over all C_in channels (a switched-off map's mean is 0).
void ForwardPass::choose_outputs(const Layer& layer, int l) {
  const int k = c_.growth, cin = layer.in;
  ws_.out_active.clear();
  if (mode_ == EngineMode::kGated) {
    kern_.linear(ws_.gap.data(), all_, cin, layer.gate_w.data(), cin, layer.gate_b.data(), k, ws_.z.data());
    macs += static_cast<std::int64_t>(cin) * k;
    const float eps = static_cast<float>(c_.p_clamp), span = static_cast<float>(1 - 2 * c_.p_clamp);
    for (int j = 0; j < k; ++j) {
      const float p = eps + span * (1.f / (1.f + std::exp(-ws_.z[j])));
      if (stats_) stats_->probs[static_cast<std::size_t>(l) * k + j] = p;
      if (p > tau_) ws_.out_active.push_back(j);
    }
  } else if (mode_ == EngineMode::kGiven) {
    for (int j = 0; j < k; ++j)
      if (given_[static_cast<std::size_t>(l) * k + j]) ws_.out_active.push_back(j);
  } else {
    ws_.out_active.assign(all_, all_ + k);
  }
  if (!stats_) return;
  for (int j : ws_.out_active) stats_->masks[static_cast<std::size_t>(l) * k + j] = 1;
  stats_->active[l] = static_cast<int>(ws_.out_active.size());
}

void ForwardPass::dense_layer(int b, const Layer& layer, int l) {
  if (team_.leader()) choose_outputs(layer, l);
  team_.sync();
  const int s = size(b), k = c_.growth, cin = layer.in;
  float* feat = ws_.feat[b].data();
  const Planes in{feat, plane(b), ws_.active.data(), static_cast<int>(ws_.active.size())};
  const Planes outputs{nullptr, 0, ws_.out_active.data(), static_cast<int>(ws_.out_active.size())};
  const Out out{feat + cin * plane(b), plane(b)};  // the layer's k maps follow its input maps
  if (outputs.n > 0) {
    if (c_.bc)
      bottleneck_conv(b, layer, in, outputs, out);
    else
      plain_conv(b, layer, in, outputs, out);
  }
  if (team_.leader()) {  // extend the running GAP and the active list by this layer's maps
    for (int j = 0; j < k; ++j) ws_.gap[cin + j] = 0.f;
    for (int j : ws_.out_active) ws_.active.push_back(cin + j);
    kern_.gap(s, s, feat, plane(b), ws_.active.data() + in.n, outputs.n, ws_.gap.data());
  }
  team_.sync();
}

// BN-ReLU -> conv3x3 -> the active outputs.
void ForwardPass::plain_conv(int b, const Layer& layer, Planes in, Planes outputs, Out out) {
  const int s = size(b);
  float* padded = ws_.padded[b].data();
  bn_relu(s, in, layer.norm1, {padded, padded_plane(b)}, /*pad=*/1);
  conv(kern_.conv3x3, 9, s, {padded, padded_plane(b), in.active, in.n}, layer.conv1.data(), layer.in, outputs, out);
  count(9LL * in.n * outputs.n * plane(b));
}

// BN-ReLU -> conv1x1 -> 4k (all), BN-ReLU -> conv3x3 -> the active outputs.
void ForwardPass::bottleneck_conv(int b, const Layer& layer, Planes in, Planes outputs, Out out) {
  const int s = size(b), k4 = 4 * c_.growth;
  float* padded = ws_.padded[b].data();
  bn_relu(s, in, layer.norm1, {ws_.flat.data(), plane(b)}, /*pad=*/0);
  conv(kern_.conv1x1, 1, s, {ws_.flat.data(), plane(b), in.active, in.n}, layer.conv1.data(), layer.in,
       every(nullptr, 0, k4), {ws_.bottleneck.data(), plane(b)});
  bn_relu(s, every(ws_.bottleneck.data(), plane(b), k4), layer.norm2, {padded, padded_plane(b)}, /*pad=*/1);
  conv(kern_.conv3x3, 9, s, every(padded, padded_plane(b), k4), layer.conv2.data(), k4, outputs, out);
  count(static_cast<std::int64_t>(in.n) * k4 * plane(b) + 9LL * k4 * outputs.n * plane(b));
}

// BN-ReLU(active) -> 2x2 average pooling (active) -> conv1x1 -> all outputs, written
// straight into the next block. Pooling first is exact up to float rounding: the 1x1
// convolution mixes channels pixel by pixel and the pooling mixes pixels channel by
// channel, both linearly, so they commute; the convolution then runs on (s/2)^2 pixels
// instead of s^2 (an odd last row or column is dropped either way).
void ForwardPass::transition(int b) {
  const Transition& tr = m_.trans[b];
  const int s = size(b), ns = size(b + 1);
  const Planes in{ws_.feat[b].data(), plane(b), ws_.active.data(), static_cast<int>(ws_.active.size())};
  bn_relu(s, in, tr.norm, {ws_.flat.data(), plane(b)}, /*pad=*/0);
  const Planes mine = slice(in, team_);
  if (mine.n > 0) kern_.avgpool(s, s, ws_.flat.data(), plane(b), mine.active, mine.n, ws_.trans_pooled.data(), plane(b + 1));
  team_.sync();
  conv(kern_.conv1x1, 1, ns, {ws_.trans_pooled.data(), plane(b + 1), in.active, in.n}, tr.conv.data(), tr.in,
       every(nullptr, 0, tr.out), {ws_.feat[b + 1].data(), plane(b + 1)});
  count(static_cast<std::int64_t>(in.n) * tr.out * plane(b));  // counted at s x s (§4), run at s/2 x s/2
  if (team_.leader()) {
    transition_saved += static_cast<std::int64_t>(in.n) * tr.out * (plane(b) - plane(b + 1));
    ws_.active.assign(all_, all_ + tr.out);
    kern_.gap(ns, ns, ws_.feat[b + 1].data(), plane(b + 1), all_, tr.out, ws_.gap.data());
  }
  team_.sync();
}

// BN-ReLU(active) -> GAP -> classifier over the active channels; the leader alone.
void ForwardPass::head(float* logits) {
  if (!team_.leader()) return;
  const int s = size(2);
  const Planes in{ws_.feat[2].data(), plane(2), ws_.active.data(), static_cast<int>(ws_.active.size())};
  kern_.bn_relu(bn_relu_args(s, in, m_.norm, {ws_.flat.data(), plane(2)}, /*pad=*/0));
  kern_.gap(s, s, ws_.flat.data(), plane(2), in.active, in.n, ws_.pooled.data());
  kern_.linear(ws_.pooled.data(), in.active, in.n, m_.classifier_w.data(), m_.total[2], m_.classifier_b.data(),
               c_.num_classes, logits);
  macs += static_cast<std::int64_t>(in.n) * c_.num_classes;
}

}  // namespace

void prepare_pass(const Engine::Model& m, const DenseNetConfig& c, const EngineOptions& options,
                  Engine::Workspace& ws, EngineStats* stats, const std::uint8_t* given) {
  if (options.mode == EngineMode::kGiven && !given) throw Error("engine: mode kGiven needs masks");
  if (options.poison) poison(ws, m);
  if (!stats) return;
  const std::size_t gated_maps = static_cast<std::size_t>(c.dense_layers()) * c.growth;
  stats->masks.assign(gated_maps, 0);
  stats->active.assign(c.dense_layers(), 0);
  stats->probs.clear();
  if (options.mode == EngineMode::kGated) stats->probs.assign(gated_maps, 0.f);
}

void forward_pass(const Engine::Model& m, const DenseNetConfig& c, const EngineOptions& options,
                  Engine::Workspace& ws, const float* image, float* logits, EngineStats* stats,
                  const std::uint8_t* given, const Team& team) {
  ForwardPass pass(m, c, options, ws, stats, given, team);
  pass.stem(image);
  int l = 0;
  for (int b = 0; b < 3; ++b) {
    for (const Layer& layer : m.blocks[b]) pass.dense_layer(b, layer, l++);
    if (b < 2) pass.transition(b);
  }
  pass.head(logits);
  if (stats && team.leader()) {
    stats->macs = pass.macs;
    stats->macs_executed = pass.macs - pass.transition_saved;
  }
}

}  // namespace mapgate
