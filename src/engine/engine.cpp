// Engine: folded weights, per-thread workspaces and the per-example gated forward pass.
// Order of operations and masking follow DenseNetImpl::forward_gated (densenet.cpp):
// stem; per dense layer GAP -> gate -> BN-ReLU(active inputs) -> conv(active outputs);
// transitions BN-ReLU-avgpool-conv1x1 on active inputs (LibTorch pools after the conv: the
// same result, both being linear, for a quarter of the 1x1 MACs); head BN-ReLU-GAP-linear.
#include "engine/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace mapgate {
namespace {

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

}  // namespace

struct Engine::Model {
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

// Threads kept for the engine's lifetime, so that a batch does not pay for starting them
// (tens of microseconds each). run(n, fn) calls fn(0) on the caller and fn(1..n-1) on pool
// threads, and returns when all have finished; fn must not throw.
class Engine::WorkerPool {
 public:
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(int n, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    while (static_cast<int>(threads_.size()) < n - 1) {
      const int t = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, t, seen = generation_] { loop(t, seen); });
    }
    job_ = &fn;
    job_threads_ = n;
    pending_ = n - 1;
    ++generation_;
    lock.unlock();
    start_.notify_all();
    fn(0);
    lock.lock();
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int t, std::uint64_t seen) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      start_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (t >= job_threads_) continue;  // this job needs fewer threads
      const std::function<void(int)>* job = job_;
      lock.unlock();
      (*job)(t);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex mu_;
  std::condition_variable start_, done_;
  std::vector<std::thread> threads_;      // thread i runs fn(i + 1)
  const std::function<void(int)>* job_ = nullptr;
  int job_threads_ = 0;                   // caller included
  int pending_ = 0;                       // pool threads still running the current job
  std::uint64_t generation_ = 0;          // one per job
  bool stop_ = false;
};

namespace {

Bn fold_bn(const Weights& w, const std::string& name) {
  const auto& g = w.tensors.at(name + ".weight").data;
  const auto& b = w.tensors.at(name + ".bias").data;
  const auto& m = w.tensors.at(name + ".running_mean").data;
  const auto& v = w.tensors.at(name + ".running_var").data;
  Bn bn;
  bn.scale.resize(g.size());
  bn.shift.resize(g.size());
  for (std::size_t c = 0; c < g.size(); ++c) {
    const double s = g[c] / std::sqrt(static_cast<double>(v[c]) + w.bn_eps);
    bn.scale[c] = static_cast<float>(s);
    bn.shift[c] = static_cast<float>(b[c] - m[c] * s);
  }
  return bn;
}

void fill_nan(std::vector<float>& v) { std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN()); }

}  // namespace

Engine::Engine(const Weights& weights, EngineOptions options)
    : config_(weights.config), mean_(weights.mean), std_(weights.std), model_(std::make_unique<Model>()) {
  check_weights(weights, "in memory");
  set_options(options);
  auto& m = *model_;
  const auto& t = weights.tensors;
  const int k = config_.growth;
  m.stem = t.at("stem.weight").data;
  m.stem_out = config_.stem_channels();
  int ch = m.stem_out, size = config_.image_size, l = 0;
  for (int b = 0; b < 3; ++b) {
    m.size[b] = size;
    m.start[b] = ch;
    for (int i = 0; i < config_.layers_per_block(); ++i, ++l) {
      const std::string name = "block" + std::to_string(b + 1) + "." + std::to_string(i);
      Layer layer;
      layer.in = ch;
      if (config_.bc) {
        layer.norm1 = fold_bn(weights, name + ".norm1");
        layer.conv1 = t.at(name + ".conv1.weight").data;
        layer.norm2 = fold_bn(weights, name + ".norm2");
        layer.conv2 = t.at(name + ".conv2.weight").data;
      } else {
        layer.norm1 = fold_bn(weights, name + ".norm");
        layer.conv1 = t.at(name + ".conv.weight").data;
      }
      if (config_.gated) {
        layer.gate_w = t.at("gates." + std::to_string(l) + ".fc.weight").data;
        layer.gate_b = t.at("gates." + std::to_string(l) + ".fc.bias").data;
      }
      m.blocks[b].push_back(std::move(layer));
      ch += k;
    }
    m.total[b] = ch;
    if (b < 2) {
      const std::string name = "trans" + std::to_string(b + 1);
      auto& tr = m.trans[b];
      tr.in = ch;
      tr.out = config_.transition_out(ch);
      tr.norm = fold_bn(weights, name + ".norm");
      tr.conv = t.at(name + ".conv.weight").data;
      ch = tr.out;
      size /= 2;  // avg_pool2d(2), floor mode
    }
  }
  m.norm = fold_bn(weights, "norm");
  m.classifier_w = t.at("classifier.weight").data;
  m.classifier_b = t.at("classifier.bias").data;
}

Engine Engine::load(const std::string& path, EngineOptions options) { return Engine(read_weights(path), options); }

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

void Engine::set_options(const EngineOptions& options) {
  if (options.mode == EngineMode::kGated && !config_.gated) {
    options_ = options;
    options_.mode = EngineMode::kDense;
  } else {
    options_ = options;
  }
  if (!(options_.threshold < 0 || is_valid_threshold(options_.threshold)))  // NaN fails too
    throw Error("engine threshold " + std::to_string(options_.threshold) +
                ": expected 0 <= tau <= 1 (or negative: the weight file's own)");
}

namespace {

// BN-ReLU over the `n` active maps of an s x s feature buffer; the caller sets out.
BnReluArgs bn_relu_args(int s, const float* in, std::ptrdiff_t plane, const std::vector<int>& active, int n,
                        const Bn& norm) {
  BnReluArgs bn;
  bn.height = bn.width = s;
  bn.in = in;
  bn.in_plane = plane;
  bn.active = active.data();
  bn.n = n;
  bn.scale = norm.scale.data();
  bn.shift = norm.shift.data();
  return bn;
}

std::unique_ptr<Engine::Workspace> make_workspace(const Engine::Model& m, const DenseNetConfig& c) {
  auto ws = std::make_unique<Engine::Workspace>();
  const int k4 = c.bc ? 4 * c.growth : 0;
  std::size_t flat = 0, trans_pooled = 0;
  int max_channels = 0;
  for (int b = 0; b < 3; ++b) {
    const std::size_t s = m.size[b], plane = s * s, padded = (s + 2) * (s + 2);
    ws->feat[b].assign(m.total[b] * plane, 0.f);
    int planes = std::max(m.total[b], k4);
    if (b == 0) planes = std::max(planes, c.in_channels);
    ws->padded[b].assign(planes * padded, 0.f);
    flat = std::max(flat, m.total[b] * plane);
    if (b < 2) {
      const std::size_t next = m.size[b + 1];  // the pooled size the transition's conv runs at
      trans_pooled = std::max(trans_pooled, m.trans[b].in * next * next);
    }
    max_channels = std::max(max_channels, m.total[b]);
  }
  ws->flat.assign(flat, 0.f);
  ws->trans_pooled.assign(trans_pooled, 0.f);
  ws->bottleneck.assign(static_cast<std::size_t>(k4) * m.size[0] * m.size[0], 0.f);
  ws->gap.assign(max_channels, 0.f);
  ws->pooled.assign(max_channels, 0.f);
  ws->z.assign(c.growth, 0.f);
  ws->p.assign(c.growth, 0.f);
  ws->all.resize(std::max(max_channels, std::max(k4, c.in_channels)));
  for (std::size_t i = 0; i < ws->all.size(); ++i) ws->all[i] = static_cast<int>(i);
  ws->active.reserve(max_channels);
  ws->out_active.reserve(c.growth);
  return ws;
}

void poison(Engine::Workspace& ws, const Engine::Model& m) {
  for (int b = 0; b < 3; ++b) {
    fill_nan(ws.feat[b]);
    // Interior of every padded plane; the border must stay zero (it is the padding).
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

}  // namespace

void Engine::run(Workspace& ws, const float* image, float* logits, EngineStats* stats,
                 const std::uint8_t* given) const {
  const Model& m = *model_;
  const KernelSet& kern = options_.kernels;
  const DenseNetConfig& c = config_;
  const int k = c.growth, k4 = 4 * c.growth;
  const EngineMode mode = options_.mode;
  if (mode == EngineMode::kGiven && !given) throw Error("engine: mode kGiven needs masks");
  const float tau = static_cast<float>(options_.threshold >= 0 ? options_.threshold : c.threshold);
  const float eps = static_cast<float>(c.p_clamp), span = static_cast<float>(1 - 2 * c.p_clamp);
  if (options_.poison) poison(ws, m);
  if (stats) {
    stats->masks.assign(static_cast<std::size_t>(layers()) * k, 0);
    stats->active.assign(layers(), 0);
    stats->probs.clear();
    if (mode == EngineMode::kGated) stats->probs.assign(static_cast<std::size_t>(layers()) * k, 0.f);
    stats->macs = 0;
    stats->macs_executed = 0;
  }
  // macs: the paper's count (docs/design.md §4). The engine executes that less
  // transition_saved: the transitions' 1x1 MACs it skips by pooling first.
  std::int64_t macs = 0, transition_saved = 0;
  const int* all = ws.all.data();

  // --- stem: conv3x3 of the zero-padded image into the first maps of block 1 ---
  int s = m.size[0];
  std::ptrdiff_t plane = static_cast<std::ptrdiff_t>(s) * s, pplane = static_cast<std::ptrdiff_t>(s + 2) * (s + 2);
  for (int ci = 0; ci < c.in_channels; ++ci)
    for (int y = 0; y < s; ++y)
      std::copy_n(image + ci * plane + y * s, s, ws.padded[0].data() + ci * pplane + (y + 1) * (s + 2) + 1);
  MaskedConvArgs conv;
  conv.height = conv.width = s;
  conv.in = ws.padded[0].data();
  conv.in_plane = pplane;
  conv.in_active = all;
  conv.n_in = c.in_channels;
  conv.weight = m.stem.data();
  conv.in_total = c.in_channels;
  conv.out_active = all;
  conv.n_out = m.stem_out;
  conv.out = ws.feat[0].data();
  conv.out_plane = plane;
  kern.conv3x3(conv);
  macs += 9LL * c.in_channels * m.stem_out * plane;

  // active: the maps of the current block's concatenation that are on (ascending).
  ws.active.assign(all, all + m.stem_out);
  kern.gap(s, s, ws.feat[0].data(), plane, all, m.stem_out, ws.gap.data());

  int l = 0;
  for (int b = 0; b < 3; ++b) {
    s = m.size[b];
    plane = static_cast<std::ptrdiff_t>(s) * s;
    pplane = static_cast<std::ptrdiff_t>(s + 2) * (s + 2);
    float* feat = ws.feat[b].data();
    for (const Layer& layer : m.blocks[b]) {
      const int cin = layer.in;
      // Gate: from s = GAP(x) over all C_in channels (a switched-off map's mean is 0).
      ws.out_active.clear();
      std::uint8_t* mask = stats ? stats->masks.data() + static_cast<std::size_t>(l) * k : nullptr;
      if (mode == EngineMode::kGated) {
        kern.linear(ws.gap.data(), all, cin, layer.gate_w.data(), cin, layer.gate_b.data(), k, ws.z.data());
        macs += static_cast<std::int64_t>(cin) * k;
        for (int j = 0; j < k; ++j) {
          const float p = eps + span * (1.f / (1.f + std::exp(-ws.z[j])));
          if (stats) stats->probs[static_cast<std::size_t>(l) * k + j] = p;
          if (p > tau) ws.out_active.push_back(j);
        }
      } else if (mode == EngineMode::kGiven) {
        for (int j = 0; j < k; ++j)
          if (given[static_cast<std::size_t>(l) * k + j]) ws.out_active.push_back(j);
      } else {
        ws.out_active.assign(all, all + k);
      }
      const int a = static_cast<int>(ws.out_active.size());
      if (stats) {
        for (int j : ws.out_active) mask[j] = 1;
        stats->active[l] = a;
      }
      const int n_in = static_cast<int>(ws.active.size());
      if (a > 0) {
        BnReluArgs bn = bn_relu_args(s, feat, plane, ws.active, n_in, layer.norm1);
        conv = MaskedConvArgs{};
        conv.height = conv.width = s;
        conv.out = feat + cin * plane;  // the layer's k maps follow its input maps
        conv.out_plane = plane;
        conv.out_active = ws.out_active.data();
        conv.n_out = a;
        if (!c.bc) {
          bn.out = ws.padded[b].data();
          bn.out_plane = pplane;
          bn.pad = 1;
          kern.bn_relu(bn);
          conv.in = ws.padded[b].data();
          conv.in_plane = pplane;
          conv.in_active = ws.active.data();
          conv.n_in = n_in;
          conv.weight = layer.conv1.data();
          conv.in_total = cin;
          kern.conv3x3(conv);
          macs += 9LL * n_in * a * plane;
        } else {
          // BN-ReLU-conv1x1 -> 4k (all), BN-ReLU-conv3x3 -> the active outputs.
          bn.out = ws.flat.data();
          bn.out_plane = plane;
          bn.pad = 0;
          kern.bn_relu(bn);
          MaskedConvArgs c1;
          c1.height = c1.width = s;
          c1.in = ws.flat.data();
          c1.in_plane = plane;
          c1.in_active = ws.active.data();
          c1.n_in = n_in;
          c1.weight = layer.conv1.data();
          c1.in_total = cin;
          c1.out_active = all;
          c1.n_out = k4;
          c1.out = ws.bottleneck.data();
          c1.out_plane = plane;
          kern.conv1x1(c1);
          BnReluArgs bn2;
          bn2.height = bn2.width = s;
          bn2.in = ws.bottleneck.data();
          bn2.in_plane = plane;
          bn2.active = all;
          bn2.n = k4;
          bn2.scale = layer.norm2.scale.data();
          bn2.shift = layer.norm2.shift.data();
          bn2.out = ws.padded[b].data();
          bn2.out_plane = pplane;
          bn2.pad = 1;
          kern.bn_relu(bn2);
          conv.in = ws.padded[b].data();
          conv.in_plane = pplane;
          conv.in_active = all;
          conv.n_in = k4;
          conv.weight = layer.conv2.data();
          conv.in_total = k4;
          kern.conv3x3(conv);
          macs += static_cast<std::int64_t>(n_in) * k4 * plane + 9LL * k4 * a * plane;
        }
      }
      // Extend the running GAP and the active list by this layer's maps.
      for (int j = 0; j < k; ++j) ws.gap[cin + j] = 0.f;
      for (int j : ws.out_active) ws.active.push_back(cin + j);
      kern.gap(s, s, feat, plane, ws.active.data() + n_in, a, ws.gap.data());
      ++l;
    }
    if (b < 2) {
      // Transition: BN-ReLU(active) -> 2x2 average pooling (active) -> conv1x1 -> all
      // outputs, written straight into the next block. Pooling first is exact up to float
      // rounding: the 1x1 convolution mixes channels pixel by pixel and the pooling mixes
      // pixels channel by channel, both linearly, so they commute; the convolution then runs
      // on (s/2)^2 pixels instead of s^2 (an odd last row or column is dropped either way).
      const Transition& tr = m.trans[b];
      const int n_in = static_cast<int>(ws.active.size());
      const int ns = m.size[b + 1];
      const std::ptrdiff_t nplane = static_cast<std::ptrdiff_t>(ns) * ns;
      BnReluArgs bn = bn_relu_args(s, feat, plane, ws.active, n_in, tr.norm);
      bn.out = ws.flat.data();
      bn.out_plane = plane;
      kern.bn_relu(bn);
      kern.avgpool(s, s, ws.flat.data(), plane, ws.active.data(), n_in, ws.trans_pooled.data(), nplane);
      conv = MaskedConvArgs{};
      conv.height = conv.width = ns;
      conv.in = ws.trans_pooled.data();
      conv.in_plane = nplane;
      conv.in_active = ws.active.data();
      conv.n_in = n_in;
      conv.weight = tr.conv.data();
      conv.in_total = tr.in;
      conv.out_active = all;
      conv.n_out = tr.out;
      conv.out = ws.feat[b + 1].data();
      conv.out_plane = nplane;
      kern.conv1x1(conv);
      macs += static_cast<std::int64_t>(n_in) * tr.out * plane;  // counted at s x s (§4), run at s/2 x s/2
      transition_saved += static_cast<std::int64_t>(n_in) * tr.out * (plane - nplane);
      ws.active.assign(all, all + tr.out);
      kern.gap(ns, ns, ws.feat[b + 1].data(), nplane, all, tr.out, ws.gap.data());
    }
  }

  // --- head: BN-ReLU(active) -> GAP -> classifier over the active channels ---
  const int n_in = static_cast<int>(ws.active.size());
  BnReluArgs bn = bn_relu_args(s, ws.feat[2].data(), plane, ws.active, n_in, m.norm);
  bn.out = ws.flat.data();
  bn.out_plane = plane;
  kern.bn_relu(bn);
  kern.gap(s, s, ws.flat.data(), plane, ws.active.data(), n_in, ws.pooled.data());
  kern.linear(ws.pooled.data(), ws.active.data(), n_in, m.classifier_w.data(), m.total[2],
              m.classifier_b.data(), c.num_classes, logits);
  macs += static_cast<std::int64_t>(n_in) * c.num_classes;
  if (stats) {
    stats->macs = macs;
    stats->macs_executed = macs - transition_saved;
  }
}

void Engine::forward(const float* image, float* logits, EngineStats* stats, const std::uint8_t* masks) {
  if (workspaces_.empty()) workspaces_.push_back(make_workspace(*model_, config_));
  run(*workspaces_[0], image, logits, stats, masks);
}

void Engine::forward_batch(const float* images, int n, float* logits, EngineStats* stats, int threads,
                           const std::uint8_t* masks) {
  if (n <= 0) return;
  const std::size_t image_size =
      static_cast<std::size_t>(config_.in_channels) * config_.image_size * config_.image_size;
  const std::size_t mask_size = static_cast<std::size_t>(layers()) * config_.growth;
  const int workers = std::max(1, std::min(threads, n));
  while (static_cast<int>(workspaces_.size()) < workers) workspaces_.push_back(make_workspace(*model_, config_));
  auto example = [&](Workspace& ws, int i) {
    run(ws, images + i * image_size, logits + static_cast<std::size_t>(i) * config_.num_classes,
        stats ? stats + i : nullptr, masks ? masks + i * mask_size : nullptr);
  };
  if (workers == 1) {
    for (int i = 0; i < n; ++i) example(*workspaces_[0], i);
    return;
  }
  // Example-parallel: each thread takes the next example and runs it whole.
  std::atomic<int> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto work = [&](int t) {
    try {
      for (int i; !failed && (i = next.fetch_add(1)) < n;) example(*workspaces_[t], i);
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  if (!pool_) pool_ = std::make_unique<WorkerPool>();
  pool_->run(workers, work);
  if (error) std::rethrow_exception(error);
}

}  // namespace mapgate
